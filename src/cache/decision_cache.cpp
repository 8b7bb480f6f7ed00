#include "cache/decision_cache.hpp"

#include <algorithm>
#include <charconv>

#include "authn/identity.hpp"

namespace portcullis {
namespace {

// The evaluator's strings (policy.cpp); to_policy_decision() must give back exactly these.
constexpr std::string_view kReasonAllow = "matched allow rule";
constexpr std::string_view kReasonDeny = "matched deny rule";
constexpr std::string_view kReasonDefault = "no rule matched";

constexpr std::string_view section_name(DecisionSection s) {
  switch (s) {
    case DecisionSection::kAllow:
      return "allow";
    case DecisionSection::kDeny:
      return "deny";
    case DecisionSection::kDefault:
      return "default";
  }
  return "default";
}

constexpr std::string_view reason_text(DecisionReason r) {
  switch (r) {
    case DecisionReason::kMatchedAllowRule:
      return kReasonAllow;
    case DecisionReason::kMatchedDenyRule:
      return kReasonDeny;
    case DecisionReason::kNoRuleMatched:
      return kReasonDefault;
  }
  return kReasonDefault;
}

constexpr std::string_view reason_code(DecisionReason r) {
  switch (r) {
    case DecisionReason::kMatchedAllowRule:
      return "allow_rule";
    case DecisionReason::kMatchedDenyRule:
      return "deny_rule";
    case DecisionReason::kNoRuleMatched:
      return "no_match";
  }
  return "no_match";
}

constexpr DecisionReason reason_for(DecisionSection s) {
  switch (s) {
    case DecisionSection::kAllow:
      return DecisionReason::kMatchedAllowRule;
    case DecisionSection::kDeny:
      return DecisionReason::kMatchedDenyRule;
    case DecisionSection::kDefault:
      return DecisionReason::kNoRuleMatched;
  }
  return DecisionReason::kNoRuleMatched;
}

// The invariants every cached verdict holds; a verdict that breaks one is never used.
bool consistent(const CachedVerdict& v) {
  if (v.allow != (v.section == DecisionSection::kAllow)) return false;
  if (v.reason != reason_for(v.section)) return false;
  if (v.section == DecisionSection::kDefault) return v.rule_index == -1;
  return v.rule_index >= 0;
}

template <class Enum, std::size_t N>
std::optional<Enum> lookup_name(std::string_view s, const std::array<Enum, N>& all,
                                std::string_view (*name)(Enum)) {
  for (Enum e : all) {
    if (name(e) == s) return e;
  }
  return std::nullopt;
}

constexpr std::array<DecisionSection, 3> kSections{DecisionSection::kAllow, DecisionSection::kDeny,
                                                   DecisionSection::kDefault};
constexpr std::array<DecisionReason, 3> kReasons{DecisionReason::kMatchedAllowRule,
                                                 DecisionReason::kMatchedDenyRule,
                                                 DecisionReason::kNoRuleMatched};

std::string_view section_name_fn(DecisionSection s) {
  return section_name(s);
}
std::string_view reason_code_fn(DecisionReason r) {
  return reason_code(r);
}

// "-1", "0" or a decimal without leading zeros up to 32767.
std::optional<std::int16_t> parse_rule_index(std::string_view s) {
  if (s == "-1") return std::int16_t{-1};
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;  // from_chars would take "-0"
  }
  int v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc{} || r.ptr != s.data() + s.size() || v < 0 || v > 32767) {
    return std::nullopt;
  }
  return static_cast<std::int16_t>(v);
}

void append_verdict(std::string& out, const CachedVerdict& v) {
  out += v.allow ? 'a' : 'd';
  out += '|';
  out += section_name(v.section);
  out += '|';
  char buf[8];
  const auto r = std::to_chars(buf, buf + sizeof buf, v.rule_index);
  out.append(buf, r.ptr);
  out += '|';
  out += reason_code(v.reason);
  out += '|';
  out += v.version.view();
}

// Five fields: allow, section, rule index, reason, version.
std::optional<CachedVerdict> parse_verdict(const std::string_view* f) {
  CachedVerdict v;
  if (f[0] == "a") {
    v.allow = true;
  } else if (f[0] != "d") {
    return std::nullopt;
  }
  const auto section = lookup_name(f[1], kSections, section_name_fn);
  const auto rule = parse_rule_index(f[2]);
  const auto reason = lookup_name(f[3], kReasons, reason_code_fn);
  const auto version = PolicyVersion::parse(f[4]);
  if (!section || !rule || !reason || !version) return std::nullopt;
  v.section = *section;
  v.rule_index = *rule;
  v.reason = *reason;
  v.version = *version;
  if (!consistent(v)) return std::nullopt;
  return v;
}

}  // namespace

std::optional<PolicyVersion> PolicyVersion::parse(std::string_view v) {
  if (v.size() != 16) return std::nullopt;
  PolicyVersion out;
  for (std::size_t i = 0; i < 16; ++i) {
    const char c = v[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
    out.hex_[i] = c;
  }
  return out;
}

std::optional<CachedVerdict> make_verdict(const PolicyDecision& d, std::string_view version) {
  const auto section = lookup_name(d.section, kSections, section_name_fn);
  const auto v = PolicyVersion::parse(version);
  if (!section || !v || d.rule_index < -1 || d.rule_index > 32767) return std::nullopt;
  CachedVerdict out{d.allow, *section, static_cast<std::int16_t>(d.rule_index),
                    reason_for(*section), *v};
  if (d.reason != reason_text(out.reason) || !consistent(out)) return std::nullopt;
  return out;
}

PolicyDecision to_policy_decision(const CachedVerdict& v, std::string_view source) {
  return PolicyDecision{v.allow, section_name(v.section), v.rule_index, reason_text(v.reason),
                        source};
}

bool made_under(const CachedDecision& d, std::string_view policy_version,
                std::string_view shadow_policy_version) {
  const bool shadow_matches =
      d.shadow ? d.shadow->version.view() == shadow_policy_version : shadow_policy_version.empty();
  return shadow_matches && d.decision.version.view() == policy_version;
}

std::string encode_decision_value(const CachedDecision& d) {
  std::string out;
  out.reserve(82);
  out += "v1|";
  append_verdict(out, d.decision);
  if (d.shadow) {
    out += '|';
    append_verdict(out, *d.shadow);
  }
  return out;
}

std::optional<CachedDecision> parse_decision_value(std::string_view value) {
  std::array<std::string_view, 11> f;
  std::size_t n = 0;
  while (true) {
    if (n == f.size()) return std::nullopt;
    const std::size_t bar = value.find('|');
    f[n++] = value.substr(0, bar);
    if (bar == std::string_view::npos) break;
    value.remove_prefix(bar + 1);
  }
  if ((n != 6 && n != 11) || f[0] != "v1") return std::nullopt;
  CachedDecision d;
  const auto main = parse_verdict(&f[1]);
  if (!main) return std::nullopt;
  d.decision = *main;
  if (n == 11) {
    d.shadow = parse_verdict(&f[6]);
    if (!d.shadow) return std::nullopt;
  }
  return d;
}

DecisionCache::DecisionCache(const Clock& clock, std::chrono::milliseconds ttl,
                             std::size_t capacity)
    : clock_(clock), ttl_(ttl), slots_(ttl.count() > 0 ? capacity : 0) {
  index_.reserve(slots_.size());
}

void DecisionCache::clear() {
  index_.clear();
  for (Slot& s : slots_) s.live = false;
  fresh_ = 0;
  hand_ = 0;
}

void DecisionCache::sync_generation(std::uint64_t generation) {
  if (generation == generation_) return;
  generation_ = generation;
  if (!index_.empty()) {
    clear();
    ++stats_.purges;
  }
}

void DecisionCache::drop(
    std::unordered_map<DecisionKey, std::uint32_t, DecisionKeyHash>::iterator it) {
  slots_[it->second].live = false;
  index_.erase(it);
}

std::optional<CachedDecision> DecisionCache::lookup(const DecisionKey& key,
                                                    const Current& current) {
  sync_generation(current.revocation_generation);
  const auto it = index_.find(key);
  if (it == index_.end()) {
    ++stats_.misses;
    return std::nullopt;
  }
  Slot& slot = slots_[it->second];
  if (slot.expires_at <= clock_.system_now()) {
    ++stats_.misses;
    ++stats_.expired;
    drop(it);
    return std::nullopt;
  }
  const CachedDecision& v = slot.value;
  if (!made_under(v, current.policy_version, current.shadow_policy_version)) {
    ++stats_.misses;
    ++stats_.stale;
    drop(it);
    return std::nullopt;
  }
  slot.referenced = true;
  ++stats_.hits;
  return v;
}

std::uint32_t DecisionCache::take_slot(std::chrono::system_clock::time_point now) {
  if (fresh_ < slots_.size()) return static_cast<std::uint32_t>(fresh_++);
  // CLOCK: a free or expired slot is taken at once; a referenced one gets a second chance.
  // Ends within two turns of the hand (the first turn clears every reference bit).
  while (true) {
    const std::uint32_t i = static_cast<std::uint32_t>(hand_);
    hand_ = (hand_ + 1) % slots_.size();
    Slot& s = slots_[i];
    if (!s.live) return i;
    if (s.expires_at <= now) {
      ++stats_.expired;
      index_.erase(s.key);
      s.live = false;
      return i;
    }
    if (s.referenced) {
      s.referenced = false;
      continue;
    }
    ++stats_.evicted;
    index_.erase(s.key);
    s.live = false;
    return i;
  }
}

bool DecisionCache::insert(const DecisionKey& key, const CachedDecision& d,
                           const Identity* identity, std::uint64_t revocation_generation) {
  if (slots_.empty() || revocation_generation < generation_) return false;
  if (!consistent(d.decision) || (d.shadow && !consistent(*d.shadow))) return false;
  sync_generation(revocation_generation);
  const auto now = clock_.system_now();
  auto expires_at = now + ttl_;
  if (identity && identity->expires_at > 0) {
    const std::chrono::system_clock::time_point token_end{
        std::chrono::seconds(identity->expires_at)};
    expires_at = std::min(expires_at, token_end);
  }
  if (expires_at <= now) return false;
  std::uint32_t i;
  if (auto it = index_.find(key); it != index_.end()) {
    i = it->second;
  } else {
    i = take_slot(now);
    index_.emplace(key, i);
  }
  Slot& s = slots_[i];
  s.key = key;
  s.value = d;
  s.expires_at = expires_at;
  s.live = true;
  s.referenced = false;
  ++stats_.inserts;
  return true;
}

}  // namespace portcullis
