#pragma once
// A worker: one thread, one io_context, its own accept loop per listener (SO_REUSEPORT, so
// the kernel spreads connections), its own upstream pool. A connection lives on one worker;
// per-worker state needs no locks. The Server owns the workers and drives start/drain/stop.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <set>
#include <vector>

#include "authn/token_cache.hpp"
#include "authz/assertion_cache.hpp"
#include "core/config.hpp"
#include "core/ids.hpp"
#include "proxy/runtime.hpp"
#include "proxy/upstream_pool.hpp"

namespace spdlog {
class logger;
}

namespace portcullis {

class AuditWriter;
class H2UpstreamPool;
struct RequestContext;
class RevocationList;
class RevocationView;

// What a listener needs at run time; shared by all workers.
struct ListenerRuntime {
  ListenerConfig config;
  std::shared_ptr<boost::asio::ssl::context> tls;  // null for plaintext
  ListenerMetrics* metrics = nullptr;
};

// Interface a downstream connection registers so a drain can close it between requests.
class DownstreamConnection {
 public:
  virtual ~DownstreamConnection() = default;
  virtual void close_if_idle() = 0;
};

class SessionStore;
class Worker {
 public:
  // `audit` (may be null) outlives the worker; `audit_deny` makes requests it cannot
  // accept answer 503 (audit.on_failure: deny).
  // `revocations` (may be null) outlives the worker too.
  Worker(unsigned id, RuntimeHolder& runtimes,
         const std::vector<std::shared_ptr<ListenerRuntime>>& listeners,
         AuditWriter* audit = nullptr, bool audit_deny = true,
         const RevocationList* revocations = nullptr);
  ~Worker();

  // Opens this worker's acceptors (throws std::system_error when an address cannot be bound).
  void open_listeners();
  void run();          // the thread body; returns when stop() is called
  void begin_drain();  // thread-safe: stop accepting, close idle connections
  void stop();         // thread-safe

  boost::asio::io_context& io() { return io_; }
  UpstreamPool& pool() { return pool_; }
  RandomSource& random() { return random_; }
  TokenCache& token_cache() { return token_cache_; }
  AssertionCache& assertions() { return assertions_; }
  AuditWriter* audit() const { return audit_; }
  RevocationView* revocations() { return revocations_.get(); }  // null: none configured
  // Logout revokes the session id for every replica (null without cache.redis).
  SessionStore* session_store() { return session_store_; }
  void set_session_store(SessionStore* s) { session_store_ = s; }
  bool audit_deny() const { return audit_deny_; }
  spdlog::logger* access_logger() const { return access_log_.get(); }
  const std::shared_ptr<const Runtime>& runtime();  // current snapshot (refreshed on reload)
  bool draining() const { return draining_.load(std::memory_order_relaxed); }
  std::size_t active_connections() const { return active_.load(std::memory_order_relaxed); }

  // A finished request: route metrics, access log line, audit record (any codec).
  void record_request(const Runtime& runtime, const RequestContext& ctx);
  H2UpstreamPool& h2_pool() { return *h2_pool_; }

  void register_connection(DownstreamConnection* c);
  void unregister_connection(DownstreamConnection* c);

 private:
  struct Acceptor;
  boost::asio::awaitable<void> accept_loop(Acceptor& a);
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket,
                                     std::shared_ptr<ListenerRuntime> listener);
  void schedule_sweep();

  unsigned id_;
  // Only this worker's thread runs I/O on it (cross-thread calls are posted).
  boost::asio::io_context io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  RuntimeHolder& runtimes_;
  std::shared_ptr<const Runtime> runtime_;
  std::vector<std::shared_ptr<ListenerRuntime>> listeners_;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  UpstreamPool pool_;
  std::unique_ptr<H2UpstreamPool> h2_pool_;
  OpenSslRandom random_;
  TokenCache token_cache_;
  AssertionCache assertions_{SystemClock::instance(), random_};
  std::shared_ptr<spdlog::logger> access_log_;
  AuditWriter* audit_ = nullptr;
  bool audit_deny_ = true;
  std::unique_ptr<RevocationView> revocations_;
  SessionStore* session_store_ = nullptr;  // with cache.redis (browser sessions)
  std::atomic<bool> draining_{false};
  std::atomic<std::size_t> active_{0};
  std::set<DownstreamConnection*> connections_;
  boost::asio::steady_timer sweep_timer_{io_};
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
};

}  // namespace portcullis
