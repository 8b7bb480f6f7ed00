// PLACEHOLDER being replaced by the helper implementing `portcullis policy explain`.
#include <iostream>

#include "cli/policy_commands.hpp"

namespace portcullis {

int run_policy_explain(const std::vector<std::string_view>&) {
  std::cerr << "portcullis policy explain: not implemented yet\n";
  return 2;
}

}  // namespace portcullis
