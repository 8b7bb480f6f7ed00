#include "audit/audit_file_sink.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "audit/audit_json.hpp"
#include "core/sha256.hpp"

namespace portcullis {
namespace {

constexpr mode_t kFileMode = 0640;

std::string basename_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// {"seq":N,"prev":"<64 hex>","type":"..." as a JSON object; nullopt otherwise.
struct LineHead {
  std::uint64_t seq = 0;
  std::optional<std::chrono::system_clock::time_point> time;
};
std::optional<LineHead> parse_line_head(std::string_view line) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(line, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.get_object();
  const auto* seq = o.if_contains("seq");
  const auto* prev = o.if_contains("prev");
  const auto* type = o.if_contains("type");
  if (!seq || !prev || !type || !prev->is_string() || !type->is_string()) return std::nullopt;
  LineHead head;
  if (seq->is_uint64()) {
    head.seq = seq->get_uint64();
  } else if (seq->is_int64() && seq->get_int64() >= 0) {
    head.seq = static_cast<std::uint64_t>(seq->get_int64());
  } else {
    return std::nullopt;
  }
  if (const auto* t = o.if_contains("time"); t && t->is_string()) {
    if (auto parsed = parse_rfc3339(std::string_view(t->get_string())))
      head.time = std::chrono::system_clock::time_point(*parsed);
  }
  return head;
}

}  // namespace

std::optional<std::uint64_t> audit_line_seq(std::string_view line) {
  constexpr std::string_view kPrefix = "{\"seq\":";
  if (!line.starts_with(kPrefix)) return std::nullopt;
  std::uint64_t v = 0;
  std::size_t i = kPrefix.size(), n = 0;
  for (; i < line.size() && line[i] >= '0' && line[i] <= '9' && n < 20; ++i, ++n)
    v = v * 10 + static_cast<std::uint64_t>(line[i] - '0');
  if (n == 0) return std::nullopt;
  return v;
}

AuditFileSink::AuditFileSink(const AuditConfig& config)
    : config_(config), names_(config.file_path) {}

AuditFileSink::~AuditFileSink() {
  release();
}

void AuditFileSink::release() {
  close();
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
  lock_fd_ = -1;
}

Expected<bool, std::string> AuditFileSink::lock() {
  if (lock_fd_ >= 0) return true;
  const std::string path = names_.active() + ".lock";
  const int fd =
      ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, kFileMode);
  if (fd < 0) return unexpected(audit_sys_error("cannot open", path));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const bool busy = errno == EWOULDBLOCK;
    std::string msg = busy ? "another process is writing this audit log (" + path + " is locked)"
                           : audit_sys_error("cannot lock", path);
    ::close(fd);
    return unexpected(msg);
  }
  lock_fd_ = fd;
  return true;
}

void AuditFileSink::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::string AuditFileSink::unique_rotated_name(std::chrono::system_clock::time_point now,
                                               std::uint64_t first_seq) const {
  std::string name = names_.rotated_basename(now, first_seq);
  struct stat st {};
  if (::lstat(names_.path_of(name).c_str(), &st) != 0) return name;
  const auto dot = name.rfind('.');
  const std::string stem = dot == std::string::npos ? name : name.substr(0, dot);
  const std::string ext = dot == std::string::npos ? "" : name.substr(dot);
  for (unsigned k = 1;; ++k) {
    std::string candidate = stem + "-" + std::to_string(k) + ext;
    if (::lstat(names_.path_of(candidate).c_str(), &st) != 0) return candidate;
  }
}

void AuditFileSink::sync_dir() {
  if (config_.fsync == AuditConfig::Fsync::never) return;
  const int dfd = ::open(names_.dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  ::fsync(dfd);
  ::close(dfd);
}

Expected<bool, std::string> AuditFileSink::open_active(bool exclusive) {
  int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW;
  if (exclusive) flags |= O_EXCL;
  const int fd = ::open(names_.active().c_str(), flags, kFileMode);
  if (fd < 0) return unexpected(audit_sys_error("cannot open", names_.active()));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return unexpected(names_.active() + " is not a regular file");
  }
  fd_ = fd;
  size_ = static_cast<std::uint64_t>(st.st_size);
  return true;
}

Expected<AuditFileSink::Recovery, AuditFileSink::Failure> AuditFileSink::recover(
    std::chrono::system_clock::time_point now) {
  close();
  const auto io = [](std::string m) { return unexpected(Failure{false, std::move(m)}); };
  const auto corrupt = [](std::string m) { return unexpected(Failure{true, std::move(m)}); };
  if (auto locked = lock(); !locked) return io(locked.error());

  auto active = read_audit_tail(names_.active());
  if (!active) return io(active.error());
  Recovery r;
  std::optional<std::string> head_line;
  if (*active && (*active)->last_line) {
    head_line = (*active)->last_line;
    r.continued_from = basename_of(names_.active());
  } else {
    // Nothing complete in the active file: the chain continues from the newest rotated file.
    const auto rotated = names_.rotated_files();
    for (auto it = rotated.rbegin(); it != rotated.rend() && !head_line; ++it) {
      auto t = read_audit_tail(*it);
      if (!t) return io(t.error());
      if (*t && (*t)->last_line) {
        head_line = (*t)->last_line;
        r.continued_from = basename_of(*it);
      }
    }
  }
  if (head_line) {
    const auto head = parse_line_head(*head_line);
    if (!head)
      return corrupt("cannot continue the audit chain: the last line of " + r.continued_from +
                     " is not an audit record");
    AuditChain chain;
    chain.next_seq = head->seq + 1;
    chain.prev = sha256_hex(*head_line);
    r.chain = std::move(chain);
  }

  first_seq_.reset();
  created_.reset();
  has_records_ = false;
  if (*active && !(*active)->torn.empty()) {
    // Never append after a torn line: move the file aside, untouched, and start a new one.
    const AuditFileTail& tail = **active;
    std::optional<std::uint64_t> first;
    if (tail.first_line) first = audit_line_seq(*tail.first_line);
    const std::string name =
        unique_rotated_name(now, first.value_or(r.chain ? r.chain->next_seq : 0));
    if (::rename(names_.active().c_str(), names_.path_of(name).c_str()) != 0)
      return io(audit_sys_error("cannot move aside the torn file", names_.active()));
    r.torn = TornTail{name, tail.torn_offset, tail.torn.size(), sha256_hex(tail.torn)};
    // The line the chain continues from moved with the file.
    if (r.continued_from == basename_of(names_.active())) r.continued_from = name;
    sync_dir();
    if (auto opened = open_active(true); !opened) return io(opened.error());
    sync_dir();
    return r;
  }
  if (auto opened = open_active(false); !opened) return io(opened.error());
  if (size_ > 0 && *active && (*active)->first_line) {
    first_seq_ = audit_line_seq(*(*active)->first_line);
    if (auto head = parse_line_head(*(*active)->first_line)) created_ = head->time;
    if (!created_) created_ = now;
    has_records_ = true;
  }
  return r;
}

Expected<bool, std::string> AuditFileSink::append(std::string_view bytes,
                                                  std::chrono::system_clock::time_point now) {
  if (fd_ < 0) return unexpected(names_.active() + " is not open");
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string msg = audit_sys_error("cannot write", names_.active());
      if (n == 0) msg = "cannot write " + names_.active() + ": no progress";
      // Take back a partial batch so the file ends on a complete line again.
      if (done > 0 && ::ftruncate(fd_, static_cast<off_t>(size_)) != 0)
        msg += " (and cannot truncate back: " + std::string(std::strerror(errno)) + ")";
      close();
      return unexpected(msg);
    }
    done += static_cast<std::size_t>(n);
  }
  if (size_ == 0) {
    first_seq_ = audit_line_seq(bytes);
    created_ = now;
  }
  size_ += bytes.size();
  return true;
}

Expected<bool, std::string> AuditFileSink::sync() {
  if (fd_ < 0) return unexpected(names_.active() + " is not open");
  if (::fdatasync(fd_) != 0) {
    std::string msg = audit_sys_error("cannot fsync", names_.active());
    close();  // after a failed fsync the page cache state is unknown: reopen through recovery
    return unexpected(msg);
  }
  return true;
}

Expected<std::string, std::string> AuditFileSink::rotate(std::chrono::system_clock::time_point now,
                                                         unsigned& retention_errors) {
  retention_errors = 0;
  if (fd_ < 0) return unexpected(names_.active() + " is not open");
  if (config_.fsync != AuditConfig::Fsync::never) {
    if (auto s = sync(); !s) return unexpected(s.error());
  }
  const std::uint64_t first = first_seq_.value_or(0);
  close();
  const std::string name = unique_rotated_name(now, first);
  if (::rename(names_.active().c_str(), names_.path_of(name).c_str()) != 0)
    return unexpected(audit_sys_error("cannot rotate", names_.active()));
  first_seq_.reset();
  created_.reset();
  has_records_ = false;
  size_ = 0;
  if (auto opened = open_active(true); !opened) return unexpected(opened.error());
  sync_dir();
  retention_errors = apply_retention();
  return name;
}

unsigned AuditFileSink::apply_retention() {
  if (config_.keep == 0) return 0;
  auto rotated = names_.rotated_files();
  unsigned errors = 0;
  for (std::size_t i = 0; i + config_.keep < rotated.size(); ++i) {
    if (::unlink(rotated[i].c_str()) != 0 && errno != ENOENT) ++errors;
  }
  return errors;
}

}  // namespace portcullis
