#pragma once
// RedisReply: one Redis (RESP2) reply as an owned value, copied out of hiredis' reply tree so
// it outlives the hiredis callback. RedisError: why a command got no reply (transport-level);
// a reply the server sent as an error (`-WRONGTYPE ...`) is a RedisReply of type error.
//
//   if (!r) log(to_string(r.error()));
//   else if (r->is_string()) use(r->str);         // binary-safe bytes
//   else if (r->type == RedisReply::Type::nil) miss();
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

struct redisReply;

namespace portcullis {

enum class RedisError {
  unavailable,       // not connected (or still connecting): failed fast, nothing was sent
  overloaded,        // too many commands in flight: failed fast, nothing was sent
  timeout,           // sent, no reply within the command timeout (a late reply is dropped)
  connection_lost,   // sent, the connection broke before the reply
  shutdown,          // the client was destroyed or stopped
  invalid_argument,  // e.g. an empty command
};
std::string_view to_string(RedisError e);

struct RedisReply {
  enum class Type { nil, integer, string, status, error, array };
  Type type = Type::nil;
  std::int64_t integer = 0;
  std::string str;                   // string, status and error replies
  std::vector<RedisReply> elements;  // array replies

  bool is_nil() const { return type == Type::nil; }
  bool is_error() const { return type == Type::error; }
  bool is_string() const { return type == Type::string || type == Type::status; }
  bool operator==(const RedisReply&) const = default;

  static RedisReply from_hiredis(const redisReply& r);
};

}  // namespace portcullis
