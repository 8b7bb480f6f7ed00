#include "authn/authenticator.hpp"

#include <algorithm>
#include <stdexcept>

#include <boost/json/parse.hpp>

#include "authn/authn_services.hpp"
#include "authn/base64url.hpp"
#include "authn/bearer_token.hpp"
#include "authn/introspection.hpp"
#include "authn/key_store.hpp"

namespace portcullis {
namespace asio = boost::asio;

namespace {

constexpr int kJwtErrorCount = static_cast<int>(JwtError::internal) + 1;

// Reasons that are not JwtError codes.
enum class Extra {
  ok,
  cache_hit,
  untrusted_issuer,
  introspection_inactive,
  unavailable,
  insufficient_scope,
  count
};
constexpr std::string_view kExtraNames[] = {
    "ok",          "cache_hit",         "untrusted_issuer", "introspection_inactive",
    "unavailable", "insufficient_scope"};

std::int64_t now_seconds(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::seconds>(clock.system_now().time_since_epoch())
      .count();
}

// Okta's org authorization server (issuer https://<org>.okta.com, no /oauth2/ in the path)
// issues access tokens that only Okta itself can validate: introspect them.
bool is_okta_org_server(std::string_view issuer) {
  auto rest =
      issuer.substr(issuer.find("://") == std::string_view::npos ? 0 : issuer.find("://") + 3);
  auto host = rest.substr(0, rest.find('/'));
  bool okta = host.ends_with(".okta.com") || host.ends_with(".oktapreview.com") ||
              host.ends_with(".okta-emea.com");
  return okta && issuer.find("/oauth2/") == std::string_view::npos;
}

AuthnFailure invalid_token(std::string_view reason, std::string description) {
  return {401, "invalid_token", reason, std::move(description), {}};
}

// Outcome counters of one provider (or of tokens no provider could be chosen for).
struct AuthnCounters {
  std::array<LabeledCounter*, kJwtErrorCount> jwt_errors{};
  std::array<LabeledCounter*, static_cast<int>(Extra::count)> extra{};
  void count(JwtError e) const { jwt_errors[static_cast<int>(e)]->inc(); }
  void count(Extra e) const { extra[static_cast<int>(e)]->inc(); }
  static AuthnCounters make(std::string_view provider) {
    constexpr std::string_view kFamily = "portcullis_authn_total";
    constexpr std::string_view kHelp = "Bearer authentications by provider and result.";
    auto& registry = MetricsRegistry::instance();
    AuthnCounters c;
    for (int e = 0; e < kJwtErrorCount; ++e) {
      c.jwt_errors[e] =
          &registry.counter(kFamily, kHelp,
                            prometheus_labels({{"provider", provider},
                                               {"result", to_string(static_cast<JwtError>(e))}}));
    }
    for (int e = 0; e < static_cast<int>(Extra::count); ++e) {
      c.extra[e] = &registry.counter(
          kFamily, kHelp, prometheus_labels({{"provider", provider}, {"result", kExtraNames[e]}}));
    }
    return c;
  }
};

// Why an unsigned token (empty third part) is refused: "alg: none" gets its own reason.
JwtError unsigned_token_error(std::string_view token) {
  auto header = base64url_decode_to_string(token.substr(0, token.find('.')));
  if (header) {
    boost::system::error_code ec;
    auto v = boost::json::parse(*header, ec);
    if (!ec && v.is_object()) {
      if (auto* alg = v.as_object().if_contains("alg"); alg && alg->is_string()) {
        auto c = classify_alg(alg->as_string());
        if (!c) return c.error();
      }
    }
  }
  return JwtError::malformed;
}

}  // namespace

struct Authenticator::Provider {
  int index = 0;
  std::string name;
  std::string issuer;
  JwtValidator validator;
  std::shared_ptr<KeyStore> keys;
  std::shared_ptr<Introspector> introspector;
  ClaimsMapping mapping;
  bool introspect_always = false;
  AuthnCounters counters;
  std::int64_t introspection_cache_seconds = 0;

  void count(JwtError e) const { counters.count(e); }
  void count(Extra e) const { counters.count(e); }
};

namespace {
const AuthnCounters& unattributed() {
  static const AuthnCounters counters = AuthnCounters::make("");
  return counters;
}
}  // namespace

std::shared_ptr<const Authenticator> Authenticator::build(const Config& config,
                                                          AuthnServices& services,
                                                          std::uint64_t generation) {
  auto auth = std::make_shared<Authenticator>();
  auth->generation_ = generation;
  auth->clock_ = &services.clock();
  unattributed();  // register the provider="" series up front
  int index = 0;
  for (const auto& pc : config.identity_providers) {
    JwtValidatorConfig vc;
    vc.issuer = pc.issuer;
    vc.audiences = pc.audiences;
    vc.audience_waived = pc.allow_any_audience;
    for (const auto& name : pc.algorithms) {
      if (auto alg = parse_jws_alg(name)) vc.algorithms.push_back(*alg);
    }
    vc.clock_skew = std::chrono::duration_cast<std::chrono::seconds>(pc.clock_skew);
    if (!pc.token_type.empty()) vc.required_typ = pc.token_type;
    vc.max_token_bytes = pc.max_token_bytes;
    auto validator = JwtValidator::create(vc);
    if (!validator) {
      throw std::runtime_error("identity provider '" + pc.name + "': " + validator.error());
    }
    auto p = std::make_shared<Provider>(Provider{index++,
                                                 pc.name,
                                                 pc.issuer,
                                                 std::move(*validator),
                                                 services.key_store(pc),
                                                 services.introspector(pc),
                                                 {},
                                                 false,
                                                 AuthnCounters::make(pc.name),
                                                 0});
    if (pc.introspection) {
      p->introspection_cache_seconds =
          std::chrono::duration_cast<std::chrono::seconds>(pc.introspection->cache_ttl).count();
    }
    p->mapping.subject = pc.claims.subject;
    p->mapping.email = pc.claims.email;
    p->mapping.groups = pc.claims.groups;
    p->mapping.scopes = pc.claims.scopes;
    p->mapping.client_id = pc.claims.client_id;
    if (pc.introspection) {
      p->introspect_always =
          pc.introspection->mode == IntrospectionMode::always ||
          (pc.introspection->mode == IntrospectionMode::automatic && is_okta_org_server(pc.issuer));
    }
    if (config.sso && config.sso->provider == pc.name) {
      JwtValidatorConfig id = vc;
      id.audiences = {config.sso->client_id};
      id.audience_waived = false;
      id.required_typ.reset();  // ID tokens carry "JWT" or nothing
      auto id_validator = JwtValidator::create(id);
      if (!id_validator) {
        throw std::runtime_error("sso: ID-token validator: " + id_validator.error());
      }
      auth->sso_validator_.emplace(std::move(*id_validator));
      auth->sso_provider_ = p;
      auth->sso_fetcher_ = services.fetcher_for(pc.ca_file, pc.jwks.fetch_timeout);
    }
    auth->providers_.push_back(std::move(p));
  }
  return auth;
}

KeyStoreStatus Authenticator::sso_provider_status() const {
  if (!sso_provider_) return {};
  return sso_provider_->keys->status();
}

asio::awaitable<Expected<HttpResult, std::string>> Authenticator::sso_fetch(
    HttpRequestSpec request) const {
  if (!sso_fetcher_) co_return unexpected(std::string("no sso provider"));
  co_return co_await sso_fetcher_->fetch(std::move(request));
}

asio::awaitable<Expected<VerifiedToken, std::string>> Authenticator::verify_sso_jwt(
    std::string_view token) const {
  if (!sso_provider_ || !sso_validator_) co_return unexpected(std::string("no sso provider"));
  const Provider& p = *sso_provider_;
  auto keys = p.keys->current();
  auto verified = sso_validator_->validate(token, *keys, *clock_);
  if (!verified && suggests_key_refetch(verified.error())) {
    if (co_await p.keys->refresh_for_unknown_kid()) {
      keys = p.keys->current();
      verified = sso_validator_->validate(token, *keys, *clock_);
    }
  }
  if (!verified) co_return unexpected(std::string(describe(verified.error())));
  co_return std::move(*verified);
}

asio::awaitable<Expected<std::shared_ptr<const Identity>, std::string>>
Authenticator::verify_id_token(std::string_view id_token,
                               std::optional<std::string_view> nonce) const {
  auto verified = co_await verify_sso_jwt(id_token);
  if (!verified) co_return unexpected(std::move(verified.error()));
  if (nonce) {
    const auto* n = verified->claims.if_contains("nonce");
    if (!n || !n->is_string() || n->get_string() != *nonce) {
      co_return unexpected(std::string("the ID token's nonce does not match the login"));
    }
  }
  const Provider& p = *sso_provider_;
  auto claims = std::make_shared<const boost::json::object>(std::move(verified->claims));
  auto identity = std::make_shared<Identity>(map_identity(p.mapping, claims, p.name, "sso"));
  identity->expires_at = verified->exp;
  co_return std::shared_ptr<const Identity>(std::move(identity));
}

asio::awaitable<Expected<std::shared_ptr<const boost::json::object>, std::string>>
Authenticator::verify_logout_token(std::string_view logout_token) const {
  auto verified = co_await verify_sso_jwt(logout_token);
  if (!verified) co_return unexpected(std::move(verified.error()));
  const boost::json::object& c = verified->claims;
  const auto* events = c.if_contains("events");
  const auto* event =
      events && events->is_object()
          ? events->get_object().if_contains("http://schemas.openid.net/event/backchannel-logout")
          : nullptr;
  if (!event || !event->is_object()) {
    co_return unexpected(std::string("not a logout token (no back-channel logout event)"));
  }
  if (c.contains("nonce")) co_return unexpected(std::string("a logout token carries no nonce"));
  if (!c.contains("iat")) co_return unexpected(std::string("the logout token has no iat"));
  const auto* sub = c.if_contains("sub");
  const auto* sid = c.if_contains("sid");
  const bool has_sub = sub && sub->is_string() && !sub->get_string().empty();
  const bool has_sid = sid && sid->is_string() && !sid->get_string().empty();
  if (!has_sub && !has_sid) {
    co_return unexpected(std::string("the logout token names neither sub nor sid"));
  }
  co_return std::make_shared<const boost::json::object>(std::move(verified->claims));
}

bool Authenticator::route_accepts(const RouteConfig& route, const Provider& p) const {
  return route.providers.empty() ||
         std::find(route.providers.begin(), route.providers.end(), p.name) != route.providers.end();
}

Expected<std::shared_ptr<const Identity>, AuthnFailure> Authenticator::check_scopes(
    std::shared_ptr<const Identity> identity, const RouteConfig& route) const {
  for (const auto& scope : route.required_scopes) {
    if (!identity->has_scope(scope)) {
      std::string all;
      for (const auto& s : route.required_scopes) {
        if (!all.empty()) all += ' ';
        all += s;
      }
      unattributed().count(Extra::insufficient_scope);
      return unexpected(AuthnFailure{403, "insufficient_scope", "insufficient_scope",
                                     "the token lacks a scope this route requires", all});
    }
  }
  return identity;
}

asio::awaitable<Authenticator::Result> Authenticator::authenticate(std::string_view authorization,
                                                                   const RouteConfig& route,
                                                                   TokenCache& cache) const {
  auto bearer = parse_bearer(authorization);
  if (bearer.status == BearerParse::missing || bearer.status == BearerParse::not_bearer) {
    co_return unexpected(AuthnFailure{401, "", "missing_token", "a bearer token is required", {}});
  }
  if (bearer.status != BearerParse::ok) {
    co_return unexpected(invalid_token("malformed", "malformed Authorization header"));
  }
  const std::string_view token = bearer.token;
  const auto now = now_seconds(*clock_);

  if (auto hit = cache.find(token, generation_, now); hit.identity) {
    const auto& p = *providers_[hit.provider_index];
    if (route_accepts(route, p)) {
      p.count(Extra::cache_hit);
      co_return check_scopes(std::move(hit.identity), route);
    }
  }

  Result result = unexpected(invalid_token("untrusted_issuer", "token issuer is not trusted here"));
  const Provider* chosen = nullptr;
  if (looks_like_jwt(token)) {
    if (token.back() == '.') {
      auto e = unsigned_token_error(token);
      unattributed().count(e);
      co_return unexpected(invalid_token(to_string(e), std::string(describe(e))));
    }
    auto issuer = unverified_issuer(token);
    if (!issuer) {
      unattributed().count(issuer.error());
      co_return unexpected(
          invalid_token(to_string(issuer.error()), std::string(describe(issuer.error()))));
    }
    for (const auto& p : providers_) {
      if (p->issuer == *issuer && route_accepts(route, *p)) {
        chosen = p.get();
        break;
      }
    }
    if (chosen == nullptr) {
      unattributed().count(Extra::untrusted_issuer);
      co_return result;
    }
    if (chosen->introspect_always && chosen->introspector) {
      result = co_await introspect(*chosen, token);
    } else {
      result = co_await verify_jwt(*chosen, token);
    }
  } else {
    // Opaque: the route's providers that introspect, in config order, until one knows it.
    result =
        unexpected(invalid_token("malformed", "not a JWT, and no introspection is configured"));
    for (const auto& p : providers_) {
      if (!p->introspector || !route_accepts(route, *p)) continue;
      chosen = p.get();
      result = co_await introspect(*p, token);
      if (result || result.error().status == 503) break;
    }
  }
  if (!result) co_return result;
  // Introspected tokens are re-introspected after cache_ttl (a revocation at the IdP must be
  // seen within it), JWTs live until their exp.
  std::int64_t cache_until = result.value()->expires_at;
  if (result.value()->method == "introspection") {
    cache_until = std::min(cache_until, now + chosen->introspection_cache_seconds);
  }
  cache.insert(token, result.value(), chosen->index, generation_, cache_until, now);
  chosen->count(Extra::ok);
  co_return check_scopes(std::move(result.value()), route);
}

asio::awaitable<Authenticator::Result> Authenticator::verify_jwt(const Provider& p,
                                                                 std::string_view token) const {
  auto keys = p.keys->current();
  auto verified = p.validator.validate(token, *keys, *clock_);
  if (!verified && suggests_key_refetch(verified.error())) {
    // An IdP key rotation: fetch the new set (at most once per cooldown), then retry once.
    if (co_await p.keys->refresh_for_unknown_kid()) {
      keys = p.keys->current();
      verified = p.validator.validate(token, *keys, *clock_);
    }
  }
  if (!verified) {
    p.count(verified.error());
    if (keys->empty()) {
      p.count(Extra::unavailable);
      co_return unexpected(AuthnFailure{
          503, "", "unavailable", "the identity provider's keys are not available", {}});
    }
    co_return unexpected(
        invalid_token(to_string(verified.error()), std::string(describe(verified.error()))));
  }
  auto claims = std::make_shared<const boost::json::object>(std::move(verified->claims));
  auto identity = std::make_shared<Identity>(map_identity(p.mapping, claims, p.name, "jwt"));
  identity->expires_at = verified->exp;
  co_return std::shared_ptr<const Identity>(std::move(identity));
}

asio::awaitable<Authenticator::Result> Authenticator::introspect(const Provider& p,
                                                                 std::string_view token) const {
  auto r = co_await p.introspector->introspect(std::string(token));
  if (!r) {
    if (r.error() == IntrospectionError::unavailable) {
      p.count(Extra::unavailable);
      co_return unexpected(
          AuthnFailure{503, "", "unavailable", "the identity provider cannot be reached", {}});
    }
    p.count(Extra::introspection_inactive);
    co_return unexpected(invalid_token(to_string(r.error()), "the token is not active"));
  }
  auto identity =
      std::make_shared<Identity>(map_identity(p.mapping, r->claims, p.name, "introspection"));
  if (r->exp > 0) identity->expires_at = r->exp;
  co_return std::shared_ptr<const Identity>(std::move(identity));
}

std::string Authenticator::challenge(const AuthnFailure& f) {
  std::string out = "Bearer realm=\"portcullis\"";
  if (!f.error.empty()) {
    out += ", error=\"";
    out += f.error;
    out += '"';
    if (!f.description.empty()) {
      out += ", error_description=\"";
      for (char c : f.description) {
        if (c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20) out.push_back(c);
      }
      out += '"';
    }
    if (!f.scope.empty()) {
      out += ", scope=\"";
      out += f.scope;
      out += '"';
    }
  }
  return out;
}

}  // namespace portcullis
