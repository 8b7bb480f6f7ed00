#pragma once
// RevocationSync: keeps a process's RevocationList in step with the replicas' shared Redis.
// Revocations live in the Redis hash kRevocationsKey (field "<kind> <value>", value the unix
// time until which it holds) and are announced on the channel kRevocationsChannel in the
// wire format of revocations.hpp. `portcullis revoke` writes both (revocation_store.hpp).
//
// On every (re)subscription the whole hash is read again, so a replica that missed messages
// while Redis was unreachable catches up; while unreachable it keeps what it already knows
// (and says so through synced()). Runs on the control io_context, never on a worker's.
//
//   RevocationSync sync(control.get_executor(), redis_config, revocations);
//   sync.start();  ...  sync.stop();
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string_view>

#include "cache/redis_client.hpp"
#include "cache/redis_subscriber.hpp"
#include "cache/revocations.hpp"

namespace portcullis {

inline constexpr std::string_view kRevocationsKey = "portcullis:revocations";
inline constexpr std::string_view kRevocationsChannel = "portcullis:revocations";

class RevocationSync {
 public:
  // Throws std::runtime_error when the Redis password file cannot be read (start-up only).
  RevocationSync(boost::asio::any_io_executor executor, const RedisConfig& config,
                 RevocationList& revocations);
  ~RevocationSync();
  RevocationSync(const RevocationSync&) = delete;
  RevocationSync& operator=(const RevocationSync&) = delete;

  void start();
  void stop();

  // Subscribed and the hash read since the last (re)connection: this replica knows every
  // revocation. False while Redis is unreachable (the known ones still apply).
  bool synced() const { return synced_.load(std::memory_order_relaxed); }
  // The first full read of the hash has completed (readiness waits for it, bounded).
  bool ever_synced() const { return ever_synced_.load(std::memory_order_relaxed); }
  std::uint64_t messages_applied() const { return applied_.load(std::memory_order_relaxed); }

 private:
  void reload_all();
  void schedule_prune();

  RevocationList& revocations_;
  RedisClient client_;
  RedisSubscriber subscriber_;
  boost::asio::steady_timer prune_timer_;
  std::atomic<bool> synced_{false};
  std::atomic<bool> ever_synced_{false};
  std::atomic<std::uint64_t> applied_{0};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// "<kind> <value>" hash field and the wire message for a hash entry; nullopt when malformed.
std::string revocation_field(const Revocation& r);
std::optional<Revocation> revocation_from_entry(std::string_view field, std::string_view until);

}  // namespace portcullis
