// Worker::record_request: the one place a finished request becomes a metric sample, an
// access-log line and an audit record, whatever codec carried it (HTTP/1.1 or HTTP/2).
#include <spdlog/spdlog.h>

#include "admin/metrics.hpp"
#include "audit/audit_event.hpp"
#include "audit/audit_log.hpp"
#include "proxy/admission.hpp"
#include "server/worker.hpp"

namespace portcullis {

void Worker::record_request(const Runtime& runtime, const RequestContext& ctx) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - ctx.started).count();
  RouteMetrics* m = ctx.route_metrics ? ctx.route_metrics : runtime.unmatched_metrics;
  m->record(ctx.status, seconds);
  const auto now = std::chrono::system_clock::now();
  if (auto* log = access_logger()) {
    log->log(spdlog::level::info, "{}", access_log_line(ctx, now));
  }
  if (AuditWriter* audit = this->audit()) {
    thread_local AuditEvent event;  // reused: its strings keep their capacity
    fill_audit_event(ctx, now, event);
    audit->submit(audit_event_body(event));
  }
}

}  // namespace portcullis
