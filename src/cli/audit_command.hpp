#pragma once
// `portcullis audit verify | export`: the auditor's tools for the tamper-evident audit log
// (docs/audit-format.md). Takes the arguments after `audit` (the subcommand first) and returns
// the exit code: 0 ok (verify: the chain and every checkpoint signature hold), 1 verification
// failed / nothing readable, 2 usage error.
#include <string_view>
#include <vector>

namespace portcullis {

int run_audit(const std::vector<std::string_view>& args);

}  // namespace portcullis
