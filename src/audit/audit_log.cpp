#include "audit/audit_log.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "audit/audit_file_sink.hpp"
#include "audit/audit_json.hpp"
#include "audit/audit_redis.hpp"
#include "audit/audit_shipper.hpp"

namespace portcullis {
namespace {

constexpr std::chrono::milliseconds kBatchWindow{1};

constexpr std::chrono::seconds kRetryDelay{1};
constexpr std::chrono::milliseconds kMaxIdleWait{250};

// Writes all of `buf` to stdout (when stdout is the primary sink).
bool write_stdout(std::string_view buf, std::string& error) {
  std::size_t done = 0;
  while (done < buf.size()) {
    const ssize_t n = ::write(STDOUT_FILENO, buf.data() + done, buf.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = std::string("cannot write the audit log to stdout: ") +
              (n < 0 ? std::strerror(errno) : "no progress");
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

Expected<std::unique_ptr<AuditWriter>, std::string> AuditWriter::open(AuditConfig config,
                                                                      std::string instance,
                                                                      const Clock& clock) {
  if (config.file_path.empty() && !config.stdout_sink)
    return unexpected(std::string("audit: needs a file or stdout sink"));
  if (!config.file_path.empty() && config.file_path.back() == '/')
    return unexpected("audit: file path '" + config.file_path + "' names a directory");
  if (config.queue_capacity == 0)
    return unexpected(std::string("audit: queue_capacity must be > 0"));
  if (!config.redis_address.empty()) {
    if (auto a = parse_redis_address(config.redis_address); !a)
      return unexpected("audit: " + a.error());
    if (config.redis_stream.empty()) return unexpected(std::string("audit: empty redis stream"));
  }
  auto key = config.key_file.empty() ? AuditSigningKey::generate()
                                     : AuditSigningKey::load_or_create(config.key_file);
  if (!key) return unexpected(key.error());
  if (instance.empty()) instance = "portcullis";

  std::unique_ptr<AuditWriter> w(
      new AuditWriter(std::move(config), std::move(instance), clock, std::move(*key)));
  const AuditConfig& c = w->config_;
  if (c.stdout_sink && !c.file_path.empty())
    w->stdout_ = std::make_unique<AuditShipper>(std::make_unique<AuditFdTransport>(STDOUT_FILENO),
                                                c.queue_capacity);
  if (!c.redis_address.empty())
    w->redis_ = std::make_unique<AuditShipper>(
        std::make_unique<AuditRedisTransport>(c.redis_address, c.redis_stream, c.redis_maxlen,
                                              AuditRedisTransport::Options{}),
        c.queue_capacity);

  if (!c.file_path.empty()) {
    w->file_ = std::make_unique<AuditFileSink>(c);
    std::string corrupt;
    if (!w->try_recover(true, &corrupt) && !corrupt.empty()) {
      w->stdout_.reset();
      w->redis_.reset();
      return unexpected("audit: " + corrupt);
    }
  } else {
    // stdout is the primary sink: every process starts a new chain.
    std::string buf;
    w->chain_.append(buf, audit_type::genesis,
                     audit_key_members(w->now_text(), w->instance_, w->key_));
    ++w->lines_since_checkpoint_;
    w->primary_ok_ = true;
    w->commit(buf, 0, 0);
  }
  w->open_ = true;
  w->thread_ = std::thread([p = w.get()] { p->run(); });
  return w;
}

AuditWriter::AuditWriter(AuditConfig config, std::string instance, const Clock& clock,
                         AuditSigningKey key)
    : config_(std::move(config)),
      instance_(std::move(instance)),
      clock_(clock),
      key_(std::move(key)) {
  last_checkpoint_ = last_sync_ = next_retry_ = clock_.steady_now();
}

AuditWriter::~AuditWriter() {
  close();
}

bool AuditWriter::accepting() const {
  return open_.load(std::memory_order_acquire) && primary_ok_.load(std::memory_order_relaxed) &&
         depth_.load(std::memory_order_relaxed) < config_.queue_capacity;
}

bool AuditWriter::submit(std::string body) {
  if (!open_.load(std::memory_order_acquire) || !primary_ok_.load(std::memory_order_relaxed)) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  std::unique_lock lock(mu_);
  if (stopping_ || queue_.size() >= config_.queue_capacity) {
    lock.unlock();
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  const bool was_empty = queue_.empty();
  queue_.push_back(std::move(body));
  depth_.store(queue_.size(), std::memory_order_relaxed);
  lock.unlock();
  if (was_empty) wake_.notify_one();
  return true;
}

void AuditWriter::flush() {
  std::unique_lock lock(mu_);
  if (!thread_.joinable() || stopping_) return;
  const std::uint64_t ticket = ++flush_requested_;
  wake_.notify_one();
  flushed_.wait(lock, [&] { return flush_done_ >= ticket; });
}

void AuditWriter::close() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  open_ = false;
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  if (stdout_) stdout_->stop();
  if (redis_) redis_->stop();
}

AuditStats AuditWriter::stats() const {
  AuditStats s;
  s.records_written = written_.load();
  s.records_dropped = dropped_.load();
  s.write_errors = write_errors_.load();
  s.queue_depth = depth_.load();
  s.checkpoints = checkpoints_.load();
  s.rotations = rotations_.load();
  s.retention_errors = retention_errors_.load();
  s.bytes_written = bytes_.load();
  s.fsyncs = fsyncs_.load();
  if (stdout_) {
    const auto o = stdout_->stats();
    s.stdout_lines = o.sent;
    s.stdout_dropped = o.dropped;
    s.stdout_errors = o.errors;
  }
  if (redis_) {
    const auto r = redis_->stats();
    s.redis_lines = r.sent;
    s.redis_dropped = r.dropped;
    s.redis_errors = r.errors;
    s.redis_connected = r.connected;
  }
  s.primary_ok = primary_ok_.load();
  std::lock_guard lock(error_mu_);
  s.last_error = last_error_;
  return s;
}

// ---- writer thread ------------------------------------------------------------------------

std::string AuditWriter::now_text() const {
  return format_audit_time(clock_.system_now());
}

void AuditWriter::fail(const std::string& error) {
  primary_ok_ = false;
  write_errors_.fetch_add(1);
  next_retry_ = clock_.steady_now() + kRetryDelay;
  if (file_) file_->close();
  std::lock_guard lock(error_mu_);
  last_error_ = error;
}

bool AuditWriter::try_recover(bool at_startup, std::string* corrupt_error) {
  auto r = file_->recover(clock_.system_now());
  if (!r) {
    if (r.error().corrupt && corrupt_error) *corrupt_error = r.error().message;
    fail(r.error().message);
    return false;
  }
  chain_ = r->chain.value_or(AuditChain{});
  committed_chain_ = chain_;
  std::string members = audit_key_members(now_text(), instance_, key_);
  if (r->chain) {
    members += at_startup ? ",\"cause\":\"startup\"" : ",\"cause\":\"recovery\"";
    members += ",\"continues\":";
    append_audit_string(members, r->continued_from);
  }
  if (r->torn) {
    members += ",\"torn\":{\"file\":";
    append_audit_string(members, r->torn->file);
    members += ",\"offset\":" + std::to_string(r->torn->offset);
    members += ",\"length\":" + std::to_string(r->torn->length);
    members += ",\"sha256\":\"" + r->torn->sha256 + "\"}";
  }
  std::string buf;
  chain_.append(buf, r->chain ? audit_type::start : audit_type::genesis, members);
  ++lines_since_checkpoint_;
  primary_ok_ = true;
  return commit(buf, 0, 0);
}

bool AuditWriter::commit(std::string& buf, std::uint64_t requests, std::uint64_t checkpoints) {
  if (buf.empty()) return true;
  std::string error;
  bool ok = false;
  if (file_) {
    auto r = file_->append(buf, clock_.system_now());
    ok = r.has_value();
    if (!ok) error = r.error();
  } else {
    ok = write_stdout(buf, error);
  }
  if (!ok) {
    chain_ = committed_chain_;
    requests_since_checkpoint_ = committed_requests_since_checkpoint_;
    lines_since_checkpoint_ = committed_lines_since_checkpoint_;
    dropped_.fetch_add(requests);
    buf.clear();
    fail(error);
    return false;
  }
  committed_chain_ = chain_;
  committed_requests_since_checkpoint_ = requests_since_checkpoint_;
  committed_lines_since_checkpoint_ = lines_since_checkpoint_;
  written_.fetch_add(requests);
  checkpoints_.fetch_add(checkpoints);
  bytes_.fetch_add(buf.size());
  dirty_ = true;
  primary_ok_ = true;
  if (file_ && requests > 0) file_->note_records();
  if (stdout_) stdout_->push(buf);
  if (redis_) redis_->push(buf);
  buf.clear();
  if (config_.fsync == AuditConfig::Fsync::always) sync_now();
  return true;
}

bool AuditWriter::append_checkpoint(std::string& buf, std::string_view reason) {
  auto line = audit_checkpoint_line(chain_, now_text(), instance_, key_, reason);
  if (!line) {
    write_errors_.fetch_add(1);
    std::lock_guard lock(error_mu_);
    last_error_ = "audit checkpoint: " + line.error();
    return false;
  }
  buf += *line;
  buf.push_back('\n');
  chain_.advance(*line);
  requests_since_checkpoint_ = 0;
  lines_since_checkpoint_ = 0;
  last_checkpoint_ = clock_.steady_now();
  return true;
}

void AuditWriter::sync_now() {
  dirty_ = false;
  last_sync_ = clock_.steady_now();
  if (!file_ || !file_->is_open()) return;
  fsyncs_.fetch_add(1);
  if (auto r = file_->sync(); !r) fail(r.error());
}

void AuditWriter::rotate_now() {
  std::string buf;
  if (append_checkpoint(buf, "rotate") && !commit(buf, 0, 1)) return;
  unsigned retention_errors = 0;
  auto name = file_->rotate(clock_.system_now(), retention_errors);
  retention_errors_.fetch_add(retention_errors);
  if (!name) {
    fail(name.error());  // recovery continues the chain from whatever is on disk
    return;
  }
  rotations_.fetch_add(1);
  std::string members = audit_key_members(now_text(), instance_, key_);
  members += ",\"previous_file\":";
  append_audit_string(members, *name);
  chain_.append(buf, audit_type::rotate, members);
  ++lines_since_checkpoint_;
  commit(buf, 0, 0);
}

void AuditWriter::process(std::vector<std::string>& bodies) {
  if (!primary_ok_ && file_) {
    dropped_.fetch_add(bodies.size());
    return;
  }
  std::string buf;
  buf.reserve(std::min<std::size_t>(bodies.size(), 4096) * 720);
  std::uint64_t requests = 0, checkpoints = 0;
  const std::uint64_t dropped = dropped_.load();
  if (dropped > dropped_recorded_) {
    std::string members = "\"time\":\"" + now_text() + "\",\"count\":";
    members += std::to_string(dropped - dropped_recorded_);
    chain_.append(buf, audit_type::lost, members);
    ++lines_since_checkpoint_;
  }
  const auto flush_lost = [&] {
    if (dropped > dropped_recorded_) dropped_recorded_ = dropped;
  };
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    chain_.append(buf, audit_type::request, bodies[i]);
    ++requests;
    ++requests_since_checkpoint_;
    ++lines_since_checkpoint_;
    if (config_.checkpoint_every > 0 && requests_since_checkpoint_ >= config_.checkpoint_every) {
      if (append_checkpoint(buf, "count")) ++checkpoints;
    }
    if (file_ && config_.max_bytes > 0 && file_->size() + buf.size() >= config_.max_bytes) {
      const bool ok = commit(buf, requests, checkpoints);
      if (ok) flush_lost();
      requests = checkpoints = 0;
      if (ok) rotate_now();
      if (!primary_ok_) {
        dropped_.fetch_add(bodies.size() - i - 1);
        return;
      }
    }
  }
  if (commit(buf, requests, checkpoints)) flush_lost();
}

void AuditWriter::timers() {
  const auto now = clock_.steady_now();
  if (!primary_ok_) {
    if (now < next_retry_) return;
    if (file_ && !try_recover(false, nullptr)) return;
    std::vector<std::string> none;
    process(none);  // the "lost" record (and, without a file, the probe of stdout)
    if (!primary_ok_) return;
  }
  if (config_.checkpoint_interval.count() > 0 && lines_since_checkpoint_ > 0 &&
      now - last_checkpoint_ >= config_.checkpoint_interval) {
    std::string buf;
    if (append_checkpoint(buf, "interval")) commit(buf, 0, 1);
  }
  if (file_ && file_->is_open() && config_.max_age.count() > 0 && file_->has_records() &&
      file_->created() && clock_.system_now() - *file_->created() >= config_.max_age) {
    rotate_now();
  }
  if (config_.fsync == AuditConfig::Fsync::interval && dirty_ &&
      now - last_sync_ >= config_.fsync_interval) {
    sync_now();
  }
}

std::chrono::steady_clock::duration AuditWriter::next_wait() const {
  const auto now = clock_.steady_now();
  std::chrono::steady_clock::duration wait = kMaxIdleWait;
  if (!primary_ok_) wait = std::min(wait, next_retry_ - now);
  if (config_.checkpoint_interval.count() > 0 && lines_since_checkpoint_ > 0)
    wait = std::min(wait, last_checkpoint_ + config_.checkpoint_interval - now);
  if (config_.fsync == AuditConfig::Fsync::interval && dirty_)
    wait = std::min(wait, last_sync_ + config_.fsync_interval - now);
  return std::max(wait, std::chrono::steady_clock::duration::zero());
}

void AuditWriter::run() {
  std::vector<std::string> batch;
  std::chrono::steady_clock::time_point last_batch{};
  for (;;) {
    std::uint64_t flush_target = 0;
    bool stop = false;
    {
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, next_wait(), [&] {
        return !queue_.empty() || stopping_ || flush_requested_ != flush_done_;
      });
      // Under load, at most one batch per kBatchWindow: one wake-up and one write() per
      // ~1 ms instead of one per request (the difference was 14% of a busy worker's
      // throughput on 2 cores). A record on an idle gateway is written at once; a stop or a
      // flush never waits.
      const auto since_last = std::chrono::steady_clock::now() - last_batch;
      if (!queue_.empty() && since_last < kBatchWindow && !stopping_ &&
          flush_requested_ == flush_done_) {
        lock.unlock();
        std::this_thread::sleep_for(kBatchWindow - since_last);
        lock.lock();
      }
      last_batch = std::chrono::steady_clock::now();
      batch.swap(queue_);
      depth_.store(0, std::memory_order_relaxed);
      flush_target = flush_requested_;
      stop = stopping_;
    }
    if (!batch.empty()) process(batch);
    batch.clear();
    timers();
    {
      std::lock_guard lock(mu_);
      flush_done_ = flush_target;
    }
    flushed_.notify_all();
    if (stop) break;
  }
  // Clean shutdown: everything queued is written (submit() refuses once stopping_ is set),
  // then a final checkpoint.
  if (!primary_ok_ && file_) try_recover(false, nullptr);
  if (primary_ok_) {
    std::vector<std::string> none;
    process(none);
    std::string buf;
    if (append_checkpoint(buf, "shutdown")) commit(buf, 0, 1);
    if (config_.fsync != AuditConfig::Fsync::never && primary_ok_) sync_now();
  }
  if (file_) file_->release();
  std::lock_guard lock(mu_);
  flush_done_ = flush_requested_;
  flushed_.notify_all();
}

}  // namespace portcullis
