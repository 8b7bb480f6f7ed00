#include "cache/redis_reply.hpp"

#include <hiredis/hiredis.h>

namespace portcullis {

std::string_view to_string(RedisError e) {
  switch (e) {
    case RedisError::unavailable:
      return "redis unavailable";
    case RedisError::overloaded:
      return "redis overloaded (too many commands in flight)";
    case RedisError::timeout:
      return "redis command timed out";
    case RedisError::connection_lost:
      return "redis connection lost";
    case RedisError::shutdown:
      return "redis client shut down";
    case RedisError::invalid_argument:
      return "invalid redis command";
  }
  return "redis error";
}

RedisReply RedisReply::from_hiredis(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_INTEGER:
      out.type = Type::integer;
      out.integer = static_cast<std::int64_t>(r.integer);
      break;
    case REDIS_REPLY_STRING:
      out.type = Type::string;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Type::status;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Type::error;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Type::array;
      out.elements.reserve(r.elements);
      for (std::size_t i = 0; i < r.elements; ++i) {
        out.elements.push_back(r.element[i] ? from_hiredis(*r.element[i]) : RedisReply{});
      }
      break;
    default:  // REDIS_REPLY_NIL
      break;
  }
  return out;
}

}  // namespace portcullis
