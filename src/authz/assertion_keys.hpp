#pragma once
// AssertionKeys: the gateway's assertion signing keys across config reloads. A reload that
// keeps `assertion.key_file` keeps the same signer (and kid); the generated key used when no
// key_file is set lives as long as the process. Used from the control thread only.
//
//   AssertionKeys keys;
//   auto signer = keys.signer_for(config.assertion);   // throws on a bad key file
#include <map>
#include <memory>
#include <string>

#include "authz/assertion_signer.hpp"
#include "core/config.hpp"

namespace portcullis {

class AssertionKeys {
 public:
  // Loads (or creates, mode 0600) the configured key, or returns the process's generated key.
  // Throws std::runtime_error (start-up, reload) when the key file is unusable.
  std::shared_ptr<const AssertionSigner> signer_for(const AssertionConfig& config);

 private:
  std::map<std::string, std::shared_ptr<const AssertionSigner>> by_file_;  // "" = generated
};

}  // namespace portcullis
