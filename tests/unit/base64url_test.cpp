#include "authn/base64url.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

namespace portcullis {
namespace {

std::string decode(std::string_view in) {
  auto r = base64url_decode_to_string(in);
  EXPECT_TRUE(r.has_value()) << in;
  return r ? *r : std::string();
}

Base64Error decode_error(std::string_view in) {
  auto r = base64url_decode(in);
  EXPECT_FALSE(r.has_value()) << in;
  return r ? Base64Error::buffer_too_small : r.error();
}

TEST(Base64Url, Rfc4648VectorsWithoutPadding) {
  const std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64url_encode(plain), encoded);
    EXPECT_EQ(decode(encoded), plain);
  }
}

TEST(Base64Url, UsesTheUrlSafeAlphabet) {
  const std::vector<unsigned char> bytes = {0xfb, 0xff, 0xbf};
  EXPECT_EQ(base64url_encode(bytes), "-_-_");
  auto back = base64url_decode("-_-_");
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, bytes);
  EXPECT_EQ(base64url_encode(std::vector<unsigned char>{0xfb, 0xff}), "-_8");
}

TEST(Base64Url, RoundTripsEveryLengthAndByte) {
  std::vector<unsigned char> bytes;
  for (int len = 0; len < 300; ++len) {
    auto encoded = base64url_encode(bytes);
    EXPECT_EQ(encoded.size(), base64url_encoded_size(bytes.size()));
    EXPECT_EQ(base64url_decoded_size(encoded.size()), bytes.size());
    auto decoded = base64url_decode(encoded);
    ASSERT_TRUE(decoded) << len;
    EXPECT_EQ(*decoded, bytes);
    bytes.push_back(static_cast<unsigned char>(len * 37 + 11));
  }
}

TEST(Base64Url, RefusesCharactersOutsideTheAlphabet) {
  for (std::string_view bad : {"Zg==", "Zm8=", "ab+d", "ab/d", "ab d", "ab\nd", "ab\td", " abc",
                               "abc.", "ab\rd", "ab%d", "ab*d"}) {
    EXPECT_EQ(decode_error(bad), Base64Error::invalid_character) << bad;
  }
  EXPECT_EQ(decode_error(std::string_view("ab\0d", 4)), Base64Error::invalid_character);
  EXPECT_EQ(decode_error("ab\xc3\xa9"), Base64Error::invalid_character);
}

TEST(Base64Url, RefusesImpossibleLengths) {
  for (std::string_view bad : {"A", "AAAAA", "Zm9vY"}) {
    EXPECT_EQ(decode_error(bad), Base64Error::invalid_length) << bad;
  }
}

TEST(Base64Url, RefusesNonCanonicalTrailingBits) {
  EXPECT_EQ(decode_error("Zh"), Base64Error::non_canonical);   // "Zg" is the one spelling of "f"
  EXPECT_EQ(decode_error("Zm9"), Base64Error::non_canonical);  // "Zm8" is the one of "fo"
  EXPECT_EQ(decode_error("AB"), Base64Error::non_canonical);
  EXPECT_EQ(decode_error("AAB"), Base64Error::non_canonical);
  EXPECT_EQ(decode("AA"), std::string(1, '\0'));
  EXPECT_EQ(decode("AAA"), std::string(2, '\0'));
}

TEST(Base64Url, DecodesIntoACallerBuffer) {
  std::array<unsigned char, 6> out{};
  auto n = base64url_decode("Zm9vYmFy", out);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 6u);
  EXPECT_EQ(std::string(out.begin(), out.end()), "foobar");

  std::array<unsigned char, 5> small{};
  auto too_small = base64url_decode("Zm9vYmFy", small);
  ASSERT_FALSE(too_small);
  EXPECT_EQ(too_small.error(), Base64Error::buffer_too_small);
}

TEST(Base64Url, ErrorsHaveDescriptions) {
  for (auto e : {Base64Error::invalid_character, Base64Error::invalid_length,
                 Base64Error::non_canonical, Base64Error::buffer_too_small}) {
    EXPECT_FALSE(to_string(e).empty());
  }
}

}  // namespace
}  // namespace portcullis
