// Revocations: each kind denies with its reason until its time, the wire format is strict,
// generations move as documented, and readers on other threads see a consistent set.
#include "cache/revocations.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "authn/identity.hpp"

namespace portcullis {
namespace {

using namespace std::chrono_literals;
using TimePoint = std::chrono::system_clock::time_point;

constexpr std::int64_t kStart = 1'700'000'000;

class ManualClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point steady_now() const override {
    return std::chrono::steady_clock::time_point(
        std::chrono::nanoseconds(now_.load().time_since_epoch()));
  }
  std::chrono::system_clock::time_point system_now() const override { return now_.load(); }
  void advance(std::chrono::milliseconds d) { now_.store(now_.load() + d); }

 private:
  std::atomic<TimePoint> now_{TimePoint(std::chrono::seconds(kStart))};
};

Identity alice() {
  Identity id;
  id.subject = "alice";
  id.token_id = "jti-1";
  return id;
}

TEST(RevocationWire, RoundTrips) {
  const std::vector<Revocation> cases = {
      {RevocationKind::kSubject, "alice", TimePoint(std::chrono::seconds(kStart))},
      {RevocationKind::kTokenId, "3f2a-77", TimePoint(std::chrono::seconds(1))},
      {RevocationKind::kSession, "a value with spaces", TimePoint(std::chrono::seconds(kStart))},
      {RevocationKind::kSubject, std::string(kMaxRevocationValue, 'x'),
       TimePoint(std::chrono::seconds(9'000'000'000))},
  };
  for (const Revocation& r : cases) {
    const std::string m = encode_revocation(r);
    const auto back = parse_revocation(m);
    ASSERT_TRUE(back) << m;
    EXPECT_EQ(*back, r) << m;
  }
  EXPECT_EQ(encode_revocation(cases[0]), "v1 subject 1700000000 alice");
  EXPECT_EQ(encode_revocation(cases[1]), "v1 token_id 1 3f2a-77");
}

TEST(RevocationWire, StrictParsing) {
  const std::vector<std::string> bad = {
      "",
      "v1",
      "v1 subject",
      "v1 subject 1700000000",
      "v1 subject 1700000000 ",
      "v2 subject 1700000000 alice",
      "V1 subject 1700000000 alice",
      " v1 subject 1700000000 alice",
      "v1  subject 1700000000 alice",
      "v1 subject  1700000000 alice",
      "v1 Subject 1700000000 alice",
      "v1 jti 1700000000 alice",
      "v1 token 1700000000 alice",
      "v1 subject 0 alice",
      "v1 subject 01700000000 alice",
      "v1 subject -1700000000 alice",
      "v1 subject +1700000000 alice",
      "v1 subject 17e8 alice",
      "v1 subject 99999999999999999999 alice",
      "v1 subject 999999999999 alice",  // past what system_clock can hold
      "v1 subject 1700000000 alice\n",
      "v1 subject 1700000000 alice\r",
      "v1 subject 1700000000 al\tice",
      std::string("v1 subject 1700000000 al") + '\0' + "ice",
      "v1 subject 1700000000 al\x7f"
      "ice",
      "v1 subject 1700000000 " + std::string(kMaxRevocationValue + 1, 'x'),
      "v1\tsubject 1700000000 alice",
  };
  for (const std::string& m : bad) EXPECT_FALSE(parse_revocation(m)) << m;
}

TEST(RevocationList, EachKindDeniesWithItsReason) {
  struct Case {
    RevocationKind kind;
    std::string value;
    std::string_view session;
    std::string_view reason;
  };
  const Case cases[] = {
      {RevocationKind::kSubject, "alice", "", "subject revoked"},
      {RevocationKind::kTokenId, "jti-1", "", "token revoked"},
      {RevocationKind::kSession, "s-1", "s-1", "session revoked"},
  };
  for (const Case& c : cases) {
    ManualClock clock;
    RevocationList list(clock);
    RevocationView view(list);
    const Identity id = alice();
    EXPECT_FALSE(view.is_revoked(&id, c.session));
    ASSERT_TRUE(list.revoke(c.kind, c.value, clock.system_now() + 1h));
    for (auto r : {view.is_revoked(&id, c.session), list.is_revoked(&id, c.session)}) {
      ASSERT_TRUE(r) << c.value;
      EXPECT_EQ(r->kind, c.kind);
      EXPECT_EQ(r->reason, c.reason);
    }
    // Others are not affected: another subject, token and session.
    Identity bob;
    bob.subject = "bob";
    bob.token_id = "jti-2";
    EXPECT_FALSE(view.is_revoked(&bob, "s-2")) << c.value;
  }
}

TEST(RevocationList, KindsDoNotCrossAndEmptyFieldsNeverMatch) {
  ManualClock clock;
  RevocationList list(clock);
  RevocationView view(list);
  ASSERT_TRUE(list.revoke(RevocationKind::kTokenId, "alice", clock.system_now() + 1h));
  ASSERT_TRUE(list.revoke(RevocationKind::kSession, "jti-1", clock.system_now() + 1h));
  const Identity id = alice();  // subject "alice", jti "jti-1"
  EXPECT_FALSE(view.is_revoked(&id));
  EXPECT_FALSE(view.is_revoked(nullptr));
  EXPECT_FALSE(list.revoke(RevocationKind::kSubject, "", clock.system_now() + 1h));
  Identity nobody;  // empty subject and jti
  EXPECT_FALSE(view.is_revoked(&nobody, ""));
  // Anonymous requests can still carry a revoked session.
  EXPECT_TRUE(view.is_revoked(nullptr, "jti-1"));
}

TEST(RevocationList, EntriesExpireByTime) {
  ManualClock clock;
  RevocationList list(clock);
  RevocationView view(list);
  const Identity id = alice();
  EXPECT_FALSE(list.revoke(RevocationKind::kSubject, "alice", clock.system_now()));  // already past
  ASSERT_TRUE(list.revoke(RevocationKind::kSubject, "alice", clock.system_now() + 10s));
  clock.advance(9999ms);
  EXPECT_TRUE(view.is_revoked(&id));
  clock.advance(1ms);
  EXPECT_FALSE(view.is_revoked(&id));  // without any write: time alone ends it
  EXPECT_EQ(list.snapshot()->size(), 1u);
  const auto gen = list.generation();
  const auto purge = list.snapshot()->purge_generation();
  EXPECT_EQ(list.prune(), 1u);
  EXPECT_EQ(list.snapshot()->size(), 0u);
  EXPECT_EQ(list.generation(), gen + 1);
  EXPECT_EQ(view.purge_generation(), purge);  // un-revoking purges no cache
  EXPECT_EQ(list.prune(), 0u);
  EXPECT_EQ(list.generation(), gen + 1);
}

TEST(RevocationList, LaterTimeWinsAndWritesDropExpiredEntries) {
  ManualClock clock;
  RevocationList list(clock);
  const Identity id = alice();
  ASSERT_TRUE(list.revoke(RevocationKind::kSubject, "alice", clock.system_now() + 10s));
  EXPECT_FALSE(list.revoke(RevocationKind::kSubject, "alice", clock.system_now() + 5s));
  EXPECT_FALSE(list.revoke(RevocationKind::kSubject, "alice", clock.system_now() + 10s));
  ASSERT_TRUE(list.revoke(RevocationKind::kSubject, "alice", clock.system_now() + 20s));
  clock.advance(15s);
  EXPECT_TRUE(list.is_revoked(&id));
  ASSERT_TRUE(list.revoke(RevocationKind::kTokenId, "t", clock.system_now() + 1s));
  clock.advance(10s);
  ASSERT_TRUE(list.revoke(RevocationKind::kSession, "s", clock.system_now() + 1s));
  EXPECT_EQ(list.snapshot()->size(), 1u);  // alice and t expired and went with the write
}

TEST(RevocationList, GenerationsMoveAsDocumented) {
  ManualClock clock;
  RevocationList list(clock);
  RevocationView view(list);
  struct Step {
    RevocationKind kind;
    const char* value;
    bool purges;
  };
  const Step steps[] = {
      {RevocationKind::kSubject, "a", true},
      {RevocationKind::kSession, "s", false},
      {RevocationKind::kTokenId, "t", true},
      {RevocationKind::kSession, "s2", false},
  };
  std::uint64_t gen = list.generation();
  std::uint64_t purge = view.purge_generation();
  for (const Step& s : steps) {
    ASSERT_TRUE(list.revoke(s.kind, s.value, clock.system_now() + 1h));
    EXPECT_EQ(list.generation(), gen + 1) << s.value;
    EXPECT_EQ(view.purge_generation(), purge + (s.purges ? 1 : 0)) << s.value;
    gen = list.generation();
    purge = view.purge_generation();
  }
}

TEST(RevocationList, ManyEntriesStaySorted) {
  ManualClock clock;
  RevocationList list(clock);
  RevocationView view(list);
  for (int i = 999; i >= 0; --i) {
    ASSERT_TRUE(
        list.revoke(RevocationKind::kSubject, "user" + std::to_string(i), clock.system_now() + 1h));
  }
  for (int i = 0; i < 1000; ++i) {
    Identity id;
    id.subject = "user" + std::to_string(i);
    EXPECT_TRUE(view.is_revoked(&id)) << i;
    id.subject += "x";
    EXPECT_FALSE(view.is_revoked(&id)) << i;
  }
}

// Readers on other threads never see a torn set: once a revocation is published, every check
// after it denies. (Best run under TSan; here a functional smoke test.)
TEST(RevocationList, ConcurrentReadersSeeEveryPublishedRevocation) {
  ManualClock clock;
  RevocationList list(clock);
  std::atomic<int> published{-1};
  std::atomic<bool> failed{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      RevocationView view(list);
      Identity id;
      int last = -1;
      while (last < 199) {
        const int p = published.load(std::memory_order_acquire);
        if (p < 0) continue;
        id.subject = "u" + std::to_string(p);
        if (!view.is_revoked(&id)) failed = true;
        last = p;
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(
        list.revoke(RevocationKind::kSubject, "u" + std::to_string(i), clock.system_now() + 1h));
    published.store(i, std::memory_order_release);
  }
  for (auto& r : readers) r.join();
  EXPECT_FALSE(failed);
}

}  // namespace
}  // namespace portcullis
