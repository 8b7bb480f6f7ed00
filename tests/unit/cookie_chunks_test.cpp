#include "sso/cookie_chunks.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace portcullis {
namespace {

// The Cookie header a browser would send back for these cookies.
std::string as_cookie_header(const CookieList& cookies) {
  std::string out;
  for (const auto& [name, value] : cookies) {
    if (!out.empty()) out.append("; ");
    out.append(name).append("=").append(value);
  }
  return out;
}

std::string pattern(std::size_t n) {
  std::string s(n, 'A');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"[i % 54];
  return s;
}

TEST(CookieChunks, ChunkNames) {
  EXPECT_EQ(cookie_chunk_name("__Host-pc", 0), "__Host-pc");
  EXPECT_EQ(cookie_chunk_name("__Host-pc", 1), "__Host-pc_1");
  EXPECT_EQ(cookie_chunk_name("s", 9), "s_9");
}

TEST(CookieChunks, SplitAndJoinRoundTrip) {
  struct Case {
    std::size_t size;
    std::size_t chunks;
  };
  for (Case c : {Case{0, 1}, Case{1, 1}, Case{3799, 1}, Case{3800, 1}, Case{3801, 2},
                 Case{20000, 6}, Case{38000, 10}}) {
    const std::string value = pattern(c.size);
    auto split = split_cookie("__Host-pc", value);
    ASSERT_TRUE(split) << c.size << ": " << split.error();
    ASSERT_EQ(split->size(), c.chunks) << c.size;
    for (std::size_t i = 0; i < split->size(); ++i) {
      EXPECT_EQ((*split)[i].first, cookie_chunk_name("__Host-pc", i));
      EXPECT_LE((*split)[i].second.size(), kDefaultCookieChunkSize);
      if (i + 1 < split->size()) {
        EXPECT_EQ((*split)[i].second.size(), kDefaultCookieChunkSize);
      }
    }
    const std::string header = as_cookie_header(*split);
    auto joined = join_cookie("__Host-pc", header);
    ASSERT_TRUE(joined) << c.size << ": " << joined.error();
    EXPECT_EQ(joined->value, value);
    EXPECT_EQ(joined->chunks, c.chunks);
    // Order in the header does not matter.
    CookieList reversed(split->rbegin(), split->rend());
    auto joined_reversed = join_cookie("__Host-pc", as_cookie_header(reversed));
    ASSERT_TRUE(joined_reversed);
    EXPECT_EQ(joined_reversed->value, value);
  }
}

TEST(CookieChunks, OverTheCapIsRefused) {
  auto r = split_cookie("s", pattern(38001));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "cookie s needs 38001 bytes, more than 10 cookies of 3800 bytes hold");
  EXPECT_FALSE(split_cookie("s", pattern(100), 0));
  auto small = split_cookie("s", "abcdefg", 3);
  ASSERT_TRUE(small);
  EXPECT_EQ(*small, (CookieList{{"s", "abc"}, {"s_1", "def"}, {"s_2", "g"}}));
}

TEST(CookieChunks, AbsentCookieIsNotAnError) {
  for (std::string_view header : {"", "other=1; s_x=2; ss=3; s_1x=4", ";;", "s"}) {
    auto r = join_cookie("s", header);
    ASSERT_TRUE(r) << header << ": " << r.error();
    EXPECT_EQ(r->chunks, 0u);
    EXPECT_EQ(r->value, "");
  }
  auto none = join_cookie("s", std::span<const std::string_view>());
  ASSERT_TRUE(none);
  EXPECT_EQ(none->chunks, 0u);
}

TEST(CookieChunks, EmptyValueIsOneChunk) {
  auto r = join_cookie("s", "s=");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->chunks, 1u);
  EXPECT_EQ(r->value, "");
}

TEST(CookieChunks, DuplicatesAreRefused) {
  auto plain = join_cookie("s", "s=ours; s=planted");
  ASSERT_FALSE(plain);
  EXPECT_EQ(plain.error(),
            "cookie s sent twice (one may be planted by a sibling domain); refusing both");
  EXPECT_FALSE(join_cookie("s", "s=a; s_1=b; s_1=c"));
  EXPECT_FALSE(join_cookie("s", "s=a;s= a"));
  // Across the several Cookie headers HTTP/2 may send.
  const std::vector<std::string_view> headers = {"s=a; x=1", "s=b"};
  EXPECT_FALSE(join_cookie("s", headers));
  // Duplicates of unrelated cookies are not our business.
  auto other = join_cookie("s", "x=1; x=2; s=abc");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->value, "abc");
}

TEST(CookieChunks, GapsAndForeignNumbersAreRefused) {
  auto gap = join_cookie("s", "s=a; s_2=c");
  ASSERT_FALSE(gap);
  EXPECT_EQ(gap.error(), "cookie s_2 present but s_1 missing");
  auto headless = join_cookie("s", "s_1=b");
  ASSERT_FALSE(headless);
  EXPECT_EQ(headless.error(), "cookie s_1 present but s missing");
  for (std::string_view header : {"s=a; s_0=b", "s=a; s_01=b", "s=a; s_10=b", "s=a; s_123=b"}) {
    EXPECT_FALSE(join_cookie("s", header)) << header;
  }
}

TEST(CookieChunks, HeaderParsing) {
  auto r = join_cookie("s", "  a=1 ;s=abc;\ts_1 = def  ;;b=; flag; s_2=ghi");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->value, "abcdefghi");
  EXPECT_EQ(r->chunks, 3u);

  const std::vector<std::string_view> headers = {"theme=dark; s_1=def", "s=abc", "lang=en"};
  auto split = join_cookie("s", headers);
  ASSERT_TRUE(split);
  EXPECT_EQ(split->value, "abcdef");

  const auto pairs = parse_cookie_header("a=1; b = 2 ;c=x=y; =nameless; d; e=\"q\"");
  using P = std::pair<std::string_view, std::string_view>;
  EXPECT_EQ(pairs, (std::vector<P>{{"a", "1"}, {"b", "2"}, {"c", "x=y"}, {"e", "\"q\""}}));
}

TEST(CookieChunks, NamesAreCaseSensitive) {
  auto r = join_cookie("Session", "session=abc; SESSION=def; Session=ghi");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->value, "ghi");
}

TEST(CookieChunks, SetCookieHeaderStrings) {
  CookieAttributes attrs;
  EXPECT_EQ(set_cookie_header("__Host-pc", "abc", attrs),
            "__Host-pc=abc; Path=/; Secure; HttpOnly; SameSite=Lax");

  attrs.max_age = 28800;
  EXPECT_EQ(set_cookie_header("__Host-pc", "abc", attrs),
            "__Host-pc=abc; Path=/; Max-Age=28800; Secure; HttpOnly; SameSite=Lax");

  CookieAttributes wide;
  wide.path = "/app";
  wide.domain = "example.com";
  wide.max_age = 60;
  wide.same_site = SameSite::strict;
  EXPECT_EQ(set_cookie_header("pc", "v", wide),
            "pc=v; Path=/app; Domain=example.com; Max-Age=60; Secure; HttpOnly; SameSite=Strict");

  CookieAttributes plain;
  plain.path.clear();
  plain.secure = false;
  plain.http_only = false;
  plain.same_site = SameSite::none;
  EXPECT_EQ(set_cookie_header("pc", "v", plain), "pc=v; SameSite=None");

  attrs.max_age = -5;
  EXPECT_EQ(set_cookie_header("pc", "v", attrs),
            "pc=v; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax");
  EXPECT_EQ(clear_cookie_header("pc_1", wide),
            "pc_1=; Path=/app; Domain=example.com; Max-Age=0; Secure; HttpOnly; SameSite=Strict");
}

TEST(CookieChunks, ClearStaleChunks) {
  CookieAttributes attrs;
  attrs.max_age = 3600;
  EXPECT_EQ(clear_stale_chunks("s", 1, 3, attrs),
            (std::vector<std::string>{"s_1=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax",
                                      "s_2=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax"}));
  EXPECT_TRUE(clear_stale_chunks("s", 3, 1, attrs).empty());
  EXPECT_TRUE(clear_stale_chunks("s", 2, 2, attrs).empty());
  EXPECT_EQ(clear_stale_chunks("s", 0, 2, attrs),
            (std::vector<std::string>{"s=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax",
                                      "s_1=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax"}));
  // After a refused join the caller clears every possible chunk.
  EXPECT_EQ(clear_stale_chunks("s", 0, kMaxCookieChunks, attrs).size(), kMaxCookieChunks);
  EXPECT_EQ(clear_stale_chunks("s", 0, 1000, attrs).size(), kMaxCookieChunks);
}

TEST(CookieChunks, Prefixes) {
  CookieAttributes attrs;
  EXPECT_TRUE(host_prefix_allowed(attrs));
  EXPECT_TRUE(cookie_prefix_satisfied("__Host-pc", attrs));

  CookieAttributes insecure = attrs;
  insecure.secure = false;
  EXPECT_FALSE(host_prefix_allowed(insecure));
  EXPECT_FALSE(cookie_prefix_satisfied("__Host-pc", insecure));
  EXPECT_FALSE(cookie_prefix_satisfied("__host-pc", insecure));
  EXPECT_FALSE(cookie_prefix_satisfied("__Secure-pc", insecure));
  EXPECT_FALSE(cookie_prefix_satisfied("__SECURE-pc", insecure));
  EXPECT_TRUE(cookie_prefix_satisfied("pc", insecure));

  CookieAttributes domain = attrs;
  domain.domain = "example.com";
  EXPECT_FALSE(host_prefix_allowed(domain));
  EXPECT_TRUE(cookie_prefix_satisfied("__Secure-pc", domain));

  CookieAttributes sub_path = attrs;
  sub_path.path = "/app";
  EXPECT_FALSE(host_prefix_allowed(sub_path));
  CookieAttributes no_path = attrs;
  no_path.path.clear();
  EXPECT_FALSE(host_prefix_allowed(no_path));
}

TEST(CookieChunks, Validators) {
  EXPECT_TRUE(is_valid_cookie_name("__Host-pc_session"));
  EXPECT_FALSE(is_valid_cookie_name(""));
  EXPECT_FALSE(is_valid_cookie_name("a b"));
  EXPECT_FALSE(is_valid_cookie_name("a=b"));
  EXPECT_FALSE(is_valid_cookie_name("a;b"));
  EXPECT_FALSE(is_valid_cookie_name("a\r\nSet-Cookie"));

  EXPECT_TRUE(is_valid_cookie_value(""));
  EXPECT_TRUE(is_valid_cookie_value(pattern(200)));
  EXPECT_FALSE(is_valid_cookie_value("a b"));
  EXPECT_FALSE(is_valid_cookie_value("a;b"));
  EXPECT_FALSE(is_valid_cookie_value("a,b"));
  EXPECT_FALSE(is_valid_cookie_value("\"a\""));
  EXPECT_FALSE(is_valid_cookie_value("a\\b"));
  EXPECT_FALSE(is_valid_cookie_value("a\nb"));

  EXPECT_TRUE(is_valid_cookie_attribute_value("/app/x y"));
  EXPECT_FALSE(is_valid_cookie_attribute_value("/; Domain=evil.com"));
  EXPECT_FALSE(is_valid_cookie_attribute_value("/\r\n"));
}

}  // namespace
}  // namespace portcullis
