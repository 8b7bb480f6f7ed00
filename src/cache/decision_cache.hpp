#pragma once
// DecisionCache: the per-worker L1 of authorization decisions (issue 5), plus the small
// versioned value encoding the L2 (Redis) side stores. Not thread-safe: one per worker.
//
// Bounded (CLOCK eviction over a fixed slot array); an entry lives min(configured ttl, the
// identity's remaining life). A lookup returns a decision only when it is live, was made under
// the current policy (and shadow policy) version, and no subject/token revocation happened
// since (the whole L1 is dropped when the revocation purge generation moves; see
// revocations.hpp). The key already contains the versions; the version check is belt and
// braces. Lookups allocate nothing.
//
// The cache never decides: callers must check revocations *before* consulting it (L1, then
// L2, then the policy), and must only cache what Policy::evaluate() returned.
//
//   DecisionCache l1(clock, std::chrono::seconds(60));
//   DecisionCache::Current now{policy->version, shadow_version, revocations.purge_generation()};
//   if (auto hit = l1.lookup(key, now)) ctx.policy_decision = to_policy_decision(hit->decision,
//   src); else { d = policy->evaluate(...); if (auto v = make_cached_decision(d, ...))
//   l1.insert(key, *v, id, now.revocation_generation); }
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "authz/policy.hpp"
#include "cache/decision_key.hpp"
#include "core/clock.hpp"

namespace portcullis {

// A Policy::version as cached: exactly 16 lower-case hex digits. Fixed size (no heap).
class PolicyVersion {
 public:
  PolicyVersion() = default;
  // Nothing unless `v` is 16 lower-case hex digits.
  static std::optional<PolicyVersion> parse(std::string_view v);
  std::string_view view() const { return {hex_.data(), hex_.size()}; }
  bool operator==(const PolicyVersion&) const = default;

 private:
  std::array<char, 16> hex_{};
};

enum class DecisionSection : std::uint8_t { kAllow, kDeny, kDefault };
// The evaluator has one reason per section today; kept separately so a new reason is a new
// code (and a new value version), not a silent reinterpretation.
enum class DecisionReason : std::uint8_t { kMatchedAllowRule, kMatchedDenyRule, kNoRuleMatched };

// One policy's decision, as cached. Consistent by construction through make_verdict() and
// parse_decision_value(): allow <=> section allow; rule_index >= 0 <=> section allow|deny;
// the reason matches the section.
struct CachedVerdict {
  bool allow = false;
  DecisionSection section = DecisionSection::kDefault;
  std::int16_t rule_index = -1;
  DecisionReason reason = DecisionReason::kNoRuleMatched;
  PolicyVersion version;
  bool operator==(const CachedVerdict&) const = default;
};

struct CachedDecision {
  CachedVerdict decision;               // the enforced policy
  std::optional<CachedVerdict> shadow;  // the route's shadow policy, when it has one
  bool operator==(const CachedDecision&) const = default;
};

// A verdict for what `policy` (version `version`) decided, or nothing when it is not cacheable
// (not from Policy::evaluate(): "public route", "route has no policy", an unknown reason, an
// inconsistent decision, or a malformed version).
std::optional<CachedVerdict> make_verdict(const PolicyDecision& d, std::string_view version);

// The PolicyDecision a verdict stands for; `source` is the current Policy::source. The strings
// are the evaluator's own, so a cached decision is indistinguishable in audit and logs.
PolicyDecision to_policy_decision(const CachedVerdict& v, std::string_view source);

// Whether `d` was made under these versions (shadow "" = the route has no shadow policy).
// The L2 side must apply this to every value it reads, as lookup() does.
bool made_under(const CachedDecision& d, std::string_view policy_version,
                std::string_view shadow_policy_version);

// L2 value: "v1|<a|d>|<allow|deny|default>|<rule index>|<allow_rule|deny_rule|no_match>|<version>"
// and, with a shadow policy, "|" and the shadow verdict's five fields. E.g.
// "v1|a|allow|3|allow_rule|0123456789abcdef". At most 82 bytes.
std::string encode_decision_value(const CachedDecision& d);
// Strict: anything that is not exactly what encode_decision_value() writes, or is
// inconsistent, is nothing (treat as a miss).
std::optional<CachedDecision> parse_decision_value(std::string_view value);

class DecisionCache {
 public:
  // `ttl` is the configured ttl; ttl <= 0 or capacity 0 disables the cache.
  DecisionCache(const Clock& clock, std::chrono::milliseconds ttl, std::size_t capacity = 10000);

  // What a lookup must match.
  struct Current {
    std::string_view policy_version;          // Policy::version of the route's policy
    std::string_view shadow_policy_version;   // "" when the route has no shadow policy
    std::uint64_t revocation_generation = 0;  // RevocationView::purge_generation()
  };

  // The live decision under `key` made under `current`, or nothing. Allocates nothing.
  std::optional<CachedDecision> lookup(const DecisionKey& key, const Current& current);

  // Stores `d` for min(ttl, identity->expires_at - now) (the ttl alone when `identity` is null,
  // i.e. anonymous, or has no expiry). `revocation_generation` is the purge generation seen
  // when the decision was made: an older one than the cache has seen is dropped (a revocation
  // landed meanwhile). Returns whether it was stored.
  bool insert(const DecisionKey& key, const CachedDecision& d, const Identity* identity,
              std::uint64_t revocation_generation);

  void clear();
  std::size_t size() const { return index_.size(); }
  std::size_t capacity() const { return slots_.size(); }

  struct Stats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;   // every lookup that is not a hit, including the two below
    std::uint64_t expired = 0;  // found but past its ttl (also counted by misses)
    std::uint64_t stale = 0;    // found but made under another policy version (also a miss)
    std::uint64_t evicted = 0;  // live entries pushed out by inserts when full
    std::uint64_t purges = 0;   // whole-cache drops on a revocation generation change
    std::uint64_t inserts = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Slot {
    DecisionKey key;
    CachedDecision value;
    std::chrono::system_clock::time_point expires_at;
    bool live = false;
    bool referenced = false;
  };

  void sync_generation(std::uint64_t generation);
  void drop(std::unordered_map<DecisionKey, std::uint32_t, DecisionKeyHash>::iterator it);
  std::uint32_t take_slot(std::chrono::system_clock::time_point now);

  const Clock& clock_;
  std::chrono::milliseconds ttl_;
  std::vector<Slot> slots_;
  std::unordered_map<DecisionKey, std::uint32_t, DecisionKeyHash> index_;
  std::size_t fresh_ = 0;  // slots never used since the last clear
  std::size_t hand_ = 0;   // the CLOCK hand
  std::uint64_t generation_ = 0;
  Stats stats_;
};

}  // namespace portcullis
