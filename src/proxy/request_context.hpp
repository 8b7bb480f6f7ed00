#pragma once
// The protocol-neutral view of one request, built once by a codec (HTTP/1.1 now, HTTP/2
// later) after normalisation. Routing, admission, forwarding decisions, the access log and
// (later) policy and audit all read this view; nothing re-parses the raw URL.
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "authz/policy.hpp"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace portcullis {

struct RouteConfig;
struct Identity;
struct UpstreamConfig;
struct RouteMetrics;
struct UpstreamMetrics;

struct RequestContext {
  // Who and where.
  std::string_view listener;
  bool tls = false;
  boost::asio::ip::address peer;
  std::uint16_t peer_port = 0;
  bool peer_trusted = false;

  // What (normalised).
  std::string method;     // as sent (methods are case-sensitive tokens)
  std::string authority;  // Host / :authority as sent, for X-Forwarded-Host and logs
  std::string host;       // normalised: lower case, no port, no trailing dot
  std::string path;       // normalised (see path_normalizer.hpp)
  std::string query;      // verbatim, without '?'
  std::optional<std::uint64_t> content_length;  // absent when unknown (chunked) or no body
  bool has_body = false;
  std::string grpc_method;  // "/pkg.Service/Method" for gRPC requests (HTTP/2), else ""

  // Correlation.
  std::string request_id;
  std::string traceparent;

  // Filled in by admission.
  int route_index = -1;
  const RouteConfig* route = nullptr;
  const UpstreamConfig* upstream = nullptr;
  boost::asio::ssl::context* upstream_tls = nullptr;  // protocol h2: the Runtime's TLS context
  RouteMetrics* route_metrics = nullptr;
  UpstreamMetrics* upstream_metrics = nullptr;
  std::string_view decision = "none";  // "allow" | "deny" | "none" (refused before a decision)
  std::string_view decision_reason;    // e.g. "public route"
  // The policy's decision (views into the Runtime's policies, alive as long as the snapshot);
  // empty source when no policy was evaluated (public route without a policy, or refused
  // before authorization).
  PolicyDecision policy_decision;
  std::optional<PolicyDecision> shadow_decision;  // the route's shadow_policy, never enforced
  std::shared_ptr<const Identity> identity;       // set by authentication (null on public routes)
  // Browser sessions: Set-Cookie values for the answer (a renewed or touched session).
  std::vector<std::string> set_cookies;

  // Outcome, for logs and metrics.
  std::chrono::steady_clock::time_point started;
  unsigned status = 0;
  std::string_view error_code;  // our error code when the gateway answered itself
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::string upstream_address;
  std::string user_agent;
};

}  // namespace portcullis
