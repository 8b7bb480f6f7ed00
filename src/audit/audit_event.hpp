#pragma once
// AuditEvent: what the audit log records about one request, filled by the request pipeline
// when the request ends (allowed, denied, refused before a decision, or cut off by the
// client). audit_event_body() turns it into the record's JSON members; the writer adds seq,
// prev and type. Call it on the worker thread, then hand the string to AuditWriter::submit():
//
//   AuditEvent ev;  ev.time = clock.system_now();  ev.request_id = ctx.request_id; ...
//   if (!audit->submit(audit_event_body(ev))) { /* dropped: counted in stats() */ }
//
// There is deliberately no field for tokens, cookies, Authorization or the query string:
// secrets cannot reach the audit log through this type.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace portcullis {

struct AuditEvent {
  std::chrono::system_clock::time_point time;  // when the request finished
  std::string request_id;
  std::string trace_id;  // 32 hex of the traceparent, "" when none
  std::string listener;
  std::string route;  // "" when no route matched
  std::string method;
  std::string authority;
  std::string path;         // normalised, without the query string
  std::string grpc_method;  // "/pkg.Service/Method", "" for plain HTTP
  std::string source;       // peer address
  std::uint16_t source_port = 0;
  std::string subject;
  std::string email;
  std::string issuer;
  std::string client_id;
  std::vector<std::string> groups;
  std::string decision = "none";  // "allow" | "deny" | "none" (refused before a decision)
  std::string rule;               // e.g. "policies/orders.yaml#allow[1]"
  std::string reason;
  std::string shadow_decision;  // "allow" | "deny" from a shadow policy, "" when none
  std::string shadow_rule;
  std::string cache = "none";  // decision cache layer that answered: "none" | "l1" | "l2"
  std::string upstream;        // upstream cluster name
  std::string upstream_address;
  unsigned status = 0;  // HTTP status sent (0 when none was sent)
  std::string error;    // the gateway's error code when it answered itself
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::chrono::microseconds duration{0};
  bool completed = true;  // false when the client cut the request off
};

// The record's members after "type" (no braces, no leading comma), always all of them and in
// the order of docs/audit-format.md: "time":"...","request_id":"...",...,"completed":true.
std::string audit_event_body(const AuditEvent& event);

}  // namespace portcullis
