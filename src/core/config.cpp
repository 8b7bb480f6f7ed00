// Lookups on the immutable configuration snapshot.
#include "core/config.hpp"

namespace portcullis {

const UpstreamConfig* Config::find_upstream(std::string_view name) const {
  for (const auto& upstream : upstreams) {
    if (upstream.name == name) return &upstream;
  }
  return nullptr;
}

}  // namespace portcullis

namespace portcullis {

const IdentityProviderConfig* Config::find_provider(std::string_view name) const {
  for (const auto& provider : identity_providers) {
    if (provider.name == name) return &provider;
  }
  return nullptr;
}

}  // namespace portcullis
