// RedisSubscriber against a real redis-server: messages arrive, and after a server restart it
// subscribes again by itself and reports the (re)subscription.
#include "cache/redis_subscriber.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <memory>

#include "redis_server.hpp"

namespace portcullis {
namespace {

using namespace std::chrono_literals;
using test::redis_sync_command;
using test::RedisServer;
using test::run_until;

TEST(RedisSubscriberTest, ReceivesMessagesAndResubscribesAfterRestart) {
  if (test::redis_server_binary().empty()) GTEST_SKIP() << "redis-server not installed";
  boost::asio::io_context io;
  auto server = std::make_unique<RedisServer>(std::vector<std::string>{"--requirepass", "pw"});
  const auto port = server->port();
  RedisConfig cfg;
  cfg.address = server->address();
  cfg.password = "pw";
  cfg.connect_timeout = 2000ms;
  cfg.backoff_min = 20ms;
  cfg.backoff_max = 200ms;

  std::vector<std::pair<std::string, std::string>> messages;
  std::vector<std::uint64_t> subscribed;
  RedisSubscriber sub(io.get_executor(), cfg, "portcullis:revocations",
                      {.on_message =
                           [&](std::string_view ch, std::string_view m) {
                             messages.emplace_back(std::string(ch), std::string(m));
                           },
                       .on_subscribed = [&](std::uint64_t n) { subscribed.push_back(n); }});
  sub.start();
  ASSERT_TRUE(run_until(io, [&] { return sub.subscribed(); })) << sub.last_error();
  EXPECT_EQ(subscribed, std::vector<std::uint64_t>{1});

  const std::string binary("tok\0en\r\n", 8);
  EXPECT_EQ(redis_sync_command(port, {"PUBLISH", "portcullis:revocations", "a"}, "pw").integer, 1);
  EXPECT_EQ(redis_sync_command(port, {"PUBLISH", "other", "ignored"}, "pw").integer, 0);
  EXPECT_EQ(redis_sync_command(port, {"PUBLISH", "portcullis:revocations", binary}, "pw").integer,
            1);
  ASSERT_TRUE(run_until(io, [&] { return messages.size() == 2; }));
  EXPECT_EQ(messages[0].first, "portcullis:revocations");
  EXPECT_EQ(messages[0].second, "a");
  EXPECT_EQ(messages[1].second, binary);

  server->kill9();
  ASSERT_TRUE(run_until(io, [&] { return !sub.subscribed(); }));
  EXPECT_NE(sub.state(), RedisState::ready);
  server = std::make_unique<RedisServer>(std::vector<std::string>{"--requirepass", "pw"}, port);
  ASSERT_TRUE(run_until(io, [&] { return sub.subscribed(); })) << sub.last_error();
  EXPECT_EQ(subscribed, (std::vector<std::uint64_t>{1, 2}));  // the caller re-reads state here

  EXPECT_EQ(redis_sync_command(port, {"PUBLISH", "portcullis:revocations", "b"}, "pw").integer, 1);
  ASSERT_TRUE(run_until(io, [&] { return messages.size() == 3; }));
  EXPECT_EQ(messages[2].second, "b");
  EXPECT_EQ(sub.messages(), 3u);

  sub.stop();
  EXPECT_EQ(sub.state(), RedisState::disconnected);
  EXPECT_EQ(redis_sync_command(port, {"PUBLISH", "portcullis:revocations", "c"}, "pw").integer, 0);
}

}  // namespace
}  // namespace portcullis
