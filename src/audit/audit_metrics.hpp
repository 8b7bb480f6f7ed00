#pragma once
// Prometheus text for the audit writer's counters (portcullis_audit_*), appended to /metrics
// through MetricsRegistry::set_external_renderer().
#include <string>

#include "audit/audit_log.hpp"

namespace portcullis {

void render_audit_metrics(const AuditStats& stats, std::string& out);

}  // namespace portcullis
