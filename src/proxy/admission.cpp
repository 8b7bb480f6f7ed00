#include "proxy/admission.hpp"

#include <cstdio>
#include <ctime>

#include "audit/audit_event.hpp"
#include "authn/authenticator.hpp"
#include "authn/identity.hpp"
#include "authz/route_decision.hpp"
#include "cache/revocations.hpp"
#include "core/log.hpp"

namespace portcullis {

LocalReply admit(const Runtime& runtime, RequestContext& ctx) {
  int index = runtime.router->match(ctx.host, ctx.path, ctx.method);
  const bool encoded_slash =
      ctx.path.find("%2F") != std::string::npos || ctx.path.find("%5C") != std::string::npos;
  if (index < 0) {
    ctx.route_metrics = runtime.unmatched_metrics;
    if (encoded_slash) return {400, "bad_path", "encoded '/' or '\\' in the path"};
    return {404, "no_route", "no route matches this request"};
  }
  const auto& route = runtime.config->routes[index];
  ctx.route_index = index;
  ctx.route = &route;
  ctx.upstream = runtime.route_upstream[index];
  ctx.upstream_tls = runtime.route_upstream_tls[index].get();
  ctx.route_metrics = runtime.route_metrics[index];
  ctx.upstream_metrics = runtime.route_upstream_metrics[index];

  if (encoded_slash && !route.allow_encoded_slash) {
    return {400, "bad_path", "encoded '/' or '\\' in the path"};
  }

  switch (route.auth) {
    case AuthMode::public_access:
    case AuthMode::bearer:
    case AuthMode::sso:
    case AuthMode::bearer_or_sso:
      break;  // decided by authenticate[_session]() and authorize(); "none" until then
    default:
      // The config loader refuses other modes in this build; deny by default regardless.
      ctx.decision = "deny";
      ctx.decision_reason = "authentication mode not available";
      return {403, "forbidden", "access denied"};
  }

  if (ctx.content_length && *ctx.content_length > max_body_for(runtime, ctx)) {
    return {413, "payload_too_large", "request body exceeds the route's limit"};
  }
  if (!ctx.upstream) return {503, "no_upstream", "route has no upstream"};
  return {};
}

boost::asio::awaitable<LocalReply> authenticate(const Runtime& runtime, RequestContext& ctx,
                                                std::string_view authorization, TokenCache& cache) {
  if (ctx.route == nullptr || ctx.route->auth == AuthMode::public_access) co_return LocalReply{};
  if (ctx.identity) co_return LocalReply{};  // a browser session (authenticate_session)
  const bool bearer = ctx.route->auth == AuthMode::bearer ||
                      (ctx.route->auth == AuthMode::bearer_or_sso && !authorization.empty());
  if (!bearer || !runtime.authenticator) {
    ctx.decision = "deny";
    ctx.decision_reason = "no authenticator";
    co_return LocalReply{503, "unavailable", "authentication is not configured"};
  }
  auto identity = co_await runtime.authenticator->authenticate(authorization, *ctx.route, cache);
  if (!identity) {
    const auto& f = identity.error();
    ctx.decision = "deny";
    ctx.decision_reason = f.reason;
    LocalReply reply{f.status,
                     f.status == 503   ? std::string_view("identity_provider_unavailable")
                     : f.status == 403 ? std::string_view("insufficient_scope")
                                       : std::string_view("unauthenticated"),
                     f.description,
                     {}};
    if (f.status != 503) reply.www_authenticate = Authenticator::challenge(f);
    co_return reply;
  }
  ctx.identity = std::move(identity.value());
  co_return LocalReply{};
}

bool uses_session(const RequestContext& ctx, std::string_view authorization) {
  if (ctx.route == nullptr) return false;
  return ctx.route->auth == AuthMode::sso ||
         (ctx.route->auth == AuthMode::bearer_or_sso && authorization.empty());
}

boost::asio::awaitable<std::optional<SsoResponse>> authenticate_session(
    const Runtime& runtime, RequestContext& ctx, const SsoRequest& request,
    const SsoServices& services, std::int64_t now, RevocationView* revocations) {
  if (!runtime.sso || !runtime.authenticator) {
    ctx.decision = "deny";
    ctx.decision_reason = "no sso";
    SsoResponse r;
    r.status = 503;
    r.error = "unavailable";
    r.content_type = "application/json";
    r.body = error_body(503, "unavailable", "browser sign-in is not configured", ctx.request_id);
    co_return r;
  }
  SessionResult session = co_await runtime.sso->session(request, now, services);
  const auto& identity = session.identity;
  const auto revoked = identity && revocations
                           ? revocations->is_revoked(identity.get(), identity->session_id)
                           : std::nullopt;
  if (identity && !revoked) {
    ctx.identity = std::move(session.identity);
    ctx.set_cookies = std::move(session.set_cookies);
    co_return std::nullopt;
  }
  ctx.decision = "deny";
  ctx.decision_reason = revoked                     ? revoked->reason
                        : session.store_unreachable ? std::string_view("session store unreachable")
                                                    : std::string_view("no session");
  co_return runtime.sso->challenge(request, runtime.authenticator->sso_provider_status(),
                                   services.random, now, session.store_unreachable);
}

std::optional<SsoResponse> browser_denial(const RequestContext& ctx, const LocalReply& reply,
                                          const SsoRequest& request) {
  if (reply.status != 403 || !ctx.identity || ctx.identity->method != "sso" ||
      !SsoFlow::is_browser_navigation(request)) {
    return std::nullopt;
  }
  auto page = SsoFlow::denied(ctx.identity.get(), ctx.request_id, reply.rule);
  for (const auto& c : ctx.set_cookies) page.headers.emplace_back("set-cookie", c);
  return page;
}

LocalReply authorize(const Runtime& runtime, RequestContext& ctx, RevocationView* revocations) {
  const RouteConfig& route = *ctx.route;
  if (revocations && ctx.identity) {
    if (auto hit = revocations->is_revoked(ctx.identity.get(), ctx.identity->session_id)) {
      ctx.decision = "deny";
      ctx.decision_reason = hit->reason;
      runtime.route_policy_metrics[ctx.route_index].deny->inc();
      LocalReply reply{401, "unauthenticated", std::string(hit->reason), {}};
      reply.www_authenticate = "Bearer error=\"invalid_token\", error_description=\"";
      reply.www_authenticate += hit->reason;
      reply.www_authenticate += '"';
      return reply;
    }
  }
  const RequestAttributes attributes{ctx.method, ctx.path, ctx.grpc_method, ctx.peer};
  const Identity* identity = ctx.identity.get();
  const RoutePolicyMetrics& metrics = runtime.route_policy_metrics[ctx.route_index];
  ctx.policy_decision = decide_route_policy(route, identity, attributes);
  const PolicyDecision& d = ctx.policy_decision;
  if (route.shadow_policy) {
    ctx.shadow_decision = route.shadow_policy->compiled->evaluate(identity, attributes);
    (ctx.shadow_decision->allow ? metrics.shadow_allow : metrics.shadow_deny)->inc();
    if (ctx.shadow_decision->allow != d.allow) metrics.shadow_mismatch->inc();
  }
  (d.allow ? metrics.allow : metrics.deny)->inc();
  ctx.decision = d.allow ? "allow" : "deny";
  ctx.decision_reason = d.reason;
  if (d.allow) return {};
  LocalReply reply{403, "forbidden", "access denied", {}};
  if (route.show_deny_reason) {
    reply.reason = d.reason;
    reply.rule = decision_rule(d);
  }
  return reply;
}

std::string decision_rule(const PolicyDecision& d) {
  if (d.source.empty()) return {};
  std::string out(d.source);
  out += '#';
  out += d.section;
  if (d.rule_index >= 0) {
    out += '[';
    out += std::to_string(d.rule_index);
    out += ']';
  }
  return out;
}

std::uint64_t max_body_for(const Runtime& runtime, const RequestContext& ctx) {
  if (ctx.route && ctx.route->max_body_bytes) return *ctx.route->max_body_bytes;
  return runtime.config->default_max_body_bytes;
}

std::string error_body(unsigned status, std::string_view error, std::string_view message,
                       std::string_view request_id, std::string_view reason,
                       std::string_view rule) {
  std::string out;
  out.reserve(128 + message.size());
  out += "{\"status\":";
  out += std::to_string(status);
  out += ",\"error\":";
  append_json_string(out, error);
  out += ",\"message\":";
  append_json_string(out, message);
  out += ",\"request_id\":";
  append_json_string(out, request_id);
  if (!reason.empty()) {
    out += ",\"reason\":";
    append_json_string(out, reason);
  }
  if (!rule.empty()) {
    out += ",\"rule\":";
    append_json_string(out, rule);
  }
  out += "}\n";
  return out;
}

void fill_audit_event(const RequestContext& ctx, std::chrono::system_clock::time_point now,
                      AuditEvent& e) {
  const Identity* id = ctx.identity.get();
  const auto set = [](std::string& out, std::string_view v) { out.assign(v.data(), v.size()); };
  e.time = now;
  set(e.request_id, ctx.request_id);
  set(e.trace_id, ctx.traceparent.size() == 55 ? std::string_view(ctx.traceparent).substr(3, 32)
                                               : std::string_view{});
  set(e.listener, ctx.listener);
  set(e.route, ctx.route ? std::string_view(ctx.route->name) : std::string_view{});
  set(e.method, ctx.method);
  set(e.authority, ctx.authority);
  set(e.path, ctx.path);
  set(e.grpc_method, ctx.grpc_method);
  e.source = ctx.peer.to_string();  // fits the short-string buffer for IPv4
  e.source_port = ctx.peer_port;
  set(e.subject, id ? std::string_view(id->subject) : std::string_view{});
  set(e.email, id ? std::string_view(id->email) : std::string_view{});
  set(e.issuer, id ? std::string_view(id->issuer) : std::string_view{});
  set(e.client_id, id ? std::string_view(id->client_id) : std::string_view{});
  if (id) {
    e.groups.assign(id->groups.begin(), id->groups.end());
  } else {
    e.groups.clear();
  }
  set(e.decision, ctx.decision);
  e.rule = decision_rule(ctx.policy_decision);
  set(e.reason, ctx.decision_reason);
  if (ctx.shadow_decision) {
    set(e.shadow_decision, ctx.shadow_decision->allow ? "allow" : "deny");
    e.shadow_rule = decision_rule(*ctx.shadow_decision);
  } else {
    e.shadow_decision.clear();
    e.shadow_rule.clear();
  }
  set(e.cache, "none");
  set(e.upstream, ctx.upstream ? std::string_view(ctx.upstream->name) : std::string_view{});
  set(e.upstream_address, ctx.upstream_address);
  e.status = ctx.status;
  set(e.error, ctx.error_code);
  e.bytes_in = ctx.bytes_in;
  e.bytes_out = ctx.bytes_out;
  e.duration = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - ctx.started);
  e.completed = !ctx.error_code.starts_with("client_aborted") && ctx.status != 499;
}

std::string access_log_line(const RequestContext& ctx, std::chrono::system_clock::time_point now) {
  using namespace std::chrono;
  std::string out;
  out.reserve(512);
  auto micros = duration_cast<microseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(micros / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[96];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(micros % 1000000));
  auto field = [&](std::string_view key, std::string_view value) {
    out += ",\"";
    out += key;
    out += "\":";
    append_json_string(out, value);
  };
  auto number = [&](std::string_view key, auto value) {
    out += ",\"";
    out += key;
    out += "\":";
    out += std::to_string(value);
  };
  out += "{\"time\":\"";
  out += ts;
  out += '"';
  field("request_id", ctx.request_id);
  field("trace_id", ctx.traceparent.size() == 55 ? std::string_view(ctx.traceparent).substr(3, 32)
                                                 : std::string_view{});
  field("listener", ctx.listener);
  field("route", ctx.route ? std::string_view(ctx.route->name) : std::string_view{});
  field("method", ctx.method);
  field("authority", ctx.authority);
  field("path", ctx.path);
  if (!ctx.grpc_method.empty()) field("grpc_method", ctx.grpc_method);
  field("source", ctx.peer.to_string());
  number("source_port", ctx.peer_port);
  field("subject", ctx.identity ? std::string_view(ctx.identity->subject) : std::string_view{});
  field("client_id", ctx.identity ? std::string_view(ctx.identity->client_id) : std::string_view{});
  field("provider", ctx.identity ? std::string_view(ctx.identity->provider) : std::string_view{});
  field("decision", ctx.decision);
  field("rule", decision_rule(ctx.policy_decision));
  field("reason", ctx.decision_reason);
  if (ctx.shadow_decision) {
    field("shadow_decision", ctx.shadow_decision->allow ? "would allow" : "would deny");
    field("shadow_rule", decision_rule(*ctx.shadow_decision));
  }
  number("status", ctx.status);
  field("error", ctx.error_code);
  field("upstream", ctx.upstream ? std::string_view(ctx.upstream->name) : std::string_view{});
  field("upstream_address", ctx.upstream_address);
  number("bytes_in", ctx.bytes_in);
  number("bytes_out", ctx.bytes_out);
  auto elapsed = duration_cast<microseconds>(steady_clock::now() - ctx.started).count();
  char dur[32];
  std::snprintf(dur, sizeof dur, "%.3f", static_cast<double>(elapsed) / 1000.0);
  out += ",\"duration_ms\":";
  out += dur;
  field("user_agent", ctx.user_agent);
  out += '}';
  return out;
}

}  // namespace portcullis
