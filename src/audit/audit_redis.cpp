#include "audit/audit_redis.hpp"

#include <sys/time.h>

#include <hiredis/hiredis.h>

#include <charconv>

namespace portcullis {
namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

}  // namespace

Expected<RedisAddress, std::string> parse_redis_address(std::string_view a) {
  RedisAddress out;
  std::string_view port;
  if (a.starts_with('[')) {
    const auto close = a.find(']');
    if (close == std::string_view::npos)
      return unexpected("bad Redis address '" + std::string(a) + "'");
    out.host = std::string(a.substr(1, close - 1));
    if (close + 1 < a.size()) {
      if (a[close + 1] != ':') return unexpected("bad Redis address '" + std::string(a) + "'");
      port = a.substr(close + 2);
    }
  } else {
    const auto colon = a.rfind(':');
    out.host = std::string(a.substr(0, colon));
    if (colon != std::string_view::npos) port = a.substr(colon + 1);
  }
  if (out.host.empty()) return unexpected("bad Redis address '" + std::string(a) + "': no host");
  if (!port.empty() || a.ends_with(':')) {
    int p = 0;
    const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p < 1 || p > 65535)
      return unexpected("bad Redis address '" + std::string(a) + "': port must be 1..65535");
    out.port = p;
  }
  return out;
}

AuditRedisTransport::AuditRedisTransport(std::string address, std::string stream,
                                         std::uint64_t maxlen, Options options)
    : stream_(std::move(stream)), maxlen_(std::to_string(maxlen)), options_(options) {
  if (auto parsed = parse_redis_address(address)) {
    host_ = parsed->host;
    port_ = parsed->port;
  } else {
    host_ = address;  // connect() will fail and say so
  }
}

AuditRedisTransport::~AuditRedisTransport() {
  disconnect();
}

void AuditRedisTransport::disconnect() {
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
}

bool AuditRedisTransport::connect(std::string& error) {
  if (ctx_) return true;
  redisContext* c =
      redisConnectWithTimeout(host_.c_str(), port_, to_timeval(options_.connect_timeout));
  if (!c || c->err) {
    error = c ? std::string("redis connect: ") + c->errstr : "redis connect: out of memory";
    if (c) redisFree(c);
    return false;
  }
  if (redisSetTimeout(c, to_timeval(options_.command_timeout)) != REDIS_OK) {
    error = "redis: cannot set the command timeout";
    redisFree(c);
    return false;
  }
  ctx_ = c;
  return true;
}

bool AuditRedisTransport::probe() {
  std::string error;
  if (!connect(error)) return false;
  auto* reply = static_cast<redisReply*>(redisCommand(ctx_, "PING"));
  const bool ok = reply != nullptr && reply->type != REDIS_REPLY_ERROR;
  if (reply) freeReplyObject(reply);
  if (!ok) disconnect();
  return ok;
}

AuditSendResult AuditRedisTransport::send(std::span<const std::string_view> lines) {
  AuditSendResult r;
  if (lines.empty() || !connect(r.error)) return r;
  // XADD stream MAXLEN ~ N * line <line>, pipelined.
  const char* argv[8] = {"XADD", stream_.c_str(), "MAXLEN", "~", maxlen_.c_str(),
                         "*",    "line",          nullptr};
  std::size_t argl[8] = {4, stream_.size(), 6, 1, maxlen_.size(), 1, 4, 0};
  for (auto line : lines) {
    argv[7] = line.data();
    argl[7] = line.size();
    if (redisAppendCommandArgv(ctx_, 8, argv, argl) != REDIS_OK) {
      r.error = std::string("redis: ") + ctx_->errstr;
      disconnect();
      return r;
    }
  }
  for (std::size_t i = 0; i < lines.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || !raw) {
      r.error = std::string("redis: ") + (ctx_->err ? ctx_->errstr : "no reply");
      if (raw) freeReplyObject(raw);
      disconnect();  // lines after r.consumed are sent again on a new connection
      return r;
    }
    auto* reply = static_cast<redisReply*>(raw);
    if (reply->type == REDIS_REPLY_ERROR) {
      // Refused by the server (e.g. WRONGTYPE): retrying cannot help; count it and go on.
      r.error = "redis: " + std::string(reply->str, reply->len);
      ++r.rejected;
    }
    freeReplyObject(raw);
    ++r.consumed;
  }
  return r;
}

}  // namespace portcullis
