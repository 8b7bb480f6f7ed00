#include "authz/assertion_keys.hpp"

namespace portcullis {

std::shared_ptr<const AssertionSigner> AssertionKeys::signer_for(const AssertionConfig& config) {
  auto it = by_file_.find(config.key_file);
  if (it != by_file_.end()) return it->second;
  auto signer = std::make_shared<const AssertionSigner>(
      config.key_file.empty() ? AssertionSigner::generate()
                              : AssertionSigner::load_or_create(config.key_file));
  by_file_.emplace(config.key_file, signer);
  return signer;
}

}  // namespace portcullis
