// The L1 decision cache and its L2 value encoding: a cached allow is never returned after a
// policy version change, after its ttl or the token's expiry, or after a revocation of its
// subject or jti; CLOCK eviction; strict parsing of L2 values; cached decisions read back
// exactly as the evaluator wrote them.
#include "cache/decision_cache.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "authn/identity.hpp"
#include "authz/policy_parser.hpp"
#include "cache/revocations.hpp"

namespace portcullis {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kV1 = "0123456789abcdef";
constexpr std::string_view kV2 = "fedcba9876543210";
constexpr std::int64_t kStart = 1'700'000'000;

class ManualClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point steady_now() const override {
    return std::chrono::steady_clock::time_point(now_.time_since_epoch());
  }
  std::chrono::system_clock::time_point system_now() const override { return now_; }
  void advance(std::chrono::milliseconds d) { now_ += d; }

 private:
  std::chrono::system_clock::time_point now_{std::chrono::seconds(kStart)};
};

CachedVerdict allow_verdict(std::string_view version = kV1, std::int16_t rule = 3) {
  return CachedVerdict{true, DecisionSection::kAllow, rule, DecisionReason::kMatchedAllowRule,
                       *PolicyVersion::parse(version)};
}

CachedVerdict deny_verdict(std::string_view version = kV1) {
  return CachedVerdict{false, DecisionSection::kDefault, -1, DecisionReason::kNoRuleMatched,
                       *PolicyVersion::parse(version)};
}

DecisionKey key(std::string_view route) {
  DecisionKeyInput in;
  in.route = route;
  in.method = "GET";
  in.policy_version = kV1;
  return make_decision_key(in);
}

Identity identity(std::int64_t expires_at) {
  Identity id;
  id.subject = "alice";
  id.token_id = "jti-1";
  id.expires_at = expires_at;
  return id;
}

TEST(PolicyVersion, ParsesOnlySixteenLowerHex) {
  EXPECT_TRUE(PolicyVersion::parse(kV1));
  EXPECT_EQ(PolicyVersion::parse(kV1)->view(), kV1);
  for (std::string_view bad : {"", "0123456789abcde", "0123456789abcdef0", "0123456789ABCDEF",
                               "0123456789abcdeg", "0123456789abcde "}) {
    EXPECT_FALSE(PolicyVersion::parse(bad)) << bad;
  }
}

// What the evaluator decides, cached and read back, is the same decision, string for string.
TEST(CachedVerdict, RoundTripsEvaluatorDecisions) {
  auto parsed = parse_policy_string(
      "allow:\n  or:\n    - group: {has: a}\n    - group: {has: b}\n"
      "deny:\n  or:\n    - email: {ends_with: '@x.example'}\n",
      "t.yaml");
  ASSERT_TRUE(parsed.ok());
  const Policy& p = *parsed.policy;
  struct Case {
    std::vector<std::string> groups;
    std::string email;
  };
  const Case cases[] = {{{"a"}, "u@example.com"},
                        {{"b"}, "u@example.com"},
                        {{"a"}, "u@x.example"},
                        {{"c"}, "u@example.com"}};
  const RequestAttributes req{"GET", "/", "", {}};
  for (const Case& c : cases) {
    Identity id;
    id.groups = c.groups;
    id.email = c.email;
    const PolicyDecision d = p.evaluate(&id, req);
    const auto v = make_verdict(d, p.version);
    ASSERT_TRUE(v) << d.reason;
    const PolicyDecision back = to_policy_decision(*v, p.source);
    EXPECT_EQ(back.allow, d.allow);
    EXPECT_EQ(back.section, d.section);
    EXPECT_EQ(back.rule_index, d.rule_index);
    EXPECT_EQ(back.reason, d.reason);
    EXPECT_EQ(back.source, d.source);
    // And through the L2 encoding.
    const auto value = parse_decision_value(encode_decision_value({*v, std::nullopt}));
    ASSERT_TRUE(value);
    EXPECT_EQ(value->decision, *v);
  }
  // Anonymous: the default deny.
  EXPECT_TRUE(make_verdict(p.evaluate(nullptr, req), p.version));
}

TEST(CachedVerdict, RefusesWhatTheEvaluatorDidNotDecide) {
  const std::vector<std::pair<PolicyDecision, std::string_view>> cases = {
      {{true, "public", -1, "public route", {}}, kV1},
      {{false, "default", -1, "route has no policy", {}}, kV1},
      {{true, "allow", 0, "matched allow rule", {}}, ""},  // no version
      {{true, "allow", 0, "matched allow rule", {}}, "ABCDEF0123456789"},
      {{true, "deny", 0, "matched deny rule", {}}, kV1},        // allow by a deny rule
      {{false, "allow", 0, "matched allow rule", {}}, kV1},     // deny by an allow rule
      {{true, "default", -1, "no rule matched", {}}, kV1},      // allow by default
      {{true, "allow", -1, "matched allow rule", {}}, kV1},     // no rule index
      {{false, "default", 2, "no rule matched", {}}, kV1},      // default with a rule
      {{true, "allow", 0, "matched deny rule", {}}, kV1},       // wrong reason
      {{true, "allow", 40000, "matched allow rule", {}}, kV1},  // index out of range
  };
  for (const auto& [d, version] : cases) {
    EXPECT_FALSE(make_verdict(d, version)) << d.section << " " << d.reason << " " << version;
  }
}

TEST(DecisionValue, EncodesSmallAndParsesBack) {
  const CachedDecision plain{allow_verdict(), std::nullopt};
  EXPECT_EQ(encode_decision_value(plain), "v1|a|allow|3|allow_rule|0123456789abcdef");
  const CachedDecision with_shadow{allow_verdict(kV1, 0), deny_verdict(kV2)};
  const std::string enc = encode_decision_value(with_shadow);
  EXPECT_EQ(enc, "v1|a|allow|0|allow_rule|0123456789abcdef|d|default|-1|no_match|fedcba9876543210");
  EXPECT_LE(enc.size(), 82u);
  CachedDecision widest{CachedVerdict{false, DecisionSection::kDefault, -1,
                                      DecisionReason::kNoRuleMatched, *PolicyVersion::parse(kV1)},
                        CachedVerdict{false, DecisionSection::kDefault, -1,
                                      DecisionReason::kNoRuleMatched, *PolicyVersion::parse(kV1)}};
  EXPECT_LE(encode_decision_value(widest).size(), 82u);
  EXPECT_EQ(parse_decision_value(encode_decision_value(plain)), plain);
  EXPECT_EQ(parse_decision_value(enc), with_shadow);
  const CachedDecision deny{
      CachedVerdict{false, DecisionSection::kDeny, 32767, DecisionReason::kMatchedDenyRule,
                    *PolicyVersion::parse(kV2)},
      std::nullopt};
  EXPECT_EQ(parse_decision_value(encode_decision_value(deny)), deny);
}

TEST(DecisionValue, AnythingElseIsAMiss) {
  const std::string v(kV1);
  const std::vector<std::string> bad = {
      "",
      "v1",
      "v1|",
      "v2|a|allow|3|allow_rule|" + v,
      "V1|a|allow|3|allow_rule|" + v,
      " v1|a|allow|3|allow_rule|" + v,
      "v1|a|allow|3|allow_rule|" + v + "|",
      "v1|a|allow|3|allow_rule|" + v + "\n",
      "v1|a|allow|3|allow_rule",
      "v1|a|allow|3|allow_rule|" + v + "|extra",
      "v1|A|allow|3|allow_rule|" + v,
      "v1|a|Allow|3|allow_rule|" + v,
      "v1|a|deny|3|deny_rule|" + v,     // allow by a deny rule
      "v1|a|default|-1|no_match|" + v,  // allow by default
      "v1|d|allow|3|allow_rule|" + v,   // deny by an allow rule
      "v1|a|allow|3|deny_rule|" + v,    // reason does not match
      "v1|a|allow|-1|allow_rule|" + v,  // allow without a rule
      "v1|d|default|0|no_match|" + v,   // default with a rule
      "v1|a|allow|03|allow_rule|" + v,  // leading zero
      "v1|a|allow|+3|allow_rule|" + v,
      "v1|a|allow| 3|allow_rule|" + v,
      "v1|a|allow|3 |allow_rule|" + v,
      "v1|a|allow|-0|allow_rule|" + v,
      "v1|a|allow|-2|allow_rule|" + v,
      "v1|a|allow|32768|allow_rule|" + v,
      "v1|a|allow|99999999999|allow_rule|" + v,
      "v1|a|allow||allow_rule|" + v,
      "v1|a|allow|3|allow_rule|0123456789ABCDEF",
      "v1|a|allow|3|allow_rule|0123456789abcde",
      "v1|a|allow|3|allow_rule|",
      "v1|a|allow|3|allow_rule|" + v + "|d|default|-1|no_match",  // short shadow
      "v1|a|allow|3|allow_rule|" + v + "|d|default|-1|no_match|" + v + "|",
      "v1|a|allow|3|allow_rule|" + v + "|a|deny|0|deny_rule|" + v,  // bad shadow
      std::string("v1|a|allow|3|allow_rule|") + v + std::string(1, '\0'),
  };
  for (const std::string& s : bad) EXPECT_FALSE(parse_decision_value(s)) << s;
}

class DecisionCacheTest : public ::testing::Test {
 protected:
  ManualClock clock;
  DecisionCache cache{clock, 60s, 100};
  const DecisionCache::Current current{kV1, "", 0};
};

TEST_F(DecisionCacheTest, HitAfterInsertMissBefore) {
  const Identity id = identity(kStart + 3600);
  EXPECT_FALSE(cache.lookup(key("r"), current));
  ASSERT_TRUE(cache.insert(key("r"), {allow_verdict(), std::nullopt}, &id, 0));
  const auto hit = cache.lookup(key("r"), current);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->decision, allow_verdict());
  EXPECT_FALSE(cache.lookup(key("other"), current));
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().misses, 2u);
  EXPECT_EQ(cache.stats().inserts, 1u);
}

// The heart of it: a cached allow is never returned once the current policy (or shadow
// policy) is another version, whatever key the caller uses.
TEST_F(DecisionCacheTest, CachedAllowIsNeverReturnedUnderAnotherPolicyVersion) {
  struct Case {
    const char* name;
    std::optional<CachedVerdict> cached_shadow;
    DecisionCache::Current lookup;
  };
  const Case cases[] = {
      {"policy reloaded", std::nullopt, {kV2, "", 0}},
      {"shadow policy added", std::nullopt, {kV1, kV2, 0}},
      {"shadow policy removed", deny_verdict(kV2), {kV1, "", 0}},
      {"shadow policy reloaded", deny_verdict(kV2), {kV1, kV1, 0}},
      {"route lost its policy", std::nullopt, {"", "", 0}},
  };
  const Identity id = identity(kStart + 3600);
  for (const Case& c : cases) {
    cache.clear();
    ASSERT_TRUE(cache.insert(key("r"), {allow_verdict(), c.cached_shadow}, &id, 0)) << c.name;
    EXPECT_FALSE(cache.lookup(key("r"), c.lookup)) << c.name;
    // And the stale entry is gone, not merely hidden.
    EXPECT_EQ(cache.size(), 0u) << c.name;
  }
  EXPECT_EQ(cache.stats().stale, std::size(cases));
  EXPECT_EQ(cache.stats().hits, 0u);
}

TEST_F(DecisionCacheTest, TtlIsTheSmallerOfConfiguredAndTokenLife) {
  struct Case {
    const char* name;
    std::optional<std::int64_t> token_expires_at;  // nullopt: anonymous
    std::chrono::milliseconds last_hit;            // still a hit just before this
  };
  const Case cases[] = {
      {"token outlives the ttl", kStart + 3600, 60s},
      {"token expires first", kStart + 10, 10s},
      {"token without exp", 0, 60s},
      {"anonymous", std::nullopt, 60s},
  };
  for (const Case& c : cases) {
    ManualClock local;
    DecisionCache l1(local, 60s, 10);
    const Identity id = identity(c.token_expires_at.value_or(0));
    ASSERT_TRUE(
        l1.insert(key("r"), {allow_verdict(), std::nullopt}, c.token_expires_at ? &id : nullptr, 0))
        << c.name;
    local.advance(c.last_hit - 1ms);
    EXPECT_TRUE(l1.lookup(key("r"), current)) << c.name;
    local.advance(1ms);
    EXPECT_FALSE(l1.lookup(key("r"), current)) << c.name;
    EXPECT_EQ(l1.stats().expired, 1u) << c.name;
    EXPECT_EQ(l1.size(), 0u) << c.name;
  }
}

TEST_F(DecisionCacheTest, ExpiredTokenIsNotCached) {
  const Identity id = identity(kStart);  // exp == now
  EXPECT_FALSE(cache.insert(key("r"), {allow_verdict(), std::nullopt}, &id, 0));
  EXPECT_EQ(cache.size(), 0u);
}

TEST_F(DecisionCacheTest, InconsistentDecisionIsNotCached) {
  const Identity id = identity(kStart + 3600);
  CachedVerdict bad = allow_verdict();
  bad.section = DecisionSection::kDeny;
  EXPECT_FALSE(cache.insert(key("r"), {bad, std::nullopt}, &id, 0));
  EXPECT_FALSE(cache.insert(key("r"), {allow_verdict(), bad}, &id, 0));
}

TEST_F(DecisionCacheTest, DisabledByZeroTtlOrCapacity) {
  DecisionCache no_ttl(clock, 0s, 10), no_room(clock, 60s, 0);
  const Identity id = identity(kStart + 3600);
  EXPECT_FALSE(no_ttl.insert(key("r"), {allow_verdict(), std::nullopt}, &id, 0));
  EXPECT_FALSE(no_room.insert(key("r"), {allow_verdict(), std::nullopt}, &id, 0));
  EXPECT_FALSE(no_room.lookup(key("r"), current));
}

TEST_F(DecisionCacheTest, RevocationGenerationPurgesAndStaleInsertsAreDropped) {
  const Identity id = identity(kStart + 3600);
  ASSERT_TRUE(cache.insert(key("a"), {allow_verdict(), std::nullopt}, &id, 0));
  ASSERT_TRUE(cache.insert(key("b"), {allow_verdict(), std::nullopt}, &id, 0));
  EXPECT_FALSE(cache.lookup(key("a"), {kV1, "", 1}));  // a revocation happened
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.stats().purges, 1u);
  // A decision made before the revocation (an L2 answer arriving late) is not stored.
  EXPECT_FALSE(cache.insert(key("a"), {allow_verdict(), std::nullopt}, &id, 0));
  EXPECT_FALSE(cache.lookup(key("a"), {kV1, "", 1}));
  // One made after a newer revocation than the cache has seen purges first.
  ASSERT_TRUE(cache.insert(key("b"), {allow_verdict(), std::nullopt}, &id, 1));
  ASSERT_TRUE(cache.insert(key("c"), {allow_verdict(), std::nullopt}, &id, 2));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_TRUE(cache.lookup(key("c"), {kV1, "", 2}));
}

// With the real revocation list: revoking the subject or the jti of a cached allow makes the
// next lookup miss, and the request's own check denies with the reason.
TEST(DecisionCacheRevocation, CachedAllowIsNeverReturnedAfterRevocation) {
  struct Case {
    RevocationKind kind;
    std::string value;
    std::string_view reason;
  };
  const Case cases[] = {{RevocationKind::kSubject, "alice", "subject revoked"},
                        {RevocationKind::kTokenId, "jti-1", "token revoked"}};
  for (const Case& c : cases) {
    ManualClock clock;
    RevocationList list(clock);
    RevocationView view(list);
    DecisionCache l1(clock, 60s, 10);
    const Identity id = identity(kStart + 3600);
    ASSERT_TRUE(l1.insert(key("r"), {allow_verdict(), std::nullopt}, &id, view.purge_generation()));
    ASSERT_TRUE(l1.lookup(key("r"), {kV1, "", view.purge_generation()}));
    ASSERT_TRUE(list.revoke(c.kind, c.value, clock.system_now() + 1h));
    const auto revoked = view.is_revoked(&id);
    ASSERT_TRUE(revoked) << c.value;
    EXPECT_EQ(revoked->reason, c.reason);
    EXPECT_FALSE(l1.lookup(key("r"), {kV1, "", view.purge_generation()})) << c.value;
    EXPECT_EQ(l1.stats().purges, 1u);
  }
}

TEST(DecisionCacheRevocation, SessionRevocationDeniesWithoutPurging) {
  ManualClock clock;
  RevocationList list(clock);
  RevocationView view(list);
  DecisionCache l1(clock, 60s, 10);
  const Identity id = identity(kStart + 3600);
  ASSERT_TRUE(l1.insert(key("r"), {allow_verdict(), std::nullopt}, &id, view.purge_generation()));
  ASSERT_TRUE(list.revoke(RevocationKind::kSession, "s-1", clock.system_now() + 1h));
  // The request's check (which runs before the cache) denies the session...
  ASSERT_TRUE(view.is_revoked(&id, "s-1"));
  EXPECT_EQ(view.is_revoked(&id, "s-1")->reason, "session revoked");
  // ...while other sessions of the same identity keep their cached decisions.
  EXPECT_FALSE(view.is_revoked(&id, "s-2"));
  EXPECT_TRUE(l1.lookup(key("r"), {kV1, "", view.purge_generation()}));
}

TEST(DecisionCacheEviction, ClockGivesReferencedEntriesASecondChance) {
  ManualClock clock;
  DecisionCache l1(clock, 60s, 3);
  const DecisionCache::Current cur{kV1, "", 0};
  const auto put = [&](const char* r) {
    return l1.insert(key(r), {allow_verdict(), std::nullopt}, nullptr, 0);
  };
  ASSERT_TRUE(put("a") && put("b") && put("c"));
  ASSERT_TRUE(l1.lookup(key("a"), cur));
  ASSERT_TRUE(l1.lookup(key("b"), cur));
  ASSERT_TRUE(put("d"));  // c was not used since insertion
  EXPECT_EQ(l1.size(), 3u);
  EXPECT_EQ(l1.stats().evicted, 1u);
  EXPECT_FALSE(l1.lookup(key("c"), cur));
  EXPECT_TRUE(l1.lookup(key("a"), cur));
  EXPECT_TRUE(l1.lookup(key("b"), cur));
  EXPECT_TRUE(l1.lookup(key("d"), cur));
  // Expired entries go before live ones, and are counted as expired, not evicted.
  clock.advance(61s);
  ASSERT_TRUE(put("e"));
  EXPECT_EQ(l1.stats().evicted, 1u);
  EXPECT_EQ(l1.stats().expired, 1u);
  EXPECT_TRUE(l1.lookup(key("e"), cur));
  // Never more than capacity, however many inserts.
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(put(std::to_string(i).c_str()));
  EXPECT_EQ(l1.size(), 3u);
  EXPECT_TRUE(l1.lookup(key("49"), cur));
}

TEST(DecisionCacheEviction, ReinsertReplacesInPlace) {
  ManualClock clock;
  DecisionCache l1(clock, 60s, 2);
  ASSERT_TRUE(l1.insert(key("a"), {allow_verdict(), std::nullopt}, nullptr, 0));
  ASSERT_TRUE(l1.insert(key("a"), {deny_verdict(), std::nullopt}, nullptr, 0));
  EXPECT_EQ(l1.size(), 1u);
  const auto hit = l1.lookup(key("a"), {kV1, "", 0});
  ASSERT_TRUE(hit);
  EXPECT_FALSE(hit->decision.allow);
}

}  // namespace
}  // namespace portcullis
