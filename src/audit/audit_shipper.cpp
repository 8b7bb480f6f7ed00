#include "audit/audit_shipper.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace portcullis {

AuditSendResult AuditFdTransport::send(std::span<const std::string_view> lines) {
  AuditSendResult r;
  std::string buf;
  for (auto l : lines) {
    buf += l;
    buf.push_back('\n');
  }
  std::size_t done = 0;
  while (done < buf.size()) {
    const ssize_t n = ::write(fd_, buf.data() + done, buf.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      r.error = n < 0 ? std::strerror(errno) : "no progress";
      // The lines fully written are done; the rest are retried.
      std::size_t bytes = 0;
      for (auto l : lines) {
        if (bytes + l.size() + 1 > done) break;
        bytes += l.size() + 1;
        ++r.consumed;
      }
      return r;
    }
    done += static_cast<std::size_t>(n);
  }
  r.consumed = lines.size();
  return r;
}

AuditShipper::AuditShipper(std::unique_ptr<AuditTransport> transport, std::size_t capacity)
    : transport_(std::move(transport)), capacity_(capacity == 0 ? 1 : capacity) {
  thread_ = std::thread([this] { run(); });
}

AuditShipper::~AuditShipper() {
  stop();
}

void AuditShipper::push(std::string_view batch) {
  std::vector<std::string_view> parts;
  while (!batch.empty()) {
    const auto nl = batch.find('\n');
    parts.push_back(batch.substr(0, nl));
    batch = nl == std::string_view::npos ? std::string_view{} : batch.substr(nl + 1);
  }
  std::unique_lock lock(mu_);
  if (stopping_ || lines_.size() + parts.size() > capacity_) {
    lock.unlock();
    dropped_ += parts.size();
    return;
  }
  const bool was_empty = lines_.empty();
  for (auto p : parts) lines_.emplace_back(p);
  lock.unlock();
  if (was_empty) cv_.notify_one();
}

void AuditShipper::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

AuditShipper::Stats AuditShipper::stats() const {
  return Stats{sent_.load(), dropped_.load(), errors_.load(), connected_.load()};
}

namespace {
constexpr std::chrono::seconds kIdleProbe{2};
}  // namespace

void AuditShipper::run() {
  constexpr std::size_t kMaxBatch = 512;
  std::vector<std::string> batch;
  std::vector<std::string_view> views;
  bool last_failed = false;
  int attempts_left_at_stop = 3;
  for (;;) {
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      if (last_failed && !stopping_) {
        cv_.wait_for(lock, transport_->retry_delay(), [&] { return stopping_; });
      }
      const bool woken = cv_.wait_for(
          lock, kIdleProbe, [&] { return stopping_ || !lines_.empty() || !batch.empty(); });
      if (!woken) {  // idle: check the connection so the gauge does not go stale
        lock.unlock();
        connected_ = transport_->probe();
        continue;
      }
      stopping = stopping_;
      while (batch.size() < kMaxBatch && !lines_.empty()) {
        batch.push_back(std::move(lines_.front()));
        lines_.pop_front();
      }
    }
    if (batch.empty() && stopping) break;
    views.assign(batch.begin(), batch.end());
    const AuditSendResult r = transport_->send(views);
    connected_ = transport_->connected();
    sent_ += r.consumed - r.rejected;
    dropped_ += r.rejected;
    if (!r.error.empty()) ++errors_;
    batch.erase(batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(r.consumed));
    last_failed = !batch.empty();
    if (last_failed) {
      if (stopping && --attempts_left_at_stop == 0) {  // at shutdown: 3 quick tries, no wait
        std::lock_guard lock(mu_);
        dropped_ += batch.size() + lines_.size();
        lines_.clear();
        break;
      }
    }
  }
}

}  // namespace portcullis
