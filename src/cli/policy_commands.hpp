#pragma once
// `portcullis policy lint | test | explain`: the operator's tools for policies, meant to run
// in CI before a deploy (like `opa test` / `opa check`). Each takes the arguments after its
// own name and returns the process exit code (0 ok, 1 findings/failures, 2 usage error).
#include <string_view>
#include <vector>

namespace portcullis {

int run_policy_lint(const std::vector<std::string_view>& args);
int run_policy_test(const std::vector<std::string_view>& args);
int run_policy_explain(const std::vector<std::string_view>& args);

}  // namespace portcullis
