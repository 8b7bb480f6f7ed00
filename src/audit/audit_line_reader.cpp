#include "audit/audit_line_reader.hpp"

namespace portcullis {
namespace {
constexpr std::size_t kBufferBytes = 1 << 20;
}

AuditLineReader::AuditLineReader(const std::string& path) : buffer_(new char[kBufferBytes]) {
  in_.rdbuf()->pubsetbuf(buffer_.get(), kBufferBytes);
  in_.open(path, std::ios::binary);
  ok_ = in_.is_open();
}

std::optional<AuditLineReader::Line> AuditLineReader::next() {
  if (!ok_ || !in_.good()) return std::nullopt;
  Line line;
  if (!std::getline(in_, line.text)) {
    if (line.text.empty()) return std::nullopt;
  }
  line.complete = !in_.eof();
  if (!line.complete && line.text.empty()) return std::nullopt;
  line.number = ++number_;
  line.offset = offset_;
  offset_ += line.text.size() + (line.complete ? 1 : 0);
  return line;
}

}  // namespace portcullis
