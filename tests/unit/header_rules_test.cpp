#include "http/header_rules.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http/field.hpp>

namespace portcullis {
namespace {
namespace http = boost::beast::http;

http::fields make(std::initializer_list<std::pair<const char*, const char*>> items) {
  http::fields f;
  for (auto& [k, v] : items) f.insert(k, v);
  return f;
}

TEST(HeaderRulesFraming, AcceptsOrdinaryRequests) {
  EXPECT_FALSE(check_request_framing(make({{"Host", "a"}, {"Content-Length", "5"}}), 11));
  EXPECT_FALSE(check_request_framing(make({{"Host", "a"}, {"Transfer-Encoding", "chunked"}}), 11));
  EXPECT_FALSE(check_request_framing(make({}), 10));  // HTTP/1.0 needs no Host
}

struct FramingCase {
  const char* name;
  http::fields fields;
  const char* reason_part;
};

TEST(HeaderRulesFraming, RefusesSmugglingShapes) {
  std::vector<FramingCase> cases = {
      {"two Content-Length",
       make({{"Host", "a"}, {"Content-Length", "5"}, {"Content-Length", "5"}}),
       "duplicate Content-Length"},
      {"list Content-Length", make({{"Host", "a"}, {"Content-Length", "5, 5"}}),
       "duplicate Content-Length"},
      {"CL and TE",
       make({{"Host", "a"}, {"Content-Length", "5"}, {"Transfer-Encoding", "chunked"}}),
       "both Content-Length and Transfer-Encoding"},
      {"TE gzip", make({{"Host", "a"}, {"Transfer-Encoding", "gzip, chunked"}}),
       "Transfer-Encoding"},
      {"TE identity", make({{"Host", "a"}, {"Transfer-Encoding", "identity"}}),
       "Transfer-Encoding"},
      {"two TE",
       make({{"Host", "a"}, {"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}}),
       "duplicate Transfer-Encoding"},
      {"two Host", make({{"Host", "a"}, {"Host", "b"}}), "more than one Host"},
      {"no Host", make({{"Accept", "*/*"}}), "missing Host"},
      {"control char", make({{"Host", "a"}, {"X-A", "x\x01y"}}), "invalid character"},
      {"underscore CL", make({{"Host", "a"}, {"Content_Length", "5"}}), "ambiguous Content-Length"},
  };
  for (const auto& c : cases) {
    auto r = check_request_framing(c.fields, 11);
    ASSERT_TRUE(r.has_value()) << c.name;
    EXPECT_NE(r->find(c.reason_part), std::string_view::npos) << c.name << ": " << *r;
  }
}

TEST(HeaderRulesNames, PortcullisHeadersInEverySpelling) {
  for (auto n : {"X-Portcullis-User", "x-portcullis-user", "X_Portcullis_User",
                 "X-PORTCULLIS-EMAIL", "x_portcullis-groups", "X-Portcullis-Assertion"}) {
    EXPECT_TRUE(is_portcullis_header(n)) << n;
  }
  for (auto n : {"X-Portcullis", "X-Portcullisx-User", "Portcullis-User", "X-User"}) {
    EXPECT_FALSE(is_portcullis_header(n)) << n;
  }
}

TEST(HeaderRulesNames, ForwardingHeaders) {
  for (auto n : {"X-Forwarded-For", "x_forwarded_host", "X-FORWARDED-PROTO", "Forwarded"}) {
    EXPECT_TRUE(is_forwarding_header(n)) << n;
  }
  EXPECT_FALSE(is_forwarding_header("X-Forwarded"));
  EXPECT_FALSE(is_forwarding_header("Forwarded-For"));
}

TEST(HeaderRulesHopByHop, RemovesStandardAndConnectionListed) {
  auto f = make({{"Connection", "keep-alive, X-Secret"},
                 {"X-Secret", "1"},
                 {"Keep-Alive", "5"},
                 {"TE", "trailers"},
                 {"Upgrade", "websocket"},
                 {"Proxy-Authorization", "x"},
                 {"Proxy-Connection", "keep-alive"},
                 {"Trailer", "X"},
                 {"Transfer-Encoding", "chunked"},
                 {"Accept", "*/*"}});
  remove_hop_by_hop(f);
  int count = 0;
  for (const auto& field : f) {
    ++count;
    EXPECT_EQ(field.name_string(), "Accept");
  }
  EXPECT_EQ(count, 1);
}

TEST(HeaderRulesUpstream, UntrustedPeerCannotSpoofIdentityOrForwarding) {
  auto f = make({{"Host", "api.example.com"},
                 {"X-Portcullis-User", "admin"},
                 {"x_portcullis_email", "a@b"},
                 {"X-Forwarded-For", "1.2.3.4"},
                 {"X-Forwarded-Proto", "https"},
                 {"X-Forwarded-Host", "evil"},
                 {"Forwarded", "for=1.2.3.4"},
                 {"X-Request-Id", "client-id"}});
  ForwardingContext c;
  c.peer = boost::asio::ip::make_address("192.0.2.10");
  c.peer_trusted = false;
  c.tls = false;
  c.host = "api.example.com";
  c.request_id = "rid";
  c.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  prepare_upstream_request_headers(f, c);
  for (const auto& field : f) {
    EXPECT_FALSE(is_portcullis_header(field.name_string())) << field.name_string();
  }
  EXPECT_EQ(f["x-forwarded-for"], "192.0.2.10");
  EXPECT_EQ(f["x-forwarded-proto"], "http");
  EXPECT_EQ(f["x-forwarded-host"], "api.example.com");
  EXPECT_EQ(f.count("forwarded"), 0u);
  EXPECT_EQ(f["x-request-id"], "rid");
  EXPECT_EQ(f.count("x-request-id"), 1u);
  EXPECT_EQ(f["traceparent"], c.traceparent);
}

TEST(HeaderRulesUpstream, TrustedPeerAppendsToForwardedFor) {
  auto f = make({{"Host", "h"},
                 {"X-Forwarded-For", "203.0.113.7"},
                 {"X-Forwarded-Proto", "https"},
                 {"X-Portcullis-User", "admin"}});
  ForwardingContext c;
  c.peer = boost::asio::ip::make_address("::ffff:10.1.2.3");
  c.peer_trusted = true;
  c.host = "h";
  c.request_id = "rid";
  c.traceparent = "tp";
  prepare_upstream_request_headers(f, c);
  EXPECT_EQ(f["x-forwarded-for"], "203.0.113.7, 10.1.2.3");
  EXPECT_EQ(f["x-forwarded-proto"], "https");   // kept from the trusted proxy
  EXPECT_EQ(f.count("x-portcullis-user"), 0u);  // never kept, even from a trusted proxy
}

}  // namespace
}  // namespace portcullis
