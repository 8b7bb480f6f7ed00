#include "core/config_json.hpp"

#include "authz/policy.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "core/config.hpp"
#include "core/units.hpp"

namespace portcullis {
namespace json = boost::json;

namespace {

std::string_view protocol_name(UpstreamProtocol p) {
  switch (p) {
    case UpstreamProtocol::http1:
      return "http1";
    case UpstreamProtocol::h2c:
      return "h2c";
    case UpstreamProtocol::h2:
      return "h2";
  }
  return "unknown";
}

json::array strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

}  // namespace

std::string config_to_json(const Config& c) {
  json::object root;
  root["source_file"] = c.source_file;
  json::array proxies;
  for (const auto& p : c.server.trusted_proxies) proxies.emplace_back(p.to_string());
  root["server"] = {
      {"workers", c.server.workers == 0 ? json::value("auto") : json::value(c.server.workers)},
      {"drain_timeout", format_duration(c.server.drain_timeout)},
      {"trusted_proxies", proxies},
      {"instance_name", c.server.instance_name},
      {"max_body", c.default_max_body_bytes}};
  root["access_log"] = {{"path", c.access_log.path}};
  json::array listeners;
  for (const auto& l : c.listeners) {
    json::object o{{"name", l.name}, {"address", l.address.to_string()}};
    if (l.tls) {
      o["tls"] = {{"cert", l.tls->cert_file},
                  {"key", l.tls->key_file},
                  {"client_ca", l.tls->client_ca_file},
                  {"min_version", l.tls->min_version}};
    }
    o["limits"] = {{"max_header_bytes", l.limits.max_header_bytes},
                   {"header_timeout", format_duration(l.limits.header_timeout)},
                   {"idle_timeout", format_duration(l.limits.idle_timeout)},
                   {"handshake_timeout", format_duration(l.limits.handshake_timeout)},
                   {"max_requests_per_connection", l.limits.max_requests_per_connection},
                   {"ping_interval", format_duration(l.limits.ping_interval)},
                   {"ping_timeout", format_duration(l.limits.ping_timeout)}};
    listeners.emplace_back(std::move(o));
  }
  root["listeners"] = std::move(listeners);
  if (c.admin.address) root["admin"] = {{"address", c.admin.address->to_string()}};
  json::array providers;
  for (const auto& p : c.identity_providers) {
    json::object o{{"name", p.name},
                   {"issuer", p.issuer},
                   {"audiences", strings(p.audiences)},
                   {"allow_any_audience", p.allow_any_audience},
                   {"jwks_file", p.jwks_file},
                   {"jwks_uri", p.jwks_uri},
                   {"algorithms", strings(p.algorithms)},
                   {"clock_skew", format_duration(p.clock_skew)},
                   {"token_type", p.token_type},
                   {"max_token_size", p.max_token_bytes},
                   {"ca_file", p.ca_file},
                   {"claims",
                    {{"subject", p.claims.subject},
                     {"email", p.claims.email},
                     {"groups", p.claims.groups},
                     {"scopes", p.claims.scopes},
                     {"client_id", p.claims.client_id}}},
                   {"jwks_refresh",
                    {{"default", format_duration(p.jwks.default_refresh)},
                     {"min", format_duration(p.jwks.min_refresh)},
                     {"max", format_duration(p.jwks.max_refresh)},
                     {"unknown_kid_cooldown", format_duration(p.jwks.unknown_kid_cooldown)},
                     {"timeout", format_duration(p.jwks.fetch_timeout)}}}};
    if (p.introspection) {
      const auto& in = *p.introspection;
      // The secret itself is never shown: only the file it comes from.
      o["introspection"] = {{"endpoint", in.endpoint},
                            {"client_id", in.client_id},
                            {"client_secret_file", in.client_secret_file},
                            {"cache_ttl", format_duration(in.cache_ttl)},
                            {"mode", in.mode == IntrospectionMode::always  ? "always"
                                     : in.mode == IntrospectionMode::never ? "never"
                                                                           : "auto"}};
    }
    providers.emplace_back(std::move(o));
  }
  root["identity_providers"] = std::move(providers);
  json::array upstreams;
  for (const auto& u : c.upstreams) {
    json::array endpoints;
    for (const auto& e : u.endpoints) {
      endpoints.push_back(json::object{{"address", e.address.to_string()}, {"weight", e.weight}});
    }
    json::object up{{"name", u.name},
                    {"protocol", protocol_name(u.protocol)},
                    {"endpoints", std::move(endpoints)},
                    {"timeouts",
                     {{"connect", format_duration(u.timeouts.connect)},
                      {"request", format_duration(u.timeouts.request)},
                      {"idle", format_duration(u.timeouts.idle)},
                      {"ping_interval", format_duration(u.timeouts.ping_interval)},
                      {"ping_timeout", format_duration(u.timeouts.ping_timeout)}}},
                    {"pool", {{"max_idle_per_endpoint", u.pool.max_idle_per_endpoint}}},
                    {"ejection",
                     {{"consecutive_failures", u.ejection.consecutive_failures},
                      {"base_duration", format_duration(u.ejection.base_duration)}}},
                    {"retries", u.retries}};
    if (u.tls) {
      up["tls"] = json::object{{"ca", u.tls->ca_file.empty() ? "system" : u.tls->ca_file},
                               {"server_name", u.tls->server_name},
                               {"client_cert", u.tls->cert_file},
                               {"min_version", u.tls->min_version}};
    }
    upstreams.push_back(std::move(up));
  }
  root["upstreams"] = std::move(upstreams);
  if (c.sso) {
    root["sso"] = json::object{
        {"provider", c.sso->provider},
        {"client_id", c.sso->client_id},
        {"client_secret_file", c.sso->client_secret_file},
        {"client_auth", c.sso->client_auth},
        {"cookie_secret_files", strings(c.sso->cookie_secret_files)},
        {"cookie_name", c.sso->effective_cookie_name()},
        {"cookie_secure", c.sso->cookie_secure},
        {"cookie_domain", c.sso->cookie_domain},
        {"client_key_file", c.sso->client_key_file},
        {"client_key_id", c.sso->client_key_id},
        {"session_store", c.sso->session_store == SessionStoreKind::redis ? "redis" : "cookie"},
        {"session_ttl", format_duration(c.sso->session_ttl)},
        {"idle_timeout", format_duration(c.sso->idle_timeout)},
        {"refresh_interval", format_duration(c.sso->refresh_interval)},
        {"callback_path", c.sso->callback_path},
        {"scopes", strings(c.sso->scopes)},
        {"allowed_redirect_hosts", strings(c.sso->allowed_redirect_hosts)},
        {"post_logout_redirect_uri", c.sso->post_logout_redirect_uri}};
  }
  json::array routes;
  for (const auto& r : c.routes) {
    json::object match;
    if (!r.match.host.empty()) match["host"] = r.match.host;
    if (!r.match.path.empty()) match["path"] = r.match.path;
    if (!r.match.path_prefix.empty()) match["path_prefix"] = r.match.path_prefix;
    if (!r.match.methods.empty()) match["methods"] = strings(r.match.methods);
    json::object o{{"name", r.name},
                   {"match", std::move(match)},
                   {"upstream", r.upstream},
                   {"auth", to_string(r.auth)},
                   {"allow_encoded_slash", r.allow_encoded_slash}};
    if (r.max_body_bytes) o["max_body"] = *r.max_body_bytes;
    if (!r.providers.empty()) o["providers"] = strings(r.providers);
    if (!r.required_scopes.empty()) o["required_scopes"] = strings(r.required_scopes);
    if (r.auth == AuthMode::bearer) o["forward_token"] = r.forward_token;
    if (r.timeout) o["timeout"] = format_duration(*r.timeout);
    auto binding = [](const PolicyBinding& b) {
      json::object p;
      p["ref"] = b.ref;
      if (!b.file.empty()) p["file"] = b.file;
      if (b.compiled) p["version"] = b.compiled->version;
      return p;
    };
    if (r.policy) o["policy"] = binding(*r.policy);
    if (r.shadow_policy) o["shadow_policy"] = binding(*r.shadow_policy);
    o["show_deny_reason"] = r.show_deny_reason;
    o["identity_headers"] = r.identity_headers;
    routes.emplace_back(std::move(o));
  }
  root["routes"] = std::move(routes);
  root["policy_dir"] = c.policy_dir;
  {
    json::object a;
    a["key_file"] = c.assertion.key_file.empty() ? json::value("(generated at start-up)")
                                                 : json::value(c.assertion.key_file);
    a["issuer"] = c.assertion.issuer;
    a["ttl"] = format_duration(c.assertion.ttl);
    root["assertion"] = std::move(a);
  }
  return json::serialize(root);
}

}  // namespace portcullis
