#include "sso/session_store.hpp"

#include "authn/base64url.hpp"
#include "core/sha256.hpp"

namespace portcullis {

namespace {

std::string digest_key(std::string_view prefix, std::string_view a, std::string_view b) {
  std::string input(a);
  input += '\n';
  input += b;
  const auto d = sha256(input);
  return std::string(prefix) + base64url_encode(std::span<const unsigned char>(d.data(), d.size()));
}

}  // namespace

std::string SessionStore::session_key(std::string_view sid) {
  return "pc:sso:s:v1:" + std::string(sid);
}

std::string SessionStore::subject_index(std::string_view issuer, std::string_view subject) {
  return digest_key("pc:sso:sub:v1:", issuer, subject);
}

std::string SessionStore::idp_session_index(std::string_view issuer, std::string_view idp_sid) {
  return digest_key("pc:sso:idp:v1:", issuer, idp_sid);
}

std::string SessionStore::refresh_lock_key(std::string_view sid) {
  return "pc:sso:lock:v1:" + std::string(sid);
}

std::string SessionStore::logout_jti_key(std::string_view issuer, std::string_view jti) {
  return digest_key("pc:sso:jti:v1:", issuer, jti);
}

}  // namespace portcullis
