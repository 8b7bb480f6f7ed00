#include "server/server.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <unistd.h>

#include <atomic>
#include <thread>

#include "admin/admin_server.hpp"
#include "audit/audit_log.hpp"
#include "audit/audit_metrics.hpp"
#include "authn/authn_services.hpp"
#include "authz/assertion_keys.hpp"
#include "cache/cache_metrics.hpp"
#include "cache/redis_shared_cache.hpp"
#include "cache/revocation_sync.hpp"
#include "cache/revocations.hpp"
#include "core/config.hpp"
#include "core/config_json.hpp"
#include "core/config_loader.hpp"
#include "core/log.hpp"
#include "http/tls_context.hpp"
#include "proxy/runtime.hpp"
#include "server/config_watcher.hpp"
#include "server/worker.hpp"
#include "sso/redis_session_store.hpp"
#include "sso/sso_flow.hpp"

namespace portcullis {
namespace asio = boost::asio;

struct Server::Impl {
  std::string config_path;
  RuntimeHolder runtimes;
  std::uint64_t generation = 1;
  asio::io_context control{1};
  asio::signal_set signals{control, SIGHUP, SIGTERM, SIGINT};
  std::vector<std::shared_ptr<ListenerRuntime>> listeners;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::thread> threads;
  std::unique_ptr<AdminServer> admin;
  std::atomic<bool> ready{false};
  AuthnServices authn{control.get_executor(), SystemClock::instance()};
  AssertionKeys assertion_keys;
  std::unique_ptr<AuditWriter> audit;  // process-wide; audit config changes need a restart
  RevocationList revocations{SystemClock::instance()};
  std::unique_ptr<RevocationSync> revocation_sync;  // with cache.redis; changes need a restart
  std::chrono::steady_clock::time_point first_sync_deadline;  // readiness waits until then
  std::shared_ptr<RedisSharedCache> shared_cache;             // with cache.redis
  // Browser sessions, their indexes and logout's revocations, on the shared cache's Redis.
  std::unique_ptr<RedisSessionStore> session_store;
  ConfigWatcher watcher{control.get_executor(), [this] {
                          app_log()->info("a config or policy file changed: reloading");
                          reload();
                        }};
  bool draining = false;
  asio::steady_timer drain_timer{control};
  std::chrono::steady_clock::time_point drain_deadline;

  // Throws std::runtime_error when the snapshot cannot be built (e.g. a provider's keys).
  void publish(std::shared_ptr<const Config> config) {
    runtimes.publish(Runtime::build(config, generation, &authn, &assertion_keys));
    if (config->server.watch_config) {
      watcher.watch(config->source_files);
    } else {
      watcher.watch({});
    }
    MetricsRegistry::instance().config_generation.store(generation, std::memory_order_relaxed);
  }

  void reload() {
    auto result = load_config_file(config_path);
    auto& metrics = MetricsRegistry::instance();
    if (!result.ok()) {
      metrics.reloads_failure.fetch_add(1, std::memory_order_relaxed);
      for (const auto& e : result.errors) {
        app_log()->error("reload refused, keeping the running config: {}",
                         escape_for_log(e.to_string()));
      }
      return;
    }
    auto current = runtimes.current()->config;
    bool listeners_changed = result.config->listeners.size() != current->listeners.size();
    for (std::size_t i = 0; !listeners_changed && i < current->listeners.size(); ++i) {
      listeners_changed = !(result.config->listeners[i].address == current->listeners[i].address) ||
                          result.config->listeners[i].name != current->listeners[i].name;
    }
    if (listeners_changed) {
      app_log()->warn("listener changes take effect on restart; the running listeners are kept");
    }
    if (result.config->audit.has_value() != current->audit.has_value() ||
        (current->audit && (result.config->audit->file_path != current->audit->file_path ||
                            result.config->audit->key_file != current->audit->key_file))) {
      app_log()->warn("audit changes take effect on restart; the running audit log is kept");
    }
    if (result.config->redis.has_value() != current->redis.has_value()) {
      app_log()->warn("cache.redis changes take effect on restart; the running connection is kept");
    }
    // Sessions in Redis need the shared cache's connection, made at start-up only: such a
    // config cannot serve a single browser until a restart, so it is refused here.
    if (result.config->sso && result.config->sso->session_store == SessionStoreKind::redis &&
        !session_store) {
      metrics.reloads_failure.fetch_add(1, std::memory_order_relaxed);
      app_log()->error(
          "reload refused, keeping the running config: sso sessions in Redis need cache.redis "
          "at start-up (restart to add it, or set sso.session_store: cookie)");
      return;
    }
    ++generation;
    try {
      publish(result.config);
    } catch (const std::exception& e) {
      --generation;
      metrics.reloads_failure.fetch_add(1, std::memory_order_relaxed);
      app_log()->error("reload refused, keeping the running config: {}", escape_for_log(e.what()));
      return;
    }
    metrics.reloads_success.fetch_add(1, std::memory_order_relaxed);
    app_log()->info("config reloaded from {} (generation {})", escape_for_log(config_path),
                    generation);
  }

  void wait_signal() {
    signals.async_wait([this](boost::system::error_code ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        reload();
        wait_signal();
        return;
      }
      begin_drain();
    });
  }

  void begin_drain() {
    if (draining) return;
    draining = true;
    ready.store(false);
    auto timeout = runtimes.current()->config->server.drain_timeout;
    app_log()->info("draining: up to {} ms for in-flight requests", timeout.count());
    drain_deadline = std::chrono::steady_clock::now() + timeout;
    for (auto& w : workers) w->begin_drain();
    poll_drain();
  }

  void poll_drain() {
    std::size_t active = 0;
    for (auto& w : workers) active += w->active_connections();
    if (active == 0 || std::chrono::steady_clock::now() >= drain_deadline) {
      if (active) app_log()->warn("drain deadline reached with {} connections open", active);
      for (auto& w : workers) w->stop();
      if (admin) admin->stop();
      authn.stop();
      if (audit) audit->close();  // after the workers: their last records are queued
      if (revocation_sync) revocation_sync->stop();
      if (shared_cache) shared_cache->stop();
      watcher.stop();
      signals.cancel();
      control.stop();
      return;
    }
    drain_timer.expires_after(std::chrono::milliseconds(50));
    drain_timer.async_wait([this](boost::system::error_code ec) {
      if (!ec) poll_drain();
    });
  }
};

Server::Server(std::string config_path, std::shared_ptr<const Config> config)
    : impl_(std::make_unique<Impl>()) {
  impl_->config_path = std::move(config_path);
  if (config->redis) {
    // Introspection results shared by the replicas; changes to cache.redis need a restart.
    impl_->shared_cache =
        std::make_shared<RedisSharedCache>(impl_->control.get_executor(), *config->redis);
    impl_->shared_cache->start();
    impl_->authn.set_shared_cache(impl_->shared_cache);
    impl_->session_store = std::make_unique<RedisSessionStore>(impl_->shared_cache);
  }
  impl_->publish(std::move(config));
}

Server::~Server() {
  for (auto& w : impl_->workers) w->stop();
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
}

int Server::run() {
  auto& s = *impl_;
  auto config = s.runtimes.current()->config;
  for (const auto& l : config->listeners) {
    auto lr = std::make_shared<ListenerRuntime>();
    lr->config = l;
    if (l.tls) lr->tls = make_server_tls_context(*l.tls);
    lr->metrics = &MetricsRegistry::instance().listener(l.name);
    s.listeners.push_back(std::move(lr));
  }
  if (config->audit) {
    std::string instance = config->server.instance_name;
    if (instance.empty()) {
      char host[256] = {};
      instance = ::gethostname(host, sizeof host - 1) == 0 ? host : "portcullis";
    }
    auto opened = AuditWriter::open(*config->audit, instance, SystemClock::instance());
    if (!opened) throw std::runtime_error("audit log: " + opened.error());
    s.audit = std::move(*opened);
    AuditWriter* audit = s.audit.get();
    MetricsRegistry::instance().add_external_renderer(
        [audit](std::string& out) { render_audit_metrics(audit->stats(), out); });
    if (!audit->accepting()) {
      app_log()->error("audit log not writable yet ({}); {}",
                       escape_for_log(audit->stats().last_error),
                       config->audit->on_failure == AuditConfig::OnFailure::deny
                           ? "requests are answered 503 until it is"
                           : "requests are served unaudited (on_failure: allow)");
    }
  }
  if (config->redis) {
    s.revocation_sync =
        std::make_unique<RevocationSync>(s.control.get_executor(), *config->redis, s.revocations);
    s.revocation_sync->start();
    s.first_sync_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    RevocationSync* sync = s.revocation_sync.get();
    RevocationList* list = &s.revocations;
    MetricsRegistry::instance().add_external_renderer([sync, list](std::string& out) {
      out +=
          "# HELP portcullis_revocations_synced 1 when this replica has every revocation from "
          "Redis, 0 while Redis is unreachable (known revocations still apply).\n"
          "# TYPE portcullis_revocations_synced gauge\nportcullis_revocations_synced ";
      out += sync->synced() ? "1\n" : "0\n";
      out +=
          "# HELP portcullis_revocations_active Revocations this replica enforces.\n"
          "# TYPE portcullis_revocations_active gauge\nportcullis_revocations_active ";
      out += std::to_string(list->snapshot()->size());
      out += '\n';
    });
  }
  const bool audit_deny =
      !config->audit || config->audit->on_failure == AuditConfig::OnFailure::deny;
  unsigned workers = config->server.workers;
  if (workers == 0) workers = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < workers; ++i) {
    s.workers.push_back(std::make_unique<Worker>(i, s.runtimes, s.listeners, s.audit.get(),
                                                 audit_deny,
                                                 config->redis ? &s.revocations : nullptr));
    if (s.session_store) s.workers.back()->set_session_store(s.session_store.get());
    s.workers.back()->open_listeners();
  }
  MetricsRegistry::instance().add_external_renderer([&s](std::string& out) {
    CacheMetricsInput in;
    for (const auto& w : s.workers) {
      in.token_hits += w->token_cache().hits();
      in.token_misses += w->token_cache().misses();
    }
    in.shared = s.shared_cache.get();
    render_cache_metrics(in, out);
  });
  if (config->admin.address) {
    AdminHooks hooks;
    // Not ready until the first revocation sync (bounded): a replica must not take traffic
    // while it does not yet know the revocations every other replica enforces.
    hooks.ready = [&s] {
      if (!s.ready.load()) return false;
      if (s.revocation_sync && !s.revocation_sync->ever_synced() &&
          std::chrono::steady_clock::now() < s.first_sync_deadline) {
        return false;
      }
      return true;
    };
    hooks.config_json = [&s] { return config_to_json(*s.runtimes.current()->config); };
    hooks.degraded = [&s]() -> std::string {
      if (s.revocation_sync && !s.revocation_sync->synced()) {
        return "Redis unreachable: revocations from other replicas are not being received";
      }
      return {};
    };
    s.admin = std::make_unique<AdminServer>(s.control, *config->admin.address, std::move(hooks));
    s.admin->start();
  }
  for (auto& w : s.workers) s.threads.emplace_back([&w] { w->run(); });
  s.wait_signal();
  s.ready.store(true);
  for (const auto& l : config->listeners) {
    app_log()->info("listening on {}://{} ({})", l.tls ? "https" : "http", l.address.to_string(),
                    l.name);
  }
  if (config->admin.address) {
    app_log()->info("admin on http://{}", config->admin.address->to_string());
  }
  app_log()->info("portcullis {} serving with {} workers (config {})", PORTCULLIS_VERSION, workers,
                  escape_for_log(s.config_path));
  s.control.run();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
  if (s.audit) s.audit->close();
  app_log()->info("stopped");
  return 0;
}

}  // namespace portcullis
