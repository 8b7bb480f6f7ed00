#pragma once
// DecisionKey: what a cached authorization decision is filed under (issue 5). It is a SHA-256
// over an unambiguous, length-prefixed encoding of everything the route's policy (and shadow
// policy) can read: the identity (as an IdentityDigest), the route, the method and gRPC method,
// the path and source IP when a policy reads them, and both policy versions, so a policy reload
// or any change to a visible attribute is a different key by construction.
//
//   IdentityDigest idd = identity_digest(identity);      // once per verified identity (allocates)
//   DecisionKeyScope scope = key_scope(policy, shadow);  // once per policy load
//   DecisionKey key = make_decision_key({&idd, route.name, method, grpc_method, path, peer,
//                                        scope, policy->version, shadow_version});
//   cache.lookup(key, ...);  redis GET key.redis_key()
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "core/sha256.hpp"

namespace boost::json {
class object;
}

namespace portcullis {

struct Identity;
struct Policy;

// SHA-256 over issuer, subject, email, groups, scopes, client_id and a digest of the claims
// JSON: the identity as a policy sees it. Serialises the claims, so it allocates and costs
// microseconds: compute it once per verified identity, not per request. The claims include
// exp/iat/jti, so in practice this is one digest per token, not per user.
using IdentityDigest = Sha256Digest;
IdentityDigest identity_digest(const Identity& identity);

// SHA-256 of the serialised claims object (key order as received).
Sha256Digest claims_digest(const boost::json::object& claims);

// Request attributes beyond identity, route and methods that a policy can read, and that must
// therefore be part of the key when it does.
struct DecisionKeyScope {
  bool path = false;       // some criterion reads http_path
  bool source_ip = false;  // some criterion reads source_ip
};

// What `policy` and `shadow` (either may be null) read; compute once per policy load.
DecisionKeyScope key_scope(const Policy* policy, const Policy* shadow);

struct DecisionKeyInput {
  const IdentityDigest* identity = nullptr;  // null: anonymous request (public route)
  std::string_view route;                    // route name
  std::string_view method;                   // HTTP method as the policy sees it
  std::string_view grpc_method;              // "/pkg.Service/Method" or ""
  std::string_view path;                     // part of the key only when scope.path
  boost::asio::ip::address source_ip;        // part of the key only when scope.source_ip
  DecisionKeyScope scope;
  std::string_view policy_version;         // Policy::version; "" when the route has no policy
  std::string_view shadow_policy_version;  // "" when the route has no shadow policy
};

struct DecisionKey {
  static constexpr std::string_view kRedisPrefix = "pc:d:v1:";
  static constexpr std::size_t kRedisKeySize = kRedisPrefix.size() + 64;

  Sha256Digest bytes{};  // the L1 key

  // "pc:d:v1:<64 hex>", the L2 (Redis) key.
  std::string redis_key() const;
  // Appends the same; allocates nothing when `out` has kRedisKeySize spare capacity.
  void append_redis_key(std::string& out) const;
  bool operator==(const DecisionKey&) const = default;
};

struct DecisionKeyHash {
  std::size_t operator()(const DecisionKey& k) const noexcept {
    std::size_t h;  // the bytes are a SHA-256: any 8 of them are a uniform hash
    std::memcpy(&h, k.bytes.data(), sizeof h);
    return h;
  }
};

// Allocates nothing unless the encoded input exceeds 1 KiB (a very long path).
DecisionKey make_decision_key(const DecisionKeyInput& input);

}  // namespace portcullis
