// KeyStore with a scripted HttpFetcher and a manual clock, on an io_context in the test. Keys
// are EC P-256 keys generated with OpenSSL for each run.
#include "authn/key_store.hpp"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <unistd.h>
#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "authn/base64url.hpp"

namespace portcullis {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Outcome = Expected<HttpResult, std::string>;

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
constexpr const char* kIssuer = "https://idp.example/oauth2/default";
constexpr const char* kDiscoveryUrl =
    "https://idp.example/oauth2/default/.well-known/openid-configuration";
constexpr const char* kJwksUrl = "https://idp.example/oauth2/default/v1/keys";

// ---- keys ------------------------------------------------------------------------------------

// A fresh EC P-256 public key as a JWK member with the given kid.
std::string p256_jwk(const std::string& kid) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  EXPECT_NE(key, nullptr);
  auto coordinate = [&](const char* name) {
    BIGNUM* bn = nullptr;
    EVP_PKEY_get_bn_param(key, name, &bn);
    std::vector<unsigned char> bytes(32);
    BN_bn2binpad(bn, bytes.data(), static_cast<int>(bytes.size()));
    BN_free(bn);
    return base64url_encode(bytes);
  };
  std::string out = R"({"kty":"EC","crv":"P-256","use":"sig","alg":"ES256","kid":")" + kid +
                    R"(","x":")" + coordinate(OSSL_PKEY_PARAM_EC_PUB_X) + R"(","y":")" +
                    coordinate(OSSL_PKEY_PARAM_EC_PUB_Y) + "\"}";
  EVP_PKEY_free(key);
  return out;
}

std::string jwks(std::initializer_list<std::string> kids) {
  std::string out = R"({"keys":[)";
  bool first = true;
  for (const auto& kid : kids) {
    if (!first) out += ",";
    out += p256_jwk(kid);
    first = false;
  }
  return out + "]}";
}

// ---- fakes -----------------------------------------------------------------------------------

class ManualClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point steady_now() const override { return steady_; }
  std::chrono::system_clock::time_point system_now() const override { return system_; }
  void advance(std::chrono::seconds d) {
    steady_ += d;
    system_ += d;
  }

 private:
  std::chrono::steady_clock::time_point steady_ = std::chrono::steady_clock::time_point{} + 1h;
  std::chrono::system_clock::time_point system_ = std::chrono::system_clock::now();
};

Outcome ok(std::string body, std::string cache_control = "") {
  HttpResult r;
  r.status = 200;
  r.body = std::move(body);
  if (!cache_control.empty()) r.headers.emplace_back("cache-control", std::move(cache_control));
  return r;
}

Outcome status(unsigned code) {
  HttpResult r;
  r.status = code;
  r.body = "{}";
  return r;
}

Outcome failure(std::string reason) {
  return unexpected(std::move(reason));
}

// Scripted responses per URL: the front of each URL's queue is answered (and popped while more
// follow; the last one sticks). Counts calls and notes the thread each ran on.
class FakeFetcher final : public HttpFetcher {
 public:
  void set(const std::string& url, Outcome outcome) {
    script_[url].clear();
    script_[url].push_back(std::move(outcome));
  }
  void then(const std::string& url, Outcome outcome) { script_[url].push_back(std::move(outcome)); }

  asio::awaitable<Outcome> fetch(HttpRequestSpec request) override {
    calls.push_back(request.url);
    thread = std::this_thread::get_id();
    if (delay > 0ms) {
      asio::steady_timer timer(co_await asio::this_coro::executor, delay);
      co_await timer.async_wait(use_nothrow);
    }
    if (throw_next) {
      throw_next = false;
      throw std::runtime_error("fetcher blew up");
    }
    auto it = script_.find(request.url);
    if (it == script_.end() || it->second.empty()) co_return failure("no script for the URL");
    Outcome out = it->second.front();
    if (it->second.size() > 1) it->second.pop_front();
    co_return out;
  }

  std::size_t count(const std::string& url) const {
    return static_cast<std::size_t>(std::count(calls.begin(), calls.end(), url));
  }

  std::vector<std::string> calls;
  std::chrono::milliseconds delay{0};
  bool throw_next = false;
  std::thread::id thread;

 private:
  std::map<std::string, std::deque<Outcome>> script_;
};

// ---- fixture ---------------------------------------------------------------------------------

class KeyStoreTest : public ::testing::Test {
 protected:
  std::shared_ptr<KeyStore> make(KeyStoreOptions o) {
    if (o.provider_name.empty()) o.provider_name = "test";
    return std::make_shared<KeyStore>(io.get_executor(), fetcher, clock, std::move(o));
  }
  static KeyStoreOptions by_uri() {
    KeyStoreOptions o;
    o.issuer = kIssuer;
    o.jwks_uri = kJwksUrl;
    return o;
  }

  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < end) {
      if (io.stopped()) io.restart();  // a run that found no work stops the io_context
      io.run_one_for(10ms);
    }
    return done();
  }

  bool await(asio::awaitable<bool> a) {
    std::optional<bool> out;
    asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, bool v) {
      EXPECT_FALSE(e);
      out = v;
    });
    EXPECT_TRUE(run_until([&] { return out.has_value(); }));
    return out.value_or(false);
  }

  // Starts the store and runs until its first fetch has ended.
  void start(KeyStore& store) {
    store.start();
    ASSERT_TRUE(run_until([&] {
      auto s = store.status();
      return s.fetches_ok + s.fetches_failed > 0;
    }));
  }

  std::filesystem::path temp_file(const std::string& name, const std::string& text) {
    auto path = std::filesystem::temp_directory_path() /
                ("portcullis-key-store-" + std::to_string(::getpid()) + "-" + name);
    std::ofstream(path) << text;
    files_.push_back(path);
    return path;
  }

  void TearDown() override {
    for (const auto& f : files_) std::filesystem::remove(f);
  }

  asio::io_context io;
  ManualClock clock;
  std::shared_ptr<FakeFetcher> fetcher = std::make_shared<FakeFetcher>();

 private:
  std::vector<std::filesystem::path> files_;
};

// ---- jwks_file -------------------------------------------------------------------------------

TEST_F(KeyStoreTest, JwksFileLoadsSynchronously) {
  KeyStoreOptions o;
  o.issuer = kIssuer;
  o.jwks_file = temp_file("good.json", jwks({"a", "b"}));
  auto store = make(o);
  EXPECT_TRUE(store->current()->empty());
  EXPECT_FALSE(store->status().has_keys);
  store->start();
  EXPECT_EQ(store->current()->size(), 2u);
  EXPECT_NE(store->current()->find("b"), nullptr);
  auto s = store->status();
  EXPECT_TRUE(s.has_keys);
  EXPECT_EQ(s.fetches_ok, 1u);
  EXPECT_TRUE(fetcher->calls.empty());
  // A file source never fetches for an unknown kid.
  EXPECT_FALSE(await(store->refresh_for_unknown_kid()));
  EXPECT_TRUE(fetcher->calls.empty());
}

TEST_F(KeyStoreTest, BadJwksFileThrowsWithTheReasonAndAReloadKeepsTheLastGoodSet) {
  KeyStoreOptions o;
  o.jwks_file = "/nonexistent/jwks.json";
  try {
    make(o)->start();
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot read jwks_file '/nonexistent/jwks.json'"),
              std::string::npos)
        << e.what();
  }

  o.jwks_file = temp_file("garbage.json", "this is not json").string();
  try {
    make(o)->start();
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(o.jwks_file), std::string::npos) << e.what();
  }

  o.jwks_file = temp_file("reload.json", jwks({"a"})).string();
  auto store = make(o);
  store->start();
  auto good = store->current();
  std::ofstream(o.jwks_file) << R"({"keys":[]})";
  EXPECT_THROW(store->start(), std::runtime_error);
  EXPECT_EQ(store->current(), good);
  EXPECT_FALSE(await(store->refresh_now()));
  EXPECT_EQ(store->current(), good);
  EXPECT_EQ(store->status().fetches_failed, 1u);
  std::ofstream(o.jwks_file) << jwks({"a2"});
  EXPECT_TRUE(await(store->refresh_now()));
  EXPECT_NE(store->current()->find("a2"), nullptr);
}

TEST_F(KeyStoreTest, NoSourceAtAllThrows) {
  KeyStoreOptions o;
  EXPECT_THROW(make(o)->start(), std::runtime_error);
}

// ---- jwks_uri and discovery ------------------------------------------------------------------

TEST_F(KeyStoreTest, JwksUriFirstFetchInstallsTheSet) {
  fetcher->set(kJwksUrl, ok(jwks({"k1"})));
  auto store = make(by_uri());
  start(*store);
  EXPECT_EQ(fetcher->calls, std::vector<std::string>{kJwksUrl});
  EXPECT_NE(store->current()->find("k1"), nullptr);
  auto s = store->status();
  EXPECT_TRUE(s.has_keys);
  EXPECT_EQ(s.fetches_ok, 1u);
  EXPECT_EQ(s.fetches_failed, 0u);
  EXPECT_EQ(s.jwks_uri, kJwksUrl);
  EXPECT_EQ(s.next_refresh, 3600s);  // no Cache-Control: default_refresh
  store->stop();
}

TEST_F(KeyStoreTest, DiscoveryResolvesJwksUriAndIntrospectionEndpoint) {
  fetcher->set(kDiscoveryUrl,
               ok(std::string(R"({"issuer":")") + kIssuer + R"(","jwks_uri":")" + kJwksUrl +
                  R"(","introspection_endpoint":")" + kIssuer + R"(/v1/introspect"})"));
  fetcher->set(kJwksUrl, ok(jwks({"k1"})));
  KeyStoreOptions o;
  o.issuer = std::string(kIssuer);
  auto store = make(o);
  start(*store);
  EXPECT_EQ(fetcher->calls, (std::vector<std::string>{kDiscoveryUrl, kJwksUrl}));
  auto s = store->status();
  EXPECT_TRUE(s.has_keys);
  EXPECT_EQ(s.jwks_uri, kJwksUrl);
  EXPECT_EQ(s.introspection_endpoint, std::string(kIssuer) + "/v1/introspect");
  // Discovery is not repeated while fetches succeed...
  EXPECT_TRUE(await(store->refresh_now()));
  EXPECT_EQ(fetcher->count(kDiscoveryUrl), 1u);
  // ...but is after a failed fetch (the jwks_uri may have moved).
  fetcher->set(kJwksUrl, status(404));
  EXPECT_FALSE(await(store->refresh_now()));
  fetcher->set(kJwksUrl, ok(jwks({"k2"})));
  EXPECT_TRUE(await(store->refresh_now()));
  EXPECT_EQ(fetcher->count(kDiscoveryUrl), 2u);
  EXPECT_NE(store->current()->find("k2"), nullptr);
  store->stop();
}

TEST_F(KeyStoreTest, DiscoveryWithATrailingSlashIssuer) {
  const std::string issuer = "https://tenant.example/";
  fetcher->set("https://tenant.example/.well-known/openid-configuration",
               ok(R"({"issuer":"https://tenant.example/","jwks_uri":"https://tenant.example/k"})"));
  fetcher->set("https://tenant.example/k", ok(jwks({"t"})));
  KeyStoreOptions o;
  o.issuer = issuer;
  auto store = make(o);
  start(*store);
  EXPECT_TRUE(store->status().has_keys) << store->status().last_error;
  store->stop();
}

TEST_F(KeyStoreTest, DiscoveryIssuerMismatchIsAFailure) {
  fetcher->set(kDiscoveryUrl,
               ok(R"({"issuer":"https://evil.example/","jwks_uri":"https://evil.example/keys"})"));
  fetcher->set("https://evil.example/keys", ok(jwks({"evil"})));
  KeyStoreOptions o;
  o.issuer = kIssuer;
  auto store = make(o);
  start(*store);
  auto s = store->status();
  EXPECT_FALSE(s.has_keys);
  EXPECT_EQ(s.fetches_failed, 1u);
  EXPECT_NE(s.last_error.find("issuer mismatch"), std::string::npos) << s.last_error;
  EXPECT_TRUE(s.jwks_uri.empty());
  EXPECT_EQ(fetcher->count("https://evil.example/keys"), 0u);
  EXPECT_TRUE(store->current()->empty());
  store->stop();
}

TEST_F(KeyStoreTest, DiscoveryDocumentsThatAreNotUsable) {
  KeyStoreOptions o;
  o.issuer = kIssuer;
  const std::pair<Outcome, const char*> cases[] = {
      {ok("not json"), "not a JSON object"},
      {ok("[1,2]"), "not a JSON object"},
      {ok(R"({"jwks_uri":"https://idp.example/k"})"), "no issuer"},
      {ok(std::string(R"({"issuer":")") + kIssuer + "\"}"), "no jwks_uri"},
      {status(500), "HTTP 500"},
      {failure("connect failed: refused"), "connect failed: refused"},
  };
  for (const auto& [outcome, reason] : cases) {
    fetcher->set(kDiscoveryUrl, outcome);
    auto store = make(o);
    EXPECT_FALSE(await(store->refresh_now())) << reason;
    EXPECT_NE(store->status().last_error.find(reason), std::string::npos)
        << store->status().last_error;
  }
}

// ---- unknown kid -----------------------------------------------------------------------------

TEST_F(KeyStoreTest, UnknownKidFetchesOncePerCooldown) {
  fetcher->set(kJwksUrl, ok(jwks({"old"})));
  auto o = by_uri();
  o.unknown_kid_cooldown = 30s;
  auto store = make(o);
  start(*store);
  ASSERT_EQ(fetcher->calls.size(), 1u);

  fetcher->set(kJwksUrl, ok(jwks({"old", "new"})));
  EXPECT_TRUE(await(store->refresh_for_unknown_kid()));
  EXPECT_EQ(fetcher->calls.size(), 2u);
  EXPECT_NE(store->current()->find("new"), nullptr);

  // Within the cooldown: no fetch. (A set installed since the cooldown began says "look again".)
  clock.advance(10s);
  EXPECT_TRUE(await(store->refresh_for_unknown_kid()));
  EXPECT_TRUE(await(store->refresh_for_unknown_kid()));
  EXPECT_EQ(fetcher->calls.size(), 2u);

  // After the cooldown: one more fetch; a failing one says false, and so does the cooldown.
  clock.advance(21s);
  fetcher->set(kJwksUrl, failure("network down"));
  EXPECT_FALSE(await(store->refresh_for_unknown_kid()));
  EXPECT_EQ(fetcher->calls.size(), 3u);
  EXPECT_FALSE(await(store->refresh_for_unknown_kid()));
  EXPECT_EQ(fetcher->calls.size(), 3u);
  EXPECT_NE(store->current()->find("new"), nullptr);  // last good set kept
  store->stop();
}

TEST_F(KeyStoreTest, ConcurrentUnknownKidCallersShareOneFetch) {
  fetcher->set(kJwksUrl, ok(jwks({"old"})));
  auto store = make(by_uri());
  start(*store);
  fetcher->set(kJwksUrl, ok(jwks({"new"})));
  fetcher->delay = 50ms;

  int done = 0, installed = 0;
  for (int i = 0; i < 8; ++i) {
    asio::co_spawn(io, store->refresh_for_unknown_kid(), [&](std::exception_ptr, bool r) {
      ++done;
      installed += r ? 1 : 0;
    });
  }
  ASSERT_TRUE(run_until([&] { return done == 8; }));
  EXPECT_EQ(installed, 8);
  EXPECT_EQ(fetcher->calls.size(), 2u);
  EXPECT_NE(store->current()->find("new"), nullptr);
  store->stop();
}

TEST_F(KeyStoreTest, UnknownKidWaitIsBoundedAndTheFetchStillInstalls) {
  auto o = by_uri();
  o.fetch_wait = 50ms;
  fetcher->set(kJwksUrl, ok(jwks({"slow"})));
  fetcher->delay = 300ms;
  auto store = make(o);
  auto start_time = std::chrono::steady_clock::now();
  EXPECT_FALSE(await(store->refresh_for_unknown_kid()));
  EXPECT_LT(std::chrono::steady_clock::now() - start_time, 250ms);
  ASSERT_TRUE(run_until([&] { return store->status().has_keys; }));
  EXPECT_NE(store->current()->find("slow"), nullptr);
  EXPECT_EQ(fetcher->calls.size(), 1u);
}

TEST_F(KeyStoreTest, CallerResumesOnItsOwnExecutorAndFetchRunsOnControl) {
  asio::io_context control;
  auto guard = asio::make_work_guard(control);
  std::thread control_thread([&] { control.run(); });
  const auto control_id = control_thread.get_id();
  fetcher->set(kJwksUrl, ok(jwks({"k"})));
  auto store = std::make_shared<KeyStore>(control.get_executor(), fetcher, clock, by_uri());

  std::optional<bool> result;
  std::thread::id resumed_on;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        result = co_await store->refresh_for_unknown_kid();
        resumed_on = std::this_thread::get_id();
      },
      asio::detached);
  EXPECT_TRUE(run_until([&] { return result.has_value(); }));
  store->stop();
  store.reset();
  guard.reset();
  control_thread.join();
  EXPECT_EQ(result, true);
  EXPECT_EQ(resumed_on, std::this_thread::get_id());
  EXPECT_EQ(fetcher->thread, control_id);
}

// ---- failures keep the last good set ---------------------------------------------------------

TEST_F(KeyStoreTest, FailedOrGarbageRefreshKeepsTheLastGoodSet) {
  fetcher->set(kJwksUrl, ok(jwks({"good"})));
  auto store = make(by_uri());
  start(*store);
  auto good = store->current();
  ASSERT_NE(good->find("good"), nullptr);

  const std::pair<Outcome, const char*> bad[] = {
      {failure("GET https://idp: timed out after 5000 ms"), "timed out"},
      {status(503), "HTTP 503"},
      {ok("<html>oops</html>"), "jwks:"},
      {ok(R"({"keys":[]})"), "jwks:"},
      {ok(R"({"nokeys":true})"), "jwks:"},
      {ok(R"({"keys":[{"kty":"oct","k":"c2VjcmV0"}]})"), "jwks:"},
      {ok(R"({"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]})"), "jwks:"},
  };
  std::uint64_t failed = 0;
  for (const auto& [outcome, reason] : bad) {
    fetcher->set(kJwksUrl, outcome);
    EXPECT_FALSE(await(store->refresh_now())) << reason;
    EXPECT_EQ(store->current(), good) << reason;
    auto s = store->status();
    EXPECT_TRUE(s.has_keys);
    EXPECT_EQ(s.fetches_failed, ++failed);
    EXPECT_NE(s.last_error.find(reason), std::string::npos) << s.last_error;
  }
  fetcher->throw_next = true;
  EXPECT_FALSE(await(store->refresh_now()));
  EXPECT_EQ(store->current(), good);
  EXPECT_NE(store->status().last_error.find("fetcher blew up"), std::string::npos);

  fetcher->set(kJwksUrl, ok(jwks({"fresh"})));
  EXPECT_TRUE(await(store->refresh_now()));
  auto s = store->status();
  EXPECT_EQ(s.fetches_ok, 2u);
  EXPECT_EQ(s.fetches_failed, failed + 1);
  EXPECT_TRUE(s.last_error.empty());
  EXPECT_NE(store->current()->find("fresh"), nullptr);
  store->stop();
}

TEST_F(KeyStoreTest, FirstFetchFailureLeavesAnEmptySet) {
  fetcher->set(kJwksUrl, failure("connect failed"));
  auto store = make(by_uri());
  start(*store);
  EXPECT_TRUE(store->current()->empty());
  auto s = store->status();
  EXPECT_FALSE(s.has_keys);
  EXPECT_EQ(s.fetches_failed, 1u);
  EXPECT_EQ(s.next_refresh, 1s);  // retried with backoff
  store->stop();
}

// ---- refresh scheduling ----------------------------------------------------------------------

TEST_F(KeyStoreTest, CacheControlMaxAgeDrivesTheNextRefreshWithinBounds) {
  auto o = by_uri();
  o.default_refresh = 3600s;
  o.min_refresh = 60s;
  o.max_refresh = 7200s;
  fetcher->set(kJwksUrl, ok(jwks({"k"}), "public, max-age=600"));
  auto store = make(o);
  start(*store);
  EXPECT_EQ(store->status().next_refresh, 600s);

  const std::pair<const char*, std::chrono::seconds> cases[] = {
      {"max-age=120", 120s},    {"max-age=5", 60s},  {"max-age=0", 60s},
      {"max-age=99999", 7200s}, {"no-store", 3600s}, {"", 3600s},
  };
  for (const auto& [header, expected] : cases) {
    fetcher->set(kJwksUrl, ok(jwks({"k"}), header));
    EXPECT_TRUE(await(store->refresh_now())) << header;
    EXPECT_EQ(store->status().next_refresh, expected) << header;
  }
  store->stop();
}

TEST_F(KeyStoreTest, FailuresBackOffDoublingUpToMinRefresh) {
  auto o = by_uri();
  o.min_refresh = 5s;
  fetcher->set(kJwksUrl, ok(jwks({"k"})));
  auto store = make(o);
  start(*store);
  fetcher->set(kJwksUrl, failure("down"));
  for (auto expected : {1s, 2s, 4s, 5s, 5s}) {
    EXPECT_FALSE(await(store->refresh_now()));
    EXPECT_EQ(store->status().next_refresh, expected);
  }
  fetcher->set(kJwksUrl, ok(jwks({"k"}), "max-age=30"));
  EXPECT_TRUE(await(store->refresh_now()));
  EXPECT_EQ(store->status().next_refresh, 30s);
  fetcher->set(kJwksUrl, failure("down again"));
  EXPECT_FALSE(await(store->refresh_now()));
  EXPECT_EQ(store->status().next_refresh, 1s);  // backoff restarts after a success
  store->stop();
}

TEST_F(KeyStoreTest, BackgroundRefreshFiresAndStopCancelsIt) {
  auto o = by_uri();
  o.min_refresh = 1s;
  fetcher->set(kJwksUrl, ok(jwks({"k1"}), "max-age=0"));
  fetcher->then(kJwksUrl, ok(jwks({"k2"}), "max-age=0"));
  auto store = make(o);
  start(*store);
  EXPECT_EQ(store->status().next_refresh, 1s);
  ASSERT_TRUE(run_until([&] { return fetcher->calls.size() == 2; }, 3s));
  EXPECT_NE(store->current()->find("k2"), nullptr);

  store->stop();
  // Nothing is left pending: the io_context runs out of work at once.
  auto before = std::chrono::steady_clock::now();
  io.restart();
  io.run_for(3s);
  EXPECT_LT(std::chrono::steady_clock::now() - before, 500ms);
  EXPECT_EQ(fetcher->calls.size(), 2u);
  EXPECT_EQ(store->status().next_refresh, 0s);
}

TEST_F(KeyStoreTest, StopReleasesAWaitingCallerAndTheStoreMayGoAwayMidFetch) {
  fetcher->set(kJwksUrl, ok(jwks({"k"})));
  fetcher->delay = 200ms;
  auto store = make(by_uri());
  std::optional<bool> result;
  asio::co_spawn(io, store->refresh_for_unknown_kid(),
                 [&](std::exception_ptr, bool r) { result = r; });
  ASSERT_TRUE(run_until([&] { return !fetcher->calls.empty(); }));
  store->stop();
  ASSERT_TRUE(run_until([&] { return result.has_value(); }, 150ms));
  EXPECT_FALSE(*result);
  store.reset();  // the fetch is still in flight and owns what it needs
  io.restart();
  io.run_for(2s);
  EXPECT_EQ(fetcher->calls.size(), 1u);
}

}  // namespace
}  // namespace portcullis
