#include "sso/cookie_sealer.hpp"

#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "authn/base64url.hpp"
#include "core/sha256.hpp"

namespace portcullis {
namespace {

// Deterministic nonces: a counter from 0, so the known-answer vector below is reproducible.
class SealerCountingRandom final : public RandomSource {
 public:
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = next_++;
  }

 private:
  std::uint8_t next_ = 0;
};

CookieKey key_from(std::uint8_t first) {
  CookieKey k;
  for (std::size_t i = 0; i < k.bytes.size(); ++i)
    k.bytes[i] = static_cast<std::uint8_t>(first + i);
  return k;
}

constexpr std::int64_t kNow = 1'700'000'000;
constexpr std::int64_t kExpires = kNow + 3600;

std::vector<unsigned char> decode(std::string_view s) {
  auto r = base64url_decode(s);
  EXPECT_TRUE(r.has_value());
  return r ? *r : std::vector<unsigned char>{};
}

std::string encode(const std::vector<unsigned char>& bytes) {
  return base64url_encode(std::span<const unsigned char>(bytes.data(), bytes.size()));
}

TEST(CookieSealer, RoundTrip) {
  SealerCountingRandom random;
  CookieSealer sealer({key_from(1)}, random);
  for (std::string plain : {std::string(), std::string("x"), std::string("{\"sub\":\"alice\"}"),
                            std::string("bin\0ary\xff", 8), std::string(20000, 'z')}) {
    const std::string sealed = sealer.seal(plain, "session", kExpires);
    EXPECT_EQ(sealed.size(), CookieSealer::sealed_size(plain.size()));
    auto opened = sealer.open(sealed, "session", kNow);
    ASSERT_TRUE(opened) << to_string(opened.error());
    EXPECT_EQ(*opened, plain);
  }
}

// Computed independently with Python's `cryptography` AESGCM: key 00..1f, nonce 00..0b,
// AAD 01|keyid|"session", plaintext be64(1700000000)|{"sub":"alice"}.
TEST(CookieSealer, KnownAnswer) {
  SealerCountingRandom random;
  CookieSealer sealer({key_from(0)}, random);
  const std::string expected =
      "AWMNzSkAAQIDBAUGBwgJCgtHAtYboLYzG_Zj5P7Ty0JP4rruV5VZIo_fDfzucQ2zfeLEuUuwNoQ";
  EXPECT_EQ(sealer.seal("{\"sub\":\"alice\"}", "session", 1'700'000'000), expected);
  auto opened = sealer.open(expected, "session", 1'699'999'999);
  ASSERT_TRUE(opened);
  EXPECT_EQ(*opened, "{\"sub\":\"alice\"}");
}

TEST(CookieSealer, Layout) {
  SealerCountingRandom random;
  const CookieKey key = key_from(7);
  CookieSealer sealer({key}, random);
  const auto bytes = decode(sealer.seal("hello", "session", kExpires));
  ASSERT_EQ(bytes.size(), 1 + 4 + 12 + 8 + 5 + 16u);
  EXPECT_EQ(bytes[0], 1);
  const auto digest =
      sha256(std::string_view(reinterpret_cast<const char*>(key.bytes.data()), key.bytes.size()));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(bytes[1 + i], digest[i]);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(bytes[5 + i], i);  // the nonce comes from RandomSource
  EXPECT_EQ(bytes.end(), std::search(bytes.begin(), bytes.end(), "hello", "hello" + 5));
}

TEST(CookieSealer, FreshNonceEachTime) {
  SealerCountingRandom random;
  CookieSealer sealer({key_from(1)}, random);
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) seen.insert(sealer.seal("same", "session", kExpires));
  EXPECT_EQ(seen.size(), 50u);
}

TEST(CookieSealer, EveryTamperedByteIsRefused) {
  SealerCountingRandom random;
  CookieSealer sealer({key_from(1)}, random);
  const auto original = decode(sealer.seal("{\"sub\":\"alice\",\"exp\":1}", "session", kExpires));
  for (std::size_t pos = 0; pos < original.size(); ++pos) {
    for (unsigned char flip : {0x01, 0x80, 0xff}) {
      auto bytes = original;
      bytes[pos] ^= flip;
      auto r = sealer.open(encode(bytes), "session", kNow);
      ASSERT_FALSE(r) << "byte " << pos;
      const SealError want = pos == 0  ? SealError::malformed
                             : pos < 5 ? SealError::unknown_key
                                       : SealError::bad_tag;
      EXPECT_EQ(r.error(), want) << "byte " << pos << " got " << to_string(r.error());
    }
  }
}

TEST(CookieSealer, EveryTamperedCharacterIsRefused) {
  SealerCountingRandom random;
  CookieSealer sealer({key_from(1)}, random);
  const std::string original = sealer.seal("payload", "session", kExpires);
  for (std::size_t pos = 0; pos < original.size(); ++pos) {
    for (char c : {'A', 'z', '-', '_', '9', '+', '=', ' '}) {
      if (original[pos] == c) continue;
      std::string s = original;
      s[pos] = c;
      EXPECT_FALSE(sealer.open(s, "session", kNow)) << "position " << pos << " -> " << c;
    }
  }
}

TEST(CookieSealer, WrongPurposeIsBadTag) {
  SealerCountingRandom random;
  CookieSealer sealer({key_from(1)}, random);
  const std::string sealed = sealer.seal("state", "login:pc_login", kExpires);
  ASSERT_TRUE(sealer.open(sealed, "login:pc_login", kNow));
  const std::string_view wrong[] = {"session", "", "login:pc_login2", "login:pc_logi",
                                    std::string_view("login:pc_login\0", 15)};
  for (std::string_view purpose : wrong) {
    auto r = sealer.open(sealed, purpose, kNow);
    ASSERT_FALSE(r) << purpose;
    EXPECT_EQ(r.error(), SealError::bad_tag);
  }
}

TEST(CookieSealer, Expiry) {
  SealerCountingRandom random;
  CookieSealer sealer({key_from(1)}, random);
  const std::string sealed = sealer.seal("s", "session", kExpires);
  EXPECT_TRUE(sealer.open(sealed, "session", kExpires - 1));
  EXPECT_TRUE(sealer.open(sealed, "session", INT64_MIN));
  for (std::int64_t now : {kExpires, kExpires + 1, INT64_MAX}) {
    auto r = sealer.open(sealed, "session", now);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), SealError::expired);
  }
  // An expiry in the past seals fine and never opens.
  auto r = sealer.open(sealer.seal("s", "session", kNow - 1), "session", kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), SealError::expired);
  // Negative expiries survive the round trip (two's complement).
  EXPECT_TRUE(sealer.open(sealer.seal("s", "session", -5), "session", -6));
}

// GCM's keystream is malleable: XOR-ing the ciphertext changes the plaintext bit for bit. An
// attacker who knows the expiry can rewrite it to a later one; the tag must refuse it.
TEST(CookieSealer, AlteredExpiryIsRefused) {
  SealerCountingRandom random;
  CookieSealer sealer({key_from(1)}, random);
  auto bytes = decode(sealer.seal("session", "session", kNow + 10));
  const auto old_e = static_cast<std::uint64_t>(kNow + 10);
  const auto new_e = static_cast<std::uint64_t>(kNow + 10 + 365 * 86400);
  const std::size_t at = CookieSealer::kHeaderSize;
  for (std::size_t i = 0; i < 8; ++i) {
    bytes[at + i] ^= static_cast<unsigned char>((old_e ^ new_e) >> (8 * (7 - i)));
  }
  auto r = sealer.open(encode(bytes), "session", kNow + 20);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), SealError::bad_tag);
}

TEST(CookieSealer, KeyRotation) {
  SealerCountingRandom random;
  const CookieKey old_key = key_from(1);
  const CookieKey new_key = key_from(100);
  CookieSealer old_sealer({old_key}, random);
  CookieSealer rotated({new_key, old_key}, random);
  CookieSealer new_only({new_key}, random);

  const std::string by_old = old_sealer.seal("old", "session", kExpires);
  auto r = rotated.open(by_old, "session", kNow);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "old");

  const std::string by_new = rotated.seal("new", "session", kExpires);
  const auto digest = sha256(
      std::string_view(reinterpret_cast<const char*>(new_key.bytes.data()), new_key.bytes.size()));
  EXPECT_EQ(decode(by_new)[1], digest[0]);  // the first key seals
  EXPECT_TRUE(new_only.open(by_new, "session", kNow));

  auto gone = new_only.open(by_old, "session", kNow);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error(), SealError::unknown_key);
  auto not_yet = old_sealer.open(by_new, "session", kNow);
  ASSERT_FALSE(not_yet);
  EXPECT_EQ(not_yet.error(), SealError::unknown_key);
}

TEST(CookieSealer, DuplicateKeysInTheListAreHarmless) {
  SealerCountingRandom random;
  CookieSealer sealer({key_from(1), key_from(1)}, random);
  EXPECT_TRUE(sealer.open(sealer.seal("x", "session", kExpires), "session", kNow));
}

TEST(CookieSealer, NoKeysIsAConfigurationError) {
  SealerCountingRandom random;
  EXPECT_THROW(CookieSealer({}, random), std::invalid_argument);
}

TEST(CookieSealer, MalformedInput) {
  SealerCountingRandom random;
  CookieSealer sealer({key_from(1)}, random);
  const std::string sealed = sealer.seal("payload", "session", kExpires);
  auto expect_malformed = [&](std::string_view s) {
    auto r = sealer.open(s, "session", kNow);
    ASSERT_FALSE(r) << s;
    EXPECT_EQ(r.error(), SealError::malformed) << s;
  };
  expect_malformed("");
  expect_malformed("A");
  expect_malformed("garbage");
  expect_malformed(std::string(200, '!'));
  expect_malformed(sealed + "=");                                     // padding
  expect_malformed(" " + sealed);                                     // whitespace
  expect_malformed(sealed.substr(0, 20) + "+/" + sealed.substr(22));  // base64, not base64url
  expect_malformed("\"" + sealed + "\"");                             // quoted cookie value
  expect_malformed(sealed + "A");  // impossible length (len % 4 == 1)
  // Too short for the fixed overhead (41 bytes): always malformed, never a crypto error.
  expect_malformed(encode(std::vector<unsigned char>(CookieSealer::kOverhead - 1, 1)));
  // Unknown version.
  auto bytes = decode(sealed);
  bytes[0] = 2;
  expect_malformed(encode(bytes));
  bytes[0] = 0;
  expect_malformed(encode(bytes));
}

TEST(CookieSealer, EveryTruncationIsRefused) {
  SealerCountingRandom random;
  CookieSealer sealer({key_from(1)}, random);
  const std::string sealed = sealer.seal("payload", "session", kExpires);
  for (std::size_t n = 0; n < sealed.size(); ++n) {
    auto r = sealer.open(sealed.substr(0, n), "session", kNow);
    ASSERT_FALSE(r) << n;
    if (n < CookieSealer::sealed_size(0)) {
      EXPECT_EQ(r.error(), SealError::malformed) << n;
    }
  }
  // Dropping decoded bytes from the end (a truncated tag) is a tag failure.
  auto bytes = decode(sealed);
  bytes.pop_back();
  auto r = sealer.open(encode(bytes), "session", kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), SealError::bad_tag);
}

TEST(CookieSealer, ErrorNames) {
  EXPECT_STREQ(to_string(SealError::malformed), "malformed");
  EXPECT_STREQ(to_string(SealError::unknown_key), "unknown key");
  EXPECT_STREQ(to_string(SealError::bad_tag), "authentication failed");
  EXPECT_STREQ(to_string(SealError::expired), "expired");
}

// Key file formats -------------------------------------------------------------------------

const std::array<std::uint8_t, 32> kE0 = [] {
  std::array<std::uint8_t, 32> a{};
  for (std::size_t i = 0; i < 32; ++i) a[i] = static_cast<std::uint8_t>(0xe0 + i);
  return a;
}();

void expect_e0(std::string_view contents) {
  auto k = CookieKey::from_file_contents(contents);
  ASSERT_TRUE(k) << k.error();
  EXPECT_EQ(k->bytes, kE0);
}

void expect_refused(std::string_view contents, std::string_view reason_part) {
  auto k = CookieKey::from_file_contents(contents);
  ASSERT_FALSE(k) << "accepted: " << contents;
  EXPECT_NE(k.error().find(reason_part), std::string::npos) << k.error();
}

TEST(CookieKey, RawBytes) {
  expect_e0(std::string_view(reinterpret_cast<const char*>(kE0.data()), kE0.size()));
  // Exactly 32 bytes are raw even when the last one is '\n'.
  std::string raw(reinterpret_cast<const char*>(kE0.data()), 31);
  raw.push_back('\n');
  auto k = CookieKey::from_file_contents(raw);
  ASSERT_TRUE(k) << k.error();
  EXPECT_EQ(k->bytes[31], '\n');
}

TEST(CookieKey, Hex) {
  const std::string lower = "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
  expect_e0(lower);
  expect_e0(lower + "\n");
  expect_e0(lower + "\r\n");
  expect_e0("E0E1E2E3E4E5E6E7E8E9EAEBECEDEEEFF0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF\n");
  std::string typo = lower;
  typo[10] = 'g';
  expect_refused(typo, "character 11 is not a hex digit");
  expect_refused(lower.substr(0, 62), "62 hex digits; a hex key has exactly 64");
  expect_refused(lower + "00", "66 hex digits");
}

TEST(CookieKey, Base64Variants) {
  expect_e0("4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8=");    // standard, padded
  expect_e0("4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8\n");   // standard, unpadded
  expect_e0("4OHi4-Tl5ufo6err7O3u7_Dx8vP09fb3-Pn6-_z9_v8");     // base64url
  expect_e0("4OHi4-Tl5ufo6err7O3u7_Dx8vP09fb3-Pn6-_z9_v8=\n");  // base64url, padded
  expect_refused("4OHi4+Tl5ufo6err7O3u7_Dx8vP09fb3+Pn6+/z9/v8=", "mixes");
  expect_refused("4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8==", "misplaced '='");
  expect_refused("4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v9=", "non-canonical");
  expect_refused("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd", "decodes to 30 bytes");
  expect_refused(" 4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8=", "not 32 raw bytes");
}

TEST(CookieKey, Refusals) {
  expect_refused("", "empty");
  expect_refused("\n", "empty");
  expect_refused("correct horse battery staple!!!!", "passphrase");
  expect_refused("0000000000000000000000000000000000000000000000000000000000000000", "all zero");
  expect_refused(std::string(32, '\0'), "all zero");
  expect_refused("not a key at all", "not 32 raw bytes");
  expect_refused(std::string(33, '\x01'), "not 32 raw bytes");
}

TEST(CookieKey, ParsedKeySealsAndOpens) {
  auto hex = CookieKey::from_file_contents(
      "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n");
  auto b64 = CookieKey::from_file_contents("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  ASSERT_TRUE(hex);
  ASSERT_TRUE(b64);
  SealerCountingRandom random;
  CookieSealer a({*hex}, random);
  CookieSealer b({*b64}, random);
  EXPECT_TRUE(b.open(a.seal("x", "session", kExpires), "session", kNow));
}

}  // namespace
}  // namespace portcullis
