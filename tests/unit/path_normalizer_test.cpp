// Table-driven tests for normalize_target / normalize_host. The tables mirror
// docs/path-normalization.md; a change here should change the document too.
#include "http/path_normalizer.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace portcullis {
namespace {

using namespace std::string_view_literals;

// One row: input, and either the expected path (+ query) or the expected error.
struct TargetCase {
  std::string_view input;
  std::string_view path;   // expected path when error is empty
  std::string_view query;  // expected query when error is empty
  std::optional<TargetError> error;
};

TargetCase ok(std::string_view in, std::string_view path, std::string_view query = "") {
  return {in, path, query, std::nullopt};
}
TargetCase bad(std::string_view in, TargetError e) {
  return {in, "", "", e};
}

void run_cases(const std::vector<TargetCase>& cases, const PathNormalizeOptions& options = {}) {
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << "input: \"" << std::string(c.input) << "\"");
    const auto r = normalize_target(c.input, options);
    if (c.error) {
      ASSERT_FALSE(r.has_value()) << "got path " << r->path;
      EXPECT_EQ(r.error(), *c.error) << "got " << to_string(r.error());
    } else {
      ASSERT_TRUE(r.has_value()) << "got error " << to_string(r.error());
      EXPECT_EQ(r->path, c.path);
      EXPECT_EQ(r->query, c.query);
    }
  }
}

TEST(PathNormalizer, TraversalAttemptsNeverStayUnderPublic) {
  // Every one of these must reach /admin (and so the /admin route and policy), never /public.
  run_cases({
      ok("/public/../admin", "/admin"),
      ok("/public/%2e%2e/admin", "/admin"),
      ok("/public/%2E%2E/admin", "/admin"),
      ok("/public/.%2e/admin", "/admin"),
      ok("/public/%2e./admin", "/admin"),
      ok("//admin", "/admin"),
      ok("///admin", "/admin"),
      ok("/./admin", "/admin"),
      ok("/%2e/admin", "/admin"),
      ok("/admin;x=1", "/admin"),
      ok("/admin;", "/admin"),
      ok("/public/..;/admin", "/admin"),
      ok("/public/..;x=1/admin", "/admin"),
      ok("/public/%2e%2e;/admin", "/admin"),
      ok("/public/..%3b/admin", "/admin"),
      ok("/public/..%3Bjsessionid=1/admin", "/admin"),
      ok("/public;/../admin", "/admin"),
      ok("/public;x=/../admin", "/admin"),
      ok("/%61dmin", "/admin"),
      ok("/%41DMIN", "/ADMIN"),  // paths stay case-sensitive
      ok("/public/./../admin", "/admin"),
      ok("/public/x/../../admin", "/admin"),
      ok("/../admin", "/admin"),
      ok("/../../../../admin", "/admin"),
      ok("/public/..//admin", "/admin"),
      ok("/public//../admin",
         "/admin"),  // the empty segment is merged first, then ".." pops public
  });
}

TEST(PathNormalizer, DotSegmentsAndSlashes) {
  run_cases({
      ok("/", "/"),
      ok("//", "/"),
      ok("/.", "/"),
      ok("/..", "/"),
      ok("/./", "/"),
      ok("/../", "/"),
      ok("/a", "/a"),
      ok("/a/b", "/a/b"),
      ok("/a/b/", "/a/b/"),
      ok("/a/b//", "/a/b/"),
      ok("/a//b///c", "/a/b/c"),
      ok("/a/b/..", "/a/"),
      ok("/a/b/../", "/a/"),
      ok("/a/.", "/a/"),
      ok("/a/./", "/a/"),
      ok("/a/./b", "/a/b"),
      ok("/a/b/../c", "/a/c"),
      ok("/a/b/../../c", "/c"),
      ok("/a/b/../../../c", "/c"),
      ok("/a/...", "/a/..."),  // three dots is an ordinary name
      ok("/a/..b", "/a/..b"),
      ok("/a/b..", "/a/b.."),
      ok("/a/.b", "/a/.b"),
  });
}

TEST(PathNormalizer, PathParametersAreStripped) {
  run_cases({
      ok("/a;b/c;d", "/a/c"),
      ok("/a;b=1;c=2/c", "/a/c"),
      ok("/a/;x", "/a/"),
      ok("/a/;x/b", "/a/b"),
      ok("/a/..;", "/"),
      ok("/a/.;x", "/a/"),
      ok("/a;x=%2e%2e/b", "/a/b"),
      // '?' always ends the path, even inside parameters.
      ok("/a;x=?y", "/a", "y"),
      ok("/public;?/../admin", "/public", "/../admin"),
      // Encoded ';' is data, not a parameter delimiter, except that "..%3B..." is still "..".
      ok("/a%3Bb", "/a%3Bb"),
      ok("/a/..%3B", "/"),
      ok("/a/.%3Bx/b", "/a/b"),
      ok("/a/%3Bx", "/a/%3Bx"),
  });
}

TEST(PathNormalizer, PercentEncoding) {
  run_cases({
      ok("/%41%42%43", "/ABC"),
      ok("/a%2d%5f%2e%7e", "/a-_.~"),
      ok("/a%2D%5F%2E%7E", "/a-_.~"),
      ok("/%7euser", "/~user"),
      ok("/a%3a", "/a%3A"),
      ok("/a%3A", "/a%3A"),
      ok("/a%20b", "/a%20b"),
      ok("/a%25", "/a%25"),
      ok("/a/%252e%252e/b", "/a/%252e%252e/b"),  // decoded once only
      ok("/a%3fb", "/a%3Fb"),
      ok("/a%23b", "/a%23b"),
      ok("/a%0ab", "/a%0Ab"),
      ok("/caf\xC3\xA9", "/caf%C3%A9"),
      ok("/caf%c3%a9", "/caf%C3%A9"),
      ok("/a{b}|c^d`e", "/a%7Bb%7D%7Cc%5Ed%60e"),
      ok("/a\"<>[]", "/a%22%3C%3E%5B%5D"),
      ok("/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,="),
      bad("/a%", TargetError::bad_percent_encoding),
      bad("/a%4", TargetError::bad_percent_encoding),
      bad("/a%4/b", TargetError::bad_percent_encoding),
      bad("/a%zz", TargetError::bad_percent_encoding),
      bad("/a%g1", TargetError::bad_percent_encoding),
      bad("/a%%41", TargetError::bad_percent_encoding),
      bad("/a;x=%zz", TargetError::bad_percent_encoding),  // parameters are checked too
  });
}

TEST(PathNormalizer, RefusedTargets) {
  run_cases({
      bad("", TargetError::empty),
      bad("*", TargetError::not_origin_form),
      bad("a/b", TargetError::not_origin_form),
      bad("http://example.com/a", TargetError::not_origin_form),
      bad("?a", TargetError::not_origin_form),
      bad("/a%2Fb", TargetError::encoded_slash),
      bad("/a%2fb", TargetError::encoded_slash),
      bad("/a%5Cb", TargetError::encoded_slash),
      bad("/a%5cb", TargetError::encoded_slash),
      bad("/public/..%2Fadmin", TargetError::encoded_slash),
      bad("/a;%2F", TargetError::encoded_slash),
      bad("/a\\b", TargetError::backslash),
      bad("/public\\..\\admin", TargetError::backslash),
      bad("/a;x\\y", TargetError::backslash),
      bad("/a\0b"sv, TargetError::nul),
      bad("/a%00b", TargetError::nul),
      bad("/a;%00", TargetError::nul),
      bad("/a b", TargetError::invalid_character),
      bad("/a\tb", TargetError::invalid_character),
      bad("/a\rb", TargetError::invalid_character),
      bad("/a\nb", TargetError::invalid_character),
      bad("/a\x7f", TargetError::invalid_character),
      bad("/a\x01", TargetError::invalid_character),
      bad("/a#frag", TargetError::invalid_character),
  });
}

TEST(PathNormalizer, Query) {
  run_cases({
      ok("/a?", "/a", ""),
      ok("/a?x=1", "/a", "x=1"),
      ok("/a?x=1;y=2", "/a", "x=1;y=2"),
      ok("/a?b/../c", "/a", "b/../c"),
      ok("/a/../b?x=%2F%5c%00%zz", "/b", "x=%2F%5c%00%zz"),  // verbatim, not decoded
      ok("/a?x=?y", "/a", "x=?y"),
      ok("/a?x=\\", "/a", "x=\\"),
      ok("/a?caf\xC3\xA9", "/a", "caf\xC3\xA9"),
      ok("/?q", "/", "q"),
      bad("/a?x y", TargetError::invalid_character),
      bad("/a?x#y", TargetError::invalid_character),
      bad("/a?x\x01", TargetError::invalid_character),
      bad("/a?x\x7f", TargetError::invalid_character),
      bad("/a?x\0"sv, TargetError::invalid_character),
      bad("/a?x\r\nHost: evil", TargetError::invalid_character),
  });
}

TEST(PathNormalizer, AllowEncodedSlashKeepsItEncoded) {
  PathNormalizeOptions options;
  options.allow_encoded_slash = true;
  run_cases(
      {
          ok("/a%2fb", "/a%2Fb"),
          ok("/a%2Fb", "/a%2Fb"),
          ok("/a%5cb", "/a%5Cb"),
          ok("/repos/org%2Fname/issues", "/repos/org%2Fname/issues"),
          ok("/a%2F/../b", "/b"),  // "a%2F" is one segment, ".." removes it
          ok("/a;x%2Fy/b", "/a/b"),
          // A piece between encoded slashes that is a dot segment is still refused: an upstream
          // that decodes %2F would resolve it.
          bad("/public/..%2Fadmin", TargetError::encoded_slash),
          bad("/public/%2F..%2Fadmin", TargetError::encoded_slash),
          bad("/public/.%2Fadmin", TargetError::encoded_slash),
          bad("/public/x%5C..", TargetError::encoded_slash),
          bad("/public/x%2F..%3B", TargetError::encoded_slash),
          bad("/a\\b", TargetError::backslash),
          bad("/a%00", TargetError::nul),
      },
      options);
}

TEST(PathNormalizer, MaxLength) {
  PathNormalizeOptions options;
  options.max_length = 8;
  run_cases({ok("/abcdefg", "/abcdefg"), ok("/abc?def", "/abc", "def"),
             bad("/abcdefgh", TargetError::too_long), bad("/a?bcdefg", TargetError::too_long)},
            options);
  const std::string long_target = "/" + std::string(8192, 'a');
  EXPECT_EQ(normalize_target(long_target).error(), TargetError::too_long);
  EXPECT_TRUE(normalize_target(std::string_view(long_target).substr(0, 8192)).has_value());
}

TEST(PathNormalizer, ErrorNames) {
  for (auto e :
       {TargetError::empty, TargetError::not_origin_form, TargetError::bad_percent_encoding,
        TargetError::encoded_slash, TargetError::backslash, TargetError::nul,
        TargetError::invalid_character, TargetError::too_long}) {
    EXPECT_FALSE(to_string(e).empty());
  }
}

TEST(PathNormalizer, OutputIsAFixedPoint) {
  // Normalising a normalised path changes nothing (the upstream sees what policy saw).
  for (std::string_view in : {"/public/%2e%2e/admin", "/a/b/", "/a%3ab", "/caf\xC3\xA9", "/a{b}",
                              "/a/..%3Bx/b", "/a%252e", "/x/./y/../z/", "/a;p/b;q/"}) {
    const auto once = normalize_target(in);
    ASSERT_TRUE(once.has_value()) << in;
    const auto twice = normalize_target(once->path);
    ASSERT_TRUE(twice.has_value()) << in;
    EXPECT_EQ(twice->path, once->path) << in;
  }
}

TEST(PathNormalizer, RandomTargetsKeepInvariants) {
  // Deterministic pseudo-random targets built from tricky tokens. Whatever is accepted must be
  // canonical: no empty, "." or ".." segments (also not "..%3B..."), no ';', no '\\', and a
  // fixed point of normalisation.
  const std::vector<std::string_view> tokens = {
      "/",   "/", "//", ".",        "..",  "%2e", "%2E", ";", ";x=1", "%3b",
      "%3B", "a", "B",  "%41",      "%7e", "%3a", "%25", "?", "%2f",  "%5c",
      "\\",  "%", "%4", "\xC3\xA9", "{",   ":",   "@",   "~"};
  std::mt19937 rng(12345);
  std::uniform_int_distribution<std::size_t> pick(0, tokens.size() - 1);
  std::uniform_int_distribution<int> len(1, 12);
  for (int round = 0; round < 20000; ++round) {
    std::string target = "/";
    for (int n = len(rng); n > 0; --n) target += tokens[pick(rng)];
    for (bool allow : {false, true}) {
      PathNormalizeOptions options;
      options.allow_encoded_slash = allow;
      const auto r = normalize_target(target, options);
      if (!r) continue;
      SCOPED_TRACE(testing::Message() << "input: \"" << target << "\" -> " << r->path);
      const std::string& p = r->path;
      ASSERT_FALSE(p.empty());
      ASSERT_EQ(p.front(), '/');
      ASSERT_EQ(p.find("//"), std::string::npos);
      ASSERT_EQ(p.find(';'), std::string::npos);
      ASSERT_EQ(p.find('\\'), std::string::npos);
      std::size_t begin = 1;
      while (begin < p.size()) {
        auto end = p.find('/', begin);
        if (end == std::string::npos) end = p.size();
        std::string_view seg(p.data() + begin, end - begin);
        const auto semi = seg.find("%3B");
        const auto head = semi == std::string_view::npos ? seg : seg.substr(0, semi);
        ASSERT_NE(head, ".");
        ASSERT_NE(head, "..");
        begin = end + 1;
      }
      const auto again = normalize_target(p, options);
      ASSERT_TRUE(again.has_value());
      ASSERT_EQ(again->path, p);
    }
  }
}

// Host header / :authority.
struct HostCase {
  std::string_view input;
  std::string_view expected;  // "" means: refused
};

TEST(HostNormalizer, Table) {
  const std::vector<HostCase> cases = {
      {"API.Example.COM:8443", "api.example.com"},
      {"api.example.com", "api.example.com"},
      {"example.com.", "example.com"},
      {"example.com.:443", "example.com"},
      {"127.0.0.1", "127.0.0.1"},
      {"127.0.0.1:8080", "127.0.0.1"},
      {"localhost:1", "localhost"},
      {"host:65535", "host"},
      {"my_host.internal", "my_host.internal"},
      {"xn--bcher-kva.example", "xn--bcher-kva.example"},
      {"[::1]", "[::1]"},
      {"[::1]:8443", "[::1]"},
      {"[0:0:0:0:0:0:0:1]", "[::1]"},
      {"[2001:DB8::1]:443", "[2001:db8::1]"},
      {"[::ffff:127.0.0.1]", "[::ffff:127.0.0.1]"},
      // refused
      {"", ""},
      {".", ""},
      {":8443", ""},
      {"user@host", ""},
      {"user:pw@host:80", ""},
      {"host:", ""},
      {"host:0", ""},
      {"host:65536", ""},
      {"host:123456", ""},
      {"host:80a", ""},
      {"host:-1", ""},
      {"host:80:81", ""},
      {"ho st", ""},
      {" host", ""},
      {"host/", ""},
      {"ex\\ample.com", ""},
      {"exa%6dple.com", ""},
      {"a..b", ""},
      {".a", ""},
      {"example.com..", ""},
      {"a:b:c", ""},
      {"[::1", ""},
      {"[]", ""},
      {"[::1]x", ""},
      {"[::1]:", ""},
      {"[::1]:99999", ""},
      {"[zz::1]", ""},
      {"[fe80::1%25eth0]", ""},
      {"[127.0.0.1]", ""},
      {"[v1.abc]", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << "input: \"" << std::string(c.input) << "\"");
    const auto r = normalize_host(c.input);
    if (c.expected.empty()) {
      ASSERT_FALSE(r.has_value()) << "got " << *r;
      EXPECT_FALSE(r.error().empty());
    } else {
      ASSERT_TRUE(r.has_value()) << "got error " << r.error();
      EXPECT_EQ(*r, c.expected);
    }
  }
}

TEST(HostNormalizer, LengthLimits) {
  const std::string label63(63, 'a');
  const std::string label64(64, 'a');
  EXPECT_TRUE(normalize_host(label63 + ".com").has_value());
  EXPECT_FALSE(normalize_host(label64 + ".com").has_value());
  // 4 * 63 + 3 dots = 255; trim to exactly 253 and 254.
  std::string name = label63 + "." + label63 + "." + label63 + "." + label63;
  name.resize(253);
  EXPECT_TRUE(normalize_host(name).has_value());
  EXPECT_TRUE(normalize_host(name + ".").has_value());  // trailing dot not counted
  EXPECT_TRUE(normalize_host(name + ":443").has_value());
  EXPECT_FALSE(normalize_host(name + "a").has_value());
}

}  // namespace
}  // namespace portcullis
