#pragma once
// The protocol-neutral decision stage: route match, then authentication and authorization
// (only `auth: public` exists in this build; later issues plug bearer/SSO and the policy
// engine in here), then request-level limits. Every codec calls admit() with its
// RequestContext and either forwards or answers with the LocalReply.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/request_context.hpp"
#include "proxy/runtime.hpp"
#include "sso/sso_flow.hpp"

namespace portcullis {

struct LocalReply {
  unsigned status = 0;           // 0: admitted, forward it
  std::string_view error;        // machine code: "no_route", "payload_too_large", ...
  std::string message;           // human text (never secrets)
  std::string www_authenticate;  // challenge header for 401/403 from bearer authentication
  std::string_view reason;       // policy denials on routes with show_deny_reason
  std::string rule;              // likewise: "policies/x.yaml#deny[0]"
  explicit operator bool() const { return status != 0; }
};

// Fills ctx.route*, ctx.upstream*, ctx.decision*; returns a LocalReply when the gateway must
// answer itself.
LocalReply admit(const Runtime& runtime, RequestContext& ctx);

class TokenCache;
class RandomSource;

// Browser sessions run before authenticate(): a route with `auth: sso`, or `bearer_or_sso`
// without an Authorization header, takes its identity from the session cookie.
bool uses_session(const RequestContext& ctx, std::string_view authorization);

// Sets ctx.identity from a valid session (and ctx.set_cookies when the session was renewed or
// touched), or returns what to send instead (302 to the IdP for a browser navigation, 401
// login_required otherwise). Needs runtime.sso (config.sso). A session whose id (or
// subject) is revoked counts as no session.
class RevocationView;
boost::asio::awaitable<std::optional<SsoResponse>> authenticate_session(
    const Runtime& runtime, RequestContext& ctx, const SsoRequest& request,
    const SsoServices& services, std::int64_t now, RevocationView* revocations);

// The access-denied HTML page instead of JSON when a browser's session identity was refused
// by the policy (403); nothing otherwise.
std::optional<SsoResponse> browser_denial(const RequestContext& ctx, const LocalReply& reply,
                                          const SsoRequest& request);

// The identity stage, after admit(): proves the caller for routes that need it (bearer) and
// records the decision. Never allows on error: every failure is a LocalReply.
boost::asio::awaitable<LocalReply> authenticate(const Runtime& runtime, RequestContext& ctx,
                                                std::string_view authorization, TokenCache& cache);

// The authorization stage, after authenticate(): evaluates the route's policy (and its shadow
// policy) for every admitted request, public routes included, and records the decision in
// ctx. A deny is a 403 LocalReply whose message names the rule only when the route sets
// show_deny_reason. Allocates nothing.
// With `revocations`, a revoked subject or token is refused first (401 invalid_token,
// "subject revoked" / "token revoked"), before any policy or cache.
class RevocationView;
LocalReply authorize(const Runtime& runtime, RequestContext& ctx,
                     RevocationView* revocations = nullptr);

// "policies/orders.yaml#allow[2]", "policies/orders.yaml#default" or "" (no policy).
std::string decision_rule(const PolicyDecision& d);

// Max body bytes for the admitted route.
std::uint64_t max_body_for(const Runtime& runtime, const RequestContext& ctx);

// {"status":404,"error":"no_route","message":"...","request_id":"..."}, plus "reason" and
// "rule" when given.
std::string error_body(unsigned status, std::string_view error, std::string_view message,
                       std::string_view request_id, std::string_view reason = {},
                       std::string_view rule = {});

struct AuditEvent;

// Fills the audit record of a finished request (no secrets: the type has no field for them).
// Reusing one AuditEvent per worker keeps its strings' capacity: no allocation per request.
void fill_audit_event(const RequestContext& ctx, std::chrono::system_clock::time_point now,
                      AuditEvent& e);

// One JSON access-log line for a finished request.
std::string access_log_line(const RequestContext& ctx, std::chrono::system_clock::time_point now);

}  // namespace portcullis
