#pragma once
// PolicyParser: YAML policy documents to compiled Policy trees. All errors are collected,
// each with file:line:column and the offending key; nothing throws to the caller.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "authz/policy.hpp"
#include "core/config_loader.hpp"

namespace YAML {
class Node;
class Exception;
}  // namespace YAML

namespace portcullis {

struct PolicyParseResult {
  std::shared_ptr<const Policy> policy;  // null when errors is non-empty
  std::vector<ConfigError> errors;
  bool ok() const { return policy != nullptr; }
};

// `node` is a policy document (a map with `allow` and/or `deny`), e.g. inline in a route.
// `source_name` is the file errors name; `label` names the policy in decisions (default: the
// file).
PolicyParseResult parse_policy(const YAML::Node& node, const std::string& source_name,
                               const std::string& label = {});

PolicyParseResult parse_policy_string(std::string_view yaml, const std::string& source_name,
                                      const std::string& label = {});

// A YAML syntax error as a ConfigError at its line and column in `file`.
ConfigError yaml_syntax_error(const YAML::Exception& e, const std::string& file);

PolicyParseResult parse_policy_file(const std::string& path, const std::string& label = {});

}  // namespace portcullis
