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
