#pragma once
// AuditFileSink: the audit log's primary sink, the active file and its rotated siblings
// (names: audit_files.hpp). Used only by the writer thread (not thread-safe); every failure
// is a value so the writer can count it, report accepting() == false and retry.
//
//   AuditFileSink sink(config);
//   auto r = sink.recover(now);          // find the chain head on disk, open the active file
//   sink.append(lines);                  // one write(); on failure truncated back and closed
//   if (sink.size() >= config.max_bytes) sink.rotate(now);
//
// recover() never appends to a file whose last line is torn: it renames that file like a
// rotated one and reports the torn bytes, so the writer's "start" record can account for them.
// One writer per log: recover() first takes an exclusive flock on "<active>.lock" and keeps it
// until release() (or destruction), so a second process on the same path (an overlapping restart)
// fails with an I/O error, and retries, instead of interleaving its lines into the chain.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "audit/audit_config.hpp"
#include "audit/audit_files.hpp"
#include "audit/audit_record.hpp"
#include "core/expected.hpp"

namespace portcullis {

class AuditFileSink {
 public:
  // Torn bytes found after the last '\n' of the active file, which was moved to `file`.
  struct TornTail {
    std::string file;  // basename it was rotated to
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    std::string sha256;  // hex of the torn bytes
  };
  struct Recovery {
    std::optional<AuditChain> chain;  // nullopt: no previous record, a new chain (genesis)
    std::optional<TornTail> torn;
    std::string continued_from;  // basename of the file whose last line the chain continues
  };
  struct Failure {
    bool corrupt = false;  // true: the files are not an audit log we can continue (no retry)
    std::string message;
  };

  explicit AuditFileSink(const AuditConfig& config);
  ~AuditFileSink();
  AuditFileSink(const AuditFileSink&) = delete;
  AuditFileSink& operator=(const AuditFileSink&) = delete;

  Expected<Recovery, Failure> recover(std::chrono::system_clock::time_point now);

  bool is_open() const { return fd_ >= 0; }
  std::uint64_t size() const { return size_; }
  // When the active file's first record was written (nullopt while it is empty).
  std::optional<std::chrono::system_clock::time_point> created() const { return created_; }
  // True once the active file holds more than the header record written at open/rotation.
  bool has_records() const { return has_records_; }
  void note_records() { has_records_ = true; }

  // Writes `bytes` (whole lines) with one write() (repeated only on a short write). On
  // failure the file is truncated back to its previous size and closed.
  Expected<bool, std::string> append(std::string_view bytes,
                                     std::chrono::system_clock::time_point now);
  Expected<bool, std::string> sync();

  // fsync (unless fsync: never), close, rename to the rotated name, open a fresh active file,
  // then delete the oldest rotated files beyond `keep`. Returns the rotated basename.
  // `retention_errors` counts files that could not be deleted.
  Expected<std::string, std::string> rotate(std::chrono::system_clock::time_point now,
                                            unsigned& retention_errors);

  void close();    // the active file; the lock is kept (a retry reopens)
  void release();  // close and give up the lock (clean shutdown)

 private:
  Expected<bool, std::string> lock();
  Expected<bool, std::string> open_active(bool exclusive);
  std::string unique_rotated_name(std::chrono::system_clock::time_point now,
                                  std::uint64_t first_seq) const;
  void sync_dir();
  unsigned apply_retention();

  AuditConfig config_;
  AuditFileNames names_;
  int fd_ = -1;
  int lock_fd_ = -1;
  std::uint64_t size_ = 0;
  std::optional<std::uint64_t> first_seq_;
  std::optional<std::chrono::system_clock::time_point> created_;
  bool has_records_ = false;
};

// The "seq" of a line that starts with {"seq":N (as every audit line does); nullopt otherwise.
std::optional<std::uint64_t> audit_line_seq(std::string_view line);

}  // namespace portcullis
