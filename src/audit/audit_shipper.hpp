#pragma once
// AuditShipper: copies committed audit lines to a secondary destination (stdout, a Redis
// stream) on its own thread, so a slow or dead destination never delays the primary file.
// The writer hands over each written batch with push(), which never blocks: beyond
// `capacity` waiting lines the batch is dropped and counted. Undelivered lines are retried
// after the transport's retry delay, in order.
//
//   AuditShipper redis(std::make_unique<AuditRedisTransport>(...), 65536);
//   redis.push(batch_bytes);   // whole lines, each ending in '\n'
//   redis.stop();              // up to 3 more quick delivery attempts, then join
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>

namespace portcullis {

// What one send() did: `consumed` lines from the front are done with (delivered, or refused
// for good: `rejected` of them); the rest are retried later. `error` is set on any failure.
struct AuditSendResult {
  std::size_t consumed = 0;
  std::size_t rejected = 0;
  std::string error;
};

// One destination; send() delivers lines in order.
class AuditTransport {
 public:
  virtual ~AuditTransport() = default;
  virtual AuditSendResult send(std::span<const std::string_view> lines) = 0;
  virtual bool connected() const { return true; }
  // Checks the connection while idle (e.g. PING) so connected() stays truthful without
  // traffic; returns connected().
  virtual bool probe() { return connected(); }
  virtual std::chrono::milliseconds retry_delay() const { return std::chrono::seconds(1); }
};

// Writes lines to a file descriptor (stdout) with one write() per batch.
class AuditFdTransport final : public AuditTransport {
 public:
  explicit AuditFdTransport(int fd) : fd_(fd) {}
  AuditSendResult send(std::span<const std::string_view> lines) override;

 private:
  int fd_;
};

class AuditShipper {
 public:
  struct Stats {
    std::uint64_t sent = 0;     // lines delivered
    std::uint64_t dropped = 0;  // lines never delivered (queue full, refused, left at stop)
    std::uint64_t errors = 0;   // failed delivery attempts
    bool connected = false;
  };

  AuditShipper(std::unique_ptr<AuditTransport> transport, std::size_t capacity);
  ~AuditShipper();
  AuditShipper(const AuditShipper&) = delete;
  AuditShipper& operator=(const AuditShipper&) = delete;

  void push(std::string_view lines);  // whole lines; non-blocking
  void stop();
  Stats stats() const;

 private:
  void run();

  std::unique_ptr<AuditTransport> transport_;
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> lines_;  // waiting, oldest first
  bool stopping_ = false;
  std::atomic<std::uint64_t> sent_{0}, dropped_{0}, errors_{0};
  std::atomic<bool> connected_{false};
  std::thread thread_;
};

}  // namespace portcullis
