#include "cli/login_command.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "core/units.hpp"
#include "net/form_encoding.hpp"
#include "net/http_client.hpp"

namespace portcullis {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr std::string_view kLoginUsage =
    "usage: portcullis login --issuer URL --client-id ID [--scope S] [--resource R]\n"
    "                        [--ca-file FILE] [--output FILE] [--timeout D]\n"
    "       portcullis login --refresh [--output FILE] [--ca-file FILE]\n"
    "\n"
    "Signs in by the OAuth 2.0 device authorization grant (RFC 8628): open the address it\n"
    "prints in any browser, enter the code, and the access token is saved (mode 0600) for\n"
    "calls to bearer routes:\n"
    "  curl -H \"Authorization: Bearer $(jq -r .access_token ~/.config/portcullis/token.json)\"\n"
    "\n"
    "  --issuer URL      the identity provider (its discovery document must name this issuer)\n"
    "  --client-id ID    a public client allowed the device grant\n"
    "  --scope S         space-separated scopes (default \"openid email profile\")\n"
    "  --resource R      RFC 8707 resource (the API audience), when the IdP needs one\n"
    "  --ca-file FILE    CA bundle for an IdP with a private CA\n"
    "  --output FILE     where to save (default $XDG_CONFIG_HOME/portcullis/token.json, else\n"
    "                    ~/.config/portcullis/token.json)\n"
    "  --timeout D       give up after D (default 10m)\n"
    "  --refresh         no browser: trade the saved refresh token for a new access token\n"
    "                    (issuer and client id from the saved file); exit 1 when the IdP\n"
    "                    refuses it (sign in again)\n";

struct LoginOptions {
  std::string issuer;
  std::string client_id;
  std::string scope = "openid email profile";
  std::string resource;
  std::string ca_file;
  std::string output;
  std::chrono::milliseconds timeout = std::chrono::minutes(10);
  bool refresh = false;
};

std::string string_field(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::int64_t int_field(const json::object& o, std::string_view k, std::int64_t fallback) {
  const auto* v = o.if_contains(k);
  if (v && v->is_int64()) return v->get_int64();
  if (v && v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  return fallback;
}

std::optional<json::object> json_object(const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.get_object());
}

std::string default_output() {
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) {
    return std::string(xdg) + "/portcullis/token.json";
  }
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.config/portcullis/token.json";
}

// Writes `contents` to `path` readable by the owner only (the directory it creates: 0700).
Expected<std::monostate, std::string> save_private(const std::string& path,
                                                   const std::string& contents) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  if (p.has_parent_path() && !fs::exists(p.parent_path())) {
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    if (ec) return unexpected("cannot create " + p.parent_path().string() + ": " + ec.message());
    fs::permissions(p.parent_path(), fs::perms::owner_all, fs::perm_options::replace, ec);
  }
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return unexpected("cannot write " + tmp + ": " + std::strerror(errno));
  ::fchmod(fd, 0600);  // whatever the umask or an older file said
  std::size_t done = 0;
  while (done < contents.size()) {
    const auto n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0) {
      ::close(fd);
      return unexpected("cannot write " + tmp + ": " + std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return unexpected("cannot replace " + path + ": " + std::strerror(errno));
  }
  return std::monostate{};
}

// The saved token file: the token endpoint's answer plus issuer, client id and expiry. A
// refresh that returns no new refresh token keeps the previous one.
json::object saved_tokens(const LoginOptions& o, const json::object& answer,
                          const std::string& previous_refresh_token) {
  const auto now_unix = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  const std::int64_t expires_in = int_field(answer, "expires_in", 0);
  json::object saved{{"issuer", o.issuer},
                     {"client_id", o.client_id},
                     {"token_type", string_field(answer, "token_type")},
                     {"access_token", string_field(answer, "access_token")},
                     {"expires_at", expires_in > 0 ? now_unix + expires_in : 0}};
  for (const char* k : {"refresh_token", "id_token", "scope"}) {
    if (auto v = string_field(answer, k); !v.empty()) saved[k] = v;
  }
  if (!o.resource.empty()) saved["resource"] = o.resource;  // asked for again on refresh
  if (!saved.contains("refresh_token") && !previous_refresh_token.empty()) {
    saved["refresh_token"] = previous_refresh_token;
  }
  return saved;
}

// GCC 12 warns -Wmismatched-new-delete on Asio's coroutine frame (allocated and freed by
// Asio's own operators) when the coroutine's ramp is inlined into its co_spawn caller: a false
// positive, silenced for this coroutine only. (The real GCC 12 bug here, temporaries inside
// co_await destroyed twice, is avoided by the named requests below.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
asio::awaitable<int> login(const LoginOptions& o) {
  auto ex = co_await asio::this_coro::executor;
  HttpClient http(
      ex, HttpClientOptions{o.ca_file, std::chrono::seconds(15), 1024 * 1024, "portcullis-login"});
  std::string issuer = o.issuer;
  while (!issuer.empty() && issuer.back() == '/') issuer.pop_back();
  // Requests are named variables, never temporaries inside co_await: GCC 12 destroys such
  // temporaries twice.
  HttpRequestSpec discovery{"GET", issuer + "/.well-known/openid-configuration", {}, {}};
  auto disc = co_await http.fetch(std::move(discovery));
  if (!disc || disc->status != 200) {
    std::cerr << "portcullis: discovery at " << issuer
              << " failed: " << (disc ? "HTTP " + std::to_string(disc->status) : disc.error())
              << "\n";
    co_return 1;
  }
  auto doc = json_object(disc->body);
  if (!doc || string_field(*doc, "issuer") != o.issuer) {
    std::cerr << "portcullis: the discovery document does not name issuer " << o.issuer << "\n";
    co_return 1;
  }
  const std::string device_endpoint = string_field(*doc, "device_authorization_endpoint");
  const std::string token_endpoint = string_field(*doc, "token_endpoint");
  if (device_endpoint.empty() || token_endpoint.empty()) {
    std::cerr << "portcullis: the identity provider offers no device authorization grant\n";
    co_return 1;
  }
  std::string body = "client_id=" + form_encode(o.client_id) + "&scope=" + form_encode(o.scope);
  if (!o.resource.empty()) body += "&resource=" + form_encode(o.resource);
  const std::vector<std::pair<std::string, std::string>> form{
      {"content-type", "application/x-www-form-urlencoded"}, {"accept", "application/json"}};
  HttpRequestSpec device{"POST", device_endpoint, form, body};
  auto start = co_await http.fetch(std::move(device));
  auto grant = start ? json_object(start->body) : std::nullopt;
  if (!start || start->status != 200 || !grant || string_field(*grant, "device_code").empty()) {
    std::cerr << "portcullis: the device authorization request failed: "
              << (start ? "HTTP " + std::to_string(start->status) + " " +
                              (grant ? string_field(*grant, "error") : std::string())
                        : start.error())
              << "\n";
    co_return 1;
  }
  std::cerr << "To sign in, open " << string_field(*grant, "verification_uri")
            << " and enter the code " << string_field(*grant, "user_code") << "\n";
  if (auto complete = string_field(*grant, "verification_uri_complete"); !complete.empty()) {
    std::cerr << "Or open " << complete << "\n";
  }
  std::cerr.flush();

  const auto deadline = std::chrono::steady_clock::now() + o.timeout;
  auto interval = std::chrono::seconds(int_field(*grant, "interval", 5));
  const std::string poll =
      "grant_type=" + form_encode("urn:ietf:params:oauth:grant-type:device_code") +
      "&device_code=" + form_encode(string_field(*grant, "device_code")) +
      "&client_id=" + form_encode(o.client_id);
  asio::steady_timer timer(ex);
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      std::cerr << "portcullis: sign-in timed out\n";
      co_return 1;
    }
    timer.expires_after(std::min<std::chrono::steady_clock::duration>(interval, deadline - now));
    co_await timer.async_wait(asio::use_awaitable);
    if (std::chrono::steady_clock::now() >= deadline) {
      std::cerr << "portcullis: sign-in timed out\n";
      co_return 1;
    }
    HttpRequestSpec token{"POST", token_endpoint, form, poll};
    auto r = co_await http.fetch(std::move(token));
    if (!r) {
      std::cerr << "portcullis: token endpoint: " << r.error() << "\n";
      co_return 1;
    }
    auto answer = json_object(r->body);
    if (!answer) {
      std::cerr << "portcullis: token endpoint answered HTTP " << r->status << " without JSON\n";
      co_return 1;
    }
    if (r->status == 200 && !string_field(*answer, "access_token").empty()) {
      const std::int64_t expires_in = int_field(*answer, "expires_in", 0);
      const std::string path = o.output.empty() ? default_output() : o.output;
      auto written = save_private(path, json::serialize(saved_tokens(o, *answer, {})) + "\n");
      if (!written) {
        std::cerr << "portcullis: " << written.error() << "\n";
        co_return 1;
      }
      std::cerr << "Signed in. Token saved to " << path << " (expires in " << expires_in << "s)\n";
      co_return 0;
    }
    const std::string error = string_field(*answer, "error");
    if (error == "authorization_pending") continue;
    if (error == "slow_down") {
      interval += std::chrono::seconds(5);
      continue;
    }
    if (error == "access_denied") {
      std::cerr << "portcullis: the sign-in was refused (access_denied)\n";
    } else if (error == "expired_token") {
      std::cerr << "portcullis: the code expired before the sign-in was completed\n";
    } else {
      std::cerr << "portcullis: the token endpoint refused: " << (error.empty() ? "?" : error)
                << " (HTTP " << r->status << ")\n";
    }
    co_return 1;
  }
}

// `--refresh`: the saved file's refresh token for a new access token (refresh_token grant,
// RFC 6749 6) at the token endpoint of the saved issuer; the file is replaced atomically.
asio::awaitable<int> refresh(LoginOptions o) {
  const std::string path = o.output.empty() ? default_output() : o.output;
  std::string contents;
  {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream buffer;
    if (in) buffer << in.rdbuf();
    if (!in) {
      std::cerr << "portcullis: cannot read " << path << " (sign in with portcullis login)\n";
      co_return 1;
    }
    contents = buffer.str();
  }
  auto saved = json_object(contents);
  const std::string refresh_token = saved ? string_field(*saved, "refresh_token") : "";
  if (!saved || refresh_token.empty()) {
    std::cerr << "portcullis: " << path
              << " holds no refresh token; sign in again with portcullis login\n";
    co_return 1;
  }
  o.issuer = string_field(*saved, "issuer");
  o.client_id = string_field(*saved, "client_id");
  o.resource = string_field(*saved, "resource");
  if (o.issuer.empty() || o.client_id.empty()) {
    std::cerr << "portcullis: " << path << " names no issuer or client id\n";
    co_return 1;
  }
  auto ex = co_await asio::this_coro::executor;
  HttpClient http(
      ex, HttpClientOptions{o.ca_file, std::chrono::seconds(15), 1024 * 1024, "portcullis-login"});
  std::string issuer = o.issuer;
  while (!issuer.empty() && issuer.back() == '/') issuer.pop_back();
  HttpRequestSpec discovery{"GET", issuer + "/.well-known/openid-configuration", {}, {}};
  auto disc = co_await http.fetch(std::move(discovery));
  auto doc = disc && disc->status == 200 ? json_object(disc->body) : std::nullopt;
  const std::string token_endpoint = doc ? string_field(*doc, "token_endpoint") : "";
  if (!doc || string_field(*doc, "issuer") != o.issuer || token_endpoint.empty()) {
    std::cerr << "portcullis: discovery at " << issuer << " failed\n";
    co_return 1;
  }
  const std::vector<std::pair<std::string, std::string>> form{
      {"content-type", "application/x-www-form-urlencoded"}, {"accept", "application/json"}};
  HttpRequestSpec token{"POST", token_endpoint, form,
                        "grant_type=refresh_token&refresh_token=" + form_encode(refresh_token) +
                            "&client_id=" + form_encode(o.client_id) +
                            (o.resource.empty() ? "" : "&resource=" + form_encode(o.resource))};
  auto r = co_await http.fetch(std::move(token));
  if (!r) {
    std::cerr << "portcullis: token endpoint: " << r.error() << "\n";
    co_return 1;
  }
  auto answer = json_object(r->body);
  if (r->status != 200 || !answer || string_field(*answer, "access_token").empty()) {
    const std::string error = answer ? string_field(*answer, "error") : "";
    std::cerr << "portcullis: the refresh was refused (" << (error.empty() ? "?" : error)
              << ", HTTP " << r->status << "); sign in again with portcullis login\n";
    co_return 1;
  }
  auto written =
      save_private(path, json::serialize(saved_tokens(o, *answer, refresh_token)) + "\n");
  if (!written) {
    std::cerr << "portcullis: " << written.error() << "\n";
    co_return 1;
  }
  std::cerr << "Token refreshed and saved to " << path << " (expires in "
            << int_field(*answer, "expires_in", 0) << "s)\n";
  co_return 0;
}

int usage(std::string_view why) {
  std::cerr << "portcullis: " << why << "\n\n" << kLoginUsage;
  return 2;
}

int run_coroutine(const LoginOptions& o) {
  asio::io_context io;
  auto done = asio::co_spawn(io, o.refresh ? refresh(o) : login(o), asio::use_future);
  io.run();
  return done.get();
}
#pragma GCC diagnostic pop

}  // namespace

int run_login(const std::vector<std::string_view>& args) {
  LoginOptions o;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      std::cout << kLoginUsage;
      return 0;
    }
    if (a == "--refresh") {
      o.refresh = true;
      continue;
    }
    const bool takes_value = a == "--issuer" || a == "--client-id" || a == "--scope" ||
                             a == "--resource" || a == "--ca-file" || a == "--output" ||
                             a == "--timeout";
    if (!takes_value) return usage("unknown argument '" + std::string(a) + "'");
    if (i + 1 >= args.size()) return usage(std::string(a) + " needs a value");
    const std::string v(args[++i]);
    if (a == "--issuer") o.issuer = v;
    if (a == "--client-id") o.client_id = v;
    if (a == "--scope") o.scope = v;
    if (a == "--resource") o.resource = v;
    if (a == "--ca-file") o.ca_file = v;
    if (a == "--output") o.output = v;
    if (a == "--timeout") {
      auto d = parse_duration(v);
      if (!d || d->count() <= 0) return usage("--timeout needs a duration such as 10m");
      o.timeout = *d;
    }
  }
  if (o.refresh && (!o.issuer.empty() || !o.client_id.empty())) {
    return usage("--refresh takes the issuer and client id from the saved file");
  }
  if (!o.refresh && o.issuer.empty()) return usage("login needs --issuer URL");
  if (!o.refresh && o.client_id.empty()) return usage("login needs --client-id ID");
  try {
    return run_coroutine(o);
  } catch (const std::exception& e) {
    std::cerr << "portcullis: login failed: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace portcullis
