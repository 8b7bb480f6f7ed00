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

std::string_view to_string(AuthMode m) {
  switch (m) {
    case AuthMode::public_access:
      return "public";
    case AuthMode::bearer:
      return "bearer";
    case AuthMode::sso:
      return "sso";
    case AuthMode::bearer_or_sso:
      return "bearer_or_sso";
    case AuthMode::mtls:
      return "mtls";
  }
  return "unknown";
}

const std::string& SsoConfig::effective_cookie_name() const {
  static const std::string kHost = "__Host-portcullis";
  static const std::string kSecure = "__Secure-portcullis";
  static const std::string kPlain = "portcullis";
  if (!cookie_name.empty()) return cookie_name;
  if (!cookie_secure) return kPlain;
  return cookie_domain.empty() ? kHost : kSecure;
}

}  // namespace portcullis
