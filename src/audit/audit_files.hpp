#pragma once
// Names and on-disk inspection of audit files. The active file is the configured path (say
// /var/log/portcullis/audit.jsonl); rotated files sit next to it as
// audit-YYYYMMDDTHHMMSSZ-NNNNNNNNNNNN.jsonl (UTC time of rotation, first seq in the file,
// 12+ digits), so a name sort is roughly chain order (verify orders by content anyway).
// read_audit_tail() finds what a restarting writer needs without reading the whole file: the
// first and last complete lines and any torn bytes after the last '\n'.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.hpp"

namespace portcullis {

class AuditFileNames {
 public:
  explicit AuditFileNames(const std::string& active_path);

  const std::string& active() const { return active_; }
  const std::string& dir() const { return dir_; }
  std::string path_of(std::string_view basename) const;

  std::string rotated_basename(std::chrono::system_clock::time_point when,
                               std::uint64_t first_seq) const;
  bool is_rotated(std::string_view basename) const;
  // Rotated files in dir(), full paths, oldest name first; empty when unreadable.
  std::vector<std::string> rotated_files() const;

 private:
  std::string active_, dir_, stem_, ext_;
};

struct AuditFileTail {
  std::uint64_t size = 0;
  std::optional<std::string> first_line;  // first complete line, without '\n'
  std::optional<std::string> last_line;   // last complete line, without '\n'
  std::uint64_t torn_offset = 0;          // where bytes after the last '\n' begin (= size if none)
  std::string torn;                       // those bytes
};

// nullopt when the file does not exist; an error message for I/O errors or a non-regular file.
Expected<std::optional<AuditFileTail>, std::string> read_audit_tail(const std::string& path);

// "WHAT PATH: strerror(errno)", for messages.
std::string audit_sys_error(std::string_view what, std::string_view path);

}  // namespace portcullis
