#include "audit/audit_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "audit/audit_json.hpp"

namespace portcullis {
namespace {

constexpr std::size_t kChunk = 64 * 1024;

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads [offset, offset+len) fully; false on an I/O error.
bool read_at(int fd, std::uint64_t offset, std::size_t len, std::string& out) {
  out.resize(len);
  std::size_t done = 0;
  while (done < len) {
    const ssize_t n = ::pread(fd, out.data() + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  out.resize(done);
  return true;
}

}  // namespace

std::string audit_sys_error(std::string_view what, std::string_view path) {
  return std::string(what) + " " + std::string(path) + ": " + std::strerror(errno);
}

AuditFileNames::AuditFileNames(const std::string& active_path) : active_(active_path) {
  const auto slash = active_.rfind('/');
  dir_ = slash == std::string::npos ? "." : (slash == 0 ? "/" : active_.substr(0, slash));
  const std::string base = slash == std::string::npos ? active_ : active_.substr(slash + 1);
  const auto dot = base.rfind('.');
  if (dot == std::string::npos || dot == 0) {
    stem_ = base;
  } else {
    stem_ = base.substr(0, dot);
    ext_ = base.substr(dot);
  }
}

std::string AuditFileNames::path_of(std::string_view basename) const {
  if (dir_ == "/") return "/" + std::string(basename);
  return dir_ + "/" + std::string(basename);
}

std::string AuditFileNames::rotated_basename(std::chrono::system_clock::time_point when,
                                             std::uint64_t first_seq) const {
  char seq[32];
  std::snprintf(seq, sizeof seq, "%012llu", static_cast<unsigned long long>(first_seq));
  return stem_ + "-" + compact_utc_time(when) + "-" + seq + ext_;
}

bool AuditFileNames::is_rotated(std::string_view name) const {
  // stem-YYYYMMDDTHHMMSSZ-NNNNNNNNNNNN[-K]ext
  if (!name.starts_with(stem_ + "-") || !name.ends_with(ext_)) return false;
  std::string_view mid =
      name.substr(stem_.size() + 1, name.size() - stem_.size() - 1 - ext_.size());
  if (mid.size() < 16 + 1 + 12 || mid[8] != 'T' || mid[15] != 'Z' || mid[16] != '-') return false;
  if (!all_digits(mid.substr(0, 8)) || !all_digits(mid.substr(9, 6))) return false;
  mid = mid.substr(17);
  const auto dash = mid.find('-');
  if (dash != std::string_view::npos && !all_digits(mid.substr(dash + 1))) return false;
  const std::string_view seq = mid.substr(0, dash);
  return seq.size() >= 12 && all_digits(seq);
}

std::vector<std::string> AuditFileNames::rotated_files() const {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return {};
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (is_rotated(name)) names.emplace_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  std::vector<std::string> paths;
  paths.reserve(names.size());
  for (const auto& n : names) paths.push_back(path_of(n));
  return paths;
}

Expected<std::optional<AuditFileTail>, std::string> read_audit_tail(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::optional<AuditFileTail>{};
    return unexpected(audit_sys_error("cannot open", path));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return unexpected(audit_sys_error("cannot stat", path));
  if (!S_ISREG(st.st_mode)) return unexpected(path + " is not a regular file");
  AuditFileTail tail;
  tail.size = static_cast<std::uint64_t>(st.st_size);
  tail.torn_offset = tail.size;
  const auto read_error = [&] { return unexpected(audit_sys_error("cannot read", path)); };

  // Backwards from the end until the '\n' before the last complete line is found (or the start).
  std::string buf;  // the file's bytes [start, size)
  std::uint64_t start = tail.size;
  std::optional<std::uint64_t> last_nl, before_last_nl;
  while (start > 0) {
    const std::size_t n = static_cast<std::size_t>(
        std::min<std::uint64_t>(start, std::max<std::uint64_t>(kChunk, tail.size - start)));
    std::string chunk;
    if (!read_at(fd.get(), start - n, n, chunk) || chunk.size() != n) return read_error();
    buf.insert(0, chunk);
    start -= n;
    last_nl.reset();
    before_last_nl.reset();
    const auto a = buf.rfind('\n');
    if (a != std::string::npos) {
      last_nl = start + a;
      const auto b = a == 0 ? std::string::npos : buf.rfind('\n', a - 1);
      if (b != std::string::npos) before_last_nl = start + b;
    }
    if (before_last_nl) break;
  }
  if (last_nl) {
    const std::uint64_t line_begin = before_last_nl ? *before_last_nl + 1 : 0;
    tail.last_line = buf.substr(static_cast<std::size_t>(line_begin - start),
                                static_cast<std::size_t>(*last_nl - line_begin));
    tail.torn_offset = *last_nl + 1;
  } else {
    tail.torn_offset = 0;
  }
  tail.torn = buf.substr(static_cast<std::size_t>(tail.torn_offset - start));

  // The first complete line, forwards.
  if (last_nl) {
    if (start == 0) {
      tail.first_line = buf.substr(0, buf.find('\n'));
    } else {
      std::string first;
      std::uint64_t off = 0;
      for (;;) {
        std::string chunk;
        if (!read_at(fd.get(), off, kChunk, chunk)) return read_error();
        const auto nl = chunk.find('\n');
        first += chunk.substr(0, nl);
        if (nl != std::string::npos || chunk.empty()) break;
        off += chunk.size();
      }
      tail.first_line = std::move(first);
    }
  }
  return std::optional<AuditFileTail>(std::move(tail));
}

}  // namespace portcullis
