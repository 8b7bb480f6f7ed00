#pragma once
// AuditLineReader: reads an audit file line by line with exact bytes and offsets, telling a
// complete line (ended by '\n') from a torn last one. Memory is one line plus a 1 MiB buffer,
// so verify and export stream files of any size.
//
//   AuditLineReader in(path);
//   if (!in.ok()) ...;
//   while (auto l = in.next()) { l->text; l->number; l->offset; l->complete; }
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

namespace portcullis {

class AuditLineReader {
 public:
  struct Line {
    std::string text;          // without the '\n'
    std::uint64_t number = 0;  // 1-based
    std::uint64_t offset = 0;  // of the first byte
    bool complete = true;      // false: the file ends inside this line (torn)
  };

  explicit AuditLineReader(const std::string& path);
  bool ok() const { return ok_; }
  std::optional<Line> next();

 private:
  std::unique_ptr<char[]> buffer_;
  std::ifstream in_;
  bool ok_ = false;
  std::uint64_t number_ = 0;
  std::uint64_t offset_ = 0;
};

}  // namespace portcullis
