// PLACEHOLDER being replaced by the helper implementing `portcullis policy lint`.
#include <iostream>

#include "cli/policy_commands.hpp"

namespace portcullis {

int run_policy_lint(const std::vector<std::string_view>&) {
  std::cerr << "portcullis policy lint: not implemented yet\n";
  return 2;
}

}  // namespace portcullis
