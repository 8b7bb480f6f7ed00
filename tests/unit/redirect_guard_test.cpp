// RedirectGuard: the post-login return URL is same-origin or on the allowlist, and every known
// open-redirect trick (protocol-relative, backslashes, schemes, userinfo, encodings, Unicode,
// look-alike hosts, ports, downgrades) is refused.
#include "sso/redirect_guard.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

namespace portcullis {
namespace {

using namespace std::string_literals;

const std::vector<std::string> kAllowlist = {
    "good.example", "*.apps.example", "alt.example:8443", "Mixed.Example", "10.1.2.3",
};

struct Case {
  std::string url;
  std::string scheme = "https";  // of the request
  std::string host = "gw.example";
  std::string expected;  // accepted: the URL; refused: a substring of the reason
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << "{url=\"" << c.url << "\" request=" << c.scheme << "://" << c.host << " expected=\""
      << c.expected << "\"}";
}

// ---------------------------------------------------------------------------------------------
// Accepted, with the exact normalized URL.

class Accepted : public ::testing::TestWithParam<Case> {};

TEST_P(Accepted, ReturnsNormalizedUrl) {
  const auto& c = GetParam();
  const RedirectGuard guard(kAllowlist);
  const auto result = guard.check(c.url, c.scheme, c.host);
  ASSERT_TRUE(result.has_value()) << result.error();
  EXPECT_EQ(*result, c.expected);
}

INSTANTIATE_TEST_SUITE_P(
    RedirectGuard, Accepted,
    ::testing::Values(
        // Relative paths are same-origin.
        Case{"/a/b?c#d", "https", "gw.example", "https://gw.example/a/b?c#d"},
        Case{"/", "https", "gw.example", "https://gw.example/"},
        Case{"/?", "https", "gw.example", "https://gw.example/?"},
        Case{"/a#", "https", "gw.example", "https://gw.example/a#"},
        Case{"/a/b?c#d", "http", "gw.example:8080", "http://gw.example:8080/a/b?c#d"},
        Case{"/x", "https", "gw.example:443", "https://gw.example/x"},
        Case{"/x", "http", "gw.example:80", "http://gw.example/x"},
        Case{"/x", "https", "GW.Example:8443", "https://gw.example:8443/x"},
        Case{"/x", "HTTPS", "gw.example", "https://gw.example/x"},
        Case{"/x", "https", "[::1]:8443", "https://[::1]:8443/x"},
        Case{"/x", "https", "127.0.0.1:8443", "https://127.0.0.1:8443/x"},
        Case{"/a//b", "https", "gw.example", "https://gw.example/a//b"},
        Case{"/a/b/", "https", "gw.example", "https://gw.example/a/b/"},
        Case{"/;@evil.example", "https", "gw.example", "https://gw.example/;@evil.example"},
        Case{"/a:b", "https", "gw.example", "https://gw.example/a:b"},
        // The query and fragment are the target's business; only their characters are checked.
        Case{"/p?next=https://evil.example", "https", "gw.example",
             "https://gw.example/p?next=https://evil.example"},
        Case{"/p?a=1&b=%2F%2F#/route", "https", "gw.example",
             "https://gw.example/p?a=1&b=%2F%2F#/route"},
        // Percent-encoding normalization: unreserved decoded, other escapes upper-cased.
        Case{"/%7Euser/%61b%2fc?q=%2f%7e#%7efrag", "https", "gw.example",
             "https://gw.example/~user/ab%2Fc?q=%2F~#~frag"},
        Case{"/caf%c3%a9", "https", "gw.example", "https://gw.example/caf%C3%A9"},
        Case{"/%EF%BC%8F%EF%BC%8Fevil.example", "https", "gw.example",
             "https://gw.example/%EF%BC%8F%EF%BC%8Fevil.example"},
        Case{"/a%2Eb", "https", "gw.example", "https://gw.example/a.b"},
        Case{"/a%20b", "https", "gw.example", "https://gw.example/a%20b"},
        // Allowlisted absolute URLs.
        Case{"https://good.example", "https", "gw.example", "https://good.example/"},
        Case{"https://good.example/x?y#z", "https", "gw.example", "https://good.example/x?y#z"},
        Case{"HTTPS://GOOD.EXAMPLE/Path", "https", "gw.example", "https://good.example/Path"},
        Case{"https://good.example:443/x", "https", "gw.example", "https://good.example/x"},
        Case{"https://mixed.example/", "https", "gw.example", "https://mixed.example/"},
        Case{"https://MIXED.example/", "https", "gw.example", "https://mixed.example/"},
        Case{"https://good.example#@evil.example", "https", "gw.example",
             "https://good.example/#@evil.example"},
        Case{"https://good.example?@evil.example", "https", "gw.example",
             "https://good.example/?@evil.example"},
        Case{"https://10.1.2.3/x", "https", "gw.example", "https://10.1.2.3/x"},
        // Wildcards: any depth of subdomain.
        Case{"https://a.apps.example/x", "https", "gw.example", "https://a.apps.example/x"},
        Case{"https://a.b.apps.example/", "https", "gw.example", "https://a.b.apps.example/"},
        Case{"https://A-1.Apps.Example/", "https", "gw.example", "https://a-1.apps.example/"},
        // Ports: an entry with a port allows exactly that port.
        Case{"https://alt.example:8443/x", "https", "gw.example", "https://alt.example:8443/x"},
        // http only from an http request; https from http is an upgrade, allowed.
        Case{"http://good.example/x", "http", "gw.example", "http://good.example/x"},
        Case{"http://good.example:80/x", "http", "gw.example", "http://good.example/x"},
        Case{"https://good.example/x", "http", "gw.example", "https://good.example/x"},
        // Same-origin absolute URLs, also for hosts not on the allowlist.
        Case{"https://gw.example/x", "https", "gw.example", "https://gw.example/x"},
        Case{"https://GW.example:443/x", "https", "gw.example", "https://gw.example/x"},
        Case{"https://gw.example/x", "https", "gw.example:443", "https://gw.example/x"},
        Case{"https://gw.example:8443/x", "https", "gw.example:8443", "https://gw.example:8443/x"},
        Case{"http://gw.example:8080/x?y", "http", "gw.example:8080", "http://gw.example:8080/x?y"},
        Case{"https://127.0.0.1:8443/", "https", "127.0.0.1:8443", "https://127.0.0.1:8443/"}));

// ---------------------------------------------------------------------------------------------
// Refused, with the reason that must have fired.

class Refused : public ::testing::TestWithParam<Case> {};

TEST_P(Refused, ReturnsReason) {
  const auto& c = GetParam();
  const RedirectGuard guard(kAllowlist);
  const auto result = guard.check(c.url, c.scheme, c.host);
  ASSERT_FALSE(result.has_value()) << "accepted as " << *result;
  EXPECT_NE(result.error().find(c.expected), std::string::npos) << result.error();
}

Case refused(std::string url, std::string reason) {
  return Case{std::move(url), "https", "gw.example", std::move(reason)};
}
Case refused_from(std::string scheme, std::string host, std::string url, std::string reason) {
  return Case{std::move(url), std::move(scheme), std::move(host), std::move(reason)};
}

INSTANTIATE_TEST_SUITE_P(Size, Refused,
                         ::testing::Values(refused("", "is empty"),
                                           refused("/" + std::string(2048, 'a'),
                                                   "longer than 2048"),
                                           refused("https://good.example/" + std::string(2100, 'a'),
                                                   "longer than 2048")));

INSTANTIATE_TEST_SUITE_P(ProtocolRelative, Refused,
                         ::testing::Values(refused("//evil.example", "protocol-relative"),
                                           refused("//evil.example/path", "protocol-relative"),
                                           refused("///evil.example", "protocol-relative"),
                                           refused("////evil.example", "protocol-relative"),
                                           refused("//good.example", "protocol-relative"),
                                           refused("//gw.example/x", "protocol-relative")));

INSTANTIATE_TEST_SUITE_P(
    Backslash, Refused,
    ::testing::Values(refused("/\\evil.example", "backslash"),
                      refused("\\\\evil.example", "backslash"),
                      refused("\\/evil.example", "backslash"),
                      refused("/\\/evil.example", "backslash"),
                      refused("https:\\\\evil.example", "backslash"),
                      refused("https://good.example\\@evil.example", "backslash"),
                      refused("http://evil.example\\.good.example", "backslash"),
                      refused("https://good.example/a\\b", "backslash")));

INSTANTIATE_TEST_SUITE_P(
    MissingAuthority, Refused,
    ::testing::Values(refused("https:evil.example", "no //"),
                      refused("https:/evil.example", "no //"),
                      refused_from("http", "gw.example", "http:/evil.example", "no //"),
                      refused_from("http", "gw.example", "http:evil.example", "no //"),
                      refused("https:%2F%2Fevil.example", "no //"),
                      refused("https:good.example/x", "no //"),
                      refused("https:///evil.example", "host is empty"),
                      refused("https://:443/", "host is empty")));

INSTANTIATE_TEST_SUITE_P(
    Schemes, Refused,
    ::testing::Values(
        refused("javascript:alert(1)", "scheme"), refused("JavaScript:alert(1)", "scheme"),
        refused("javascript://good.example/%0aalert(1)", "scheme"),
        refused("javascript:%2F%2F%0aalert(1)", "scheme"), refused("data:", "scheme"),
        refused("data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "scheme"),
        refused("vbscript:msgbox(1)", "scheme"), refused("ftp://good.example/", "scheme"),
        refused("file:///etc/passwd", "scheme"), refused("ws://good.example/", "scheme"),
        refused("httpx://good.example/", "scheme"), refused("a:b", "scheme"),
        // Broken schemes do not parse as a URI reference at all.
        refused("java%0ascript:alert(1)", "not a valid URI reference"),
        refused("<>javascript:alert(1)", "not a valid URI reference")));

INSTANTIATE_TEST_SUITE_P(
    Userinfo, Refused,
    ::testing::Values(refused("https://good.example@evil.example", "user info"),
                      refused("https://good.example@evil.example/", "user info"),
                      refused("https://user:pw@good.example/", "user info"),
                      refused("https://user@good.example/", "user info"),
                      refused("https://@good.example/", "user info"),
                      refused("https://:@good.example/", "user info"),
                      refused("https://good.example:443@evil.example/", "user info"),
                      refused("https://good.example%2F@evil.example/", "user info"),
                      refused("https://gw.example@evil.example/", "user info")));

INSTANTIATE_TEST_SUITE_P(ControlAndSpace, Refused,
                         ::testing::Values(refused(" /a", "space"), refused("/a b", "space"),
                                           refused("/a ", "space"),
                                           refused("\t//evil.example", "control"),
                                           refused("/\t/evil.example", "control"),
                                           refused("/\n/evil.example", "control"),
                                           refused("/a\r\nSet-Cookie: x=1", "control"),
                                           refused("java\tscript:alert(1)", "control"),
                                           refused("https://good.example\t/", "control"),
                                           refused("/a\0b"s, "control"),
                                           refused("\0/a"s, "control"), refused("/\x7f", "control"),
                                           refused("/\x1b[31m", "control")));

INSTANTIATE_TEST_SUITE_P(
    PercentEncoded, Refused,
    ::testing::Values(
        refused("/%2F%2Fevil.example", "starts with //"),
        refused("/%2f%2fevil.example", "starts with //"),
        refused("/%2Fevil.example", "starts with //"), refused("/%5Cevil.example", "backslash"),
        refused("/%5cevil.example", "backslash"), refused("/%5C%5Cevil.example", "backslash"),
        refused("/a%5Cb", "backslash"), refused("%2F%2Fevil.example", "does not start with /"),
        refused("%5C%5Cevil.example", "does not start with /"),
        refused("/%252F%252Fevil.example", "starts with //"),
        refused("/%25252F%25252Fevil.example", "starts with //"),
        refused("/%255Cevil.example", "backslash"), refused("/%09/evil.example", "control"),
        refused("/%0D%0ALocation:%20https://evil.example", "control"), refused("/%00", "control"),
        refused("/%7F", "control"), refused("/%250A", "control"),
        refused("https://good.example/%2F%2Fevil.example", "starts with //"),
        refused("https://good.example//evil.example", "starts with //"),
        refused("https://%67ood.example/", "not a valid DNS name"),
        refused("https://good.example%40evil.example/", "not a valid DNS name"),
        refused("https://evil.example%23.good.example/", "not a valid DNS name"),
        refused("https://good.example%00.evil.example/", "not a valid DNS name"),
        refused("https://good%2Eexample/", "not a valid DNS name"),
        refused("/%", "not a valid URI reference"), refused("/%zz", "not a valid URI reference"),
        refused("https://good.example/%2", "not a valid URI reference")));

INSTANTIATE_TEST_SUITE_P(
    DotSegments, Refused,
    ::testing::Values(refused("/../evil", ". or .."), refused("/./x", ". or .."),
                      refused("/a/..", ". or .."), refused("/a/.", ". or .."),
                      refused("/.//evil.example", ". or .."), refused("/%2e%2e/x", ". or .."),
                      refused("/%2E", ". or .."), refused("/a/..%2F..%2Fb", ". or .."),
                      refused("/%252e%252e/x", ". or .."),
                      refused("https://good.example/../x", ". or ..")));

INSTANTIATE_TEST_SUITE_P(
    NonAscii, Refused,
    ::testing::Values(
        // Fullwidth solidus U+FF0F, which some normalizers turn into "/".
        refused("/\xEF\xBC\x8F\xEF\xBC\x8F"
                "evil.example",
                "non-ASCII"),
        refused("\xEF\xBC\x8F\xEF\xBC\x8F"
                "evil.example",
                "non-ASCII"),
        // "gооgle" with Cyrillic o (U+043E).
        refused("https://g\xD0\xBE\xD0\xBEgle.example/", "non-ASCII"),
        // An IDN in Unicode form, and an ideographic full stop U+3002 as a dot.
        refused("https://b\xC3\xBC"
                "cher.example/",
                "non-ASCII"),
        refused("https://good\xE3\x80\x82"
                "example/",
                "non-ASCII"),
        refused("/caf\xC3\xA9", "non-ASCII"), refused("/a?q=\xC3\xA9", "non-ASCII"),
        refused("/a#\xFF", "non-ASCII"),
        // U+2215 division slash, U+2044 fraction slash.
        refused("/\xE2\x88\x95/evil.example", "non-ASCII"),
        refused("/\xE2\x81\x84/evil.example", "non-ASCII"),
        // The punycode form is ASCII but not on the list.
        refused("https://xn--bcher-kva.example/", "not allowed")));

INSTANTIATE_TEST_SUITE_P(
    HostNotAllowed, Refused,
    ::testing::Values(refused("https://evil.example/", "not allowed"),
                      refused("HTTPS://EVIL.EXAMPLE/", "not allowed"),
                      refused("https://good.example.evil.example/", "not allowed"),
                      refused("https://evilgood.example/", "not allowed"),
                      refused("https://good.exampleevil/", "not allowed"),
                      refused("https://evil.example/good.example", "not allowed"),
                      refused("https://evil.example/https://good.example", "not allowed"),
                      refused("https://evil.example?good.example", "not allowed"),
                      refused("https://evil.example#good.example", "not allowed"),
                      refused("https://evil.example/?next=https://good.example", "not allowed"),
                      refused("https://sub.good.example/", "not allowed"),
                      refused("https://apps.example/", "not allowed"),
                      refused("https://xapps.example/", "not allowed"),
                      refused("https://a.apps.example.evil.example/", "not allowed"),
                      refused("https://gw.example.evil.example/", "not allowed"),
                      refused("https://example/", "not allowed"),
                      refused("https://127.0.0.1/", "not allowed"),
                      refused("https://10.1.2.30/", "not allowed")));

// Boost.URL 1.81 accepts an authority followed by a path without "/" (boostorg/url#636):
// "https://10.1.2.3.evil.example/" parses as the allowlisted host 10.1.2.3 and the path
// ".evil.example/". The guard checks the boundary itself.
INSTANTIATE_TEST_SUITE_P(
    AuthorityBoundary, Refused,
    ::testing::Values(refused("https://10.1.2.3.evil.example/", "not a valid URI reference"),
                      refused("https://10.1.2.3x/", "not a valid URI reference"),
                      refused("https://10.1.2.3:443.evil.example/", "not a valid URI reference"),
                      refused("https://good.example:443.evil.example/",
                              "not a valid URI reference"),
                      refused("https://good.example:443x/", "not a valid URI reference"),
                      refused("https://gw.example:443x", "not a valid URI reference"),
                      refused("https://[::1]x/", "not a valid URI reference"),
                      refused("https://good.example:443:443/", "not a valid URI reference"),
                      refused("https://good.example:https/", "not a valid URI reference"),
                      refused("https://good.example:/evil.example", "port is invalid")));

INSTANTIATE_TEST_SUITE_P(
    HostSyntax, Refused,
    ::testing::Values(refused("https://good.example./", "trailing dot"),
                      refused("https://good.example.:443/", "trailing dot"),
                      refused("https://a.apps.example./", "trailing dot"),
                      refused("https://gw.example./x", "trailing dot"),
                      refused("https://good..example/", "not a valid DNS name"),
                      refused("https://.good.example/", "not a valid DNS name"),
                      refused("https://-good.example/", "not a valid DNS name"),
                      refused("https://good-.example/", "not a valid DNS name"),
                      refused("https://good_x.example/", "not a valid DNS name"),
                      refused("https://*.apps.example/", "not a valid DNS name"),
                      refused("https://" + std::string(64, 'a') + ".good.example/",
                              "not a valid DNS name"),
                      refused("https://[::1]/", "not a DNS name or IPv4"),
                      refused("https://[::ffff:127.0.0.1]/", "not a DNS name or IPv4"),
                      refused("https://[v1.x]/", "not a DNS name or IPv4"),
                      // Hosts that browsers read as IPv4 addresses.
                      refused("https://0x7f.1/", "non-canonical IP"),
                      refused("https://2130706433/", "non-canonical IP"),
                      refused("https://127.1/", "non-canonical IP"),
                      refused("https://010.1.2.3/", "non-canonical IP"),
                      refused("https://a.0x/", "non-canonical IP")));

INSTANTIATE_TEST_SUITE_P(
    Ports, Refused,
    ::testing::Values(
        refused("https://good.example:8443/", "port is not allowed"),
        refused("https://good.example:444/", "port is not allowed"),
        refused("https://good.example:80/", "port is not allowed"),
        refused("https://a.apps.example:8443/", "port is not allowed"),
        refused("https://alt.example/", "port is not allowed"),
        refused("https://alt.example:443/", "port is not allowed"),
        refused("https://alt.example:8444/", "port is not allowed"),
        refused("https://good.example:0443/", "port is invalid"),
        refused("https://good.example:/", "port is invalid"),
        refused("https://good.example:0/", "port is invalid"),
        refused("https://good.example:65536/", "port is invalid"),
        refused("https://good.example:99999/", "port is invalid"),
        refused("https://good.example:443443/", "port is invalid"),
        // Same host as the request but another port: another origin.
        refused("https://gw.example:8443/x", "not allowed"),
        refused_from("https", "gw.example:8443", "https://gw.example/x", "not allowed"),
        refused_from("http", "gw.example:8080", "http://gw.example:8081/x", "not allowed"),
        refused_from("http", "good.example", "http://good.example:443/", "port is not allowed")));

INSTANTIATE_TEST_SUITE_P(
    Downgrade, Refused,
    ::testing::Values(refused("http://good.example/", "downgrade"),
                      refused("http://good.example:80/", "downgrade"),
                      refused("http://a.apps.example/", "downgrade"),
                      refused("http://alt.example:8443/", "downgrade"),
                      // The request's own host over http is another origin, not on the list.
                      refused("http://gw.example/x", "not allowed")));

INSTANTIATE_TEST_SUITE_P(
    NotAPath, Refused,
    ::testing::Values(
        refused("evil.example", "does not start with /"),
        refused("evil.example/path", "does not start with /"),
        refused("./x", "does not start with /"), refused("../x", "does not start with /"),
        refused(".", "does not start with /"), refused("?next=/", "does not start with /"),
        refused("#frag", "does not start with /"), refused("https", "does not start with /"),
        refused("jav&#x09;ascript:alert(1)", "does not start with /"),
        refused("/a|b", "not a valid URI reference"), refused("/a<b>", "not a valid URI reference"),
        refused("/a^b", "not a valid URI reference"), refused("/a\"b", "not a valid URI reference"),
        refused("/a`b", "not a valid URI reference"), refused("/a{b}", "not a valid URI reference"),
        refused("/a#b#c", "not a valid URI reference")));

INSTANTIATE_TEST_SUITE_P(
    BadRequest, Refused,
    ::testing::Values(refused_from("ftp", "gw.example", "/x", "request scheme"),
                      refused_from("", "gw.example", "/x", "request scheme"),
                      refused_from("https", "", "/x", "request host is empty"),
                      refused_from("https", "gw.example.", "/x", "trailing dot"),
                      refused_from("https", "user@gw.example", "/x", "user info"),
                      refused_from("https", "gw.example:abc", "/x", "request host"),
                      refused_from("https", "gw.example:0", "/x", "invalid port"),
                      refused_from("https", "gw.example:", "/x", "invalid port"),
                      refused_from("https", "gw.example/x", "/x", "request host"),
                      refused_from("https", "gw example", "/x", "space"),
                      refused_from("https", "gw\\example", "/x", "backslash"),
                      refused_from("https", "g\xD0\xBE.example", "/x", "non-ASCII"),
                      refused_from("https", "gw_1.example", "/x", "not a valid DNS name"),
                      refused_from("https", "0x7f.1", "/x", "non-canonical IP"),
                      refused_from("https", "[v1.x]", "/x", "not a DNS name or IP")));

// ---------------------------------------------------------------------------------------------
// The allowlist itself.

TEST(RedirectGuardEntries, ValidEntries) {
  for (const char* entry : {"good.example", "*.good.example", "good.example:8443",
                            "*.good.example:8443", "1.2.3.4", "Good.Example", "localhost"}) {
    EXPECT_EQ(RedirectGuard::entry_error(entry), std::nullopt) << entry;
  }
}

TEST(RedirectGuardEntries, InvalidEntries) {
  for (const char* entry : {"",
                            "*",
                            "*.",
                            "*.com",
                            "**.good.example",
                            "*good.example",
                            "good.*.example",
                            "good.example.",
                            "good..example",
                            "-good.example",
                            "good.example:0",
                            "good.example:",
                            "good.example:abc",
                            "good.example:65536",
                            "good.example:0443",
                            "*.1.2.3",
                            "0x7f.1",
                            "127.1",
                            "[::1]",
                            "good example",
                            "good.example/path",
                            "https://good.example",
                            "user@good.example",
                            "g\xD0\xBE.example"}) {
    const auto error = RedirectGuard::entry_error(entry);
    ASSERT_TRUE(error.has_value()) << entry;
    EXPECT_NE(error->find("allowlist"), std::string::npos) << *error;
  }
}

TEST(RedirectGuardEntries, InvalidEntriesNeverMatch) {
  const RedirectGuard guard({"*.com", "good.example:abc", "good.example.", "0x7f.1"});
  for (const char* url : {"https://x.com/", "https://good.example/", "https://good.example:443/",
                          "https://0x7f.1/"}) {
    const auto result = guard.check(url, "https", "gw.example");
    EXPECT_FALSE(result.has_value()) << url << " accepted as " << *result;
  }
}

TEST(RedirectGuardEntries, EmptyAllowlistIsSameOriginOnly) {
  const RedirectGuard guard({});
  const auto relative = guard.check("/a?b#c", "https", "gw.example");
  ASSERT_TRUE(relative.has_value()) << relative.error();
  EXPECT_EQ(*relative, "https://gw.example/a?b#c");
  const auto same = guard.check("https://gw.example/a", "https", "gw.example");
  ASSERT_TRUE(same.has_value()) << same.error();
  EXPECT_EQ(*same, "https://gw.example/a");
  const auto other = guard.check("https://good.example/", "https", "gw.example");
  ASSERT_FALSE(other.has_value());
  EXPECT_EQ(other.error(), "return URL host is not allowed");
}

TEST(RedirectGuardEntries, PortEntryAndDefaultEntryAreIndependent) {
  const RedirectGuard both({"good.example", "good.example:8443"});
  const auto default_port = both.check("https://good.example/", "https", "gw.example");
  ASSERT_TRUE(default_port.has_value()) << default_port.error();
  EXPECT_EQ(*default_port, "https://good.example/");
  const auto explicit_port = both.check("https://good.example:8443/", "https", "gw.example");
  ASSERT_TRUE(explicit_port.has_value()) << explicit_port.error();
  EXPECT_EQ(*explicit_port, "https://good.example:8443/");
  EXPECT_FALSE(both.check("https://good.example:9443/", "https", "gw.example").has_value());
}

TEST(RedirectGuardEntries, WildcardDoesNotCoverApexOrLookAlikes) {
  const RedirectGuard guard({"*.good.example"});
  const auto sub = guard.check("https://x.good.example/", "https", "gw.example");
  ASSERT_TRUE(sub.has_value()) << sub.error();
  EXPECT_EQ(*sub, "https://x.good.example/");
  for (const char* url : {"https://good.example/", "https://xgood.example/",
                          "https://x.good.example.evil/", "https://.good.example/"}) {
    EXPECT_FALSE(guard.check(url, "https", "gw.example").has_value()) << url;
  }
}

TEST(RedirectGuard, LengthLimitIsInclusive) {
  const RedirectGuard guard({});
  const std::string at_limit = "/" + std::string(2047, 'a');
  const auto ok = guard.check(at_limit, "https", "gw.example");
  ASSERT_TRUE(ok.has_value()) << ok.error();
  EXPECT_EQ(*ok, "https://gw.example" + at_limit);
  const auto over = guard.check(at_limit + "a", "https", "gw.example");
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error(), "return URL is longer than 2048 bytes");
}

}  // namespace
}  // namespace portcullis
