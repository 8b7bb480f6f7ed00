#pragma once
// AuditConfig: how the tamper-evident audit log is written (sinks, rotation, fsync, checkpoints,
// signing key, failure policy). Plain data; the config loader fills it from YAML (`audit:`)
// and AuditWriter::open() checks it. Defaults are the documented production defaults.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace portcullis {

struct AuditConfig {
  std::string file_path;                    // "" = no file sink
  std::uint64_t max_bytes = 100ull << 20;   // rotate the active file once it reaches this size
  std::chrono::seconds max_age{24 * 3600};  // ... or once its first record is this old (0 = never)
  unsigned keep = 10;                       // rotated files kept (0 = keep all, delete none)
  enum class Fsync { always, interval, never } fsync = Fsync::interval;
  std::chrono::milliseconds fsync_interval{1000};
  bool stdout_sink = false;   // also (or, without a file, only) write the lines to stdout
  std::string redis_address;  // "host:port" of a Redis for XADD shipping; "" = off
  std::string redis_stream = "portcullis:audit";
  std::uint64_t redis_maxlen = 1000000;                               // XADD MAXLEN ~ N
  enum class OnFailure { deny, allow } on_failure = OnFailure::deny;  // read by the gateway
  std::size_t queue_capacity = 65536;            // records waiting to be written
  unsigned checkpoint_every = 1000;              // signed checkpoint every N lines (0 = off)
  std::chrono::seconds checkpoint_interval{10};  // ... or T after an unsigned line (0 = off)
  std::string key_file;  // Ed25519 PKCS#8 PEM, created 0600 when missing; "" = per-process key
};

}  // namespace portcullis
