#pragma once
// RedisConfig: where and how the worker's Redis connections connect. A plain struct, filled in
// by the YAML loader (cache.redis) or by tests. `password` wins over `password_file`; the file
// is read once, when a RedisClient/RedisSubscriber is constructed (start-up, never on a loop),
// and its trailing newline is stripped. `username` empty: `AUTH <password>` (the default user);
// set: `AUTH <username> <password>` (an ACL user, Redis 6+).
#include <chrono>
#include <cstddef>
#include <string>

#include "core/expected.hpp"

namespace portcullis {

struct RedisConfig {
  std::string address = "127.0.0.1:6379";  // "host:port", "[v6]:port" or "host"
  unsigned db = 0;                         // SELECT <db> on connect when non-zero
  std::string username;
  std::string password;
  std::string password_file;
  std::chrono::milliseconds command_timeout{25};   // per command, from send to reply
  std::chrono::milliseconds connect_timeout{250};  // resolve + TCP connect + AUTH + SELECT
  std::chrono::milliseconds backoff_min{50};       // first reconnect delay, doubled each failure
  std::chrono::milliseconds backoff_max{2000};
  std::size_t max_in_flight = 10000;  // commands past this fail fast (RedisError::overloaded)
};

// The password to send: `password`, else the contents of `password_file` without its trailing
// newline (\n or \r\n), else empty (no AUTH). An error names the file, never the contents.
Expected<std::string, std::string> resolve_redis_password(const RedisConfig& config);

}  // namespace portcullis
