// RedisLink: the Asio adapter for hiredis' event hooks plus the connect/handshake/backoff cycle.
//
// Adapter: hiredis asks for read/write interest through ev.addRead/delRead/addWrite/delWrite; we
// keep one one-shot async_wait per direction on a stream_descriptor that wraps hiredis' fd
// (never owning it: cleanup releases it, hiredis closes it) and re-arm while interest remains.
// hiredis frees its context by itself when the connection breaks; the cleanup hook (which
// hiredis 0.14 may call twice) is the one place where we learn the context is gone.
#include "cache/redis_link.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstdint>

#include "audit/audit_redis.hpp"  // parse_redis_address

namespace portcullis {
namespace asio = boost::asio;

namespace {

enum HandshakeStep : std::intptr_t { kAuth = 1, kSelect = 2, kPing = 3 };

const char* step_name(int step) {
  switch (step) {
    case kAuth:
      return "AUTH";
    case kSelect:
      return "SELECT";
    default:
      return "PING";
  }
}

}  // namespace

std::string_view to_string(RedisState s) {
  switch (s) {
    case RedisState::disconnected:
      return "disconnected";
    case RedisState::connecting:
      return "connecting";
    case RedisState::ready:
      return "ready";
  }
  return "unknown";
}

// One connection attempt: the hiredis context and the descriptor wrapping its fd. Handlers hold
// it by shared_ptr; `ac` is null once hiredis has freed (or is freeing) the context.
struct RedisLink::Conn {
  Conn(RedisLink* l, const asio::any_io_executor& ex) : link(l), sd(ex) {}
  RedisLink* link;
  redisAsyncContext* ac = nullptr;
  asio::posix::stream_descriptor sd;
  bool want_read = false;
  bool want_write = false;
  bool read_armed = false;
  bool write_armed = false;
  bool drop = false;  // the handshake failed: free the context once hiredis has returned
  int handshake_left = 0;
};

std::shared_ptr<RedisLink> RedisLink::create(asio::any_io_executor executor, RedisConfig config,
                                             std::string password, RandomSource* random) {
  return std::shared_ptr<RedisLink>(
      new RedisLink(std::move(executor), std::move(config), std::move(password), random));
}

RedisLink::RedisLink(asio::any_io_executor executor, RedisConfig config, std::string password,
                     RandomSource* random)
    : executor_(std::move(executor)),
      config_(std::move(config)),
      password_(std::move(password)),
      backoff_(config_.backoff_min, config_.backoff_max, random),
      resolver_(executor_),
      connect_timer_(executor_),
      reconnect_timer_(executor_) {
  if (auto parsed = parse_redis_address(config_.address)) {
    host_ = parsed->host;
    port_ = parsed->port;
  } else {
    last_error_ = parsed.error();
  }
}

RedisLink::~RedisLink() {
  stopped_ = true;
  events_ = {};
  free_context();
}

redisAsyncContext* RedisLink::context() const {
  return state_ == RedisState::ready && conn_ ? conn_->ac : nullptr;
}

void RedisLink::start() {
  if (started_ || stopped_) return;
  started_ = true;
  auto self = shared_from_this();
  connect();
  flush();
}

void RedisLink::stop() {
  if (stopped_) return;
  auto self = shared_from_this();
  stopped_ = true;
  connect_timer_.cancel();
  reconnect_timer_.cancel();
  resolver_.cancel();
  free_context();  // hiredis runs the pending callbacks (null replies) and our cleanup hook
  transition(RedisState::disconnected);
  flush();
  events_ = {};
}

void RedisLink::free_context() {
  if (conn_ && conn_->ac) redisAsyncFree(conn_->ac);
}

void RedisLink::connect() {
  ++attempt_;
  conn_.reset();
  transition(RedisState::connecting);
  if (host_.empty()) return fail_attempt(last_error_);
  connect_timer_.expires_after(config_.connect_timeout);
  connect_timer_.async_wait([self = shared_from_this(), attempt = attempt_](auto ec) {
    if (ec || self->stopped_ || attempt != self->attempt_ ||
        self->state_ != RedisState::connecting) {
      return;
    }
    self->last_error_ = "redis " + self->config_.address + ": connect timed out after " +
                        std::to_string(self->config_.connect_timeout.count()) + " ms";
    if (self->conn_ && self->conn_->ac) {
      self->free_context();  // -> cleanup hook -> context_gone -> backoff
    } else {
      self->resolver_.cancel();  // -> the resolve handler fails the attempt
    }
    self->flush();
  });

  boost::system::error_code ec;
  asio::ip::make_address(host_, ec);
  if (!ec) return open(host_);
  resolver_.async_resolve(host_, std::to_string(port_),
                          [self = shared_from_this(), attempt = attempt_](auto rec, auto results) {
                            if (self->stopped_ || attempt != self->attempt_) return;
                            if (rec == asio::error::operation_aborted) {
                              self->fail_attempt(self->last_error_);
                            } else if (rec || results.empty()) {
                              self->fail_attempt("redis " + self->config_.address +
                                                 ": cannot resolve host: " + rec.message());
                            } else {
                              self->open(results.begin()->endpoint().address().to_string());
                            }
                            self->flush();
                          });
}

void RedisLink::open(const std::string& ip) {
  // An IP literal: hiredis' getaddrinfo does not block, connect(2) is non-blocking.
  redisAsyncContext* ac = redisAsyncConnect(ip.c_str(), port_);
  if (!ac) return fail_attempt("redis " + config_.address + ": out of memory");
  if (ac->err) {
    std::string error = "redis " + config_.address + ": " + ac->errstr;
    redisAsyncFree(ac);
    return fail_attempt(std::move(error));
  }
  auto conn = std::make_shared<Conn>(this, executor_);
  boost::system::error_code ec;
  conn->sd.assign(ac->c.fd, ec);
  if (ec) {
    redisAsyncFree(ac);
    return fail_attempt("redis " + config_.address + ": " + ec.message());
  }
  conn->ac = ac;
  conn_ = conn;
  ac->data = conn.get();
  ac->ev.data = conn.get();
  ac->ev.addRead = hook_add_read;
  ac->ev.delRead = hook_del_read;
  ac->ev.addWrite = hook_add_write;
  ac->ev.delWrite = hook_del_write;
  ac->ev.cleanup = hook_cleanup;
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  redisAsyncSetConnectCallback(ac, on_connect);  // asks for write interest: connect(2) done

  // The handshake is queued now and goes out as soon as the socket connects; commands of the
  // owner are only accepted once it has been answered (context() is null until then).
  const std::string db = std::to_string(config_.db);
  std::vector<std::vector<std::string_view>> steps;
  std::vector<std::intptr_t> tags;
  if (!password_.empty()) {
    if (config_.username.empty()) {
      steps.push_back({"AUTH", password_});
    } else {
      steps.push_back({"AUTH", config_.username, password_});
    }
    tags.push_back(kAuth);
  }
  if (config_.db != 0) {
    steps.push_back({"SELECT", db});
    tags.push_back(kSelect);
  }
  if (steps.empty()) {
    steps.push_back({"PING"});
    tags.push_back(kPing);
  }
  for (std::size_t i = 0; i < steps.size(); ++i) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (auto a : steps[i]) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAsyncCommandArgv(ac, on_handshake, reinterpret_cast<void*>(tags[i]),
                              static_cast<int>(argv.size()), argv.data(),
                              lens.data()) != REDIS_OK) {
      last_error_ = "redis " + config_.address + ": cannot queue the handshake";
      conn->drop = true;
      break;
    }
    ++conn->handshake_left;
  }
  if (conn->drop) free_context();
}

void RedisLink::fail_attempt(std::string error) {
  last_error_ = std::move(error);
  connect_timer_.cancel();
  transition(RedisState::disconnected);
  schedule_reconnect();
}

void RedisLink::schedule_reconnect() {
  if (stopped_) return;
  reconnect_timer_.expires_after(backoff_.next());
  reconnect_timer_.async_wait([self = shared_from_this(), attempt = attempt_](auto ec) {
    if (ec || self->stopped_ || attempt != self->attempt_) return;
    self->connect();
    self->flush();
  });
}

void RedisLink::transition(RedisState s) {
  if (s == state_) return;
  state_ = s;
  transitions_.push_back(s);
}

void RedisLink::flush() {
  if (flushing_) return;
  flushing_ = true;
  auto self = shared_from_this();
  do {
    auto transitions = std::move(transitions_);
    transitions_.clear();
    for (auto s : transitions) {
      if (auto on_state = events_.on_state) on_state(s);
    }
    if (auto after_io = events_.after_io) after_io();
  } while (!transitions_.empty());
  flushing_ = false;
}

void RedisLink::arm_read(const std::shared_ptr<Conn>& conn) {
  if (conn->read_armed || !conn->ac || !conn->want_read) return;
  conn->read_armed = true;
  conn->sd.async_wait(asio::posix::descriptor_base::wait_read,
                      [self = shared_from_this(), conn](boost::system::error_code ec) {
                        conn->read_armed = false;
                        if (ec || !conn->ac || !conn->want_read) return;
                        redisAsyncHandleRead(conn->ac);
                        if (conn->ac && conn->drop) redisAsyncFree(conn->ac);
                        self->arm_read(conn);
                        self->flush();
                      });
}

void RedisLink::arm_write(const std::shared_ptr<Conn>& conn) {
  if (conn->write_armed || !conn->ac || !conn->want_write) return;
  conn->write_armed = true;
  conn->sd.async_wait(asio::posix::descriptor_base::wait_write,
                      [self = shared_from_this(), conn](boost::system::error_code ec) {
                        conn->write_armed = false;
                        if (ec || !conn->ac || !conn->want_write) return;
                        redisAsyncHandleWrite(conn->ac);
                        if (conn->ac && conn->drop) redisAsyncFree(conn->ac);
                        self->arm_write(conn);
                        self->flush();
                      });
}

void RedisLink::context_gone(Conn* conn) {
  if (conn != conn_.get()) return;
  connect_timer_.cancel();
  transition(RedisState::disconnected);
  schedule_reconnect();
}

void RedisLink::handshake_reply(Conn* conn, void* reply, int step) {
  if (!reply || conn != conn_.get() || conn->drop) return;  // null: the context is going away
  const auto* r = static_cast<const redisReply*>(reply);
  if (r->type == REDIS_REPLY_ERROR) {
    last_error_ = "redis " + config_.address + ": " + step_name(step) +
                  " failed: " + std::string(r->str, r->len);
    conn->drop = true;
    return;
  }
  if (--conn->handshake_left == 0) {
    connect_timer_.cancel();
    backoff_.reset();
    last_error_.clear();
    transition(RedisState::ready);
  }
}

// The hooks look the connection up by pointer; the RedisLink keeps the Conn alive (conn_) at
// least until hiredis has finished freeing the context.
void RedisLink::hook_add_read(void* data) {
  auto* conn = static_cast<Conn*>(data);
  conn->want_read = true;
  if (conn->link->conn_.get() == conn) conn->link->arm_read(conn->link->conn_);
}

void RedisLink::hook_del_read(void* data) {
  static_cast<Conn*>(data)->want_read = false;
}

void RedisLink::hook_add_write(void* data) {
  auto* conn = static_cast<Conn*>(data);
  conn->want_write = true;
  if (conn->link->conn_.get() == conn) conn->link->arm_write(conn->link->conn_);
}

void RedisLink::hook_del_write(void* data) {
  static_cast<Conn*>(data)->want_write = false;
}

void RedisLink::hook_cleanup(void* data) {
  auto* conn = static_cast<Conn*>(data);
  if (!conn->ac) return;  // hiredis 0.14 may call cleanup twice
  RedisLink* link = conn->link;
  if (conn->ac->c.err != 0 && !conn->drop) {
    link->last_error_ = "redis " + link->config_.address + ": " + conn->ac->c.errstr;
  }
  conn->ac = nullptr;
  conn->want_read = conn->want_write = false;
  boost::system::error_code ignored;
  conn->sd.cancel(ignored);
  conn->sd.release();  // hiredis closes the fd
  link->context_gone(conn);
}

void RedisLink::on_connect(const redisAsyncContext* ac, int status) {
  if (status == REDIS_OK) return;
  auto* conn = static_cast<Conn*>(ac->data);
  conn->link->last_error_ =
      "redis " + conn->link->config_.address + ": connect failed: " + ac->c.errstr;
}

void RedisLink::on_disconnect(const redisAsyncContext*, int) {
  // Nothing to do: the cleanup hook (called before this) has already reported the loss.
}

void RedisLink::on_handshake(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* conn = static_cast<Conn*>(ac->data);
  conn->link->handshake_reply(conn, reply,
                              static_cast<int>(reinterpret_cast<std::intptr_t>(privdata)));
}

}  // namespace portcullis
