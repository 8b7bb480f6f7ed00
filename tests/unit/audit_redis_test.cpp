// The Redis sink: every written line is XADDed to the stream in order; a dead or flaky Redis
// never blocks or fails the file sink. Uses a tiny in-process RESP server (no redis-server).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <set>
#include <thread>

#include "../tools/audit_test_support.hpp"
#include "audit/audit_log.hpp"
#include "audit/audit_verify.hpp"

namespace portcullis {
namespace {

using namespace audit_test;

// Accepts connections one after another, parses RESP arrays of bulk strings, answers each
// command with a stream id. With drop_after = N it closes the first connection, unanswered,
// after N commands (a Redis restart mid-pipeline).
class FakeRedis {
 public:
  explicit FakeRedis(int drop_after = -1) : drop_after_(drop_after) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    ::listen(listener_, 8);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeRedis() {
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<std::vector<std::string>> commands() {
    std::lock_guard lock(mu_);
    return commands_;
  }

 private:
  void serve() {
    for (int connection = 0;; ++connection) {
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      std::string in;
      char buf[65536];
      int handled = 0;
      bool open = true;
      while (open) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
        std::vector<std::string> cmd;
        std::size_t used = 0;
        while (parse(in, used, cmd)) {
          in.erase(0, used);
          if (connection == 0 && drop_after_ >= 0 && handled == drop_after_) {
            open = false;
            break;
          }
          {
            std::lock_guard lock(mu_);
            commands_.push_back(cmd);
          }
          const std::string id = "1-" + std::to_string(++ids_);
          const std::string reply = "$" + std::to_string(id.size()) + "\r\n" + id + "\r\n";
          (void)!::write(fd, reply.data(), reply.size());
          ++handled;
        }
      }
      ::close(fd);
    }
  }
  // *N\r\n then N times $len\r\nbytes\r\n
  static bool parse(const std::string& in, std::size_t& used, std::vector<std::string>& out) {
    out.clear();
    std::size_t p = 0;
    const auto line = [&](std::string& s) {
      const auto e = in.find("\r\n", p);
      if (e == std::string::npos) return false;
      s = in.substr(p, e - p);
      p = e + 2;
      return true;
    };
    std::string head;
    if (!line(head) || head.empty() || head[0] != '*') return false;
    const int count = std::stoi(head.substr(1));
    for (int i = 0; i < count; ++i) {
      std::string len;
      if (!line(len) || len.empty() || len[0] != '$') return false;
      const std::size_t n = std::stoul(len.substr(1));
      if (in.size() < p + n + 2) return false;
      out.push_back(in.substr(p, n));
      p += n + 2;
    }
    used = p;
    return true;
  }

  int listener_ = -1;
  int port_ = 0;
  int drop_after_;
  int ids_ = 0;
  std::mutex mu_;
  std::vector<std::vector<std::string>> commands_;
  std::thread thread_;
};

AuditConfig redis_config(const TempDir& dir, const std::string& address) {
  AuditConfig c;
  c.file_path = dir / "audit.jsonl";
  c.key_file = dir / "key.pem";
  c.checkpoint_every = 10;
  c.redis_address = address;
  c.redis_stream = "audit:test";
  c.redis_maxlen = 5000;
  return c;
}

TEST(AuditRedisSink, XaddsEveryLineInOrder) {
  TempDir dir;
  ManualClock clock;
  FakeRedis redis;
  auto w = AuditWriter::open(redis_config(dir, redis.address()), "gw", clock);
  ASSERT_TRUE(w.has_value());
  for (int i = 0; i < 50; ++i) (*w)->submit(audit_event_body(sample_event(clock, i)));
  (*w)->close();
  const auto lines = read_lines(dir / "audit.jsonl");
  const auto cmds = redis.commands();
  ASSERT_EQ(cmds.size(), lines.size());
  for (std::size_t i = 0; i < cmds.size(); ++i) {
    const std::vector<std::string> want = {"XADD", "audit:test", "MAXLEN", "~",
                                           "5000", "*",          "line",   lines[i]};
    EXPECT_EQ(cmds[i], want) << i;
  }
  const AuditStats s = (*w)->stats();
  EXPECT_EQ(s.redis_lines, lines.size());
  EXPECT_EQ(s.redis_errors, 0u);
  EXPECT_EQ(s.redis_dropped, 0u);
}

TEST(AuditRedisSink, ADeadRedisNeverAffectsTheFile) {
  TempDir dir;
  ManualClock clock;
  int port = 0;
  {
    FakeRedis gone;  // a port that was just free; nothing listens on it any more
    port = std::stoi(gone.address().substr(10));
  }
  auto w = AuditWriter::open(redis_config(dir, "127.0.0.1:" + std::to_string(port)), "gw", clock);
  ASSERT_TRUE(w.has_value());
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE((*w)->accepting());
    EXPECT_TRUE((*w)->submit(audit_event_body(sample_event(clock, i))));
  }
  (*w)->close();
  const AuditStats s = (*w)->stats();
  EXPECT_EQ(s.records_written, 100u);
  EXPECT_EQ(s.write_errors, 0u);
  EXPECT_GE(s.redis_errors, 1u);
  EXPECT_EQ(s.redis_lines, 0u);
  EXPECT_EQ(s.redis_dropped, read_lines(dir / "audit.jsonl").size());
  EXPECT_TRUE(verify_audit_files({dir / "audit.jsonl"}, {}).ok());
}

TEST(AuditRedisSink, ReconnectsAndResendsWhatWasNotAcknowledged) {
  TempDir dir;
  ManualClock clock;
  FakeRedis redis(5);
  auto w = AuditWriter::open(redis_config(dir, redis.address()), "gw", clock);
  ASSERT_TRUE(w.has_value());
  for (int i = 0; i < 30; ++i) (*w)->submit(audit_event_body(sample_event(clock, i)));
  (*w)->close();
  const auto lines = read_lines(dir / "audit.jsonl");
  std::vector<std::string> received;
  for (const auto& c : redis.commands()) received.push_back(c.back());
  EXPECT_EQ(received, lines) << "every line once, in order, after the reconnect";
  EXPECT_GE((*w)->stats().redis_errors, 1u);
}

}  // namespace
}  // namespace portcullis
