// PLACEHOLDER being replaced by the helper implementing `portcullis policy test`.
#include <iostream>

#include "cli/policy_commands.hpp"

namespace portcullis {

int run_policy_test(const std::vector<std::string_view>&) {
  std::cerr << "portcullis policy test: not implemented yet\n";
  return 2;
}

}  // namespace portcullis
