// YAML -> Config: strict schema checking (unknown keys, duplicate keys, node types), unit
// parsing, cross references and certificate checks, collecting every error with its position.
#include "core/config_loader.hpp"

#include "authz/policy.hpp"
#include "authz/policy_parser.hpp"

#include "authn/jwk.hpp"
#include "sso/client_assertion.hpp"
#include "sso/cookie_sealer.hpp"
#include "sso/redirect_guard.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <optional>
#include <sstream>

#include "core/units.hpp"

namespace portcullis {

std::string ConfigError::to_string() const {
  std::string out = file;
  if (line > 0) {
    out += ":" + std::to_string(line);
    if (column > 0) out += ":" + std::to_string(column);
  }
  out += ": ";
  out += message;
  return out;
}

namespace {

namespace fs = std::filesystem;

// A 1-based position in the config file; {0, 0} when unknown.
struct Pos {
  int line = 0;
  int column = 0;
};

Pos pos_of(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.line < 0 || mark.column < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

std::string in_quotes(std::string_view s) {
  return "'" + std::string(s) + "'";
}

std::string join_path(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string indexed(const std::string& path, std::size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

std::string node_kind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a scalar " + in_quotes(node.Scalar());
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

// One key/value pair of a checked map, with the key's node for positions.
struct Field {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
  std::string path;  // "listeners[0].tls.cert"
};

// The accepted pairs of a map whose keys were checked against the schema.
struct Fields {
  YAML::Node node;
  std::string path;
  std::vector<Field> fields;

  const Field* get(std::string_view key) const {
    for (const auto& f : fields) {
      if (f.key == key) return &f;
    }
    return nullptr;
  }
};

// RFC 9110 token characters (method names).
bool is_tchar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

// Why a route path is not canonical (a normalised request path could never equal it), or
// nullopt when it is canonical.
std::optional<std::string> non_canonical_reason(std::string_view path) {
  if (path.empty() || path.front() != '/') return "it must start with '/'";
  for (char c : path) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '%') return "it contains '%' (percent-encoding is not allowed in route paths)";
    if (c == ';') return "it contains ';' (path parameters are stripped from requests)";
    if (c == '?') return "it contains '?' (a route path cannot include a query)";
    if (c == '#') return "it contains '#' (fragments are never part of a request path)";
    if (c == '\\') return "it contains '\\' (backslashes are refused in requests)";
    if (u <= 0x20 || u >= 0x7F) {
      return "it contains a space, control or non-ASCII character";
    }
  }
  if (path.find("//") != std::string_view::npos) {
    return "it contains '//' (empty segments are merged in requests)";
  }
  std::size_t start = 1;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view segment = path.substr(start, end - start);
    if (segment == "." || segment == "..") {
      return "it contains a '" + std::string(segment) +
             "' segment (dot segments are resolved in requests)";
    }
    start = end + 1;
  }
  return std::nullopt;
}

// Why a route host pattern is invalid, or nullopt. `host` is already lower-cased.
std::optional<std::string> bad_host_reason(std::string_view host) {
  if (host.empty()) return "it is empty (omit 'host' to match any host)";
  if (host.find("://") != std::string_view::npos) {
    return "it must be a host name without a scheme";
  }
  if (host.find(':') != std::string_view::npos) return "it must not include a port";
  if (host == "*") return "'*' alone is not a pattern (omit 'host' to match any host)";
  std::string_view rest = host;
  if (host.find('*') != std::string_view::npos) {
    if (host.substr(0, 2) != "*." || host.find('*', 1) != std::string_view::npos) {
      return "the wildcard '*' is only allowed as the whole leftmost label, e.g. *.example.com";
    }
    rest = host.substr(2);
  }
  if (rest.empty()) return "a wildcard needs a domain after '*.'";
  if (rest.back() == '.') return "it must not end with '.'";
  std::size_t start = 0;
  while (start <= rest.size()) {
    std::size_t end = rest.find('.', start);
    if (end == std::string_view::npos) end = rest.size();
    const std::string_view label = rest.substr(start, end - start);
    if (label.empty()) return "it contains an empty label";
    for (char c : label) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) {
        return "it contains " + in_quotes(std::string(1, c)) +
               " (allowed: letters, digits, '-', '_', '.', and a leading '*.')";
      }
    }
    start = end + 1;
  }
  return std::nullopt;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "portcullis";
  return buf;
}

// Refuses to prompt for a pass phrase: encrypted keys are reported as unreadable.
int no_password(char*, int, int, void*) {
  return -1;
}

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

// Builds and validates a Config; the state of one load.
class Loader {
 public:
  Loader(std::string source, std::string base_dir)
      : source_(std::move(source)), base_dir_(std::move(base_dir)) {}

  ConfigLoadResult run(std::string_view yaml);

 private:
  void error_at(Pos pos, std::string message) {
    errors_.push_back({source_, pos.line, pos.column, std::move(message)});
  }
  void error(const YAML::Node& at, std::string message) {
    error_at(pos_of(at), std::move(message));
  }
  // Errors about a value point at the value, or at its key when the value is empty.
  void value_error(const Field& f, const std::string& reason) {
    error(f.value.IsNull() ? f.key_node : f.value, f.path + ": " + reason);
  }

  std::optional<Fields> check_map(const YAML::Node& node, const std::string& path,
                                  std::initializer_list<std::string_view> allowed);
  std::optional<Fields> map_value(const Field& f, std::initializer_list<std::string_view> allowed);
  const Field* require(const Fields& m, std::string_view key, std::string_view what);

  std::optional<std::string> scalar(const Field& f, std::string_view expected);
  std::optional<std::string> nonempty_string(const Field& f);
  std::optional<YAML::Node> sequence(const Field& f);
  std::optional<long long> integer(const Field& f, long long min, long long max);
  std::optional<Duration> duration(const Field& f, bool positive);
  std::optional<std::uint64_t> size(const Field& f);
  std::optional<bool> boolean(const Field& f);
  std::optional<SocketAddress> address(const Field& f, bool allow_names);
  std::optional<std::string> file(const Field& f, std::string* contents);
  // A secret's file: its resolved path and its content without the trailing newline.
  void secret_file(const Field& f, std::string& path_out, std::string& secret_out);
  std::string resolve(const std::string& path) const;

  void parse_server(const Field* f);
  void parse_access_log(const Field* f);
  void parse_listeners(const Fields& root);
  void parse_listener(const YAML::Node& node, const std::string& path);
  void parse_tls(const Field& f, TlsConfig& tls);
  void parse_upstream_tls(const Field& f, UpstreamTlsConfig& tls);
  X509Ptr certificate_file(const Field& f, std::string& path_out);
  PkeyPtr private_key_file(const Field& f, std::string& path_out);
  void ca_bundle_file(const Field& f, std::string& path_out);
  void tls_min_version(const Field* f, std::string& out);
  void parse_limits(const Field& f, ListenerLimits& limits);
  void parse_admin(const Field* f);
  void parse_identity_providers(const Field* f);
  void parse_identity_provider(const YAML::Node& node, const std::string& path);
  void parse_introspection(const Field& f, IdentityProviderConfig& provider);
  std::optional<std::string> url(const Field& f);
  std::vector<std::string> string_list(const Field& f, bool allow_empty);
  void parse_upstreams(const Fields& root);
  void parse_upstream(const YAML::Node& node, const std::string& path);
  void parse_endpoint(const YAML::Node& node, const std::string& path, UpstreamConfig& upstream);
  void parse_routes(const Fields& root);
  void parse_route(const YAML::Node& node, const std::string& path);
  void parse_match(const Field& f, RouteMatch& match);
  std::optional<PolicyBinding> policy_binding(const Field& f, const std::string& route_name);
  void parse_policy_dir(const Field* f);
  void parse_assertion(const Field* f);
  void parse_audit(const Field* f);
  void parse_cache(const Field* f);
  void parse_sso(const Field* f);
  void check_unique_name(const Field& f, const std::string& name, std::string_view kind,
                         std::map<std::string, int>& seen);
  void check_unique_address(const Field& f, const SocketAddress& address);

  std::string source_;
  std::string base_dir_;
  Config config_;
  std::vector<ConfigError> errors_;
  std::map<std::string, int> listener_names_;
  std::map<std::string, int> upstream_names_;
  std::map<std::string, int> route_names_;
  std::map<std::string, int> provider_names_;
  std::map<std::string, std::shared_ptr<const Policy>> policy_files_;  // resolved path -> compiled
  // Bound addresses so far (listeners, then admin): address, owner label, line.
  struct Bound {
    SocketAddress address;
    std::string owner;
    int line;
  };
  std::vector<Bound> bound_;
};

std::optional<Fields> Loader::check_map(const YAML::Node& node, const std::string& path,
                                        std::initializer_list<std::string_view> allowed) {
  const std::string where = path.empty() ? "the config" : in_quotes(path);
  if (!node.IsMap()) {
    error(node, where + " must be a map, got " + node_kind(node));
    return std::nullopt;
  }
  std::string allowed_list;
  for (std::string_view a : allowed) {
    if (!allowed_list.empty()) allowed_list += ", ";
    allowed_list += a;
  }
  Fields out{node, path, {}};
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar()) {
      error(key, "keys in " + where + " must be plain strings, got " + node_kind(key));
      continue;
    }
    const std::string& name = key.Scalar();
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      error(key, "unknown key " + in_quotes(name) +
                     (path.empty() ? std::string(" at the top level") : " in " + where) +
                     "; allowed keys: " + allowed_list);
      continue;
    }
    if (const Field* first = out.get(name)) {
      error(key, "duplicate key " + in_quotes(name) + " in " + where + " (first at line " +
                     std::to_string(pos_of(first->key_node).line) + ")");
      continue;
    }
    out.fields.push_back({name, key, it->second, join_path(path, name)});
  }
  return out;
}

std::optional<Fields> Loader::map_value(const Field& f,
                                        std::initializer_list<std::string_view> allowed) {
  if (!f.value.IsMap()) {
    value_error(f, "expected a map, got " + node_kind(f.value));
    return std::nullopt;
  }
  return check_map(f.value, f.path, allowed);
}

const Field* Loader::require(const Fields& m, std::string_view key, std::string_view what) {
  const Field* f = m.get(key);
  if (f == nullptr) {
    std::string message = "missing required key " + in_quotes(key);
    if (!m.path.empty()) message += " in " + in_quotes(m.path);
    if (!what.empty()) message += " (" + std::string(what) + ")";
    error(m.node, message);
  }
  return f;
}

std::optional<std::string> Loader::scalar(const Field& f, std::string_view expected) {
  if (!f.value.IsScalar()) {
    value_error(f, "expected " + std::string(expected) + ", got " + node_kind(f.value));
    return std::nullopt;
  }
  return f.value.Scalar();
}

std::optional<std::string> Loader::nonempty_string(const Field& f) {
  auto s = scalar(f, "a string");
  if (s && s->empty()) {
    value_error(f, "must not be empty");
    return std::nullopt;
  }
  return s;
}

std::optional<YAML::Node> Loader::sequence(const Field& f) {
  if (!f.value.IsSequence()) {
    value_error(f, "expected a list, got " + node_kind(f.value));
    return std::nullopt;
  }
  return f.value;
}

std::optional<long long> Loader::integer(const Field& f, long long min, long long max) {
  const std::string range = std::to_string(min) + ".." + std::to_string(max);
  auto s = scalar(f, "a whole number " + range);
  if (!s) return std::nullopt;
  long long value = 0;
  const char* first = s->data();
  const char* last = s->data() + s->size();
  auto [ptr, ec] = std::from_chars(first, last, value);
  if (s->empty() || ec == std::errc::invalid_argument || ptr != last) {
    value_error(f, in_quotes(*s) + " is not a whole number (expected " + range + ")");
    return std::nullopt;
  }
  if (ec == std::errc::result_out_of_range || value < min || value > max) {
    value_error(f, in_quotes(*s) + " is out of range (expected " + range + ")");
    return std::nullopt;
  }
  return value;
}

std::optional<Duration> Loader::duration(const Field& f, bool positive) {
  auto s = scalar(f, "a duration (e.g. 250ms, 30s, 1m30s)");
  if (!s) return std::nullopt;
  auto d = parse_duration(*s);
  if (!d) {
    value_error(f, d.error());
    return std::nullopt;
  }
  if (positive && d->count() == 0) {
    value_error(f, "must be greater than 0");
    return std::nullopt;
  }
  return *d;
}

std::optional<std::uint64_t> Loader::size(const Field& f) {
  auto s = scalar(f, "a size (e.g. 512, 64KiB, 100MiB)");
  if (!s) return std::nullopt;
  auto v = parse_size(*s);
  if (!v) {
    value_error(f, v.error());
    return std::nullopt;
  }
  return *v;
}

std::optional<bool> Loader::boolean(const Field& f) {
  auto s = scalar(f, "true or false");
  if (!s) return std::nullopt;
  if (*s == "true" || *s == "True" || *s == "TRUE") return true;
  if (*s == "false" || *s == "False" || *s == "FALSE") return false;
  value_error(f, "expected true or false, got " + in_quotes(*s));
  return std::nullopt;
}

std::optional<SocketAddress> Loader::address(const Field& f, bool allow_names) {
  auto s = scalar(f, allow_names ? "an address host:port" : "an address ip:port");
  if (!s) return std::nullopt;
  auto a = parse_socket_address(*s, allow_names);
  if (!a) {
    value_error(f, a.error());
    return std::nullopt;
  }
  return *a;
}

std::string Loader::resolve(const std::string& path) const {
  fs::path p(path);
  if (p.is_relative() && !base_dir_.empty()) p = fs::path(base_dir_) / p;
  return p.lexically_normal().string();
}

// Resolves a file name and reads it; returns the resolved path.
std::optional<std::string> Loader::file(const Field& f, std::string* contents) {
  auto name = nonempty_string(f);
  if (!name) return std::nullopt;
  const std::string resolved = resolve(*name);
  std::error_code ec;
  const auto status = fs::status(resolved, ec);
  if (ec || !fs::exists(status)) {
    value_error(f, "file " + in_quotes(resolved) + " does not exist");
    return std::nullopt;
  }
  if (!fs::is_regular_file(status)) {
    value_error(f, in_quotes(resolved) + " is not a regular file");
    return std::nullopt;
  }
  std::ifstream in(resolved, std::ios::binary);
  std::ostringstream buffer;
  if (in) buffer << in.rdbuf();
  if (!in || in.bad()) {
    value_error(f, "cannot read file " + in_quotes(resolved) + ": " + std::strerror(errno));
    return std::nullopt;
  }
  if (contents) *contents = buffer.str();
  return resolved;
}

void Loader::secret_file(const Field& f, std::string& path_out, std::string& secret_out) {
  std::string contents;
  auto resolved = file(f, &contents);
  if (!resolved) return;
  while (!contents.empty() && (contents.back() == '\n' || contents.back() == '\r')) {
    contents.pop_back();
  }
  if (contents.empty()) {
    value_error(f, "is empty");
    return;
  }
  path_out = *resolved;
  secret_out = std::move(contents);
}

void Loader::check_unique_name(const Field& f, const std::string& name, std::string_view kind,
                               std::map<std::string, int>& seen) {
  const int line = pos_of(f.value).line;
  auto [it, inserted] = seen.emplace(name, line);
  if (!inserted) {
    value_error(f, "duplicate " + std::string(kind) + " name " + in_quotes(name) +
                       " (first defined at line " + std::to_string(it->second) + ")");
  }
}

void Loader::check_unique_address(const Field& f, const SocketAddress& address) {
  namespace ip = boost::asio::ip;
  auto unspecified = [](const SocketAddress& a) {
    boost::system::error_code ec;
    const auto addr = ip::make_address(a.host, ec);
    return !ec && addr.is_unspecified();
  };
  for (const auto& other : bound_) {
    if (other.address.port != address.port) continue;
    // A wildcard bind (0.0.0.0, ::) collides with every address on the same port.
    if (other.address.host == address.host || unspecified(other.address) || unspecified(address)) {
      value_error(f, "address " + in_quotes(address.to_string()) + " conflicts with " +
                         other.owner + " " + in_quotes(other.address.to_string()) + " (line " +
                         std::to_string(other.line) + ")");
      return;
    }
  }
}

void Loader::parse_server(const Field* f) {
  config_.server.instance_name = "";
  if (f != nullptr) {
    if (auto m = map_value(*f, {"workers", "drain_timeout", "trusted_proxies", "instance_name",
                                "max_body", "watch_config"})) {
      if (const Field* w = m->get("watch_config")) {
        if (auto v = boolean(*w)) config_.server.watch_config = *v;
      }
      if (const Field* w = m->get("workers")) {
        if (w->value.IsScalar() && w->value.Scalar() == "auto") {
          config_.server.workers = 0;
        } else if (!w->value.IsScalar()) {
          value_error(*w, "expected 'auto' or a whole number 1..256, got " + node_kind(w->value));
        } else if (auto n = integer(*w, 1, 256)) {
          config_.server.workers = static_cast<unsigned>(*n);
        }
      }
      if (const Field* d = m->get("drain_timeout")) {
        if (auto v = duration(*d, false)) config_.server.drain_timeout = *v;
      }
      if (const Field* t = m->get("trusted_proxies")) {
        if (auto seq = sequence(*t)) {
          for (std::size_t i = 0; i < seq->size(); ++i) {
            const YAML::Node item = (*seq)[i];
            Field itemf{"", t->key_node, item, indexed(t->path, i)};
            auto s = scalar(itemf, "a CIDR block (e.g. 10.0.0.0/8)");
            if (!s) continue;
            auto cidr = parse_cidr(*s);
            if (!cidr) {
              value_error(itemf, cidr.error());
              continue;
            }
            config_.server.trusted_proxies.push_back(*cidr);
          }
        }
      }
      if (const Field* n = m->get("instance_name")) {
        if (auto s = nonempty_string(*n)) config_.server.instance_name = *s;
      }
      if (const Field* b = m->get("max_body")) {
        if (auto v = size(*b)) {
          if (*v == 0) {
            value_error(*b, "must be greater than 0");
          } else {
            config_.default_max_body_bytes = *v;
          }
        }
      }
    }
  }
  if (config_.server.instance_name.empty()) config_.server.instance_name = host_name();
}

void Loader::parse_access_log(const Field* f) {
  if (f == nullptr) return;
  auto m = map_value(*f, {"path"});
  if (!m) return;
  if (const Field* p = m->get("path")) {
    if (auto s = nonempty_string(*p)) {
      if (*s == "stdout" || *s == "stderr" || *s == "off") {
        config_.access_log.path = *s;
      } else {
        config_.access_log.path = resolve(*s);
      }
    }
  }
}

void Loader::parse_listeners(const Fields& root) {
  const Field* f = require(root, "listeners", "a non-empty list of listeners");
  if (f == nullptr) return;
  auto seq = sequence(*f);
  if (!seq) return;
  if (seq->size() == 0) {
    value_error(*f, "must list at least one listener");
    return;
  }
  for (std::size_t i = 0; i < seq->size(); ++i) parse_listener((*seq)[i], indexed(f->path, i));
}

void Loader::parse_listener(const YAML::Node& node, const std::string& path) {
  auto m = check_map(node, path, {"name", "address", "tls", "limits"});
  if (!m) return;
  ListenerConfig listener;
  listener.line = pos_of(node).line;
  if (const Field* n = require(*m, "name", "")) {
    if (auto s = nonempty_string(*n)) {
      if (!std::all_of(s->begin(), s->end(), is_name_char)) {
        value_error(*n, "listener name " + in_quotes(*s) +
                            " may only contain letters, digits, '_', '.' and '-'");
      } else {
        check_unique_name(*n, *s, "listener", listener_names_);
      }
      listener.name = *s;
    }
  }
  if (const Field* a = require(*m, "address", "e.g. 0.0.0.0:8443")) {
    if (auto addr = address(*a, false)) {
      check_unique_address(*a, *addr);
      bound_.push_back({*addr, "listener " + in_quotes(listener.name), pos_of(a->value).line});
      listener.address = *addr;
    }
  }
  if (const Field* t = m->get("tls")) {
    listener.tls.emplace();
    parse_tls(*t, *listener.tls);
  }
  if (const Field* l = m->get("limits")) parse_limits(*l, listener.limits);
  config_.listeners.push_back(std::move(listener));
}

X509Ptr Loader::certificate_file(const Field& f, std::string& path_out) {
  X509Ptr cert(nullptr, X509_free);
  std::string contents;
  if (auto path = file(f, &contents)) {
    path_out = *path;
    BioPtr bio(BIO_new_mem_buf(contents.data(), static_cast<int>(contents.size())), BIO_free);
    if (bio) cert.reset(PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr));
    if (!cert) value_error(f, in_quotes(*path) + " does not contain a PEM certificate");
  }
  return cert;
}

PkeyPtr Loader::private_key_file(const Field& f, std::string& path_out) {
  PkeyPtr key(nullptr, EVP_PKEY_free);
  std::string contents;
  if (auto path = file(f, &contents)) {
    path_out = *path;
    BioPtr bio(BIO_new_mem_buf(contents.data(), static_cast<int>(contents.size())), BIO_free);
    if (bio) key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr));
    if (!key) {
      value_error(f, in_quotes(*path) +
                         " does not contain a PEM private key (encrypted keys are not "
                         "supported)");
    }
  }
  return key;
}

void Loader::ca_bundle_file(const Field& f, std::string& path_out) {
  std::string contents;
  if (auto path = file(f, &contents)) {
    path_out = *path;
    BioPtr bio(BIO_new_mem_buf(contents.data(), static_cast<int>(contents.size())), BIO_free);
    int count = 0;
    while (bio) {
      X509Ptr c(PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr), X509_free);
      if (!c) break;
      ++count;
    }
    if (count == 0) value_error(f, in_quotes(*path) + " does not contain a PEM certificate");
  }
}

void Loader::tls_min_version(const Field* v, std::string& out) {
  if (v == nullptr) return;
  if (auto s = scalar(*v, "\"1.2\" or \"1.3\"")) {
    if (*s == "1.2" || *s == "1.3") {
      out = *s;
    } else {
      value_error(*v,
                  "TLS version " + in_quotes(*s) + " is not supported (use \"1.2\" or \"1.3\")");
    }
  }
}

void Loader::parse_tls(const Field& f, TlsConfig& tls) {
  auto m = map_value(f, {"cert", "key", "client_ca", "min_version"});
  if (!m) return;
  X509Ptr cert(nullptr, X509_free);
  PkeyPtr key(nullptr, EVP_PKEY_free);
  if (const Field* c = require(*m, "cert", "a PEM certificate file")) {
    cert = certificate_file(*c, tls.cert_file);
  }
  const Field* k = require(*m, "key", "a PEM private key file");
  if (k != nullptr) key = private_key_file(*k, tls.key_file);
  if (cert && key && X509_check_private_key(cert.get(), key.get()) != 1) {
    value_error(*k, "private key " + in_quotes(tls.key_file) + " does not match certificate " +
                        in_quotes(tls.cert_file));
  }
  if (const Field* ca = m->get("client_ca")) ca_bundle_file(*ca, tls.client_ca_file);
  ERR_clear_error();  // leave no OpenSSL errors behind for the next user of this thread
  tls_min_version(m->get("min_version"), tls.min_version);
}

void Loader::parse_upstream_tls(const Field& f, UpstreamTlsConfig& tls) {
  auto m = map_value(f, {"ca", "server_name", "cert", "key", "min_version"});
  if (!m) return;
  if (const Field* ca = m->get("ca")) ca_bundle_file(*ca, tls.ca_file);
  if (const Field* n = m->get("server_name")) {
    if (auto s = nonempty_string(*n)) {
      const bool ok = std::all_of(s->begin(), s->end(), [](unsigned char ch) {
        return std::isalnum(ch) != 0 || ch == '-' || ch == '.' || ch == ':';
      });
      if (ok) {
        tls.server_name = *s;
      } else {
        value_error(*n, in_quotes(*s) + " is not a host name or IP address");
      }
    }
  }
  const Field* c = m->get("cert");
  const Field* k = m->get("key");
  if ((c == nullptr) != (k == nullptr)) {
    value_error(c ? *c : *k, "a client certificate needs both cert and key");
  } else if (c != nullptr) {
    X509Ptr cert = certificate_file(*c, tls.cert_file);
    PkeyPtr key = private_key_file(*k, tls.key_file);
    if (cert && key && X509_check_private_key(cert.get(), key.get()) != 1) {
      value_error(*k, "private key " + in_quotes(tls.key_file) + " does not match certificate " +
                          in_quotes(tls.cert_file));
    }
  }
  ERR_clear_error();
  tls_min_version(m->get("min_version"), tls.min_version);
}

void Loader::parse_limits(const Field& f, ListenerLimits& limits) {
  auto m = map_value(f, {"max_header_bytes", "header_timeout", "idle_timeout", "handshake_timeout",
                         "max_requests_per_connection", "ping_interval", "ping_timeout"});
  if (!m) return;
  if (const Field* h = m->get("max_header_bytes")) {
    if (auto v = size(*h)) {
      if (*v < 1024 || *v > 1024 * 1024) {
        value_error(*h, std::to_string(*v) + " bytes is out of range (1KiB..1MiB)");
      } else {
        limits.max_header_bytes = static_cast<std::size_t>(*v);
      }
    }
  }
  if (const Field* d = m->get("header_timeout")) {
    if (auto v = duration(*d, true)) limits.header_timeout = *v;
  }
  if (const Field* d = m->get("idle_timeout")) {
    if (auto v = duration(*d, true)) limits.idle_timeout = *v;
  }
  if (const Field* d = m->get("handshake_timeout")) {
    if (auto v = duration(*d, true)) limits.handshake_timeout = *v;
  }
  if (const Field* r = m->get("max_requests_per_connection")) {
    if (auto v = integer(*r, 0, 1000000000)) {
      limits.max_requests_per_connection = static_cast<std::size_t>(*v);
    }
  }
  if (const Field* d = m->get("ping_interval")) {
    if (auto v = duration(*d, false)) limits.ping_interval = *v;
  }
  if (const Field* d = m->get("ping_timeout")) {
    if (auto v = duration(*d, true)) limits.ping_timeout = *v;
  }
}

void Loader::parse_admin(const Field* f) {
  if (f == nullptr) return;
  auto m = map_value(*f, {"address"});
  if (!m) return;
  if (const Field* a = require(*m, "address", "e.g. 127.0.0.1:9901")) {
    if (auto addr = address(*a, false)) {
      check_unique_address(*a, *addr);
      bound_.push_back({*addr, "the admin listener", pos_of(a->value).line});
      config_.admin.address = *addr;
    }
  }
}

std::vector<std::string> Loader::string_list(const Field& f, bool allow_empty) {
  std::vector<std::string> out;
  auto seq = sequence(f);
  if (!seq) return out;
  if (seq->size() == 0 && !allow_empty) value_error(f, "must not be empty");
  for (std::size_t i = 0; i < seq->size(); ++i) {
    Field item{"", f.key_node, (*seq)[i], indexed(f.path, i)};
    if (auto s = nonempty_string(item)) {
      if (std::find(out.begin(), out.end(), *s) != out.end()) {
        value_error(item, in_quotes(*s) + " is listed twice");
        continue;
      }
      out.push_back(*s);
    }
  }
  return out;
}

// An http(s) URL. Plain http is refused except on loopback hosts (development and tests):
// keys and introspection answers fetched in clear text could be forged on the network.
std::optional<std::string> Loader::url(const Field& f) {
  auto s = nonempty_string(f);
  if (!s) return std::nullopt;
  std::string_view v = *s;
  std::string_view rest;
  bool https = false;
  if (v.starts_with("https://")) {
    https = true;
    rest = v.substr(8);
  } else if (v.starts_with("http://")) {
    rest = v.substr(7);
  } else {
    value_error(f, in_quotes(*s) + " is not an https:// URL");
    return std::nullopt;
  }
  std::string_view host = rest.substr(0, rest.find_first_of("/?#"));
  if (host.empty() || host.find('@') != std::string_view::npos ||
      v.find_first_of(" \t\r\n\"<>\\^`{|}") != std::string_view::npos) {
    value_error(f, in_quotes(*s) + " is not a valid URL");
    return std::nullopt;
  }
  if (!https) {
    std::string_view name = host;
    if (name.starts_with("[")) {
      name = name.substr(0, name.find(']') + 1);
    } else {
      name = name.substr(0, name.find(':'));
    }
    if (name != "127.0.0.1" && name != "localhost" && name != "[::1]") {
      value_error(
          f, in_quotes(*s) + " uses plain http; only https is accepted (http only on loopback)");
      return std::nullopt;
    }
  }
  return s;
}

void Loader::parse_identity_providers(const Field* f) {
  if (f == nullptr) return;
  auto seq = sequence(*f);
  if (!seq) return;
  for (std::size_t i = 0; i < seq->size(); ++i) {
    parse_identity_provider((*seq)[i], indexed(f->path, i));
  }
}

void Loader::parse_identity_provider(const YAML::Node& node, const std::string& path) {
  auto m = check_map(node, path,
                     {"name", "issuer", "audiences", "allow_any_audience", "jwks_file", "jwks_uri",
                      "algorithms", "clock_skew", "token_type", "max_token_size", "claims",
                      "ca_file", "jwks_refresh", "introspection"});
  if (!m) return;
  IdentityProviderConfig p;
  p.line = pos_of(node).line;
  if (const Field* n = require(*m, "name", "")) {
    if (auto s = nonempty_string(*n)) {
      check_unique_name(*n, *s, "identity provider", provider_names_);
      p.name = *s;
    }
  }
  if (const Field* i = require(*m, "issuer", "the issuer URL, exactly as in the tokens' iss")) {
    if (auto u = url(*i)) p.issuer = *u;
  }
  if (const Field* a = m->get("audiences")) p.audiences = string_list(*a, true);
  if (const Field* w = m->get("allow_any_audience")) {
    if (auto v = boolean(*w)) p.allow_any_audience = *v;
  }
  if (p.audiences.empty() && !p.allow_any_audience) {
    const Field* a = m->get("audiences");
    error(a ? a->key_node : node,
          path + ": identity provider " + in_quotes(p.name) +
              " has no audiences; list the audiences its tokens must carry, or set "
              "allow_any_audience: true to waive the check explicitly");
  }
  const Field* file_field = m->get("jwks_file");
  const Field* uri_field = m->get("jwks_uri");
  if (file_field && uri_field) {
    error(uri_field->key_node, path + ": 'jwks_file' and 'jwks_uri' are mutually exclusive");
  }
  if (file_field) {
    std::string contents;
    if (auto resolved = file(*file_field, &contents)) {
      auto set = JwkSet::parse(contents);
      if (!set) {
        value_error(*file_field, "is not a usable JWKS: " + set.error());
      } else if ((*set)->empty()) {
        value_error(*file_field, "has no usable signing key");
      } else {
        p.jwks_file = *resolved;
      }
    }
  }
  if (uri_field) {
    if (auto u = url(*uri_field)) p.jwks_uri = *u;
  }
  if (const Field* al = m->get("algorithms")) {
    auto names = string_list(*al, false);
    p.algorithms.clear();
    for (const auto& name : names) {
      if (name == "none" || name.starts_with("HS")) {
        value_error(*al, "algorithm " + in_quotes(name) +
                             " is never accepted (unsigned or symmetric tokens cannot be "
                             "verified with an identity provider's public keys)");
      } else if (!parse_jws_alg(name)) {
        value_error(*al, "unknown algorithm " + in_quotes(name) +
                             "; valid: RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 "
                             "EdDSA");
      } else {
        p.algorithms.push_back(name);
      }
    }
  }
  if (const Field* c = m->get("clock_skew")) {
    if (auto v = duration(*c, false)) {
      if (*v > std::chrono::hours(1)) {
        value_error(*c, "must be at most 1h");
      } else {
        p.clock_skew = *v;
      }
    }
  }
  if (const Field* t = m->get("token_type")) {
    if (auto s = nonempty_string(*t)) p.token_type = *s;
  }
  if (const Field* x = m->get("max_token_size")) {
    if (auto v = size(*x)) {
      if (*v < 256 || *v > 1024 * 1024) {
        value_error(*x, "must be between 256 and 1MiB");
      } else {
        p.max_token_bytes = *v;
      }
    }
  }
  if (const Field* c = m->get("claims")) {
    if (auto cm = map_value(*c, {"subject", "email", "groups", "scopes", "client_id"})) {
      auto claim = [&](std::string_view key, std::string& out) {
        if (const Field* x = cm->get(key)) {
          if (auto s = nonempty_string(*x)) out = *s;
        }
      };
      claim("subject", p.claims.subject);
      claim("email", p.claims.email);
      claim("groups", p.claims.groups);
      claim("scopes", p.claims.scopes);
      claim("client_id", p.claims.client_id);
    }
  }
  if (const Field* c = m->get("ca_file")) {
    if (auto resolved = file(*c, nullptr)) p.ca_file = *resolved;
  }
  if (const Field* r = m->get("jwks_refresh")) {
    if (auto rm = map_value(*r, {"default", "min", "max", "unknown_kid_cooldown", "timeout"})) {
      auto dur = [&](std::string_view key, Duration& out) {
        if (const Field* x = rm->get(key)) {
          if (auto v = duration(*x, true)) out = *v;
        }
      };
      dur("default", p.jwks.default_refresh);
      dur("min", p.jwks.min_refresh);
      dur("max", p.jwks.max_refresh);
      dur("unknown_kid_cooldown", p.jwks.unknown_kid_cooldown);
      dur("timeout", p.jwks.fetch_timeout);
      if (p.jwks.min_refresh > p.jwks.max_refresh) {
        error(r->key_node, r->path + ": min must not exceed max");
      }
    }
  }
  if (const Field* i = m->get("introspection")) parse_introspection(*i, p);
  config_.identity_providers.push_back(std::move(p));
}

void Loader::parse_introspection(const Field& f, IdentityProviderConfig& provider) {
  auto m = map_value(f, {"endpoint", "client_id", "client_secret_file", "cache_ttl", "mode"});
  if (!m) return;
  IntrospectionConfig in;
  if (const Field* e = require(*m, "endpoint", "the introspection endpoint URL")) {
    if (auto u = url(*e)) in.endpoint = *u;
  }
  if (const Field* c = require(*m, "client_id", "")) {
    if (auto s = nonempty_string(*c)) in.client_id = *s;
  }
  if (const Field* c = require(*m, "client_secret_file", "a file holding the client secret")) {
    secret_file(*c, in.client_secret_file, in.client_secret);
  }
  if (const Field* t = m->get("cache_ttl")) {
    if (auto v = duration(*t, true)) in.cache_ttl = *v;
  }
  if (const Field* md = m->get("mode")) {
    if (auto s = scalar(*md, "auto, always or never")) {
      if (*s == "auto") {
        in.mode = IntrospectionMode::automatic;
      } else if (*s == "always") {
        in.mode = IntrospectionMode::always;
      } else if (*s == "never") {
        in.mode = IntrospectionMode::never;
      } else {
        value_error(*md, "unknown mode " + in_quotes(*s) + "; valid modes: auto, always, never");
      }
    }
  }
  provider.introspection = std::move(in);
}

void Loader::parse_upstreams(const Fields& root) {
  const Field* f = require(root, "upstreams", "a list of upstreams");
  if (f == nullptr) return;
  auto seq = sequence(*f);
  if (!seq) return;
  for (std::size_t i = 0; i < seq->size(); ++i) parse_upstream((*seq)[i], indexed(f->path, i));
}

void Loader::parse_upstream(const YAML::Node& node, const std::string& path) {
  auto m = check_map(
      node, path,
      {"name", "protocol", "endpoints", "timeouts", "pool", "ejection", "retries", "tls"});
  if (!m) return;
  UpstreamConfig upstream;
  upstream.line = pos_of(node).line;
  if (const Field* n = require(*m, "name", "")) {
    if (auto s = nonempty_string(*n)) {
      check_unique_name(*n, *s, "upstream", upstream_names_);
      upstream.name = *s;
    }
  }
  if (const Field* p = m->get("protocol")) {
    if (auto s = scalar(*p, "a protocol (http1)")) {
      if (*s == "http1") {
        upstream.protocol = UpstreamProtocol::http1;
      } else if (*s == "h2c") {
        upstream.protocol = UpstreamProtocol::h2c;
      } else if (*s == "h2") {
        upstream.protocol = UpstreamProtocol::h2;
        upstream.tls.emplace();
      } else {
        value_error(*p, "unknown protocol " + in_quotes(*s) + "; valid protocols: http1, h2c, h2");
      }
    }
  }
  if (const Field* e = require(*m, "endpoints", "a non-empty list of host:port")) {
    if (auto seq = sequence(*e)) {
      if (seq->size() == 0) value_error(*e, "must list at least one endpoint");
      for (std::size_t i = 0; i < seq->size(); ++i) {
        parse_endpoint((*seq)[i], indexed(e->path, i), upstream);
      }
    }
  }
  if (const Field* t = m->get("timeouts")) {
    if (auto tm = map_value(*t, {"connect", "request", "idle", "ping_interval", "ping_timeout"})) {
      if (const Field* d = tm->get("connect")) {
        if (auto v = duration(*d, true)) upstream.timeouts.connect = *v;
      }
      if (const Field* d = tm->get("request")) {
        if (auto v = duration(*d, true)) upstream.timeouts.request = *v;
      }
      if (const Field* d = tm->get("idle")) {
        if (auto v = duration(*d, true)) upstream.timeouts.idle = *v;
      }
      if (const Field* d = tm->get("ping_interval")) {
        if (auto v = duration(*d, false)) upstream.timeouts.ping_interval = *v;
      }
      if (const Field* d = tm->get("ping_timeout")) {
        if (auto v = duration(*d, true)) upstream.timeouts.ping_timeout = *v;
      }
    }
  }
  if (const Field* p = m->get("pool")) {
    if (auto pm = map_value(*p, {"max_idle_per_endpoint"})) {
      if (const Field* x = pm->get("max_idle_per_endpoint")) {
        if (auto v = integer(*x, 0, 10000)) {
          upstream.pool.max_idle_per_endpoint = static_cast<std::size_t>(*v);
        }
      }
    }
  }
  if (const Field* j = m->get("ejection")) {
    if (auto jm = map_value(*j, {"consecutive_failures", "base_duration"})) {
      if (const Field* x = jm->get("consecutive_failures")) {
        if (auto v = integer(*x, 0, 10000)) {
          upstream.ejection.consecutive_failures = static_cast<unsigned>(*v);
        }
      }
      if (const Field* d = jm->get("base_duration")) {
        if (auto v = duration(*d, true)) upstream.ejection.base_duration = *v;
      }
    }
  }
  if (const Field* r = m->get("retries")) {
    if (auto v = integer(*r, 0, 5)) upstream.retries = static_cast<unsigned>(*v);
  }
  if (const Field* t = m->get("tls")) {
    if (upstream.protocol != UpstreamProtocol::h2c) {
      if (!upstream.tls) upstream.tls.emplace();  // http1 over TLS (h2 has one already)
      parse_upstream_tls(*t, *upstream.tls);
    } else {
      value_error(*t, "h2c is HTTP/2 in cleartext: use protocol h2 for HTTP/2 over TLS");
    }
  }
  config_.upstreams.push_back(std::move(upstream));
}

void Loader::parse_endpoint(const YAML::Node& node, const std::string& path,
                            UpstreamConfig& upstream) {
  EndpointConfig endpoint;
  if (node.IsScalar()) {
    Field f{"", node, node, path};
    auto a = address(f, true);
    if (!a) return;
    endpoint.address = *a;
    upstream.endpoints.push_back(endpoint);
    return;
  }
  if (!node.IsMap()) {
    error(node,
          path + ": expected \"host:port\" or a map {address, weight}, got " + node_kind(node));
    return;
  }
  auto m = check_map(node, path, {"address", "weight"});
  if (!m) return;
  if (const Field* a = require(*m, "address", "host:port")) {
    if (auto addr = address(*a, true)) endpoint.address = *addr;
  }
  if (const Field* w = m->get("weight")) {
    if (auto v = integer(*w, 1, 1000)) endpoint.weight = static_cast<unsigned>(*v);
  }
  upstream.endpoints.push_back(endpoint);
}

void Loader::parse_routes(const Fields& root) {
  const Field* f = require(root, "routes", "a list of routes");
  if (f == nullptr) return;
  auto seq = sequence(*f);
  if (!seq) return;
  for (std::size_t i = 0; i < seq->size(); ++i) parse_route((*seq)[i], indexed(f->path, i));
}

void Loader::parse_route(const YAML::Node& node, const std::string& path) {
  auto m = check_map(node, path,
                     {"name", "match", "upstream", "auth", "max_body", "timeout",
                      "allow_encoded_slash", "providers", "required_scopes", "forward_token",
                      "policy", "shadow_policy", "show_deny_reason", "identity_headers"});
  if (!m) return;
  RouteConfig route;
  route.line = pos_of(node).line;
  if (const Field* n = require(*m, "name", "")) {
    if (auto s = nonempty_string(*n)) {
      check_unique_name(*n, *s, "route", route_names_);
      route.name = *s;
    }
  }
  if (const Field* mt = require(*m, "match", "use {} to match every request")) {
    parse_match(*mt, route.match);
  }
  if (const Field* u = require(*m, "upstream", "the name of an upstream")) {
    if (auto s = nonempty_string(*u)) {
      if (upstream_names_.count(*s) == 0) {
        value_error(*u,
                    "route " + in_quotes(route.name) + " names unknown upstream " + in_quotes(*s));
      }
      route.upstream = *s;
    }
  }
  if (const Field* a = require(*m, "auth", "public")) {
    if (auto s = scalar(*a, "an auth mode")) {
      if (*s == "public") {
        route.auth = AuthMode::public_access;
      } else if (*s == "bearer") {
        route.auth = AuthMode::bearer;
        if (config_.identity_providers.empty()) {
          value_error(*a, "auth mode 'bearer' needs at least one entry in identity_providers");
        }
      } else if (*s == "sso" || *s == "bearer_or_sso") {
        route.auth = *s == "sso" ? AuthMode::sso : AuthMode::bearer_or_sso;
        if (!config_.sso) {
          value_error(*a, "auth mode " + in_quotes(*s) + " needs the top-level sso section");
        }
      } else if (*s == "mtls") {
        value_error(*a, "auth mode " + in_quotes(*s) + " is not available in this build yet");
      } else {
        value_error(*a, "unknown auth mode " + in_quotes(*s) +
                            "; valid modes: public, bearer, sso, bearer_or_sso, mtls");
      }
    }
  }
  if (const Field* p = m->get("providers")) {
    route.providers = string_list(*p, false);
    for (const auto& name : route.providers) {
      if (provider_names_.count(name) == 0) {
        value_error(*p, "route " + in_quotes(route.name) + " names unknown identity provider " +
                            in_quotes(name));
      }
    }
  }
  if (const Field* r = m->get("required_scopes")) {
    route.required_scopes = string_list(*r, false);
  }
  if (const Field* t = m->get("forward_token")) {
    if (auto v = boolean(*t)) route.forward_token = *v;
  }
  if (route.auth == AuthMode::public_access) {
    for (std::string_view key : {"providers", "required_scopes"}) {
      if (const Field* x = m->get(key)) {
        error(x->key_node, x->path + ": only meaningful with auth: bearer");
      }
    }
  }
  if (const Field* b = m->get("max_body")) {
    if (auto v = size(*b)) route.max_body_bytes = *v;
  }
  if (const Field* t = m->get("timeout")) {
    if (auto v = duration(*t, true)) route.timeout = *v;
  }
  if (const Field* e = m->get("allow_encoded_slash")) {
    if (auto v = boolean(*e)) route.allow_encoded_slash = *v;
  }
  if (const Field* p = m->get("policy")) route.policy = policy_binding(*p, route.name);
  if (const Field* p = m->get("shadow_policy")) {
    route.shadow_policy = policy_binding(*p, route.name + " (shadow)");
  }
  if (const Field* b = m->get("show_deny_reason")) {
    if (auto v = boolean(*b)) route.show_deny_reason = *v;
  }
  if (const Field* b = m->get("identity_headers")) {
    if (auto v = boolean(*b)) route.identity_headers = *v;
  }
  config_.routes.push_back(std::move(route));
}

// `policy:` is an inline policy (a map), a file (a value with '/' or ending in .yaml/.yml,
// relative to the config) or the name of a file in policy_dir (NAME.yaml). A file named by
// several routes is compiled once.
std::optional<PolicyBinding> Loader::policy_binding(const Field& f, const std::string& route_name) {
  PolicyBinding b;
  b.line = pos_of(f.key_node).line;
  if (f.value.IsMap()) {
    b.ref = "inline";
    // Named in decisions (403 bodies, the browser's deny page, audit records) by the config's
    // file name and the route, never by the server's directory layout.
    const std::string label =
        std::filesystem::path(source_).filename().string() + " route " + route_name;
    auto parsed = parse_policy(f.value, source_, label);
    for (auto& e : parsed.errors) {
      e.message = f.path + ": " + e.message;
      errors_.push_back(std::move(e));
    }
    if (!parsed.ok()) return std::nullopt;
    b.compiled = std::move(parsed.policy);
    return b;
  }
  auto ref = scalar(f, "a policy: a name, a file, or an inline map with allow/deny");
  if (!ref) return std::nullopt;
  if (ref->empty()) {
    value_error(f, "empty policy reference");
    return std::nullopt;
  }
  b.ref = *ref;
  const auto ends_with = [&](std::string_view suffix) {
    return ref->size() >= suffix.size() &&
           ref->compare(ref->size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ref->find('/') != std::string::npos || ends_with(".yaml") || ends_with(".yml")) {
    b.file = resolve(*ref);
  } else {
    if (!std::all_of(ref->begin(), ref->end(), is_name_char)) {
      value_error(f, "policy name " + in_quotes(*ref) +
                         " may only use letters, digits, '_', '.' and '-' (or give a file path)");
      return std::nullopt;
    }
    const fs::path dir(config_.policy_dir);
    std::error_code ec;
    b.file = (dir / (*ref + ".yaml")).string();
    if (!fs::exists(b.file, ec) && fs::exists(dir / (*ref + ".yml"), ec)) {
      b.file = (dir / (*ref + ".yml")).string();
    }
  }
  if (auto it = policy_files_.find(b.file); it != policy_files_.end()) {
    if (!it->second) return std::nullopt;  // errors already reported
    b.compiled = it->second;
    return b;
  }
  std::error_code ec;
  const auto status = fs::status(b.file, ec);
  if (ec || !fs::is_regular_file(status)) {
    value_error(f, "policy " + in_quotes(*ref) + ": file " + in_quotes(b.file) +
                       (fs::exists(status) ? " is not a regular file" : " does not exist"));
    policy_files_[b.file] = nullptr;
    return std::nullopt;
  }
  // Decisions name the file as seen from the config's directory (shorter than an absolute
  // path, and the same on every machine); errors name the resolved path.
  std::string label = b.file;
  if (!base_dir_.empty()) {
    const auto rel = fs::path(b.file).lexically_relative(base_dir_);
    if (!rel.empty()) label = rel.string();
  }
  auto parsed = parse_policy_file(b.file, label);
  for (auto& e : parsed.errors) errors_.push_back(std::move(e));
  policy_files_[b.file] = parsed.policy;
  config_.source_files.push_back(b.file);
  if (!parsed.ok()) {
    value_error(f, "policy " + in_quotes(*ref) + " has errors (listed with its file name)");
    return std::nullopt;
  }
  b.compiled = std::move(parsed.policy);
  return b;
}

void Loader::parse_policy_dir(const Field* f) {
  config_.policy_dir = resolve("policies");
  if (f == nullptr) return;
  if (auto s = nonempty_string(*f)) config_.policy_dir = resolve(*s);
}

// audit: {file: {path, max_bytes, max_age, keep, fsync, fsync_interval}, stdout, redis:
// {address, stream, maxlen}, on_failure, queue, checkpoint: {every, interval}, key_file}
void Loader::parse_audit(const Field* f) {
  if (f == nullptr) return;
  auto m =
      map_value(*f, {"file", "stdout", "redis", "on_failure", "queue", "checkpoint", "key_file"});
  if (!m) return;
  AuditConfig a;
  if (const Field* file = m->get("file")) {
    if (auto fm =
            map_value(*file, {"path", "max_bytes", "max_age", "keep", "fsync", "fsync_interval"})) {
      if (const Field* p = require(*fm, "path", "e.g. /var/log/portcullis/audit.jsonl")) {
        // The file (and its directory) may not exist yet: the writer creates the file, and an
        // unwritable place is a runtime condition (503 with on_failure: deny), not a config error.
        if (auto s = nonempty_string(*p)) a.file_path = resolve(*s);
      }
      if (const Field* b = fm->get("max_bytes")) {
        if (auto v = size(*b)) {
          if (*v < 4096) {
            value_error(*b, "must be at least 4KiB");
          } else {
            a.max_bytes = *v;
          }
        }
      }
      if (const Field* d = fm->get("max_age")) {
        if (auto v = duration(*d, false)) {
          a.max_age = std::chrono::duration_cast<std::chrono::seconds>(*v);
        }
      }
      if (const Field* k = fm->get("keep")) {
        if (auto v = integer(*k, 0, 100000)) a.keep = static_cast<unsigned>(*v);
      }
      if (const Field* y = fm->get("fsync")) {
        if (auto s = scalar(*y, "always, interval or never")) {
          if (*s == "always") {
            a.fsync = AuditConfig::Fsync::always;
          } else if (*s == "interval") {
            a.fsync = AuditConfig::Fsync::interval;
          } else if (*s == "never") {
            a.fsync = AuditConfig::Fsync::never;
          } else {
            value_error(*y, "expected always, interval or never");
          }
        }
      }
      if (const Field* i = fm->get("fsync_interval")) {
        if (auto v = duration(*i, true)) a.fsync_interval = *v;
      }
    }
  }
  if (const Field* o = m->get("stdout")) {
    if (auto v = boolean(*o)) a.stdout_sink = *v;
  }
  if (const Field* r = m->get("redis")) {
    if (auto rm = map_value(*r, {"address", "stream", "maxlen"})) {
      if (const Field* ad = require(*rm, "address", "e.g. 127.0.0.1:6379")) {
        if (auto addr = address(*ad, true)) a.redis_address = addr->to_string();
      }
      if (const Field* st = rm->get("stream")) {
        if (auto s = nonempty_string(*st)) a.redis_stream = *s;
      }
      if (const Field* ml = rm->get("maxlen")) {
        if (auto v = integer(*ml, 1, 1'000'000'000))
          a.redis_maxlen = static_cast<std::uint64_t>(*v);
      }
    }
  }
  if (const Field* o = m->get("on_failure")) {
    if (auto s = scalar(*o, "deny or allow")) {
      if (*s == "deny") {
        a.on_failure = AuditConfig::OnFailure::deny;
      } else if (*s == "allow") {
        a.on_failure = AuditConfig::OnFailure::allow;
      } else {
        value_error(*o, "expected deny (answer 503 when a request cannot be audited) or allow");
      }
    }
  }
  if (const Field* q = m->get("queue")) {
    if (auto v = integer(*q, 16, 16'777'216)) a.queue_capacity = static_cast<std::size_t>(*v);
  }
  if (const Field* c = m->get("checkpoint")) {
    if (auto cm = map_value(*c, {"every", "interval"})) {
      if (const Field* e = cm->get("every")) {
        if (auto v = integer(*e, 0, 100'000'000)) a.checkpoint_every = static_cast<unsigned>(*v);
      }
      if (const Field* i = cm->get("interval")) {
        if (auto v = duration(*i, false)) {
          a.checkpoint_interval = std::chrono::duration_cast<std::chrono::seconds>(*v);
        }
      }
    }
  }
  if (const Field* k = m->get("key_file")) {
    if (auto s = nonempty_string(*k)) a.key_file = resolve(*s);
  }
  if (a.file_path.empty() && !a.stdout_sink) {
    error(f->key_node, "audit: needs a sink: file.path and/or stdout: true");
  }
  config_.audit = std::move(a);
}

// cache: {redis: {address, db, username, password_file, timeout, connect_timeout}}
void Loader::parse_sso(const Field* f) {
  if (f == nullptr) return;
  auto m = map_value(
      *f, {"provider", "client_id", "client_secret_file", "client_auth", "client_key_file",
           "client_key_id", "cookie_secret_files", "cookie_secure", "cookie_name", "cookie_domain",
           "session_store", "session_ttl", "idle_timeout", "refresh_interval", "callback_path",
           "scopes", "allowed_redirect_hosts", "post_logout_redirect_uri"});
  if (!m) return;
  SsoConfig sso;
  sso.line = pos_of(f->value).line;
  if (const Field* p = require(*m, "provider", "the name of an identity provider")) {
    if (auto s = nonempty_string(*p)) {
      if (provider_names_.count(*s) == 0) {
        value_error(*p, "sso names unknown identity provider " + in_quotes(*s));
      }
      sso.provider = *s;
    }
  }
  if (const Field* c = require(*m, "client_id", "the OIDC client id")) {
    if (auto s = nonempty_string(*c)) sso.client_id = *s;
  }
  if (const Field* a = m->get("client_auth")) {
    if (auto s = scalar(*a, "client_secret_basic, client_secret_post or private_key_jwt")) {
      if (*s == "client_secret_basic" || *s == "client_secret_post" || *s == "private_key_jwt") {
        sso.client_auth = *s;
      } else {
        value_error(*a, "unknown client_auth " + in_quotes(*s) +
                            "; valid: client_secret_basic, client_secret_post, private_key_jwt");
      }
    }
  }
  if (sso.client_auth == "private_key_jwt") {
    if (const Field* k = require(*m, "client_key_file",
                                 "a PEM private key (P-256 or RSA) for private_key_jwt")) {
      secret_file(*k, sso.client_key_file, sso.client_key);
      if (!sso.client_key.empty()) {
        if (auto signer = ClientAssertionSigner::from_pem(sso.client_key); !signer) {
          value_error(*k,
                      "client_key_file " + in_quotes(sso.client_key_file) + ": " + signer.error());
        }
      }
    }
    if (const Field* i = m->get("client_key_id")) {
      if (auto s = nonempty_string(*i)) sso.client_key_id = *s;
    }
    if (const Field* c = m->get("client_secret_file")) {
      value_error(*c, "client_secret_file is not used with client_auth: private_key_jwt");
    }
  } else {
    if (const Field* c = require(*m, "client_secret_file", "a file holding the client secret")) {
      secret_file(*c, sso.client_secret_file, sso.client_secret);
    }
    for (const char* key : {"client_key_file", "client_key_id"}) {
      if (const Field* k = m->get(key)) {
        value_error(*k, std::string(key) + " is only used with client_auth: private_key_jwt");
      }
    }
  }
  if (const Field* k = require(*m, "cookie_secret_files",
                               "a list of files, each with a 32-byte key (openssl rand -hex 32)")) {
    for (const auto& name : string_list(*k, false)) {
      Field item{k->key, k->key_node, k->value, k->path};
      std::string contents;
      const std::string resolved = resolve(name);
      std::ifstream in(resolved, std::ios::binary);
      std::ostringstream buffer;
      if (in) buffer << in.rdbuf();
      if (!in) {
        value_error(item, "cannot read cookie secret file " + in_quotes(resolved));
        continue;
      }
      if (auto key = CookieKey::from_file_contents(buffer.str()); !key) {
        value_error(item, "cookie secret file " + in_quotes(resolved) + ": " + key.error());
        continue;
      }
      sso.cookie_secret_files.push_back(resolved);
      sso.cookie_secrets.push_back(buffer.str());
    }
  }
  if (const Field* b = m->get("cookie_secure")) {
    if (auto v = boolean(*b)) sso.cookie_secure = *v;
  }
  if (const Field* n = m->get("cookie_name")) {
    if (auto s = nonempty_string(*n)) {
      const bool ok = std::all_of(s->begin(), s->end(), [](unsigned char c) {
        return std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.';
      });
      if (!ok) {
        value_error(*n, "cookie name " + in_quotes(*s) + " may use letters, digits, '-', '_', '.'");
      } else {
        sso.cookie_name = *s;
      }
    }
  }
  if (const Field* d = m->get("cookie_domain")) {
    if (auto s = nonempty_string(*d)) {
      std::string domain = *s;
      if (!domain.empty() && domain.front() == '.') domain.erase(0, 1);  // RFC 6265 ignores it
      for (auto& ch : domain) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      const bool ok = !domain.empty() && domain.find('.') != std::string::npos &&
                      std::all_of(domain.begin(), domain.end(), [](unsigned char c) {
                        return std::isalnum(c) != 0 || c == '-' || c == '.';
                      });
      if (!ok) {
        value_error(*d, "cookie_domain " + in_quotes(*s) +
                            " must be a DNS name with at least one dot, e.g. example.com");
      } else {
        sso.cookie_domain = domain;
      }
    }
  }
  if (!sso.cookie_domain.empty() && sso.cookie_name.rfind("__Host-", 0) == 0) {
    value_error(*m->get("cookie_name"),
                "a __Host- cookie cannot carry cookie_domain (browsers refuse it)");
  }
  if (const Field* st = m->get("session_store")) {
    if (auto s = scalar(*st, "auto, cookie or redis")) {
      if (*s == "cookie") {
        sso.session_store = SessionStoreKind::cookie;
      } else if (*s == "redis" || *s == "auto") {
        sso.session_store =
            config_.redis || *s == "redis" ? SessionStoreKind::redis : SessionStoreKind::cookie;
        if (*s == "redis" && !config_.redis) {
          value_error(*st, "session_store: redis needs cache.redis");
        }
      } else {
        value_error(*st, "unknown session_store " + in_quotes(*s) + "; valid: auto, cookie, redis");
      }
    }
  } else {
    sso.session_store = config_.redis ? SessionStoreKind::redis : SessionStoreKind::cookie;
  }
  if (const Field* t = m->get("session_ttl")) {
    if (auto v = duration(*t, true)) sso.session_ttl = *v;
  }
  if (const Field* t = m->get("idle_timeout")) {
    if (auto v = duration(*t, false)) sso.idle_timeout = *v;
  }
  if (const Field* t = m->get("refresh_interval")) {
    if (auto v = duration(*t, true)) sso.refresh_interval = *v;
  }
  if (const Field* c = m->get("callback_path")) {
    if (auto s = nonempty_string(*c)) {
      if (s->front() != '/' || s->find_first_of("?#") != std::string::npos) {
        value_error(*c, "callback_path must be a path starting with '/'");
      } else {
        sso.callback_path = *s;
      }
    }
  }
  if (const Field* s = m->get("scopes")) {
    sso.scopes = string_list(*s, false);
    if (std::find(sso.scopes.begin(), sso.scopes.end(), "openid") == sso.scopes.end()) {
      value_error(*s, "scopes must include openid");
    }
  }
  if (const Field* h = m->get("allowed_redirect_hosts")) {
    sso.allowed_redirect_hosts = string_list(*h, true);
    for (const auto& entry : sso.allowed_redirect_hosts) {
      if (auto why = RedirectGuard::entry_error(entry)) {
        value_error(*h, "allowed_redirect_hosts entry " + in_quotes(entry) + ": " + *why);
      }
    }
  }
  if (const Field* u = m->get("post_logout_redirect_uri")) {
    if (auto s = url(*u)) sso.post_logout_redirect_uri = *s;
  }
  config_.sso = std::move(sso);
}

void Loader::parse_cache(const Field* f) {
  if (f == nullptr) return;
  auto m = map_value(*f, {"redis"});
  if (!m) return;
  const Field* r = m->get("redis");
  if (r == nullptr) return;
  auto rm =
      map_value(*r, {"address", "db", "username", "password_file", "timeout", "connect_timeout"});
  if (!rm) return;
  RedisConfig c;
  if (const Field* a = require(*rm, "address", "e.g. 127.0.0.1:6379")) {
    if (auto addr = address(*a, true)) c.address = addr->to_string();
  }
  if (const Field* d = rm->get("db")) {
    if (auto v = integer(*d, 0, 15)) c.db = static_cast<unsigned>(*v);
  }
  if (const Field* u = rm->get("username")) {
    if (auto s = nonempty_string(*u)) c.username = *s;
  }
  if (const Field* p = rm->get("password_file")) {
    std::string contents;
    if (auto path = file(*p, &contents)) c.password_file = *path;
  }
  if (const Field* t = rm->get("timeout")) {
    if (auto v = duration(*t, true)) c.command_timeout = *v;
  }
  if (const Field* t = rm->get("connect_timeout")) {
    if (auto v = duration(*t, true)) c.connect_timeout = *v;
  }
  config_.redis = std::move(c);
}

void Loader::parse_assertion(const Field* f) {
  if (f == nullptr) return;
  auto m = map_value(*f, {"key_file", "issuer", "ttl"});
  if (!m) return;
  if (const Field* k = m->get("key_file")) {
    // The key may not exist yet: the gateway creates it (mode 0600) on first start.
    if (auto s = nonempty_string(*k)) config_.assertion.key_file = resolve(*s);
  }
  if (const Field* i = m->get("issuer")) {
    if (auto s = nonempty_string(*i)) config_.assertion.issuer = *s;
  }
  if (const Field* t = m->get("ttl")) {
    if (auto v = duration(*t, true)) {
      if (*v < std::chrono::seconds(1) || *v > std::chrono::hours(1)) {
        value_error(*t, "must be between 1s and 1h (the assertion is short-lived)");
      } else {
        config_.assertion.ttl = *v;
      }
    }
  }
}

void Loader::parse_match(const Field& f, RouteMatch& match) {
  auto m = map_value(f, {"host", "path", "path_prefix", "methods", "grpc_service", "grpc_method"});
  if (!m) return;
  if (const Field* h = m->get("host")) {
    if (auto s = scalar(*h, "a host name")) {
      std::string host = *s;
      std::transform(host.begin(), host.end(), host.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (auto reason = bad_host_reason(host)) {
        value_error(*h, "host " + in_quotes(*s) + " is not valid: " + *reason);
      } else {
        match.host = host;
      }
    }
  }
  auto path_field = [&](const Field* p, std::string& out) {
    if (p == nullptr) return;
    auto s = scalar(*p, "a path starting with '/'");
    if (!s) return;
    if (auto reason = non_canonical_reason(*s)) {
      value_error(*p, "path " + in_quotes(*s) + " is not canonical: " + *reason +
                          "; a route path that is not canonical could never match a "
                          "normalised request");
      return;
    }
    out = *s;
  };
  const Field* path = m->get("path");
  const Field* prefix = m->get("path_prefix");
  path_field(path, match.path);
  path_field(prefix, match.path_prefix);
  if (path != nullptr && prefix != nullptr) {
    const Field* second = pos_of(path->key_node).line > pos_of(prefix->key_node).line ||
                                  (pos_of(path->key_node).line == pos_of(prefix->key_node).line &&
                                   pos_of(path->key_node).column > pos_of(prefix->key_node).column)
                              ? path
                              : prefix;
    error(second->key_node, m->path + ": 'path' and 'path_prefix' are mutually exclusive");
  }
  if (const Field* ms = m->get("methods")) {
    if (auto seq = sequence(*ms)) {
      if (seq->size() == 0) value_error(*ms, "must not be empty (omit it to match any method)");
      for (std::size_t i = 0; i < seq->size(); ++i) {
        Field item{"", ms->key_node, (*seq)[i], indexed(ms->path, i)};
        auto s = scalar(item, "an HTTP method");
        if (!s) continue;
        std::string method = *s;
        std::transform(method.begin(), method.end(), method.begin(),
                       [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
        if (method.empty() || !std::all_of(method.begin(), method.end(), is_tchar)) {
          value_error(item, "method " + in_quotes(*s) + " is not an HTTP method token");
          continue;
        }
        if (std::find(match.methods.begin(), match.methods.end(), method) != match.methods.end()) {
          value_error(item, "method " + in_quotes(method) + " is listed twice");
          continue;
        }
        match.methods.push_back(method);
      }
    }
  }
  // gRPC: "package.Service" and "Method" (HTTP/2 requests to /package.Service/Method).
  const auto grpc_name = [](std::string_view v) {
    return !v.empty() && std::all_of(v.begin(), v.end(), [](unsigned char c) {
      return std::isalnum(c) || c == '.' || c == '_';
    });
  };
  if (const Field* g = m->get("grpc_service")) {
    if (auto s = scalar(*g, "a gRPC service name (package.Service)")) {
      if (grpc_name(*s)) {
        match.grpc_service = *s;
      } else {
        value_error(*g, "gRPC service " + in_quotes(*s) + " must be letters, digits, '.', '_'");
      }
    }
  }
  if (const Field* g = m->get("grpc_method")) {
    if (auto s = scalar(*g, "a gRPC method name")) {
      if (!grpc_name(*s) || s->find('.') != std::string::npos) {
        value_error(*g, "gRPC method " + in_quotes(*s) + " must be letters, digits, '_'");
      } else if (!m->get("grpc_service")) {
        value_error(*g, "grpc_method needs grpc_service");
      } else {
        match.grpc_method = *s;
      }
    }
  }
}

ConfigLoadResult Loader::run(std::string_view yaml) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::Exception& e) {
    Pos pos;
    if (e.mark.line >= 0) pos = {e.mark.line + 1, e.mark.column + 1};
    error_at(pos, "YAML syntax error: " + e.msg);
    return {nullptr, std::move(errors_)};
  }
  if (docs.empty() || docs[0].IsNull()) {
    error_at({1, 1}, "the config is empty (expected a map with listeners, upstreams and routes)");
    return {nullptr, std::move(errors_)};
  }
  if (docs.size() > 1) {
    error(docs[1], "only one YAML document is allowed in the config");
  }
  config_.source_file = source_;
  config_.source_files.push_back(source_);
  auto root =
      check_map(docs[0], "",
                {"server", "access_log", "listeners", "admin", "identity_providers", "upstreams",
                 "routes", "policy_dir", "assertion", "audit", "cache", "sso"});
  if (root) {
    parse_policy_dir(root->get("policy_dir"));
    parse_assertion(root->get("assertion"));
    parse_audit(root->get("audit"));
    parse_cache(root->get("cache"));
    parse_server(root->get("server"));
    parse_access_log(root->get("access_log"));
    parse_listeners(*root);
    parse_admin(root->get("admin"));
    parse_identity_providers(root->get("identity_providers"));
    parse_sso(root->get("sso"));
    parse_upstreams(*root);
    parse_routes(*root);
  }
  if (!errors_.empty()) {
    // The config's own errors first, then each policy file's, each in line order.
    std::stable_sort(errors_.begin(), errors_.end(),
                     [this](const ConfigError& a, const ConfigError& b) {
                       const bool a_main = a.file == source_;
                       const bool b_main = b.file == source_;
                       if (a_main != b_main) return a_main;
                       if (a.file != b.file) return a.file < b.file;
                       return a.line != b.line ? a.line < b.line : a.column < b.column;
                     });
    return {nullptr, std::move(errors_)};
  }
  return {std::make_shared<const Config>(std::move(config_)), {}};
}

}  // namespace

ConfigLoadResult load_config_string(std::string_view yaml, const std::string& source_name,
                                    const std::string& base_dir) {
  try {
    Loader loader(source_name, base_dir);
    return loader.run(yaml);
  } catch (const std::exception& e) {
    return {nullptr,
            {{source_name, 0, 0, std::string("internal error while loading: ") + e.what()}}};
  } catch (...) {
    return {nullptr, {{source_name, 0, 0, "internal error while loading"}}};
  }
}

ConfigLoadResult load_config_file(const std::string& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    return {nullptr, {{path, 0, 0, "cannot read config file: no such file"}}};
  }
  if (fs::is_directory(status)) {
    return {nullptr, {{path, 0, 0, "cannot read config file: it is a directory"}}};
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return {nullptr,
            {{path, 0, 0, std::string("cannot read config file: ") + std::strerror(errno)}}};
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) {
    return {nullptr,
            {{path, 0, 0, std::string("cannot read config file: ") + std::strerror(errno)}}};
  }
  fs::path base = fs::absolute(fs::path(path), ec);
  if (ec) base = fs::path(path);
  return load_config_string(buffer.str(), path, base.parent_path().string());
}

}  // namespace portcullis
