#include "http/header_rules.hpp"

#include "sso/sso_flow.hpp"

#include "authn/identity.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <vector>

namespace portcullis {
namespace http = boost::beast::http;

namespace {

char lower_dash(char c) {
  if (c == '_') return '-';
  if (c >= 'A' && c <= 'Z') return static_cast<char>(c - 'A' + 'a');
  return c;
}

bool starts_with_folded(std::string_view name, std::string_view prefix_lower) {
  if (name.size() < prefix_lower.size()) return false;
  for (std::size_t i = 0; i < prefix_lower.size(); ++i) {
    if (lower_dash(name[i]) != prefix_lower[i]) return false;
  }
  return true;
}

bool equals_folded(std::string_view name, std::string_view lower) {
  return name.size() == lower.size() && starts_with_folded(name, lower);
}

bool valid_field_value(std::string_view v) {
  for (unsigned char c : v) {
    if (c == '\t') continue;
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::string_view> check_request_framing(const http::fields& h, unsigned version) {
  int content_length = 0, transfer_encoding = 0, host = 0;
  for (const auto& f : h) {
    std::string_view name = f.name_string();
    std::string_view value = f.value();
    if (!valid_field_value(value)) return "invalid character in a header value";
    if (name.find('_') != std::string_view::npos && starts_with_folded(name, "content-length")) {
      return "ambiguous Content-Length header name";
    }
    switch (f.name()) {
      case http::field::content_length:
        ++content_length;
        if (value.find(',') != std::string_view::npos) return "duplicate Content-Length";
        break;
      case http::field::transfer_encoding:
        ++transfer_encoding;
        if (!boost::beast::iequals(trim(value), "chunked")) {
          return "unsupported Transfer-Encoding (only chunked is accepted)";
        }
        break;
      case http::field::host:
        ++host;
        break;
      default:
        break;
    }
  }
  if (content_length > 1) return "duplicate Content-Length";
  if (transfer_encoding > 1) return "duplicate Transfer-Encoding";
  if (content_length && transfer_encoding) return "both Content-Length and Transfer-Encoding";
  if (host > 1) return "more than one Host header";
  if (host == 0 && version >= 11) return "missing Host header";
  return std::nullopt;
}

bool is_portcullis_header(std::string_view name) {
  return starts_with_folded(name, "x-portcullis-");
}

bool is_forwarding_header(std::string_view name) {
  return starts_with_folded(name, "x-forwarded-") || equals_folded(name, "forwarded");
}

void remove_hop_by_hop(http::fields& h) {
  // Headers named by Connection are hop-by-hop too (RFC 9110 7.6.1).
  std::vector<std::string> listed;
  for (auto it = h.find(http::field::connection);
       it != h.end() && it->name() == http::field::connection; ++it) {
    std::string_view v = it->value();
    while (!v.empty()) {
      auto comma = v.find(',');
      auto token = trim(v.substr(0, comma));
      if (!token.empty()) listed.emplace_back(token);
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  for (const auto& name : listed) h.erase(name);
  for (auto f : {http::field::connection, http::field::keep_alive, http::field::proxy_connection,
                 http::field::te, http::field::trailer, http::field::transfer_encoding,
                 http::field::upgrade, http::field::proxy_authorization}) {
    h.erase(f);
  }
}

void prepare_upstream_request_headers(http::fields& h, const ForwardingContext& c) {
  remove_hop_by_hop(h);
  std::string prior_xff;
  for (auto it = h.begin(); it != h.end();) {
    std::string_view name = it->name_string();
    if (is_portcullis_header(name)) {
      it = h.erase(it);
    } else if (is_forwarding_header(name)) {
      if (c.peer_trusted && boost::beast::iequals(name, "x-forwarded-for")) {
        if (!prior_xff.empty()) prior_xff += ", ";
        prior_xff += trim(it->value());
      }
      if (c.peer_trusted) {
        ++it;  // a trusted proxy's X-Forwarded-Proto/Host and Forwarded pass through
      } else {
        it = h.erase(it);
      }
    } else {
      ++it;
    }
  }
  std::string peer =
      c.peer.is_v6() && c.peer.to_v6().is_v4_mapped()
          ? boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, c.peer.to_v6()).to_string()
          : c.peer.to_string();
  h.set("x-forwarded-for", prior_xff.empty() ? peer : prior_xff + ", " + peer);
  if (!c.peer_trusted || h.find("x-forwarded-proto") == h.end()) {
    h.set("x-forwarded-proto", c.tls ? "https" : "http");
  }
  if (!c.peer_trusted || h.find("x-forwarded-host") == h.end()) {
    h.set("x-forwarded-host", c.host);
  }
  h.set("x-request-id", c.request_id);
  h.set("traceparent", c.traceparent);
}

void prepare_downstream_response_headers(http::fields& h) {
  remove_hop_by_hop(h);
}

}  // namespace portcullis

namespace portcullis {
namespace {

bool has_control_chars(std::string_view v) {
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return true;
  }
  return false;
}

}  // namespace

bool is_canonical_method(std::string_view method) {
  if (method.empty()) return false;
  for (char c : method) {
    if (!((c >= 'A' && c <= 'Z') || c == '-' || c == '_')) return false;
  }
  return true;
}

void set_identity_headers(boost::beast::http::fields& h, const Identity& id,
                          std::string_view assertion) {
  // Like the assertion's sub: the client id stands in for a client-credentials caller.
  const std::string& user = id.subject.empty() ? id.client_id : id.subject;
  if (!user.empty() && !has_control_chars(user)) h.set("X-Portcullis-User", user);
  if (!id.email.empty() && !has_control_chars(id.email)) h.set("X-Portcullis-Email", id.email);
  if (!id.groups.empty()) {
    std::string groups;
    for (const std::string& g : id.groups) {
      if (g.empty() || has_control_chars(g)) continue;
      if (!groups.empty()) groups += ',';
      for (char c : g) {
        if (c == ',') {
          groups += "%2C";
        } else if (c == '%') {
          groups += "%25";
        } else {
          groups += c;
        }
      }
    }
    if (!groups.empty()) h.set("X-Portcullis-Groups", groups);
  }
  if (!assertion.empty()) h.set("X-Portcullis-Assertion", assertion);
}

void strip_gateway_cookies(boost::beast::http::fields& h, const SsoFlow& sso) {
  std::vector<std::string> kept;
  for (auto [it, end] = h.equal_range(boost::beast::http::field::cookie); it != end; ++it) {
    std::string rest = sso.upstream_cookie_header(it->value());
    if (!rest.empty()) kept.push_back(std::move(rest));
  }
  h.erase(boost::beast::http::field::cookie);
  for (auto& c : kept) h.insert(boost::beast::http::field::cookie, c);
}

}  // namespace portcullis
