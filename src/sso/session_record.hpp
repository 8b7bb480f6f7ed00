#pragma once
// SessionRecord: one browser sign-in, as SsoFlow keeps it: sealed into the session cookie
// (session_store: cookie) or sealed into Redis under its id (session_store: redis). It
// carries the identity the policy sees, the IdP's session id (back-channel logout), the
// refresh token when the IdP gave one, and the times that end or renew it.
//
//   SessionRecord r; r.sid = ...; r.subject = ...;
//   std::string json = r.to_json();
//   auto back = SessionRecord::from_json(json);   // nullopt when not a record
//   auto identity = back->to_identity();          // what admission and policies see
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "authn/identity.hpp"

namespace portcullis {

struct SessionRecord {
  std::string sid;  // random id: revocation, logout, `portcullis revoke --session`
  std::string provider;
  std::string issuer;
  std::string subject;
  std::string email;
  std::vector<std::string> groups;
  std::string idp_sid;          // the ID token's "sid" ("" when the IdP sent none)
  std::int64_t issued_at = 0;   // sign-in (unix seconds)
  std::int64_t expires_at = 0;  // absolute end; a successful refresh moves it on
  std::int64_t seen_at = 0;     // last use (idle expiry of cookie-held sessions)
  std::string refresh_token;    // "" = none: the session ends at expires_at
  std::int64_t refresh_at = 0;  // when to ask the IdP again (with a refresh token)

  std::string to_json() const;
  // Nullopt unless `json` is an object with a non-empty sid and sub.
  static std::optional<SessionRecord> from_json(std::string_view json);
  // The identity for admission and policies (method "sso"). Its claims are the record's
  // public fields (never the refresh token).
  std::shared_ptr<const Identity> to_identity() const;
};

}  // namespace portcullis
