#include "cache/revocations.hpp"

#include <algorithm>
#include <charconv>

#include "authn/identity.hpp"

namespace portcullis {
namespace {

constexpr std::array<RevocationKind, 3> kKinds{RevocationKind::kSubject, RevocationKind::kTokenId,
                                               RevocationKind::kSession};

std::size_t slot(RevocationKind k) {
  return static_cast<std::size_t>(k);
}

std::string_view reason(RevocationKind k) {
  switch (k) {
    case RevocationKind::kSubject:
      return "subject revoked";
    case RevocationKind::kTokenId:
      return "token revoked";
    case RevocationKind::kSession:
      return "session revoked";
  }
  return "revoked";
}

// The first entry not below `value` (const or mutable iterator, as `v`).
template <class Vector>
auto find_entry(Vector& v, std::string_view value) {
  return std::lower_bound(v.begin(), v.end(), value, [](const auto& e, std::string_view s) {
    return std::string_view(e.value) < s;
  });
}

bool valid_value(std::string_view v) {
  if (v.empty() || v.size() > kMaxRevocationValue) return false;
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return false;
  }
  return true;
}

}  // namespace

std::string_view revocation_kind_name(RevocationKind kind) {
  switch (kind) {
    case RevocationKind::kSubject:
      return "subject";
    case RevocationKind::kTokenId:
      return "token_id";
    case RevocationKind::kSession:
      return "session";
  }
  return "subject";
}

std::string encode_revocation(const Revocation& r) {
  const auto secs =
      std::chrono::duration_cast<std::chrono::seconds>(r.until.time_since_epoch()).count();
  std::string out = "v1 ";
  out += revocation_kind_name(r.kind);
  out += ' ';
  out += std::to_string(secs);
  out += ' ';
  out += r.value;
  return out;
}

std::optional<Revocation> parse_revocation(std::string_view m) {
  if (!m.starts_with("v1 ")) return std::nullopt;
  m.remove_prefix(3);
  const std::size_t sp1 = m.find(' ');
  if (sp1 == std::string_view::npos) return std::nullopt;
  Revocation r;
  const std::string_view kind = m.substr(0, sp1);
  const auto k = std::find_if(kKinds.begin(), kKinds.end(),
                              [&](RevocationKind c) { return revocation_kind_name(c) == kind; });
  if (k == kKinds.end()) return std::nullopt;
  r.kind = *k;
  m.remove_prefix(sp1 + 1);
  const std::size_t sp2 = m.find(' ');
  if (sp2 == std::string_view::npos) return std::nullopt;
  const std::string_view time = m.substr(0, sp2);
  if (time.empty() || time.size() > 12 || time[0] < '1' || time[0] > '9') return std::nullopt;
  std::int64_t secs = 0;
  const auto res = std::from_chars(time.data(), time.data() + time.size(), secs);
  if (res.ec != std::errc{} || res.ptr != time.data() + time.size()) return std::nullopt;
  // system_clock counts nanoseconds in 64 bits: later than ~2262 does not fit.
  constexpr std::int64_t kMaxSeconds =
      std::chrono::duration_cast<std::chrono::seconds>(
          std::chrono::system_clock::time_point::max().time_since_epoch())
          .count() -
      1;
  if (secs > kMaxSeconds) return std::nullopt;
  const std::string_view value = m.substr(sp2 + 1);
  if (!valid_value(value)) return std::nullopt;
  r.until = std::chrono::system_clock::time_point(std::chrono::seconds(secs));
  r.value = std::string(value);
  return r;
}

std::optional<RevocationHit> RevocationSnapshot::find(
    const Identity* identity, std::string_view session_id,
    std::chrono::system_clock::time_point now) const {
  const auto check = [&](RevocationKind k, std::string_view value) -> std::optional<RevocationHit> {
    const auto& v = entries_[slot(k)];
    if (value.empty() || v.empty()) return std::nullopt;
    const auto it = find_entry(v, value);
    if (it == v.end() || it->value != value || it->until <= now) return std::nullopt;
    return RevocationHit{k, reason(k)};
  };
  if (identity) {
    if (auto r = check(RevocationKind::kSubject, identity->subject)) return r;
    if (auto r = check(RevocationKind::kTokenId, identity->token_id)) return r;
  }
  return check(RevocationKind::kSession, session_id);
}

std::size_t RevocationSnapshot::size() const {
  return entries_[0].size() + entries_[1].size() + entries_[2].size();
}

RevocationList::RevocationList(const Clock& clock)
    : clock_(clock), current_(std::make_shared<const RevocationSnapshot>()) {}

bool RevocationList::revoke(RevocationKind kind, std::string_view value,
                            std::chrono::system_clock::time_point until) {
  const auto now = clock_.system_now();
  if (!valid_value(value) || until <= now) return false;
  std::lock_guard lock(write_mutex_);
  const auto old = current_.load();
  const auto& existing = old->entries_[slot(kind)];
  const auto it = find_entry(existing, value);
  const bool found = it != existing.end() && it->value == value;
  if (found && it->until >= until) return false;

  auto next = std::make_shared<RevocationSnapshot>();
  for (std::size_t k = 0; k < next->entries_.size(); ++k) {
    for (const auto& e : old->entries_[k]) {
      if (e.until > now) next->entries_[k].push_back(e);  // expired ones go in passing
    }
  }
  auto& list = next->entries_[slot(kind)];
  const auto pos = find_entry(list, value);
  if (pos != list.end() && pos->value == value) {
    pos->until = until;
  } else {
    list.insert(pos, RevocationSnapshot::Entry{std::string(value), until});
  }
  next->generation_ = old->generation_ + 1;
  next->purge_generation_ = old->purge_generation_ + (kind == RevocationKind::kSession ? 0 : 1);
  current_.store(std::move(next));
  generation_.store(old->generation_ + 1, std::memory_order_release);
  return true;
}

std::size_t RevocationList::prune() {
  const auto now = clock_.system_now();
  std::lock_guard lock(write_mutex_);
  const auto old = current_.load();
  auto next = std::make_shared<RevocationSnapshot>();
  std::size_t dropped = 0;
  for (std::size_t k = 0; k < next->entries_.size(); ++k) {
    for (const auto& e : old->entries_[k]) {
      if (e.until > now) {
        next->entries_[k].push_back(e);
      } else {
        ++dropped;
      }
    }
  }
  if (dropped == 0) return 0;
  next->generation_ = old->generation_ + 1;
  next->purge_generation_ = old->purge_generation_;
  current_.store(std::move(next));
  generation_.store(old->generation_ + 1, std::memory_order_release);
  return dropped;
}

std::optional<RevocationHit> RevocationList::is_revoked(const Identity* identity,
                                                        std::string_view session_id) const {
  return current_.load()->find(identity, session_id, clock_.system_now());
}

const RevocationSnapshot& RevocationView::current() {
  if (list_.generation() != snapshot_->generation()) snapshot_ = list_.snapshot();
  return *snapshot_;
}

std::optional<RevocationHit> RevocationView::is_revoked(const Identity* identity,
                                                        std::string_view session_id) {
  const RevocationSnapshot& s = current();
  if (s.size() == 0) return std::nullopt;  // the common case: no clock read
  return s.find(identity, session_id, list_.clock().system_now());
}

std::uint64_t RevocationView::purge_generation() {
  return current().purge_generation();
}

}  // namespace portcullis
