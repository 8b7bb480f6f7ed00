// KeyStore: every fetch, timer and in-flight bookkeeping runs on a strand of the control
// executor; callers hop there with co_spawn and resume on their own executor. Only the
// installed set and the status cross threads, under a small mutex. Coroutines and handlers own
// the shared state (a shared_ptr), so nothing dangles when the KeyStore goes away first.
#include "authn/key_store.hpp"

#include <spdlog/logger.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "core/log.hpp"

namespace portcullis {
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxQuotedChars = 200;

using SteadyTime = std::chrono::steady_clock::time_point;

// One fetch (discovery when needed, then the JWKS) that any number of callers wait for. Each
// waiter parks on its own timer (its own bound); the fetch cancels them all when done.
struct InFlight {
  bool finished = false;
  bool installed = false;
  std::vector<std::shared_ptr<asio::steady_timer>> waiters;
};

// A successfully fetched and parsed key set, with what the responses said about caching.
struct Fetched {
  std::shared_ptr<const JwkSet> keys;
  std::optional<std::chrono::seconds> max_age;
};

// The state shared by the KeyStore and its coroutines (KeyStore::State is this, privately).
struct Core {
  Core(asio::any_io_executor control, std::shared_ptr<HttpFetcher> f, const Clock& c,
       KeyStoreOptions o)
      : strand(asio::make_strand(control)),
        fetcher(std::move(f)),
        clock(c),
        options(std::move(o)),
        refresh_timer(strand) {}

  asio::strand<asio::any_io_executor> strand;
  std::shared_ptr<HttpFetcher> fetcher;
  const Clock& clock;
  const KeyStoreOptions options;
  std::atomic<bool> stopped{false};

  // Any thread, under the mutex.
  mutable std::mutex mutex;
  std::shared_ptr<const JwkSet> keys =
      std::make_shared<const JwkSet>(std::vector<Jwk>{}, std::vector<std::string>{});
  KeyStoreStatus status;

  // The strand only.
  asio::steady_timer refresh_timer;
  bool loop_started = false;
  std::shared_ptr<InFlight> in_flight;
  std::optional<SteadyTime> unknown_kid_fetch;  // when the current cooldown began
  std::optional<SteadyTime> last_install;
  std::string discovered_jwks_uri;
  bool rediscover = true;
  std::chrono::seconds backoff{1};

  void install(std::shared_ptr<const JwkSet> set) {
    for (const auto& warning : set->warnings()) {
      app_log()->warn("provider {}: JWKS: {}", options.provider_name, escape_for_log(warning));
    }
    std::lock_guard lock(mutex);
    keys = std::move(set);
    status.has_keys = true;
    status.fetches_ok++;
    status.last_error.clear();
  }

  void record_failure(const std::string& reason) {
    app_log()->warn("provider {}: key refresh failed, keeping the last good set: {}",
                    options.provider_name, escape_for_log(reason));
    std::lock_guard lock(mutex);
    status.fetches_failed++;
    status.last_error = reason;
  }
};

std::string quoted(std::string_view s) {
  return "'" + escape_for_log(s.substr(0, kMaxQuotedChars)) + "'";
}

std::string discovery_url(std::string issuer) {
  while (!issuer.empty() && issuer.back() == '/') issuer.pop_back();
  return issuer + "/.well-known/openid-configuration";
}

// A GET through the fetcher, an exception becoming an error value.
asio::awaitable<Expected<HttpResult, std::string>> get(HttpFetcher& fetcher, std::string url) {
  HttpRequestSpec request{.method = "GET", .url = std::move(url), .headers = {}, .body = {}};
  request.headers.emplace_back("accept", "application/json");
  try {
    co_return co_await fetcher.fetch(std::move(request));
  } catch (const std::exception& e) {
    co_return unexpected(std::string(e.what()));
  }
}

// GET {issuer}/.well-known/openid-configuration; its "issuer" must be ours exactly.
asio::awaitable<Expected<std::monostate, std::string>> discover(Core& core) {
  auto response = co_await get(*core.fetcher, discovery_url(core.options.issuer));
  if (!response) co_return unexpected("discovery: " + response.error());
  if (response->status != 200) {
    co_return unexpected("discovery: HTTP " + std::to_string(response->status));
  }
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(response->body, ec);
  if (ec || !doc.is_object()) co_return unexpected(std::string("discovery: not a JSON object"));
  const auto& object = doc.get_object();
  const auto* issuer = object.if_contains("issuer");
  if (!issuer || !issuer->is_string()) co_return unexpected(std::string("discovery: no issuer"));
  if (issuer->get_string() != core.options.issuer) {
    co_return unexpected("discovery: issuer mismatch: document names " +
                         quoted(issuer->get_string()) + ", expected " +
                         quoted(core.options.issuer));
  }
  const auto* jwks_uri = object.if_contains("jwks_uri");
  if (!jwks_uri || !jwks_uri->is_string() || jwks_uri->get_string().empty()) {
    co_return unexpected(std::string("discovery: no jwks_uri"));
  }
  core.discovered_jwks_uri = std::string(jwks_uri->get_string());
  auto endpoint = [&](std::string_view name) {
    const auto* v = object.if_contains(name);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
  };
  std::lock_guard lock(core.mutex);
  core.status.jwks_uri = core.discovered_jwks_uri;
  core.status.introspection_endpoint = endpoint("introspection_endpoint");
  core.status.authorization_endpoint = endpoint("authorization_endpoint");
  core.status.token_endpoint = endpoint("token_endpoint");
  core.status.end_session_endpoint = endpoint("end_session_endpoint");
  co_return std::monostate{};
}

// Discovery when needed (not yet done, or the last fetch failed), then the JWKS.
asio::awaitable<Expected<Fetched, std::string>> fetch_keys(Core& core) {
  std::string uri = core.options.jwks_uri;
  if (uri.empty()) {
    if (core.discovered_jwks_uri.empty() || core.rediscover) {
      auto discovered = co_await discover(core);
      if (!discovered) co_return unexpected(discovered.error());
    }
    uri = core.discovered_jwks_uri;
  }
  auto response = co_await get(*core.fetcher, uri);
  if (!response) co_return unexpected("jwks: " + response.error());
  if (response->status != 200) {
    co_return unexpected("jwks: HTTP " + std::to_string(response->status));
  }
  auto set = JwkSet::parse(response->body);
  if (!set) co_return unexpected("jwks: " + set.error());
  if ((*set)->empty()) co_return unexpected(std::string("jwks: no usable key"));
  co_return Fetched{std::move(*set), cache_control_max_age(response->header("cache-control"))};
}

// Runs one fetch to its end: installs or records the failure, schedules the next background
// refresh, then releases every waiter.
asio::awaitable<void> run_fetch(std::shared_ptr<Core> core, std::shared_ptr<InFlight> flight) {
  Expected<Fetched, std::string> fetched = unexpected(std::string("no result"));
  try {
    fetched = co_await fetch_keys(*core);
  } catch (const std::exception& e) {
    fetched = unexpected(std::string("unexpected error: ") + e.what());
  }
  const auto& o = core->options;
  std::chrono::seconds delay;
  if (fetched) {
    core->install(std::move(fetched->keys));
    core->last_install = core->clock.steady_now();
    core->rediscover = false;
    core->backoff = 1s;
    delay = std::clamp(fetched->max_age.value_or(o.default_refresh), o.min_refresh,
                       std::max(o.min_refresh, o.max_refresh));
  } else {
    core->record_failure(fetched.error());
    core->rediscover = true;
    delay = core->backoff;
    core->backoff = std::min(core->backoff * 2, std::max(o.min_refresh, std::chrono::seconds(1)));
  }
  if (core->loop_started && !core->stopped) {
    core->refresh_timer.expires_after(delay);
    std::lock_guard lock(core->mutex);
    core->status.next_refresh = delay;
  }
  flight->finished = true;
  flight->installed = fetched.has_value();
  if (core->in_flight == flight) core->in_flight.reset();
  for (auto& waiter : flight->waiters) waiter->cancel();
}

// Starts a fetch, or joins the one in flight, and waits for it (at most `bound`). True when it
// installed a new set.
asio::awaitable<bool> join_fetch(std::shared_ptr<Core> core,
                                 std::optional<std::chrono::milliseconds> bound) {
  auto flight = core->in_flight;
  if (!flight) {
    flight = core->in_flight = std::make_shared<InFlight>();
    asio::co_spawn(core->strand, run_fetch(core, flight), asio::detached);
  }
  if (flight->finished) co_return flight->installed;
  auto waiter = std::make_shared<asio::steady_timer>(core->strand);
  if (bound) {
    waiter->expires_after(*bound);
  } else {
    waiter->expires_at(SteadyTime::max());
  }
  flight->waiters.push_back(waiter);
  co_await waiter->async_wait(use_nothrow);
  std::erase(flight->waiters, waiter);
  co_return flight->finished && flight->installed;
}

// The first fetch, then one per expiry of the refresh timer (which each fetch re-arms).
asio::awaitable<void> refresh_loop(std::shared_ptr<Core> core) {
  co_await join_fetch(core, std::nullopt);
  while (!core->stopped) {
    auto [ec] = co_await core->refresh_timer.async_wait(use_nothrow);
    if (core->stopped) break;
    // Cancelled or moved by a fetch that re-armed the timer: wait for the new expiry.
    if (ec || core->refresh_timer.expiry() > std::chrono::steady_clock::now()) continue;
    co_await join_fetch(core, std::nullopt);
  }
}

asio::awaitable<bool> unknown_kid(std::shared_ptr<Core> core) {
  if (!core->options.jwks_file.empty() || core->stopped) co_return false;
  if (!core->in_flight) {
    auto now = core->clock.steady_now();
    const auto& began = core->unknown_kid_fetch;
    if (began && now - *began < core->options.unknown_kid_cooldown) {
      // No new fetch; a set installed since the cooldown began is worth another look.
      co_return core->last_install.has_value() && *core->last_install >= *began;
    }
    core->unknown_kid_fetch = now;
  }
  co_return co_await join_fetch(core, core->options.fetch_wait);
}

std::shared_ptr<const JwkSet> load_file(const KeyStoreOptions& o) {
  std::ifstream in(o.jwks_file, std::ios::binary);
  std::ostringstream text;
  if (!in || !(text << in.rdbuf())) {
    throw std::runtime_error("provider " + o.provider_name + ": cannot read jwks_file '" +
                             o.jwks_file + "'");
  }
  auto set = JwkSet::parse(text.str());
  if (!set) {
    throw std::runtime_error("provider " + o.provider_name + ": jwks_file '" + o.jwks_file +
                             "': " + set.error());
  }
  return std::move(*set);
}

}  // namespace

struct KeyStore::State : Core {
  using Core::Core;
};

KeyStore::KeyStore(asio::any_io_executor control, std::shared_ptr<HttpFetcher> fetcher,
                   const Clock& clock, KeyStoreOptions options)
    : options_(options),
      state_(std::make_shared<State>(std::move(control), std::move(fetcher), clock,
                                     std::move(options))) {
  state_->status.jwks_uri = options_.jwks_uri;  // discovery fills it in otherwise
}

KeyStore::~KeyStore() {
  stop();
}

void KeyStore::start() {
  if (!options_.jwks_file.empty()) {
    state_->install(load_file(options_));
    return;
  }
  if (options_.jwks_uri.empty() && options_.issuer.empty()) {
    throw std::runtime_error("provider " + options_.provider_name +
                             ": no jwks_file, jwks_uri or issuer to discover keys from");
  }
  std::shared_ptr<Core> core = state_;
  asio::post(core->strand, [core] {
    if (core->loop_started || core->stopped) return;
    core->loop_started = true;
    asio::co_spawn(core->strand, refresh_loop(core), asio::detached);
  });
}

void KeyStore::stop() {
  std::shared_ptr<Core> core = state_;
  if (core->stopped.exchange(true)) return;
  asio::post(core->strand, [core] {
    core->refresh_timer.cancel();
    if (core->in_flight) {
      for (auto& waiter : core->in_flight->waiters) waiter->cancel();
    }
    std::lock_guard lock(core->mutex);
    core->status.next_refresh = 0s;
  });
}

std::shared_ptr<const JwkSet> KeyStore::current() const {
  std::lock_guard lock(state_->mutex);
  return state_->keys;
}

KeyStoreStatus KeyStore::status() const {
  std::lock_guard lock(state_->mutex);
  return state_->status;
}

asio::awaitable<bool> KeyStore::refresh_for_unknown_kid() {
  std::shared_ptr<Core> core = state_;
  auto [failure, installed] = co_await asio::co_spawn(core->strand, unknown_kid(core), use_nothrow);
  co_return !failure && installed;
}

asio::awaitable<bool> KeyStore::refresh_now() {
  if (!options_.jwks_file.empty()) {
    try {
      state_->install(load_file(options_));
      co_return true;
    } catch (const std::exception& e) {
      state_->record_failure(e.what());
      co_return false;
    }
  }
  std::shared_ptr<Core> core = state_;
  auto [failure, installed] =
      co_await asio::co_spawn(core->strand, join_fetch(core, std::nullopt), use_nothrow);
  co_return !failure && installed;
}

}  // namespace portcullis
