#include "cache/decision_key.hpp"

#include <array>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <vector>

#include "authn/identity.hpp"
#include "authz/policy.hpp"

namespace portcullis {
namespace {

// Builds the canonical encoding: every element is a one-byte tag, then (for strings) an 8-byte
// big-endian length and the bytes, or (for digests and addresses) a fixed-size value. Optional
// elements use a different tag when absent. Elements come in a fixed order, so the encoding is
// prefix-free and two different inputs can never encode alike ("ab"+"c" vs "a"+"bc").
// Writes into an inline buffer; spills to the heap only past kInline bytes.
class Encoder {
 public:
  void tag(char t) { put(&t, 1); }
  void string(char t, std::string_view s) {
    tag(t);
    length(s.size());
    put(s.data(), s.size());
  }
  void strings(char t, const std::vector<std::string>& list) {
    tag(t);
    length(list.size());
    for (const std::string& s : list) {
      length(s.size());
      put(s.data(), s.size());
    }
  }
  void digest(char t, const Sha256Digest& d) {
    tag(t);
    put(d.data(), d.size());
  }
  void address(char t, const boost::asio::ip::address& a) {
    tag(t);
    if (a.is_v4()) {
      const auto b = a.to_v4().to_bytes();
      tag('4');
      put(b.data(), b.size());
    } else {
      const auto b = a.to_v6().to_bytes();
      tag('6');
      put(b.data(), b.size());
    }
  }
  Sha256Digest finish() const {
    return sha256(heap_.empty() ? std::string_view(inline_.data(), size_) : heap_);
  }

 private:
  static constexpr std::size_t kInline = 1024;

  void length(std::uint64_t n) {
    std::array<char, 8> b;
    for (int i = 7; i >= 0; --i) {
      b[static_cast<std::size_t>(i)] = static_cast<char>(n & 0xFF);
      n >>= 8;
    }
    put(b.data(), b.size());
  }
  void put(const void* p, std::size_t n) {
    const char* c = static_cast<const char*>(p);
    if (heap_.empty() && size_ + n <= kInline) {
      std::memcpy(inline_.data() + size_, c, n);
      size_ += n;
      return;
    }
    if (heap_.empty()) heap_.assign(inline_.data(), size_);
    heap_.append(c, n);
  }

  std::array<char, kInline> inline_;
  std::size_t size_ = 0;
  std::string heap_;
};

constexpr std::string_view kIdentityDomain = "portcullis identity v1";
constexpr std::string_view kDecisionDomain = "portcullis decision v1";

void scan(const PolicyNode& n, DecisionKeyScope& scope) {
  if (n.kind == PolicyNode::Kind::kCriterion) {
    if (n.field == PolicyField::kHttpPath) scope.path = true;
    if (n.field == PolicyField::kSourceIp) scope.source_ip = true;
    return;
  }
  for (const PolicyNode& c : n.children) scan(c, scope);
}

void scan(const Policy* p, DecisionKeyScope& scope) {
  if (p == nullptr) return;
  for (const PolicyNode& n : p->deny_rules) scan(n, scope);
  for (const PolicyNode& n : p->allow_rules) scan(n, scope);
}

}  // namespace

Sha256Digest claims_digest(const boost::json::object& claims) {
  return sha256(boost::json::serialize(claims));
}

// Everything match_criterion() can read of an Identity. When Identity grows a field a policy
// can read (spiffe_id is still unset), it must be added here, or two identities that a policy
// tells apart would share cached decisions.
IdentityDigest identity_digest(const Identity& id) {
  Encoder e;
  e.string('D', kIdentityDomain);
  e.string('i', id.issuer);
  e.string('s', id.subject);
  e.string('e', id.email);
  e.strings('g', id.groups);
  e.strings('o', id.scopes);
  e.string('c', id.client_id);
  if (id.claims) {
    e.digest('J', claims_digest(*id.claims));
  } else {
    e.tag('j');
  }
  return e.finish();
}

DecisionKeyScope key_scope(const Policy* policy, const Policy* shadow) {
  DecisionKeyScope scope;
  scan(policy, scope);
  scan(shadow, scope);
  return scope;
}

DecisionKey make_decision_key(const DecisionKeyInput& in) {
  Encoder e;
  e.string('D', kDecisionDomain);
  if (in.identity) {
    e.digest('U', *in.identity);
  } else {
    e.tag('A');
  }
  e.string('r', in.route);
  e.string('m', in.method);
  e.string('g', in.grpc_method);
  if (in.scope.path) {
    e.string('P', in.path);
  } else {
    e.tag('p');
  }
  if (in.scope.source_ip) {
    e.address('I', in.source_ip);
  } else {
    e.tag('i');
  }
  e.string('v', in.policy_version);
  e.string('w', in.shadow_policy_version);
  return DecisionKey{e.finish()};
}

std::string DecisionKey::redis_key() const {
  std::string out;
  out.reserve(kRedisKeySize);
  append_redis_key(out);
  return out;
}

void DecisionKey::append_redis_key(std::string& out) const {
  static constexpr char kDigits[] = "0123456789abcdef";
  out += kRedisPrefix;
  for (std::uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 0xF];
  }
}

}  // namespace portcullis
