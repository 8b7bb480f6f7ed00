// The Redis hash entries of revocations (field "<kind> <value>", value the unix until) and
// the cache.redis config section.
#include <gtest/gtest.h>

#include "cache/revocation_sync.hpp"
#include "core/config_loader.hpp"

namespace portcullis {
namespace {

TEST(RevocationEntry, RoundTripsThroughTheHash) {
  const Revocation r{RevocationKind::kSubject, "alice smith",
                     std::chrono::system_clock::time_point(std::chrono::seconds(1900000000))};
  EXPECT_EQ(revocation_field(r), "subject alice smith");
  auto back = revocation_from_entry(revocation_field(r), "1900000000");
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, r);
  auto jti = revocation_from_entry("token_id abc-123", "1900000000");
  ASSERT_TRUE(jti.has_value());
  EXPECT_EQ(jti->kind, RevocationKind::kTokenId);
}

TEST(RevocationEntry, RefusesMalformedEntries) {
  for (const auto& [field, until] : std::vector<std::pair<std::string, std::string>>{
           {"subject", "1900000000"},         // no value
           {"user alice", "1900000000"},      // unknown kind
           {"subject alice", "soon"},         // not a time
           {"subject alice", "-5"},           // negative
           {"subject alice", "01900000000"},  // leading zero
           {"", ""}}) {
    EXPECT_FALSE(revocation_from_entry(field, until).has_value()) << field << " / " << until;
  }
}

constexpr const char* kBase = R"(listeners:
  - {name: plain, address: 127.0.0.1:8080}
upstreams:
  - {name: echo, endpoints: [{address: 127.0.0.1:7001}]}
routes:
  - {name: open, match: {}, upstream: echo, auth: public}
)";

TEST(CacheConfigLoader, RedisSection) {
  auto none = load_config_string(kBase, "gw.yaml", "/etc/portcullis");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none.config->redis.has_value());
  auto r = load_config_string(
      std::string(kBase) +
          "cache: {redis: {address: 10.0.0.5:6380, db: 2, username: gw, timeout: 40ms, "
          "connect_timeout: 1s}}\n",
      "gw.yaml", "/etc/portcullis");
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors.front().to_string());
  EXPECT_EQ(r.config->redis->address, "10.0.0.5:6380");
  EXPECT_EQ(r.config->redis->db, 2u);
  EXPECT_EQ(r.config->redis->username, "gw");
  EXPECT_EQ(r.config->redis->command_timeout, std::chrono::milliseconds(40));
  EXPECT_EQ(r.config->redis->connect_timeout, std::chrono::seconds(1));
  auto bad = load_config_string(std::string(kBase) +
                                    "cache: {redis: {address: 127.0.0.1:6379, db: 99, "
                                    "password_file: missing.txt}}\n",
                                "gw.yaml", "/etc/portcullis");
  ASSERT_FALSE(bad.ok());
  ASSERT_EQ(bad.errors.size(), 2u);
  EXPECT_EQ(bad.errors[0].line, 7);
  EXPECT_NE(bad.errors[1].message.find("does not exist"), std::string::npos);
}

}  // namespace
}  // namespace portcullis
