#pragma once
// Revocations (issue 5): subjects, token ids (jti) and session ids that must be denied until a
// given time, shared by the workers of a process. Writers (admin API, pub/sub listener) build a
// new immutable RevocationSnapshot and swap it in under a mutex; readers never lock.
//
// Hot path: each worker owns a RevocationView, which keeps its own reference to the current
// snapshot and re-fetches it only when the list's generation moves (one relaxed-cost atomic
// load per check, no shared refcount traffic). A check allocates nothing: sorted vectors,
// binary search with string_views, and an early out when the set is empty.
//
// Decision caches: the view's purge_generation() moves only when a subject or token id is
// revoked (or extended); pass it to DecisionCache, which drops its whole L1 when it moves.
// Session revocations do not purge: L1 entries are not per session, and the request's own
// is_revoked() check, which must run before any cache lookup, denies a revoked session anyway.
//
//   RevocationList revocations(clock);                  // one per process
//   RevocationView view(revocations);                   // one per worker
//   if (auto r = view.is_revoked(identity, session_id)) deny(403, r->reason);
//   revocations.apply(*parse_revocation(pubsub_message));
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"

namespace portcullis {

struct Identity;

enum class RevocationKind : std::uint8_t { kSubject, kTokenId, kSession };

// "subject" | "token_id" | "session" (the wire names).
std::string_view revocation_kind_name(RevocationKind kind);

struct Revocation {
  RevocationKind kind = RevocationKind::kSubject;
  std::string value;
  std::chrono::system_clock::time_point until;  // revoked while now < until
  bool operator==(const Revocation&) const = default;
};

// A revoked identity: which kind matched and the reason to deny with ("subject revoked",
// "token revoked", "session revoked"; static strings).
struct RevocationHit {
  RevocationKind kind;
  std::string_view reason;
};

// Pub/sub wire format: "v1 <kind> <until, unix seconds> <value>", e.g.
// "v1 subject 1700000000 alice". The value is the rest of the line and may contain spaces.
std::string encode_revocation(const Revocation& r);
// Strict: exactly one space between fields, a known kind, a positive decimal time without
// leading zeros, a non-empty value of at most kMaxRevocationValue bytes without control
// characters. Anything else is nothing.
std::optional<Revocation> parse_revocation(std::string_view message);
inline constexpr std::size_t kMaxRevocationValue = 1024;

// An immutable set of revocations at one generation.
class RevocationSnapshot {
 public:
  // Whether `identity` (null: anonymous) or `session_id` ("" = none) is revoked at `now`.
  // Checks subject, then token id, then session. Allocates nothing.
  std::optional<RevocationHit> find(const Identity* identity, std::string_view session_id,
                                    std::chrono::system_clock::time_point now) const;
  std::size_t size() const;
  std::uint64_t generation() const { return generation_; }
  std::uint64_t purge_generation() const { return purge_generation_; }

 private:
  friend class RevocationList;
  struct Entry {
    std::string value;
    std::chrono::system_clock::time_point until;
  };
  // One sorted-by-value vector per kind (index = RevocationKind).
  std::array<std::vector<Entry>, 3> entries_;
  std::uint64_t generation_ = 0;
  std::uint64_t purge_generation_ = 0;
};

// The process-wide set. Thread-safe.
class RevocationList {
 public:
  explicit RevocationList(const Clock& clock);

  // Revokes `value` until `until` (an existing entry keeps the later time). Returns whether
  // the set changed: false for an empty value, a time already past, or no extension.
  bool revoke(RevocationKind kind, std::string_view value,
              std::chrono::system_clock::time_point until);
  bool apply(const Revocation& r) { return revoke(r.kind, r.value, r.until); }

  // Drops entries past their time (they already have no effect); returns how many. Does not
  // move the purge generation.
  std::size_t prune();

  std::shared_ptr<const RevocationSnapshot> snapshot() const { return current_.load(); }
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  const Clock& clock() const { return clock_; }

  // Convenience for cold paths (loads the shared snapshot); workers use a RevocationView.
  std::optional<RevocationHit> is_revoked(const Identity* identity,
                                          std::string_view session_id = {}) const;

 private:
  const Clock& clock_;
  std::mutex write_mutex_;
  std::atomic<std::shared_ptr<const RevocationSnapshot>> current_;
  std::atomic<std::uint64_t> generation_{0};
};

// A worker's reader of a RevocationList. Not thread-safe: one per worker.
class RevocationView {
 public:
  explicit RevocationView(const RevocationList& list) : list_(list), snapshot_(list.snapshot()) {}

  std::optional<RevocationHit> is_revoked(const Identity* identity,
                                          std::string_view session_id = {});
  // For DecisionCache::Current::revocation_generation (refreshes first).
  std::uint64_t purge_generation();

 private:
  const RevocationSnapshot& current();

  const RevocationList& list_;
  std::shared_ptr<const RevocationSnapshot> snapshot_;
};

}  // namespace portcullis
