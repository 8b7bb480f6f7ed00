#pragma once
// The audit log's line format (docs/audit-format.md), shared by the writer and the verifier:
// every line is `{"seq":N,"prev":"<hex>","type":"<type>",<members>}` followed by '\n', where
// prev is the SHA-256 (lower-case hex) of the previous line's bytes without its '\n'. A
// checkpoint line ends with `,"sig":"<base64url>"}`; its signature covers the line with that
// member removed.
//
//   AuditChain chain;                                     // seq 0, prev = 64 zeros (genesis)
//   std::string buf;
//   chain.append(buf, "request", audit_event_body(ev));  // line + '\n', chain advanced
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "audit/audit_key.hpp"

namespace portcullis {

inline constexpr std::string_view kAuditFormat = "portcullis-audit/1";
inline constexpr std::string_view kAuditZeroHash =
    "0000000000000000000000000000000000000000000000000000000000000000";
inline constexpr std::string_view kAuditSigMember = ",\"sig\":\"";

// Record types.
namespace audit_type {
inline constexpr std::string_view genesis = "genesis";
inline constexpr std::string_view start = "start";
inline constexpr std::string_view rotate = "rotate";
inline constexpr std::string_view request = "request";
inline constexpr std::string_view checkpoint = "checkpoint";
inline constexpr std::string_view lost = "lost";
}  // namespace audit_type

// The running end of the hash chain: the seq and prev the next line gets.
struct AuditChain {
  std::uint64_t next_seq = 0;
  std::string prev = std::string(kAuditZeroHash);

  // `{"seq":..,"prev":..,"type":..,` + members + `}` (no newline); does not advance.
  std::string line(std::string_view type, std::string_view members) const;
  // Appends line + '\n' to `out` and advances past it.
  void append(std::string& out, std::string_view type, std::string_view members);
  // Advances past an already built line (without its '\n').
  void advance(std::string_view line);
};

// Members announcing the writer and its key, for genesis/start/rotate records:
// "time":..,"format":..,"instance":..,"alg":"Ed25519","kid":..,"key":{jwk}
std::string audit_key_members(std::string_view time, std::string_view instance,
                              const AuditSigningKey& key);

// A complete signed checkpoint line (no newline) continuing `chain` (not advanced).
Expected<std::string, std::string> audit_checkpoint_line(const AuditChain& chain,
                                                         std::string_view time,
                                                         std::string_view instance,
                                                         const AuditSigningKey& key,
                                                         std::string_view reason);

// Splits a checkpoint line into (signed message, base64url signature); nullopt when the line
// does not end with `,"sig":"<base64url>"}`.
struct SignedCheckpoint {
  std::string message;
  std::string sig;
};
std::optional<SignedCheckpoint> split_checkpoint(std::string_view line);

}  // namespace portcullis
