#include "audit/audit_export.hpp"

#include <cstdio>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "audit/audit_line_reader.hpp"
#include "audit/audit_record.hpp"
#include "audit/audit_verify.hpp"

namespace portcullis {
namespace {

namespace json = boost::json;

std::string cell_text(const json::value* v) {
  if (!v || v->is_null()) return {};
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_bool()) return v->get_bool() ? "true" : "false";
  if (v->is_uint64()) return std::to_string(v->get_uint64());
  if (v->is_int64()) return std::to_string(v->get_int64());
  if (v->is_double()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f", v->get_double());
    return buf;
  }
  return json::serialize(*v);  // groups: ["a","b"]
}

bool matches(const json::object& o, std::string_view key, const std::string& want) {
  if (want.empty()) return true;
  const json::value* v = o.if_contains(key);
  return v && v->is_string() && v->get_string() == want;
}

}  // namespace

const std::vector<std::string>& audit_csv_columns() {
  static const std::vector<std::string> columns = {"seq",         "type",
                                                   "time",        "request_id",
                                                   "trace_id",    "listener",
                                                   "route",       "method",
                                                   "authority",   "path",
                                                   "grpc_method", "source",
                                                   "source_port", "subject",
                                                   "email",       "issuer",
                                                   "client_id",   "groups",
                                                   "decision",    "rule",
                                                   "reason",      "shadow_decision",
                                                   "shadow_rule", "cache",
                                                   "upstream",    "upstream_address",
                                                   "status",      "error",
                                                   "bytes_in",    "bytes_out",
                                                   "duration_ms", "completed"};
  return columns;
}

std::string csv_cell(std::string_view value) {
  std::string v;
  if (!value.empty() && (value[0] == '=' || value[0] == '+' || value[0] == '-' || value[0] == '@' ||
                         value[0] == '\t' || value[0] == '\r'))
    v.push_back('\'');
  v.append(value);
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

AuditExportSummary export_audit(const std::vector<std::string>& files,
                                const AuditExportFilter& filter, AuditExportFormat format,
                                std::ostream& out) {
  AuditExportSummary summary;
  const auto& columns = audit_csv_columns();
  if (format == AuditExportFormat::csv) {
    for (std::size_t i = 0; i < columns.size(); ++i) out << (i ? "," : "") << columns[i];
    if (filter.all) out << ",detail";
    out << "\r\n";
  }
  for (const auto& file : order_audit_files(files)) {
    ++summary.files;
    AuditLineReader in(file);
    while (auto l = in.next()) {
      if (!l->complete) break;
      ++summary.lines;
      json::error_code ec;
      const json::value v = json::parse(l->text, ec);
      const json::object* o = !ec && v.is_object() ? &v.get_object() : nullptr;
      const json::value* type = o ? o->if_contains("type") : nullptr;
      const json::value* time = o ? o->if_contains("time") : nullptr;
      std::optional<AuditTime> when;
      if (time && time->is_string()) {
        if (auto t = parse_rfc3339(std::string_view(time->get_string()))) when = *t;
      }
      if (!type || !type->is_string() || !when) {
        ++summary.skipped;
        continue;
      }
      const bool request = type->get_string() == audit_type::request;
      if (!request && !filter.all) continue;
      if (filter.since && *when < *filter.since) continue;
      if (filter.until && *when >= *filter.until) continue;
      if (request &&
          !(matches(*o, "subject", filter.subject) && matches(*o, "route", filter.route) &&
            matches(*o, "decision", filter.decision)))
        continue;
      ++summary.exported;
      if (format == AuditExportFormat::jsonl) {
        out << l->text << '\n';
        continue;
      }
      for (std::size_t i = 0; i < columns.size(); ++i) {
        if (i) out << ',';
        out << csv_cell(cell_text(o->if_contains(columns[i])));
      }
      if (filter.all) out << ',' << csv_cell(request ? std::string_view{} : l->text);
      out << "\r\n";
    }
  }
  return summary;
}

}  // namespace portcullis
