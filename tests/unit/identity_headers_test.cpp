// set_identity_headers(): what the upstream learns about the caller, and that nothing a token
// carries can split or forge a header.
#include <gtest/gtest.h>

#include <boost/beast/http/fields.hpp>

#include "authn/identity.hpp"
#include "http/header_rules.hpp"

namespace portcullis {
namespace {

namespace http = boost::beast::http;

TEST(IdentityHeaders, UserEmailGroupsAndAssertion) {
  Identity id;
  id.subject = "00u1alice";
  id.email = "alice@example.com";
  id.groups = {"eng", "orders-readers"};
  http::fields h;
  set_identity_headers(h, id, "eyJ.a.b");
  EXPECT_EQ(h["X-Portcullis-User"], "00u1alice");
  EXPECT_EQ(h["X-Portcullis-Email"], "alice@example.com");
  EXPECT_EQ(h["X-Portcullis-Groups"], "eng,orders-readers");
  EXPECT_EQ(h["X-Portcullis-Assertion"], "eyJ.a.b");
}

TEST(IdentityHeaders, AbsentPartsAreNotSent) {
  Identity id;
  id.subject = "svc";
  http::fields h;
  set_identity_headers(h, id, {});
  EXPECT_EQ(h["X-Portcullis-User"], "svc");
  EXPECT_EQ(h.count("X-Portcullis-Email"), 0u);
  EXPECT_EQ(h.count("X-Portcullis-Groups"), 0u);
  EXPECT_EQ(h.count("X-Portcullis-Assertion"), 0u);
}

TEST(IdentityHeaders, ClientIdStandsInForAMissingSubject) {
  Identity id;
  id.client_id = "svc-billing";
  http::fields h;
  set_identity_headers(h, id, {});
  EXPECT_EQ(h["X-Portcullis-User"], "svc-billing");
}

TEST(IdentityHeaders, ControlCharactersNeverReachAHeader) {
  Identity id;
  id.subject = "alice\r\nX-Portcullis-User: root";
  id.email = "a@b\n";
  id.groups = {"ok", "bad\r\nInjected: 1", "", "also-ok"};
  http::fields h;
  set_identity_headers(h, id, {});
  EXPECT_EQ(h.count("X-Portcullis-User"), 0u);
  EXPECT_EQ(h.count("X-Portcullis-Email"), 0u);
  EXPECT_EQ(h["X-Portcullis-Groups"], "ok,also-ok");
  EXPECT_EQ(h.count("Injected"), 0u);
}

TEST(IdentityHeaders, CommasAndPercentInGroupNamesAreEncoded) {
  Identity id;
  id.subject = "alice";
  id.groups = {"CN=eng,OU=people", "100%"};
  http::fields h;
  set_identity_headers(h, id, {});
  EXPECT_EQ(h["X-Portcullis-Groups"], "CN=eng%2COU=people,100%25");
}

TEST(IdentityHeaders, ReplaceAnyValueAlreadyThere) {
  Identity id;
  id.subject = "alice";
  http::fields h;
  h.insert("X-Portcullis-User", "root");
  h.insert("X-Portcullis-User", "admin");
  set_identity_headers(h, id, {});
  EXPECT_EQ(h.count("X-Portcullis-User"), 1u);
  EXPECT_EQ(h["X-Portcullis-User"], "alice");
}

TEST(CanonicalMethod, UpperCaseOnly) {
  for (const char* ok : {"GET", "DELETE", "PROPFIND", "VERSION-CONTROL", "M_SEARCH"}) {
    EXPECT_TRUE(is_canonical_method(ok)) << ok;
  }
  for (const char* bad : {"", "delete", "Delete", "GET1", "G.T", "GET "}) {
    EXPECT_FALSE(is_canonical_method(bad)) << bad;
  }
}

}  // namespace
}  // namespace portcullis
