#include "audit/audit_metrics.hpp"

namespace portcullis {
namespace {

void family(std::string& out, const char* name, const char* type, const char* help,
            std::uint64_t value, const char* labels = "") {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
  out += name;
  out += labels;
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

}  // namespace

void render_audit_metrics(const AuditStats& s, std::string& out) {
  family(out, "portcullis_audit_records_written_total", "counter",
         "Request records written to the primary audit sink.", s.records_written);
  family(out, "portcullis_audit_records_dropped_total", "counter",
         "Request records lost (queue full, sink failing, closed).", s.records_dropped);
  family(out, "portcullis_audit_write_errors_total", "counter",
         "Failed open/write/fsync/rotate of the primary audit sink.", s.write_errors);
  family(out, "portcullis_audit_queue_depth", "gauge", "Records waiting for the audit writer.",
         s.queue_depth);
  family(out, "portcullis_audit_checkpoints_total", "counter", "Signed checkpoints written.",
         s.checkpoints);
  family(out, "portcullis_audit_rotations_total", "counter", "Audit file rotations.", s.rotations);
  family(out, "portcullis_audit_fsyncs_total", "counter", "fsync calls on the audit file.",
         s.fsyncs);
  family(out, "portcullis_audit_sink_ok", "gauge",
         "1 when the primary audit sink is writable, else 0.", s.primary_ok ? 1 : 0);
  out += "# HELP portcullis_audit_shipped_total Lines copied to secondary audit sinks (error: failed sends, retried).\n";
  out += "# TYPE portcullis_audit_shipped_total counter\n";
  out += "portcullis_audit_shipped_total{sink=\"stdout\",result=\"ok\"} " +
         std::to_string(s.stdout_lines) + "\n";
  out += "portcullis_audit_shipped_total{sink=\"stdout\",result=\"dropped\"} " +
         std::to_string(s.stdout_dropped) + "\n";
  out += "portcullis_audit_shipped_total{sink=\"redis\",result=\"ok\"} " +
         std::to_string(s.redis_lines) + "\n";
  out += "portcullis_audit_shipped_total{sink=\"redis\",result=\"dropped\"} " +
         std::to_string(s.redis_dropped) + "\n";
  out += "portcullis_audit_shipped_total{sink=\"stdout\",result=\"error\"} " +
         std::to_string(s.stdout_errors) + "\n";
  out += "portcullis_audit_shipped_total{sink=\"redis\",result=\"error\"} " +
         std::to_string(s.redis_errors) + "\n";
  family(out, "portcullis_audit_redis_connected", "gauge",
         "1 when the Redis audit stream sink is connected.", s.redis_connected ? 1 : 0);
}

}  // namespace portcullis
