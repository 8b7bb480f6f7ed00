#pragma once
// Export of audit records for auditors (`portcullis audit export`): the records of a time
// window, optionally one subject / route / decision, as JSON lines (the original bytes, so
// each line can still be checked against the chain) or CSV (RFC 4180, a header row, cells
// that a spreadsheet would run as a formula neutralised with a leading apostrophe).
//
//   AuditExportFilter f;  f.since = *parse_rfc3339("2026-11-01T00:00:00Z");
//   export_audit(files, f, AuditExportFormat::csv, std::cout);
// Export does not verify: run verify on the same files for the evidence that they are intact.
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "audit/audit_json.hpp"
#include "core/expected.hpp"

namespace portcullis {

struct AuditExportFilter {
  std::optional<AuditTime> since;  // inclusive
  std::optional<AuditTime> until;  // exclusive
  std::string subject;             // exact; "" = any
  std::string route;               // exact; "" = any
  std::string decision;            // "allow" | "deny" | "" = any
  bool all = false;  // also genesis/start/rotate/checkpoint/lost records (time filter only)
};

enum class AuditExportFormat { jsonl, csv };

struct AuditExportSummary {
  std::uint64_t files = 0;
  std::uint64_t lines = 0;     // complete lines read
  std::uint64_t exported = 0;  // records written to the output
  std::uint64_t skipped = 0;   // lines that are not audit records (not JSON, no type or time)
};

AuditExportSummary export_audit(const std::vector<std::string>& files,
                                const AuditExportFilter& filter, AuditExportFormat format,
                                std::ostream& out);

// One CSV cell: a leading = + - @ TAB or CR gets an apostrophe in front (OWASP's CSV
// injection advice), then the cell is quoted when it holds a comma, quote, CR or LF, with
// quotes doubled (RFC 4180).
std::string csv_cell(std::string_view value);

// The CSV columns, in order (request record members; with --all also "detail").
const std::vector<std::string>& audit_csv_columns();

}  // namespace portcullis
