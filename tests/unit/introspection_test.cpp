#include "authn/introspection.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace portcullis {
namespace {

namespace asio = boost::asio;
using Outcome = Expected<IntrospectionResult, IntrospectionError>;
using FetchOutcome = Expected<HttpResult, std::string>;

constexpr std::int64_t kNow = 1'700'000'000;
constexpr std::string_view kIssuer = "https://example.okta.com";
constexpr std::string_view kEndpoint = "https://example.okta.com/oauth2/v1/introspect";
constexpr std::string_view kAudience = "api://mesh";

// Time that moves only when a test says so; steady and system time advance together.
class ManualClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point steady_now() const override {
    return std::chrono::steady_clock::time_point(offset_);
  }
  std::chrono::system_clock::time_point system_now() const override {
    return std::chrono::sys_seconds(std::chrono::seconds(kNow)) + offset_;
  }
  void advance(std::chrono::seconds d) { offset_ += d; }

 private:
  std::chrono::seconds offset_{0};
};

// Records every request and answers from a script, then from `fallback` (thread-safe).
class FakeFetcher final : public HttpFetcher {
 public:
  asio::awaitable<FetchOutcome> fetch(HttpRequestSpec request) override {
    std::unique_lock lock(mutex_);
    requests_.push_back(request);
    threads_.push_back(std::this_thread::get_id());
    if (throw_next_) {
      throw_next_ = false;
      throw std::runtime_error("boom");
    }
    if (script_.empty()) co_return fallback_;
    FetchOutcome next = std::move(script_.front());
    script_.pop_front();
    co_return next;
  }

  void then(FetchOutcome outcome) {
    std::lock_guard lock(mutex_);
    script_.push_back(std::move(outcome));
  }
  void always(FetchOutcome outcome) {
    std::lock_guard lock(mutex_);
    fallback_ = std::move(outcome);
  }
  void throw_once() {
    std::lock_guard lock(mutex_);
    throw_next_ = true;
  }
  std::size_t calls() const {
    std::lock_guard lock(mutex_);
    return requests_.size();
  }
  HttpRequestSpec last() const {
    std::lock_guard lock(mutex_);
    return requests_.back();
  }
  std::thread::id last_thread() const {
    std::lock_guard lock(mutex_);
    return threads_.back();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<HttpRequestSpec> requests_;
  std::vector<std::thread::id> threads_;
  std::deque<FetchOutcome> script_;
  FetchOutcome fallback_ = unexpected(std::string("no scripted response"));
  bool throw_next_ = false;
};

FetchOutcome reply(unsigned status, std::string body) {
  HttpResult r;
  r.status = status;
  r.headers = {{"content-type", "application/json"}};
  r.body = std::move(body);
  return r;
}

std::string active_body(std::int64_t exp, std::string extra = "") {
  return R"({"active":true,"iss":")" + std::string(kIssuer) + R"(","aud":")" +
         std::string(kAudience) + R"(","exp":)" + std::to_string(exp) +
         R"(,"sub":"00u1","client_id":"0oa9","scope":"orders:read openid")" + extra + "}";
}

IntrospectionOptions default_options() {
  IntrospectionOptions o;
  o.provider_name = "okta-org";
  o.issuer = kIssuer;
  o.endpoint = kEndpoint;
  o.client_id = "gateway client";
  o.client_secret = "p@ss:w/rd+%&";
  o.audiences = {std::string(kAudience)};
  o.cache_ttl = std::chrono::seconds(300);
  o.negative_ttl = std::chrono::seconds(10);
  return o;
}

std::string_view header(const HttpRequestSpec& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(a) == std::tolower(b);
        })) {
      return v;
    }
  }
  return {};
}

class IntrospectionTest : public testing::Test {
 protected:
  std::shared_ptr<Introspector> make(IntrospectionOptions o,
                                     std::shared_ptr<FakeFetcher> fetcher = nullptr) {
    return std::make_shared<Introspector>(io_.get_executor(), fetcher ? fetcher : fetcher_, clock_,
                                          std::move(o));
  }

  Outcome run(Introspector& introspector, std::string token) {
    std::optional<Outcome> out;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> { out.emplace(co_await introspector.introspect(token)); },
        asio::detached);
    io_.restart();
    io_.run();
    EXPECT_TRUE(out.has_value());
    return out ? std::move(*out) : Outcome(unexpected(IntrospectionError::unavailable));
  }

  asio::io_context io_;
  ManualClock clock_;
  std::shared_ptr<FakeFetcher> fetcher_ = std::make_shared<FakeFetcher>();
};

TEST_F(IntrospectionTest, RequestShape) {
  auto in = make(default_options());
  fetcher_->then(reply(200, active_body(kNow + 60)));
  ASSERT_TRUE(run(*in, "a+b/c==~ x"));
  ASSERT_EQ(fetcher_->calls(), 1u);
  const HttpRequestSpec r = fetcher_->last();
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.url, kEndpoint);
  EXPECT_EQ(header(r, "content-type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(header(r, "accept"), "application/json");
  // base64("gateway+client:p%40ss%3Aw%2Frd%2B%25%26"): both parts form-encoded first.
  EXPECT_EQ(header(r, "authorization"),
            "Basic Z2F0ZXdheStjbGllbnQ6cCU0MHNzJTNBdyUyRnJkJTJCJTI1JTI2");
  EXPECT_EQ(r.body, "token=a%2Bb%2Fc%3D%3D%7E+x&token_type_hint=access_token");
}

TEST_F(IntrospectionTest, ActiveTokenGivesClaims) {
  auto in = make(default_options());
  fetcher_->then(reply(200, active_body(kNow + 60)));
  Outcome r = run(*in, "opaque");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->exp, kNow + 60);
  EXPECT_FALSE(r->from_cache);
  ASSERT_NE(r->claims, nullptr);
  EXPECT_EQ(r->claims->at("sub").as_string(), "00u1");
  EXPECT_EQ(r->claims->at("scope").as_string(), "orders:read openid");
}

TEST_F(IntrospectionTest, ActiveWithoutOptionalClaims) {
  IntrospectionOptions o = default_options();
  o.audience_waived = true;  // audiences checked only when the IdP returns "aud"
  auto in = make(o);
  fetcher_->then(reply(200, R"({"active":true})"));
  Outcome r = run(*in, "opaque");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->exp, 0);
}

// A response body and the error it must give.
struct Rejection {
  std::string name;
  unsigned status;
  std::string body;
  IntrospectionError error;
};

class IntrospectionRejects : public IntrospectionTest,
                             public testing::WithParamInterface<Rejection> {};

TEST_P(IntrospectionRejects, Response) {
  auto in = make(default_options());
  fetcher_->then(reply(GetParam().status, GetParam().body));
  Outcome r = run(*in, "opaque");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), GetParam().error);
}

const std::string kIss = R"("iss":")" + std::string(kIssuer) + R"(")";
const std::string kAud = R"("aud":")" + std::string(kAudience) + R"(")";

INSTANTIATE_TEST_SUITE_P(
    Introspection, IntrospectionRejects,
    testing::Values(
        Rejection{"inactive", 200, R"({"active":false})", IntrospectionError::inactive},
        Rejection{"active_missing", 200, R"({"sub":"x"})", IntrospectionError::inactive},
        Rejection{"active_as_string", 200, R"({"active":"true"})", IntrospectionError::inactive},
        Rejection{"refresh_token", 200,
                  R"({"active":true,"token_type":"refresh_token",)" + kIss + "," + kAud + "}",
                  IntrospectionError::inactive},
        Rejection{"wrong_iss", 200, R"({"active":true,"iss":"https://evil.example",)" + kAud + "}",
                  IntrospectionError::wrong_issuer},
        Rejection{"iss_not_string", 200, R"({"active":true,"iss":1,)" + kAud + "}",
                  IntrospectionError::wrong_issuer},
        Rejection{"wrong_aud", 200, R"({"active":true,"aud":["api://other"],)" + kIss + "}",
                  IntrospectionError::wrong_audience},
        Rejection{"aud_missing_but_required", 200, R"({"active":true,)" + kIss + "}",
                  IntrospectionError::wrong_audience},
        Rejection{
            "expired", 200,
            R"({"active":true,"exp":)" + std::to_string(kNow - 1) + "," + kIss + "," + kAud + "}",
            IntrospectionError::expired},
        Rejection{"expires_now", 200,
                  R"({"active":true,"exp":)" + std::to_string(kNow) + "," + kIss + "," + kAud + "}",
                  IntrospectionError::expired},
        Rejection{"exp_not_number", 200,
                  R"({"active":true,"exp":"later",)" + kIss + "," + kAud + "}",
                  IntrospectionError::inactive},
        Rejection{"status_500", 500, active_body(kNow + 60), IntrospectionError::unavailable},
        Rejection{"status_401", 401, R"({"error":"invalid_client"})",
                  IntrospectionError::unavailable},
        Rejection{"not_json", 200, "<html>oops</html>", IntrospectionError::unavailable},
        Rejection{"json_array", 200, R"([{"active":true}])", IntrospectionError::unavailable},
        Rejection{"empty_body", 200, "", IntrospectionError::unavailable}),
    [](const testing::TestParamInfo<Rejection>& info) { return info.param.name; });

TEST_F(IntrospectionTest, NetworkErrorIsUnavailableAndNotCached) {
  auto in = make(default_options());
  fetcher_->then(unexpected(std::string("connect: connection refused")));
  Outcome r = run(*in, "opaque");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), IntrospectionError::unavailable);
  EXPECT_EQ(in->cache_size(), 0u);
  fetcher_->then(reply(200, active_body(kNow + 60)));
  EXPECT_TRUE(run(*in, "opaque"));
  EXPECT_EQ(fetcher_->calls(), 2u);
}

TEST_F(IntrospectionTest, FetcherExceptionIsUnavailable) {
  auto in = make(default_options());
  fetcher_->throw_once();
  Outcome r = run(*in, "opaque");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), IntrospectionError::unavailable);
}

TEST_F(IntrospectionTest, NonOkStatusIsNotCached) {
  auto in = make(default_options());
  fetcher_->always(reply(503, ""));
  EXPECT_FALSE(run(*in, "opaque"));
  EXPECT_FALSE(run(*in, "opaque"));
  EXPECT_EQ(fetcher_->calls(), 2u);
  EXPECT_EQ(in->cache_size(), 0u);
}

TEST_F(IntrospectionTest, CacheHitDoesNotCallTheIdp) {
  auto in = make(default_options());
  fetcher_->then(reply(200, active_body(kNow + 60)));
  ASSERT_TRUE(run(*in, "opaque"));
  Outcome again = run(*in, "opaque");
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->from_cache);
  EXPECT_EQ(again->claims->at("sub").as_string(), "00u1");
  EXPECT_EQ(again->exp, kNow + 60);
  EXPECT_EQ(fetcher_->calls(), 1u);
  EXPECT_EQ(in->cache_size(), 1u);
}

TEST_F(IntrospectionTest, DifferentTokensAreDifferentEntries) {
  auto in = make(default_options());
  fetcher_->then(reply(200, active_body(kNow + 60)));
  fetcher_->then(reply(200, R"({"active":false})"));
  ASSERT_TRUE(run(*in, "token-a"));
  Outcome b = run(*in, "token-b");
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error(), IntrospectionError::inactive);
  EXPECT_EQ(in->cache_size(), 2u);
}

TEST_F(IntrospectionTest, TtlIsBoundedByExp) {
  auto in = make(default_options());  // cache_ttl 300s
  fetcher_->always(reply(200, active_body(kNow + 60)));
  ASSERT_TRUE(run(*in, "opaque"));
  clock_.advance(std::chrono::seconds(59));
  EXPECT_TRUE(run(*in, "opaque")->from_cache);
  EXPECT_EQ(fetcher_->calls(), 1u);
  clock_.advance(std::chrono::seconds(1));  // exp reached: the entry is gone
  Outcome r = run(*in, "opaque");
  EXPECT_EQ(fetcher_->calls(), 2u);
  ASSERT_FALSE(r);  // the scripted body's exp is now in the past
  EXPECT_EQ(r.error(), IntrospectionError::expired);
}

TEST_F(IntrospectionTest, TtlIsBoundedByCacheTtl) {
  auto in = make(default_options());  // cache_ttl 300s
  fetcher_->always(reply(200, active_body(kNow + 1000)));
  ASSERT_TRUE(run(*in, "opaque"));
  clock_.advance(std::chrono::seconds(299));
  EXPECT_TRUE(run(*in, "opaque")->from_cache);
  clock_.advance(std::chrono::seconds(1));
  Outcome r = run(*in, "opaque");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->from_cache);
  EXPECT_EQ(fetcher_->calls(), 2u);
}

TEST_F(IntrospectionTest, TokenWithoutExpLivesForCacheTtl) {
  IntrospectionOptions o = default_options();
  o.cache_ttl = std::chrono::seconds(30);
  auto in = make(o);
  fetcher_->always(reply(200, R"({"active":true,"aud":"api://mesh"})"));
  ASSERT_TRUE(run(*in, "opaque"));
  clock_.advance(std::chrono::seconds(29));
  EXPECT_TRUE(run(*in, "opaque")->from_cache);
  clock_.advance(std::chrono::seconds(1));
  EXPECT_FALSE(run(*in, "opaque")->from_cache);
}

TEST_F(IntrospectionTest, NegativeResultsCachedForNegativeTtl) {
  auto in = make(default_options());  // negative_ttl 10s
  fetcher_->then(reply(200, R"({"active":false})"));
  fetcher_->then(reply(200, R"({"active":true,"iss":"https://evil.example"})"));
  ASSERT_FALSE(run(*in, "opaque"));
  clock_.advance(std::chrono::seconds(9));
  Outcome cached = run(*in, "opaque");
  ASSERT_FALSE(cached);
  EXPECT_EQ(cached.error(), IntrospectionError::inactive);
  EXPECT_EQ(fetcher_->calls(), 1u);
  clock_.advance(std::chrono::seconds(1));
  Outcome fresh = run(*in, "opaque");
  ASSERT_FALSE(fresh);
  EXPECT_EQ(fresh.error(), IntrospectionError::wrong_issuer);
  EXPECT_EQ(fetcher_->calls(), 2u);
  EXPECT_EQ(run(*in, "opaque").error(), IntrospectionError::wrong_issuer);  // cached too
  EXPECT_EQ(fetcher_->calls(), 2u);
}

TEST_F(IntrospectionTest, ZeroNegativeTtlDisablesNegativeCaching) {
  IntrospectionOptions o = default_options();
  o.negative_ttl = std::chrono::seconds(0);
  auto in = make(o);
  fetcher_->always(reply(200, R"({"active":false})"));
  EXPECT_FALSE(run(*in, "opaque"));
  EXPECT_FALSE(run(*in, "opaque"));
  EXPECT_EQ(fetcher_->calls(), 2u);
  EXPECT_EQ(in->cache_size(), 0u);
}

TEST_F(IntrospectionTest, EvictsOldestBeyondBound) {
  IntrospectionOptions o = default_options();
  o.max_cache_entries = 2;
  auto in = make(o);
  fetcher_->always(reply(200, active_body(kNow + 60)));
  ASSERT_TRUE(run(*in, "t1"));
  ASSERT_TRUE(run(*in, "t2"));
  ASSERT_TRUE(run(*in, "t3"));
  EXPECT_EQ(in->cache_size(), 2u);
  EXPECT_EQ(fetcher_->calls(), 3u);
  EXPECT_TRUE(run(*in, "t3")->from_cache);
  EXPECT_TRUE(run(*in, "t2")->from_cache);
  EXPECT_FALSE(run(*in, "t1")->from_cache);  // evicted first; re-inserted, evicting t2
  EXPECT_EQ(fetcher_->calls(), 4u);
  EXPECT_FALSE(run(*in, "t2")->from_cache);
  EXPECT_EQ(in->cache_size(), 2u);
}

// How provider B differs from provider A; a token A accepted must never be a hit for B.
struct OtherProvider {
  std::string name;
  void (*change)(IntrospectionOptions&);
};

class IntrospectionIsolation : public IntrospectionTest,
                               public testing::WithParamInterface<OtherProvider> {};

TEST_P(IntrospectionIsolation, TokenAcceptedByOneProviderIsNotAHitForAnother) {
  auto fetcher_b = std::make_shared<FakeFetcher>();
  IntrospectionOptions options_b = default_options();
  GetParam().change(options_b);
  auto a = make(default_options());
  auto b = make(options_b, fetcher_b);
  fetcher_->always(reply(200, active_body(kNow + 60)));
  fetcher_b->always(reply(200, R"({"active":false})"));

  ASSERT_TRUE(run(*a, "shared-token"));
  ASSERT_TRUE(run(*a, "shared-token")->from_cache);
  Outcome at_b = run(*b, "shared-token");
  ASSERT_FALSE(at_b);
  EXPECT_EQ(at_b.error(), IntrospectionError::inactive);
  EXPECT_EQ(fetcher_b->calls(), 1u);
  EXPECT_EQ(fetcher_->calls(), 1u);
  EXPECT_TRUE(run(*a, "shared-token")->from_cache);  // B's negative entry never reaches A
}

INSTANTIATE_TEST_SUITE_P(
    Introspection, IntrospectionIsolation,
    testing::Values(
        OtherProvider{"issuer", [](IntrospectionOptions& o) { o.issuer = "https://other.okta"; }},
        OtherProvider{"endpoint",
                      [](IntrospectionOptions& o) { o.endpoint = "https://other/introspect"; }},
        OtherProvider{"audience", [](IntrospectionOptions& o) { o.audiences = {"api://other"}; }}),
    [](const testing::TestParamInfo<OtherProvider>& info) { return info.param.name; });

TEST_F(IntrospectionTest, AudienceRules) {
  {  // waived with no audiences: any "aud" is fine
    IntrospectionOptions o = default_options();
    o.audiences.clear();
    o.audience_waived = true;
    auto in = make(o);
    fetcher_->then(reply(200, R"({"active":true,"aud":"anything"})"));
    EXPECT_TRUE(run(*in, "t"));
  }
  {  // waived with audiences: checked only when present
    IntrospectionOptions o = default_options();
    o.audience_waived = true;
    auto in = make(o);
    fetcher_->then(reply(200, R"({"active":true})"));
    fetcher_->then(reply(200, R"({"active":true,"aud":"api://other"})"));
    EXPECT_TRUE(run(*in, "t1"));
    EXPECT_EQ(run(*in, "t2").error(), IntrospectionError::wrong_audience);
  }
  {  // an array containing a configured audience
    auto in = make(default_options());
    fetcher_->then(reply(200, R"({"active":true,"aud":["x","api://mesh"]})"));
    fetcher_->then(reply(200, R"({"active":true,"aud":["api://mesh",7]})"));
    EXPECT_TRUE(run(*in, "t1"));
    EXPECT_EQ(run(*in, "t2").error(), IntrospectionError::wrong_audience);
  }
}

TEST_F(IntrospectionTest, FetchRunsOnControlExecutorAndCallerResumesOnItsOwn) {
  asio::io_context control;
  auto guard = asio::make_work_guard(control);
  std::thread control_thread([&] { control.run(); });
  auto in =
      std::make_shared<Introspector>(control.get_executor(), fetcher_, clock_, default_options());
  fetcher_->then(reply(200, active_body(kNow + 60)));
  std::thread::id resumed_on;
  std::optional<Outcome> out;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        out.emplace(co_await in->introspect("opaque"));
        resumed_on = std::this_thread::get_id();
      },
      asio::detached);
  io_.run();
  const std::thread::id control_id = control_thread.get_id();
  guard.reset();
  control_thread.join();
  ASSERT_TRUE(out && *out);
  EXPECT_EQ(fetcher_->last_thread(), control_id);
  EXPECT_EQ(resumed_on, std::this_thread::get_id());
}

TEST_F(IntrospectionTest, ConcurrentCallersKeepTheCacheConsistent) {
  IntrospectionOptions o = default_options();
  o.max_cache_entries = 8;
  asio::io_context control;
  auto guard = asio::make_work_guard(control);
  std::thread control_thread([&] { control.run(); });
  auto in = std::make_shared<Introspector>(control.get_executor(), fetcher_, clock_, o);
  fetcher_->always(reply(200, active_body(kNow + 60)));

  asio::io_context workers;
  std::atomic<int> accepted{0};
  constexpr int kCalls = 400;
  for (int i = 0; i < kCalls; ++i) {
    asio::co_spawn(
        workers,
        [&, i]() -> asio::awaitable<void> {
          Outcome r = co_await in->introspect("token-" + std::to_string(i % 20));
          if (r) accepted.fetch_add(1);
        },
        asio::detached);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&] { workers.run(); });
  for (auto& t : threads) t.join();
  guard.reset();
  control_thread.join();
  EXPECT_EQ(accepted.load(), kCalls);
  EXPECT_LE(in->cache_size(), 8u);
  EXPECT_GE(fetcher_->calls(), 20u);
}

TEST(IntrospectionErrors, Names) {
  EXPECT_EQ(to_string(IntrospectionError::inactive), "inactive");
  EXPECT_EQ(to_string(IntrospectionError::wrong_issuer), "wrong_issuer");
  EXPECT_EQ(to_string(IntrospectionError::wrong_audience), "wrong_audience");
  EXPECT_EQ(to_string(IntrospectionError::expired), "expired");
  EXPECT_EQ(to_string(IntrospectionError::unavailable), "unavailable");
}

}  // namespace
}  // namespace portcullis
