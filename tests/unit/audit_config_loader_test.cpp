// The `audit:` section of the config: defaults, every key, and refusals with file:line.
#include <gtest/gtest.h>

#include "core/config_loader.hpp"

namespace portcullis {
namespace {

constexpr const char* kBase = R"(listeners:
  - {name: plain, address: 127.0.0.1:8080}
upstreams:
  - {name: echo, endpoints: [{address: 127.0.0.1:7001}]}
routes:
  - {name: open, match: {}, upstream: echo, auth: public}
)";

ConfigLoadResult load(const std::string& audit) {
  return load_config_string(std::string(kBase) + audit, "gw.yaml", "/etc/portcullis");
}

std::string errors_of(const ConfigLoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.to_string() + "\n";
  return out;
}

TEST(AuditConfigLoader, AbsentMeansNoAuditLog) {
  auto r = load("");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_FALSE(r.config->audit.has_value());
}

TEST(AuditConfigLoader, DefaultsWithJustAFile) {
  auto r = load("audit: {file: {path: audit/audit.jsonl}}\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const AuditConfig& a = *r.config->audit;
  EXPECT_EQ(a.file_path, "/etc/portcullis/audit/audit.jsonl");  // relative to the config
  EXPECT_EQ(a.max_bytes, 100ull << 20);
  EXPECT_EQ(a.keep, 10u);
  EXPECT_EQ(a.fsync, AuditConfig::Fsync::interval);
  EXPECT_EQ(a.on_failure, AuditConfig::OnFailure::deny);
  EXPECT_TRUE(a.redis_address.empty());
  EXPECT_TRUE(a.key_file.empty());
}

TEST(AuditConfigLoader, EveryKey) {
  auto r = load(R"(audit:
  file: {path: /var/log/a.jsonl, max_bytes: 8MiB, max_age: 1h, keep: 3, fsync: always, fsync_interval: 250ms}
  stdout: true
  redis: {address: 127.0.0.1:6379, stream: "siem:audit", maxlen: 5000}
  on_failure: allow
  queue: 1024
  checkpoint: {every: 50, interval: 2s}
  key_file: keys/audit.pem
)");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const AuditConfig& a = *r.config->audit;
  EXPECT_EQ(a.file_path, "/var/log/a.jsonl");
  EXPECT_EQ(a.max_bytes, 8ull << 20);
  EXPECT_EQ(a.max_age, std::chrono::hours(1));
  EXPECT_EQ(a.keep, 3u);
  EXPECT_EQ(a.fsync, AuditConfig::Fsync::always);
  EXPECT_EQ(a.fsync_interval, std::chrono::milliseconds(250));
  EXPECT_TRUE(a.stdout_sink);
  EXPECT_EQ(a.redis_address, "127.0.0.1:6379");
  EXPECT_EQ(a.redis_stream, "siem:audit");
  EXPECT_EQ(a.redis_maxlen, 5000u);
  EXPECT_EQ(a.on_failure, AuditConfig::OnFailure::allow);
  EXPECT_EQ(a.queue_capacity, 1024u);
  EXPECT_EQ(a.checkpoint_every, 50u);
  EXPECT_EQ(a.checkpoint_interval, std::chrono::seconds(2));
  EXPECT_EQ(a.key_file, "/etc/portcullis/keys/audit.pem");
}

TEST(AuditConfigLoader, RefusesBadValuesWithTheirLine) {
  struct Case {
    const char* yaml;
    const char* message;
    int line;
  };
  const Case cases[] = {
      {"audit: {stdout: false}\n", "needs a sink", 7},
      {"audit: {file: {path: a.jsonl, fsync: sometimes}}\n", "always, interval or never", 7},
      {"audit: {file: {path: a.jsonl}, on_failure: ignore}\n", "expected deny", 7},
      {"audit: {file: {path: a.jsonl, max_bytes: 1KiB}}\n", "at least 4KiB", 7},
      {"audit: {file: {path: a.jsonl}, queue: 1}\n", "queue", 7},
      {"audit: {file: {path: a.jsonl}, redis: {stream: x}}\n", "address", 7},
      {"audit:\n  file: {path: a.jsonl}\n  fsyncs: always\n", "fsyncs", 9},
  };
  for (const Case& c : cases) {
    auto r = load(c.yaml);
    ASSERT_FALSE(r.ok()) << c.yaml;
    const std::string all = errors_of(r);
    EXPECT_NE(all.find(c.message), std::string::npos) << c.yaml << all;
    EXPECT_EQ(r.errors.front().line, c.line) << c.yaml << all;
  }
}

}  // namespace
}  // namespace portcullis
