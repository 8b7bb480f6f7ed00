#include "sso/session_record.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace portcullis {
namespace json = boost::json;

namespace {

json::object public_fields(const SessionRecord& r) {
  json::array groups;
  for (const auto& g : r.groups) groups.emplace_back(g);
  json::object o{{"sid", r.sid},       {"provider", r.provider},     {"iss", r.issuer},
                 {"sub", r.subject},   {"email", r.email},           {"groups", std::move(groups)},
                 {"iat", r.issued_at}, {"session_exp", r.expires_at}};
  if (!r.idp_sid.empty()) o["idp_sid"] = r.idp_sid;
  return o;
}

std::string string_field(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::int64_t int_field(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  return v && v->is_int64() ? v->get_int64() : 0;
}

}  // namespace

std::string SessionRecord::to_json() const {
  json::object o = public_fields(*this);
  o["seen"] = seen_at;
  if (!refresh_token.empty()) {
    o["rt"] = refresh_token;
    o["refresh_at"] = refresh_at;
  }
  return json::serialize(o);
}

std::optional<SessionRecord> SessionRecord::from_json(std::string_view text) {
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec);
  if (ec || !doc.is_object()) return std::nullopt;
  const json::object& o = doc.get_object();
  SessionRecord r;
  r.sid = string_field(o, "sid");
  r.provider = string_field(o, "provider");
  r.issuer = string_field(o, "iss");
  r.subject = string_field(o, "sub");
  r.email = string_field(o, "email");
  if (const auto* g = o.if_contains("groups"); g && g->is_array()) {
    for (const auto& x : g->get_array()) {
      if (x.is_string()) r.groups.emplace_back(x.get_string());
    }
  }
  r.idp_sid = string_field(o, "idp_sid");
  r.issued_at = int_field(o, "iat");
  r.expires_at = int_field(o, "session_exp");
  r.seen_at = int_field(o, "seen");
  r.refresh_token = string_field(o, "rt");
  r.refresh_at = int_field(o, "refresh_at");
  if (r.sid.empty() || r.subject.empty()) return std::nullopt;
  return r;
}

std::shared_ptr<const Identity> SessionRecord::to_identity() const {
  auto identity = std::make_shared<Identity>();
  identity->provider = provider;
  identity->issuer = issuer;
  identity->subject = subject;
  identity->email = email;
  identity->groups = groups;
  identity->expires_at = expires_at;
  identity->session_id = sid;
  identity->method = "sso";
  identity->claims = std::make_shared<const json::object>(public_fields(*this));
  return identity;
}

}  // namespace portcullis
