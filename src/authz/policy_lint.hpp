#pragma once
// PolicyLint: static checks of a loaded Config's policies (`portcullis policy lint`): allow
// rules that admit anyone who can log in, over-broad matchers, duplicate and shadowed rules,
// criteria that can never match on their route, routes without a policy, policy files no
// route uses; and, given access-log / audit records, the grants nobody used (least
// privilege). Every check is sound: a finding is only reported when it is certain. Findings
// are values; nothing throws.
//
//   for (const LintFinding& f : lint_config(config)) std::cout << f.to_string() << "\n";
//
// The rule reasoning is in authz/policy_rule_analysis.hpp; the records for the least-privilege
// report are read by authz/lint_audit_reader.hpp.
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

struct LintAuditRecords;  // access-log / audit records: authz/lint_audit_reader.hpp

struct LintOptions {
  const LintAuditRecords* audit = nullptr;  // set: also report grants with no allowed call
};

// Every finding for the config, sorted by file, line and column (config file first).
std::vector<LintFinding> lint_config(const Config& config, const LintOptions& options = {});

// The checks of one policy on its own, without any route (e.g. a file no route binds yet).
// `file` is where the policy was read from.
std::vector<LintFinding> lint_policy(const Policy& policy, const std::string& file);

}  // namespace portcullis
