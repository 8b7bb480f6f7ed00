#pragma once
// Header hygiene for the HTTP/1.1 codec: request framing checks against smuggling,
// hop-by-hop removal, stripping of identity headers clients must never set, and the
// X-Forwarded-* / X-Request-Id / traceparent headers the gateway owns.
#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/fields.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace portcullis {

// Checks a parsed request header for ambiguous framing and identity problems. Returns a short
// reason when the request must be refused with 400: more than one Content-Length (even with
// equal values), Content-Length with Transfer-Encoding, a Transfer-Encoding that is not
// exactly "chunked", more than one Host, no Host on HTTP/1.1, field values with characters
// outside VCHAR / obs-text / SP / HTAB.
std::optional<std::string_view> check_request_framing(const boost::beast::http::fields& h,
                                                      unsigned version);

// True when `method` is upper-case letters, '-' and '_' only (what nginx accepts). Methods
// are case-sensitive, so `delete` is not DELETE to the gateway's policy, but some upstream
// frameworks fold case: a request whose method could mean two things is refused.
bool is_canonical_method(std::string_view method);

// True when `name` is an identity header the gateway owns: "x-portcullis-*" compared
// case-insensitively with '_' treated as '-'.
bool is_portcullis_header(std::string_view name);

// True when `name` is X-Forwarded-* or Forwarded in any spelling ('_' treated as '-').
bool is_forwarding_header(std::string_view name);

// Removes hop-by-hop headers (Connection and every header it lists, Keep-Alive,
// Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Authorization).
void remove_hop_by_hop(boost::beast::http::fields& h);

struct ForwardingContext {
  boost::asio::ip::address peer;
  bool peer_trusted = false;  // peer is in server.trusted_proxies
  bool tls = false;
  std::string_view host;  // Host as the client sent it
  std::string_view request_id;
  std::string_view traceparent;
};

// Prepares a request's headers for the upstream: hop-by-hop removed, X-Portcullis-* removed,
// X-Forwarded-*/Forwarded removed unless the peer is trusted, then X-Forwarded-For (appended
// for trusted peers), X-Forwarded-Proto, X-Forwarded-Host, X-Request-Id and traceparent set.
void prepare_upstream_request_headers(boost::beast::http::fields& h, const ForwardingContext& c);

struct Identity;

// Sets X-Portcullis-User (subject, else client id), X-Portcullis-Email, X-Portcullis-Groups
// (comma-separated;
// ',' and '%' inside a group name percent-encoded) and, when not empty,
// X-Portcullis-Assertion. A value with control characters is left out rather than sent (the
// signed assertion carries it exactly). Call after prepare_upstream_request_headers(), which
// removes any X-Portcullis-* the client sent.
void set_identity_headers(boost::beast::http::fields& h, const Identity& id,
                          std::string_view assertion);

// Prepares an upstream response's headers for the client: hop-by-hop removed.
void prepare_downstream_response_headers(boost::beast::http::fields& h);

class SsoFlow;

// Removes the gateway's own cookies (browser session, pre-login) from the request's Cookie
// headers before it goes upstream; a header left empty is removed.
void strip_gateway_cookies(boost::beast::http::fields& h, const SsoFlow& sso);

}  // namespace portcullis
