#include "audit/audit_event.hpp"

#include <cstdio>

#include "audit/audit_json.hpp"

namespace portcullis {

std::string audit_event_body(const AuditEvent& e) {
  std::string out;
  out.reserve(640);
  out += "\"time\":\"";
  append_audit_time(out, e.time);
  out.push_back('"');
  const auto field = [&](std::string_view key, std::string_view value) {
    out += ",\"";
    out += key;
    out += "\":";
    append_audit_string(out, value);
  };
  const auto number = [&](std::string_view key, std::uint64_t value) {
    out += ",\"";
    out += key;
    out += "\":";
    out += std::to_string(value);
  };
  field("request_id", e.request_id);
  field("trace_id", e.trace_id);
  field("listener", e.listener);
  field("route", e.route);
  field("method", e.method);
  field("authority", e.authority);
  field("path", e.path);
  field("grpc_method", e.grpc_method);
  field("source", e.source);
  number("source_port", e.source_port);
  field("subject", e.subject);
  field("email", e.email);
  field("issuer", e.issuer);
  field("client_id", e.client_id);
  out += ",\"groups\":[";
  for (std::size_t i = 0; i < e.groups.size(); ++i) {
    if (i) out.push_back(',');
    append_audit_string(out, e.groups[i]);
  }
  out.push_back(']');
  field("decision", e.decision);
  field("rule", e.rule);
  field("reason", e.reason);
  field("shadow_decision", e.shadow_decision);
  field("shadow_rule", e.shadow_rule);
  field("cache", e.cache);
  field("upstream", e.upstream);
  field("upstream_address", e.upstream_address);
  number("status", e.status);
  field("error", e.error);
  number("bytes_in", e.bytes_in);
  number("bytes_out", e.bytes_out);
  const long long us = e.duration.count() < 0 ? 0 : static_cast<long long>(e.duration.count());
  out += ",\"duration_ms\":";
  out += std::to_string(us / 1000);
  const long long frac = us % 1000;
  out.push_back('.');
  out.push_back(static_cast<char>('0' + frac / 100));
  out.push_back(static_cast<char>('0' + frac / 10 % 10));
  out.push_back(static_cast<char>('0' + frac % 10));
  out += e.completed ? ",\"completed\":true" : ",\"completed\":false";
  return out;
}

}  // namespace portcullis
