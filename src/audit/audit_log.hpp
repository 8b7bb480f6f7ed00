#pragma once
// AuditWriter: the tamper-evident audit log (docs/audit-format.md). Request records go in
// through submit() from any thread (workers call it from their event loops; it never blocks);
// a dedicated thread drains the bounded queue in batches, chains each line to the previous
// one by SHA-256, writes each batch with one write(), signs a checkpoint every N records or T
// seconds (Ed25519), fsyncs per policy, rotates by size and age, and copies the lines to
// stdout / a Redis stream when configured.
//
//   auto log = AuditWriter::open(config, instance_name, SystemClock::instance());  // start-up
//   if (!log) throw std::runtime_error(log.error());
//   if (!(*log)->accepting() && on_failure == deny) -> answer 503
//   (*log)->submit(audit_event_body(event));   // false: dropped (counted)
//   (*log)->close();                           // final checkpoint, flush, join
//
// Named AuditWriter: it writes the log; `policy lint --audit` reads one (LintAuditRecords).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit_config.hpp"
#include "audit/audit_event.hpp"
#include "audit/audit_key.hpp"
#include "audit/audit_record.hpp"
#include "core/clock.hpp"
#include "core/expected.hpp"

namespace portcullis {

class AuditFileSink;
class AuditShipper;

// Counters for /metrics; every field is a running total except queue_depth and the flags.
struct AuditStats {
  std::uint64_t records_written = 0;  // request records written to the primary sink
  std::uint64_t records_dropped = 0;  // request records lost: queue full, sink failing, closed
  std::uint64_t write_errors = 0;     // failed open/write/fsync/rotate of the primary sink
  std::uint64_t queue_depth = 0;      // records waiting for the writer thread now
  std::uint64_t checkpoints = 0;      // signed checkpoints written
  std::uint64_t rotations = 0;
  std::uint64_t retention_errors = 0;  // rotated files that could not be deleted
  std::uint64_t bytes_written = 0;     // to the primary sink
  std::uint64_t fsyncs = 0;
  std::uint64_t stdout_lines = 0, stdout_dropped = 0, stdout_errors = 0;  // secondary stdout
  std::uint64_t redis_lines = 0, redis_dropped = 0, redis_errors = 0;
  bool redis_connected = false;
  bool primary_ok = false;  // the primary sink is writable (accepting() also needs queue room)
  std::string last_error;   // the primary sink's most recent error, "" when none
};

class AuditWriter {
 public:
  // Loads (or creates) the signing key, finds the chain head in existing files and writes a
  // genesis or start record, then starts the writer thread. Fails only for things a retry
  // cannot fix: a bad config, an unusable key file, files that are not an audit log. An
  // unwritable directory is not an error here: the writer starts with accepting() == false,
  // counts write_errors and retries every second. `clock` must outlive the writer; it drives
  // record times, checkpoint/fsync intervals, age rotation and retries.
  static Expected<std::unique_ptr<AuditWriter>, std::string> open(AuditConfig config,
                                                                  std::string instance,
                                                                  const Clock& clock);
  ~AuditWriter();  // close()
  AuditWriter(const AuditWriter&) = delete;
  AuditWriter& operator=(const AuditWriter&) = delete;

  // False when the primary sink is failing, the queue is full or the log is closed. Cheap
  // (two atomic loads); call it per request.
  bool accepting() const;

  // Queues one request record; `body` is audit_event_body(event). Non-blocking, thread-safe.
  // False when the record was dropped (queue full, primary sink failing, closed): counted in
  // stats().records_dropped and, once the sink works again, written as a "lost" record.
  bool submit(std::string body);

  // Blocks until every record submitted before the call is written (and fsynced with fsync:
  // always) and the time-based work (checkpoint, rotation, fsync, reopen) due at the clock's
  // current time is done. For tests, benchmarks and drain; never needed on the request path.
  void flush();

  // Stops accepting, writes what is queued, a final "shutdown" checkpoint, fsyncs, joins the
  // threads. Idempotent.
  void close();

  AuditStats stats() const;

  const std::string& kid() const { return key_.kid(); }
  std::string public_key_pem() const { return key_.public_pem(); }

 private:
  AuditWriter(AuditConfig config, std::string instance, const Clock& clock, AuditSigningKey key);

  // Writer-thread side.
  void run();
  void process(std::vector<std::string>& bodies);
  void timers();
  bool try_recover(bool at_startup, std::string* corrupt_error);
  bool commit(std::string& buf, std::uint64_t requests, std::uint64_t checkpoints);
  bool append_checkpoint(std::string& buf, std::string_view reason);
  void rotate_now();
  void sync_now();
  void fail(const std::string& error);
  std::string now_text() const;
  std::chrono::steady_clock::duration next_wait() const;

  const AuditConfig config_;
  const std::string instance_;
  const Clock& clock_;
  const AuditSigningKey key_;
  std::unique_ptr<AuditFileSink> file_;  // null when there is no file sink
  std::unique_ptr<AuditShipper> stdout_;
  std::unique_ptr<AuditShipper> redis_;

  // Queue (guarded by mu_).
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable flushed_;
  std::vector<std::string> queue_;
  bool stopping_ = false;
  std::uint64_t flush_requested_ = 0;
  std::uint64_t flush_done_ = 0;
  std::thread thread_;

  std::atomic<bool> open_{false};
  std::atomic<bool> primary_ok_{false};
  std::atomic<std::size_t> depth_{0};

  // Writer-thread state.
  AuditChain chain_;
  AuditChain committed_chain_;
  std::uint64_t requests_since_checkpoint_ = 0;
  std::uint64_t lines_since_checkpoint_ = 0;
  std::uint64_t committed_requests_since_checkpoint_ = 0;
  std::uint64_t committed_lines_since_checkpoint_ = 0;
  std::chrono::steady_clock::time_point last_checkpoint_{};
  std::chrono::steady_clock::time_point last_sync_{};
  std::chrono::steady_clock::time_point next_retry_{};
  bool dirty_ = false;
  std::uint64_t dropped_recorded_ = 0;  // drops already written as "lost" records

  // Counters.
  std::atomic<std::uint64_t> written_{0}, dropped_{0}, write_errors_{0}, checkpoints_{0},
      rotations_{0}, retention_errors_{0}, bytes_{0}, fsyncs_{0};
  mutable std::mutex error_mu_;
  std::string last_error_;
};

}  // namespace portcullis
