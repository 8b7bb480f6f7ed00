#pragma once
// AuditRedisTransport: ships audit lines to a Redis stream for a SIEM, one
// `XADD <stream> MAXLEN ~ <maxlen> * line <the line>` per line, pipelined, with hiredis'
// synchronous API. Runs on an AuditShipper's thread, never on the writer's or a worker's:
// short connect/command timeouts, reconnect on the next attempt after any error.
//
//   AuditShipper redis(std::make_unique<AuditRedisTransport>("127.0.0.1:6379",
//                                                            "portcullis:audit", 1000000), cap);
#include <chrono>
#include <cstdint>
#include <string>

#include "audit/audit_shipper.hpp"
#include "core/expected.hpp"

struct redisContext;

namespace portcullis {

class AuditRedisTransport final : public AuditTransport {
 public:
  struct Options {
    std::chrono::milliseconds connect_timeout{500};
    std::chrono::milliseconds command_timeout{1000};
    std::chrono::milliseconds retry_delay{1000};
  };

  AuditRedisTransport(std::string address, std::string stream, std::uint64_t maxlen,
                      Options options);
  ~AuditRedisTransport() override;

  AuditSendResult send(std::span<const std::string_view> lines) override;
  bool connected() const override { return ctx_ != nullptr; }
  bool probe() override;  // PING (connecting first when needed)
  std::chrono::milliseconds retry_delay() const override { return options_.retry_delay; }

 private:
  bool connect(std::string& error);
  void disconnect();

  std::string host_;
  int port_ = 6379;
  std::string stream_;
  std::string maxlen_;
  Options options_;
  redisContext* ctx_ = nullptr;
};

// "host:port", "[v6]:port" or "host" (port 6379) -> (host, port); an error for anything else.
struct RedisAddress {
  std::string host;
  int port = 6379;
};
Expected<RedisAddress, std::string> parse_redis_address(std::string_view address);

}  // namespace portcullis
