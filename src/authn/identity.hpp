#pragma once
// Identity: who made a request, as the policy engine and the upstream see it, independent of
// how it was proven (JWT, introspection, SSO session, client certificate). ClaimsMapping turns
// a provider's claims into an Identity with dotted paths ("realm_access.roles" for Keycloak)
// and both scope forms (Okta's "scp" array, RFC 9068 / Auth0 "scope" string).
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portcullis {

struct Identity {
  std::string provider;  // identity provider name from the config
  std::string issuer;
  std::string subject;
  std::string email;
  std::vector<std::string> groups;
  std::vector<std::string> scopes;
  std::string client_id;
  std::string token_id;         // "jti" when present
  std::int64_t expires_at = 0;  // seconds since the Unix epoch
  std::string
      session_id;      // browser sessions: the session's random id (portcullis revoke --session)
  std::string method;  // "jwt" | "introspection"
  std::shared_ptr<const boost::json::object> claims;  // all verified claims

  bool has_scope(std::string_view s) const;
};

struct ClaimsMapping {
  std::string subject = "sub";
  std::string email = "email";
  std::string groups = "groups";
  std::string scopes;     // "" = "scp" when present, else "scope"
  std::string client_id;  // "" = "client_id", else "cid" (Okta), else "azp"
};

// A claim by dotted path ("a.b.c"); a literal key containing dots is tried first.
const boost::json::value* find_claim(const boost::json::object& claims, std::string_view path);

// Strings of a claim that is a string (split on spaces when `split_spaces`) or an array of
// strings; other shapes give nothing.
std::vector<std::string> claim_strings(const boost::json::value* v, bool split_spaces);

Identity map_identity(const ClaimsMapping& mapping,
                      std::shared_ptr<const boost::json::object> claims, std::string provider,
                      std::string method);

}  // namespace portcullis
