#include "cli/token_inspect.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/serialize.hpp>

#include <ctime>
#include <iostream>
#include <iterator>

#include "authn/authn_services.hpp"
#include "authn/base64url.hpp"
#include "authn/jws.hpp"
#include "authn/jwt_validator.hpp"
#include "authn/key_store.hpp"
#include "core/config_loader.hpp"

namespace portcullis {
namespace {

constexpr std::string_view kUsage =
    "usage: portcullis token inspect [--config FILE] [--provider NAME] TOKEN|-\n"
    "\n"
    "Decodes a bearer token (JWS) and prints its header and claims. With --config it also\n"
    "verifies the token as the gateway would: the provider is chosen by the token's iss (or\n"
    "--provider), keys come from the provider's jwks_file, jwks_uri or discovery. '-' reads\n"
    "the token from standard input. Exit 0 valid, 1 invalid, 2 usage error.\n";

void check(bool ok, std::string_view what, std::string_view detail = {}) {
  std::cout << (ok ? "  [ok]   " : "  [FAIL] ") << what;
  if (!detail.empty()) std::cout << ": " << detail;
  std::cout << "\n";
}

std::string when(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

int run_token_inspect(const std::vector<std::string_view>& args) {
  std::string config_path, provider_name, token;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if ((args[i] == "--config" || args[i] == "--provider") && i + 1 < args.size()) {
      (args[i] == "--config" ? config_path : provider_name) = args[i + 1];
      ++i;
    } else if (token.empty() && (args[i] == "-" || !args[i].starts_with("-"))) {
      token = args[i];
    } else {
      std::cerr << "portcullis: unexpected argument '" << args[i] << "'\n\n" << kUsage;
      return 2;
    }
  }
  if (token == "-") {
    token.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    while (!token.empty() &&
           (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
      token.pop_back();
    }
  }
  if (token.empty()) {
    std::cerr << "portcullis: token inspect needs a TOKEN\n\n" << kUsage;
    return 2;
  }

  std::cout << "checks:\n";
  auto parsed = parse_jws(token, JwsParseOptions{1024 * 1024, {}});
  if (!parsed) {
    check(false, "structure", describe(parsed.error()));
    return 1;
  }
  check(true, "structure", "three base64url parts, " + std::to_string(token.size()) + " bytes");
  auto parts = split_compact_jws(token, 1024 * 1024);
  auto header_json = base64url_decode_to_string(parts->header);
  std::cout << "header:  " << (header_json ? *header_json : "?") << "\n";
  std::cout << "payload: " << boost::json::serialize(parsed->payload) << "\n";
  for (auto claim : {"iat", "nbf", "exp"}) {
    if (auto* v = parsed->payload.if_contains(claim); v && v->is_number()) {
      std::cout << "  " << claim << " = " << when(static_cast<std::int64_t>(v->to_number<double>()))
                << "\n";
    }
  }
  auto alg = classify_alg(parsed->header.alg);
  check(alg.has_value(), "algorithm " + parsed->header.alg,
        alg ? "supported" : describe(alg.error()));
  if (config_path.empty()) {
    std::cout << "result: decoded only (pass --config FILE to verify)\n";
    return alg ? 0 : 1;
  }

  auto loaded = load_config_file(config_path);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::cerr << e.to_string() << "\n";
    return 2;
  }
  const auto& config = *loaded.config;
  const IdentityProviderConfig* provider = nullptr;
  std::string iss;
  if (auto* v = parsed->payload.if_contains("iss"); v && v->is_string()) iss = v->as_string();
  for (const auto& p : config.identity_providers) {
    if (provider_name.empty() ? p.issuer == iss : p.name == provider_name) provider = &p;
  }
  check(provider != nullptr, "issuer",
        provider ? "'" + iss + "' is provider '" + provider->name + "'"
                 : "'" + iss + "' matches no identity provider");
  if (!provider) {
    std::cout << "result: INVALID (untrusted issuer)\n";
    return 1;
  }

  boost::asio::io_context io;
  AuthnServices services(io.get_executor(), SystemClock::instance());
  std::shared_ptr<KeyStore> store;
  try {
    store = services.key_store(*provider);
  } catch (const std::exception& e) {
    check(false, "keys", e.what());
    return 1;
  }
  if (provider->jwks_file.empty()) {
    auto done = boost::asio::co_spawn(io, store->refresh_now(), boost::asio::use_future);
    io.run();
    done.get();
  }
  auto keys = store->current();
  auto status = store->status();
  check(!keys->empty(), "keys",
        keys->empty() ? "no usable key (" + status.last_error + ")"
                      : std::to_string(keys->size()) + " keys from " +
                            (provider->jwks_file.empty() ? status.jwks_uri : provider->jwks_file));
  if (!parsed->header.kid.empty()) {
    check(keys->find(parsed->header.kid) != nullptr, "kid " + parsed->header.kid,
          keys->find(parsed->header.kid) ? "found" : "not in the key set");
  }

  JwtValidatorConfig vc;
  vc.issuer = provider->issuer;
  vc.audiences = provider->audiences;
  vc.audience_waived = provider->allow_any_audience;
  for (const auto& name : provider->algorithms) {
    if (auto a = parse_jws_alg(name)) vc.algorithms.push_back(*a);
  }
  vc.clock_skew = std::chrono::duration_cast<std::chrono::seconds>(provider->clock_skew);
  if (!provider->token_type.empty()) vc.required_typ = provider->token_type;
  vc.max_token_bytes = provider->max_token_bytes;
  auto validator = JwtValidator::create(vc);
  if (!validator) {
    check(false, "provider config", validator.error());
    return 1;
  }
  auto verified = validator->validate(token, *keys, SystemClock::instance());
  if (!verified) {
    check(false, "verification", describe(verified.error()));
    std::cout << "result: INVALID (" << to_string(verified.error()) << ")\n";
    return 1;
  }
  check(true, "signature",
        std::string(to_string(verified->alg)) + " with kid '" + verified->kid + "'");
  check(true, "claims",
        "iss, aud, exp/nbf/iat within " + std::to_string(vc.clock_skew.count()) + "s skew");
  std::cout << "result: VALID for provider '" << provider->name << "', expires "
            << when(verified->exp) << "\n";
  return 0;
}

}  // namespace portcullis
