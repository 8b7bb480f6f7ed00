#pragma once
// The policy linter's reader of access-log / audit-log JSON lines: the calls its least-privilege
// report (lint_config() with LintOptions::audit) checks grants against. Read-only and
// forgiving: unreadable files and lines that are not records become findings in `problems`,
// nothing throws. Not the audit log itself (that is AuditWriter, src/audit/audit_log.hpp).
//
//   LintAuditRecords audit;
//   for (const std::string& file : files) audit.add_file(file);
//   LintOptions options;
//   options.audit = &audit;
//   std::vector<LintFinding> findings = lint_config(config, options);  // includes audit.problems
#include <string>
#include <string_view>
#include <vector>

#include "authz/policy_lint.hpp"

namespace portcullis {

// One access-log / audit record, as far as the least-privilege report reads it.
struct AuditRecord {
  std::string route;
  bool allowed = false;  // "decision": "allow"
  std::string subject;
  std::string email;  // lower-cased
  std::vector<std::string> groups;
  bool has_email = false;  // the record carried the field at all
  bool has_groups = false;
  std::string time;  // as written (ISO 8601); epoch seconds are converted to ISO 8601 UTC
};

// Records read from JSON-lines files, with the problems met while reading them.
struct LintAuditRecords {
  std::vector<AuditRecord> records;
  std::vector<LintFinding> problems;  // unreadable files (error), unparsable lines (warning)
  std::vector<std::string> files;     // in the order given
  std::string first_time;             // the audit window; "" when no record had a time
  std::string last_time;

  // One object per line (access-log lines, or audit-log lines of type "request"; the audit
  // log's other records are skipped); blank lines are ignored.
  void add_text(std::string_view text, const std::string& file);
  void add_file(const std::string& path);
};

// The whole file at `path` (also used by the linter for policy files); `ok` is false when it
// cannot be read.
std::string read_lint_input(const std::string& path, bool& ok);

}  // namespace portcullis
