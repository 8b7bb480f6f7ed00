#pragma once
// PolicyLint: static checks of a loaded Config's policies (`portcullis policy lint`): allow
// rules that admit anyone who can log in, over-broad matchers, duplicate and shadowed rules,
// criteria that can never match on their route, routes without a policy, policy files no
// route uses; and, given access-log / audit records, the grants nobody used (least
// privilege). Every check is sound: a finding is only reported when it is certain. Findings
// are values; nothing throws.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "authz/policy.hpp"
#include "core/config.hpp"

namespace portcullis {

enum class LintSeverity { error, warning, info };

std::string_view severity_name(LintSeverity s);  // "error" | "warning" | "info"

// One finding, located like a compiler diagnostic.
struct LintFinding {
  LintSeverity severity = LintSeverity::warning;
  std::string file;
  int line = 0;  // 1-based; 0 when unknown
  int column = 0;
  std::string code;  // short kebab-case id, e.g. "shadowed-by-deny"
  std::string message;

  std::string to_string() const;  // "FILE:LINE:COLUMN: SEVERITY: [code] message"
};

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
struct AuditLog {
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

struct LintOptions {
  const AuditLog* audit = nullptr;  // set: also report grants that made no allowed call
};

// Every finding for the config, sorted by file, line and column (config file first).
std::vector<LintFinding> lint_config(const Config& config, const LintOptions& options = {});

// The checks of one policy on its own, without any route (e.g. a file no route binds yet).
// `file` is where the policy was read from.
std::vector<LintFinding> lint_policy(const Policy& policy, const std::string& file);

}  // namespace portcullis
