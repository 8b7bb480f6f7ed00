#pragma once
// ByteQueue: bytes appended at the back and consumed from the front, as a stream relays them,
// without the memmove std::string::erase(0, n) costs on every frame: the consumed prefix is
// only dropped when it is more than half of the storage (amortised one copy per byte).
//
//   q.append(p, n);  memcpy(out, q.data(), k);  q.consume(k);
#include <cstddef>
#include <string>

namespace portcullis {

class ByteQueue {
 public:
  void append(const char* p, std::size_t n) { buf_.append(p, n); }
  void assign(std::string bytes) {
    buf_ = std::move(bytes);
    off_ = 0;
  }
  const char* data() const { return buf_.data() + off_; }
  std::size_t size() const { return buf_.size() - off_; }
  bool empty() const { return size() == 0; }
  void consume(std::size_t n) {
    off_ += n;
    if (off_ >= buf_.size()) {
      clear();
    } else if (off_ > buf_.size() / 2) {
      buf_.erase(0, off_);
      off_ = 0;
    }
  }
  void clear() {
    buf_.clear();
    off_ = 0;
  }

 private:
  std::string buf_;
  std::size_t off_ = 0;
};

}  // namespace portcullis
