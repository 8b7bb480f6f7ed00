#pragma once
// Loads and validates a Portcullis YAML config. Every problem found is reported (not just
// the first) with file:line:column and a reason; a config with any error is refused whole.
// Relative file paths in the config (certificates, keys) resolve against the config file's
// directory. Exceptions never escape: this is used by `config check`, `serve` and reloads.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"

namespace portcullis {

struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown
  std::string message;
  std::string to_string() const;  // "file:line:column: message"
};

struct ConfigLoadResult {
  std::shared_ptr<const Config> config;  // null when errors is non-empty
  std::vector<ConfigError> errors;
  bool ok() const { return config != nullptr; }
};

ConfigLoadResult load_config_file(const std::string& path);

// `source_name` labels messages; `base_dir` resolves relative paths.
ConfigLoadResult load_config_string(std::string_view yaml, const std::string& source_name,
                                    const std::string& base_dir);

}  // namespace portcullis
