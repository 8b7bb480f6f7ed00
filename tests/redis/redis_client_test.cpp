// RedisClient against a real redis-server: round trips, pipelining, binary safety, AUTH (password
// and ACL user), SELECT, command timeout, crash and restart.
#include "cache/redis_client.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <thread>

#include "redis_server.hpp"

namespace portcullis {
namespace {

using namespace std::chrono_literals;
using test::redis_sync_command;
using test::RedisServer;
using test::run_until;

// Generous timeouts for tests that are not about timeouts (a loaded 2-core CI machine).
RedisConfig config_for(const RedisServer& server) {
  RedisConfig c;
  c.address = server.address();
  c.command_timeout = 2000ms;
  c.connect_timeout = 2000ms;
  return c;
}

// The default 25 ms command timeout (for the timeout tests), a generous connect timeout.
RedisConfig default_timeout_config(const RedisServer& server) {
  RedisConfig c;
  c.address = server.address();
  c.connect_timeout = 2000ms;
  return c;
}

// Runs one command to completion.
std::optional<RedisResult> run(boost::asio::io_context& io, RedisClient& client,
                               std::vector<std::string> args) {
  std::optional<RedisResult> out;
  client.command(std::move(args), [&](RedisResult r) { out.emplace(std::move(r)); });
  if (!run_until(io, [&] { return out.has_value(); })) return std::nullopt;
  return out;
}

RedisReply status(std::string s) {
  return RedisReply{.type = RedisReply::Type::status, .str = std::move(s)};
}
RedisReply bulk(std::string s) {
  return RedisReply{.type = RedisReply::Type::string, .str = std::move(s)};
}

bool ready(const RedisClient& c) {
  return c.state() == RedisState::ready;
}

class RedisClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::redis_server_binary().empty()) GTEST_SKIP() << "redis-server not installed";
  }
  boost::asio::io_context io;
};

TEST_F(RedisClientTest, SetGetRoundTrip) {
  RedisServer server;
  std::vector<std::chrono::nanoseconds> round_trips;
  RedisClient client(
      io.get_executor(), config_for(server), nullptr,
      {.on_round_trip = [&](std::chrono::nanoseconds rtt) { round_trips.push_back(rtt); }});
  client.start();
  ASSERT_TRUE(run_until(io, [&] { return ready(client); })) << client.last_error();

  auto set = run(io, client, {"SET", "k", "v"});
  ASSERT_TRUE(set && *set);
  EXPECT_EQ(**set, status("OK"));
  auto get = run(io, client, {"GET", "k"});
  ASSERT_TRUE(get && *get);
  EXPECT_EQ(**get, bulk("v"));
  auto missing = run(io, client, {"GET", "nope"});
  ASSERT_TRUE(missing && *missing);
  EXPECT_TRUE((*missing)->is_nil());
  auto wrong = run(io, client, {"LPUSH", "k", "x"});  // a server error is a reply
  ASSERT_TRUE(wrong && *wrong);
  EXPECT_TRUE((*wrong)->is_error());
  EXPECT_TRUE((*wrong)->str.starts_with("WRONGTYPE")) << (*wrong)->str;
  auto array = run(io, client, {"MGET", "k", "nope"});
  ASSERT_TRUE(array && *array);
  ASSERT_EQ((*array)->type, RedisReply::Type::array);
  ASSERT_EQ((*array)->elements.size(), 2u);
  EXPECT_EQ((*array)->elements[0], bulk("v"));
  EXPECT_TRUE((*array)->elements[1].is_nil());

  EXPECT_EQ(client.stats().sent, 5u);
  EXPECT_EQ(client.stats().replies, 5u);
  EXPECT_EQ(client.stats().error_replies, 1u);
  EXPECT_EQ(client.stats().connects, 1u);
  ASSERT_EQ(round_trips.size(), 5u);
  for (auto rtt : round_trips) EXPECT_GT(rtt.count(), 0);
}

TEST_F(RedisClientTest, AwaitableWrapper) {
  RedisServer server;
  RedisClient client(io.get_executor(), config_for(server));
  client.start();
  ASSERT_TRUE(run_until(io, [&] { return ready(client); })) << client.last_error();

  std::optional<RedisResult> got;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        // (Named vectors: GCC 12 cannot keep a braced list of literals in a coroutine frame.)
        std::vector<std::string> set_args{"SET", "ak", "av"};
        std::vector<std::string> get_args{"GET", "ak"};
        auto set = co_await client.async_command(std::move(set_args));
        if (!set) co_return;
        got.emplace(co_await client.async_command(std::move(get_args)));
      },
      boost::asio::detached);
  ASSERT_TRUE(run_until(io, [&] { return got.has_value(); }));
  ASSERT_TRUE(*got);
  EXPECT_EQ(**got, bulk("av"));
}

TEST_F(RedisClientTest, PipelinesAThousandCommandsAnsweredInOrder) {
  RedisServer server;
  RedisClient client(io.get_executor(), config_for(server));
  client.start();
  ASSERT_TRUE(run_until(io, [&] { return ready(client); })) << client.last_error();

  constexpr int kCount = 1000;
  std::vector<std::int64_t> values;  // in completion order
  std::vector<int> order;
  for (int i = 0; i < kCount; ++i) {
    client.command({"INCR", "counter"}, [&, i](RedisResult r) {
      order.push_back(i);
      values.push_back(r && r->type == RedisReply::Type::integer ? r->integer : -1);
    });
  }
  EXPECT_EQ(client.in_flight(), static_cast<std::size_t>(kCount));  // all in flight at once
  ASSERT_TRUE(run_until(io, [&] { return values.size() == kCount; }));
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(order[i], i);
    ASSERT_EQ(values[i], i + 1);
  }
  EXPECT_EQ(client.in_flight(), 0u);
  EXPECT_EQ(client.stats().timeouts, 0u);
}

TEST_F(RedisClientTest, BinarySafeKeysAndValues) {
  RedisServer server;
  RedisClient client(io.get_executor(), config_for(server));
  client.start();
  ASSERT_TRUE(run_until(io, [&] { return ready(client); })) << client.last_error();

  const std::string key("bin\0key\r\n", 9);
  std::string value("\0\r\n$3\r\n*1\xff\xfe", 12);
  std::mt19937 rng(42);
  std::string big(1 << 20, '\0');  // 1 MiB: more than one read of hiredis' buffer
  for (auto& c : big) c = static_cast<char>(rng());

  ASSERT_TRUE(run(io, client, {"SET", key, value}));
  ASSERT_TRUE(run(io, client, {"SET", "big", big}));
  auto got = run(io, client, {"GET", key});
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->str, value);
  auto got_big = run(io, client, {"GET", "big"});
  ASSERT_TRUE(got_big && *got_big);
  EXPECT_TRUE((*got_big)->str == big);
  EXPECT_EQ(redis_sync_command(server.port(), {"STRLEN", key}).integer, 12);
}

TEST_F(RedisClientTest, AuthWithPasswordAndPasswordFile) {
  RedisServer server({"--requirepass", "s3cret pass"});
  const auto file = std::filesystem::temp_directory_path() /
                    ("portcullis-redis-pw-" + std::to_string(server.port()));
  std::ofstream(file) << "s3cret pass\n";

  auto cfg = config_for(server);
  cfg.password_file = file.string();
  RedisClient client(io.get_executor(), cfg);
  client.start();
  ASSERT_TRUE(run_until(io, [&] { return ready(client); })) << client.last_error();
  auto set = run(io, client, {"SET", "k", "v"});
  ASSERT_TRUE(set && *set);
  EXPECT_EQ(**set, status("OK"));
  std::filesystem::remove(file);

  auto missing = config_for(server);
  missing.password_file = file.string();
  EXPECT_THROW(RedisClient(io.get_executor(), missing), std::runtime_error);
}

TEST_F(RedisClientTest, WrongPasswordIsAClearErrorAndNeverReady) {
  RedisServer server({"--requirepass", "right"});
  auto cfg = config_for(server);
  cfg.password = "wrong";
  std::vector<RedisState> states;
  RedisClient client(io.get_executor(), cfg, nullptr,
                     {.on_state = [&](RedisState s) { states.push_back(s); }});
  client.start();
  ASSERT_TRUE(
      run_until(io, [&] { return client.last_error().find("AUTH failed") != std::string::npos; }));
  EXPECT_NE(client.last_error().find("WRONGPASS"), std::string::npos) << client.last_error();
  EXPECT_EQ(client.last_error().find("wrong"), std::string::npos);  // no password in errors
  EXPECT_NE(client.state(), RedisState::ready);
  auto r = run(io, client, {"GET", "k"});
  ASSERT_TRUE(r);
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error(), RedisError::unavailable);
  for (auto s : states) EXPECT_NE(s, RedisState::ready);

  // No password at all against a server that needs one: NOAUTH on SELECT, never ready.
  auto none = config_for(server);
  none.db = 1;
  RedisClient anonymous(io.get_executor(), none);
  anonymous.start();
  ASSERT_TRUE(run_until(io, [&] { return !anonymous.last_error().empty(); }));
  EXPECT_NE(anonymous.last_error().find("NOAUTH"), std::string::npos) << anonymous.last_error();
  EXPECT_NE(anonymous.state(), RedisState::ready);
}

TEST_F(RedisClientTest, AclUserFromPasswordFile) {
  RedisServer server;
  auto acl = redis_sync_command(server.port(),
                                {"ACL", "SETUSER", "portcullis", "on", ">user pw", "~*", "+@all"});
  ASSERT_EQ(acl, status("OK"));
  const auto file = std::filesystem::temp_directory_path() /
                    ("portcullis-redis-acl-" + std::to_string(server.port()));
  std::ofstream(file) << "user pw\r\n";

  auto cfg = config_for(server);
  cfg.username = "portcullis";
  cfg.password_file = file.string();
  RedisClient client(io.get_executor(), cfg);
  client.start();
  ASSERT_TRUE(run_until(io, [&] { return ready(client); })) << client.last_error();
  auto who = run(io, client, {"ACL", "WHOAMI"});
  ASSERT_TRUE(who && *who);
  EXPECT_EQ(**who, bulk("portcullis"));

  cfg.password = "not it";
  RedisClient wrong(io.get_executor(), cfg);
  wrong.start();
  ASSERT_TRUE(run_until(io, [&] { return !wrong.last_error().empty(); }));
  EXPECT_NE(wrong.last_error().find("WRONGPASS"), std::string::npos) << wrong.last_error();
  EXPECT_NE(wrong.state(), RedisState::ready);
  std::filesystem::remove(file);
}

TEST_F(RedisClientTest, SelectIsolatesDatabases) {
  RedisServer server;
  auto cfg3 = config_for(server);
  cfg3.db = 3;
  RedisClient db3(io.get_executor(), cfg3);
  RedisClient db0(io.get_executor(), config_for(server));
  db3.start();
  db0.start();
  ASSERT_TRUE(run_until(io, [&] { return ready(db3) && ready(db0); }));

  ASSERT_TRUE(run(io, db3, {"SET", "k", "in-3"}));
  auto from0 = run(io, db0, {"GET", "k"});
  ASSERT_TRUE(from0 && *from0);
  EXPECT_TRUE((*from0)->is_nil());
  auto from3 = run(io, db3, {"GET", "k"});
  ASSERT_TRUE(from3 && *from3);
  EXPECT_EQ(**from3, bulk("in-3"));
  EXPECT_EQ(redis_sync_command(server.port(), {"DBSIZE"}).integer, 0);
}

TEST_F(RedisClientTest, CommandTimeoutDropsTheLateReply) {
  RedisServer server({"--enable-debug-command", "yes"});
  RedisClient client(io.get_executor(), default_timeout_config(server));
  client.start();
  ASSERT_TRUE(run_until(io, [&] { return ready(client); })) << client.last_error();
  ASSERT_EQ(redis_sync_command(server.port(), {"SET", "k", "v"}), status("OK"));

  auto slow = run(io, client, {"DEBUG", "SLEEP", "0.2"});
  ASSERT_TRUE(slow);
  ASSERT_FALSE(*slow);
  EXPECT_EQ(slow->error(), RedisError::timeout);
  EXPECT_GE(client.stats().timeouts, 1u);
  EXPECT_EQ(client.state(), RedisState::ready);  // a timeout does not drop the connection

  // Later commands work, and get their own replies (not the late +OK of DEBUG SLEEP).
  std::optional<RedisReply> value;
  ASSERT_TRUE(run_until(io, [&] {
    if (value) return true;
    auto r = run(io, client, {"GET", "k"});
    if (r && *r) value = **r;
    return value.has_value();
  }));
  EXPECT_EQ(*value, bulk("v"));
  ASSERT_TRUE(run_until(io, [&] { return client.in_flight() == 0; }));  // late replies drained
  EXPECT_EQ(client.state(), RedisState::ready);
}

// Several commands time out while Redis stalls, more are sent during the stall, then all the
// late replies arrive: each command completes exactly once and the late replies are dropped.
TEST_F(RedisClientTest, ManyTimeoutsWithCommandsSentDuringTheStall) {
  RedisServer server({"--enable-debug-command", "yes"});
  RedisClient client(io.get_executor(), default_timeout_config(server));
  client.start();
  ASSERT_TRUE(run_until(io, [&] { return ready(client); })) << client.last_error();
  ASSERT_EQ(redis_sync_command(server.port(), {"SET", "k", "v"}), status("OK"));

  std::thread stall([port = server.port()] {
    redis_sync_command(port, {"DEBUG", "SLEEP", "0.3"});
  });
  // Wait until a probe times out: the stall has begun.
  ASSERT_TRUE(run_until(io, [&] {
    auto probe = run(io, client, {"PING"});
    return probe && !*probe && probe->error() == RedisError::timeout;
  }));
  constexpr int kCommands = 12;
  std::vector<int> completions(kCommands, 0);
  std::vector<std::optional<RedisResult>> results(kCommands);
  for (int i = 0; i < kCommands; ++i) {
    auto record = [&, i](RedisResult r) {
      ++completions[i];
      results[i] = std::move(r);
    };
    if (i % 3 == 2) {
      client.command({"SET", "k" + std::to_string(i), "x", "PX", "60000"}, record);
    } else {
      boost::asio::co_spawn(
          io,
          [&client, record, i]() -> boost::asio::awaitable<void> {
            std::vector<std::string> get{"GET", "k"};  // GCC 12: no init-list in co_await
            record(co_await client.async_command(std::move(get)));
          },
          boost::asio::detached);
    }
    test::run_for(io, 10ms);  // some time out before the next ones are sent
  }
  stall.join();
  ASSERT_TRUE(run_until(io, [&] { return client.in_flight() == 0; }));  // late replies drained
  // Each completed once, either with a timeout or with its own reply (never another's).
  int timed_out = 0;
  for (int i = 0; i < kCommands; ++i) {
    EXPECT_EQ(completions[i], 1) << "command " << i;
    ASSERT_TRUE(results[i]) << "command " << i;
    if (!*results[i]) {
      EXPECT_EQ(results[i]->error(), RedisError::timeout) << "command " << i;
      ++timed_out;
    } else {
      EXPECT_EQ(**results[i], i % 3 == 2 ? status("OK") : bulk("v")) << "command " << i;
    }
  }
  EXPECT_GE(timed_out, 1);  // the first was sent while the server slept
  // The connection still answers correctly afterwards.
  auto after = run(io, client, {"GET", "k"});
  ASSERT_TRUE(after && *after);
  EXPECT_EQ(**after, bulk("v"));
}

TEST_F(RedisClientTest, ServerCrashFailsInFlightThenReconnectsAfterRestart) {
  auto server = std::make_unique<RedisServer>();
  const auto port = server->port();
  auto cfg = config_for(*server);
  cfg.command_timeout = 30000ms;  // BLPOP must be in flight when the server dies
  cfg.backoff_min = 20ms;
  cfg.backoff_max = 200ms;
  std::vector<RedisState> states;
  RedisClient client(io.get_executor(), cfg, nullptr,
                     {.on_state = [&](RedisState s) { states.push_back(s); }});
  client.start();
  ASSERT_TRUE(run_until(io, [&] { return ready(client); })) << client.last_error();

  std::vector<RedisResult> blocked;
  for (int i = 0; i < 3; ++i) {
    client.command({"BLPOP", "never", "0"}, [&](RedisResult r) { blocked.push_back(r); });
  }
  ASSERT_TRUE(run_until(io, [&] {
    return redis_sync_command(port, {"INFO", "clients"}).str.find("blocked_clients:1") !=
           std::string::npos;
  }));
  states.clear();
  server->kill9();

  ASSERT_TRUE(run_until(io, [&] { return blocked.size() == 3; }));
  for (const auto& r : blocked) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), RedisError::connection_lost);
  }
  ASSERT_FALSE(states.empty());
  EXPECT_EQ(states.front(), RedisState::disconnected);
  EXPECT_NE(client.state(), RedisState::ready);
  EXPECT_FALSE(client.last_error().empty());

  // Fails fast while the server is down (reconnect attempts keep failing meanwhile).
  auto down = run(io, client, {"GET", "k"});
  ASSERT_TRUE(down);
  ASSERT_FALSE(*down);
  EXPECT_EQ(down->error(), RedisError::unavailable);
  test::run_for(io, 300ms);  // a few refused attempts with backoff
  EXPECT_NE(client.state(), RedisState::ready);

  server = std::make_unique<RedisServer>(std::vector<std::string>{}, port);
  ASSERT_TRUE(run_until(io, [&] { return ready(client); })) << client.last_error();
  auto set = run(io, client, {"SET", "k", "after"});
  ASSERT_TRUE(set && *set);
  EXPECT_EQ(**set, status("OK"));
  EXPECT_EQ(client.stats().reconnects(), 1u);
}

TEST_F(RedisClientTest, NothingListeningNeverReadyAndFailsFast) {
  RedisConfig cfg;
  cfg.address = "127.0.0.1:" + std::to_string(test::free_port());
  RedisClient client(io.get_executor(), cfg);
  client.start();
  ASSERT_TRUE(run_until(io, [&] { return !client.last_error().empty(); }));
  EXPECT_NE(client.last_error().find("refused"), std::string::npos) << client.last_error();
  auto r = run(io, client, {"PING"});
  ASSERT_TRUE(r);
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error(), RedisError::unavailable);
}

TEST_F(RedisClientTest, ConnectTimeoutWhenTheServerNeverAnswers) {
  // Accepts TCP connections and never says a word: the handshake cannot finish.
  boost::asio::ip::tcp::acceptor silent(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  std::vector<boost::asio::ip::tcp::socket> accepted;
  std::function<void()> accept = [&] {
    silent.async_accept([&](boost::system::error_code ec, boost::asio::ip::tcp::socket s) {
      if (ec) return;
      accepted.push_back(std::move(s));
      accept();
    });
  };
  accept();
  RedisConfig cfg;
  cfg.address = "127.0.0.1:" + std::to_string(silent.local_endpoint().port());
  cfg.connect_timeout = 50ms;
  RedisClient client(io.get_executor(), cfg);
  client.start();
  ASSERT_TRUE(run_until(io, [&] { return accepted.size() >= 2; }));  // it timed out and retried
  EXPECT_NE(client.last_error().find("connect timed out"), std::string::npos)
      << client.last_error();
  EXPECT_NE(client.state(), RedisState::ready);
  client.stop();
  silent.close();
}

TEST_F(RedisClientTest, StopFailsOutstandingCommandsAndLaterOnes) {
  RedisServer server;
  auto cfg = config_for(server);
  cfg.command_timeout = 30000ms;
  RedisClient client(io.get_executor(), cfg);
  client.start();
  ASSERT_TRUE(run_until(io, [&] { return ready(client); })) << client.last_error();
  std::optional<RedisResult> blocked;
  client.command({"BLPOP", "never", "0"}, [&](RedisResult r) { blocked.emplace(std::move(r)); });
  test::run_for(io, 20ms);
  client.stop();
  EXPECT_FALSE(blocked.has_value());  // completions are posted, never inline
  ASSERT_TRUE(run_until(io, [&] { return blocked.has_value(); }));
  ASSERT_FALSE(*blocked);
  EXPECT_EQ(blocked->error(), RedisError::connection_lost);
  auto after = run(io, client, {"PING"});
  ASSERT_TRUE(after);
  ASSERT_FALSE(*after);
  EXPECT_EQ(after->error(), RedisError::shutdown);
}

}  // namespace
}  // namespace portcullis
