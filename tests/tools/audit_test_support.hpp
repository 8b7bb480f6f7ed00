#pragma once
// Helpers shared by the audit unit tests (tests/unit/audit_*_test.cpp) and the audit fixture
// tool: a thread-safe manual clock, a temp directory, whole-file line editing, and a sample
// request event. Header-only; test code only.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "audit/audit_event.hpp"
#include "core/clock.hpp"

namespace portcullis::audit_test {

// Time only moves when a test says so; safe to read from the writer thread.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::int64_t unix_seconds = 1'800'000'000)
      : system_us_(unix_seconds * 1'000'000) {}
  std::chrono::steady_clock::time_point steady_now() const override {
    return std::chrono::steady_clock::time_point(std::chrono::microseconds(steady_us_.load()));
  }
  std::chrono::system_clock::time_point system_now() const override {
    return std::chrono::system_clock::time_point(std::chrono::microseconds(system_us_.load()));
  }
  void advance(std::chrono::microseconds d) {
    steady_us_ += d.count();
    system_us_ += d.count();
  }

 private:
  std::atomic<std::int64_t> steady_us_{1'000'000'000};
  std::atomic<std::int64_t> system_us_;
};

class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "portcullis-audit-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_file(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

// Complete lines without their '\n' (a torn tail is left out).
inline std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  const std::string data = read_file(path);
  std::size_t start = 0;
  for (std::size_t nl; (nl = data.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(data.substr(start, nl - start));
  return lines;
}

inline void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::string data;
  for (const auto& l : lines) data += l + "\n";
  write_file(path, data);
}

// Files of `dir` whose names end in .jsonl, sorted by name.
inline std::vector<std::string> jsonl_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".jsonl") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

inline AuditEvent sample_event(const Clock& clock, int n) {
  AuditEvent e;
  e.time = clock.system_now();
  e.request_id = "req-" + std::to_string(n);
  e.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  e.listener = "edge";
  e.route = n % 2 ? "orders-api" : "billing";
  e.method = "GET";
  e.authority = "api.example.com";
  e.path = "/orders/" + std::to_string(n);
  e.source = "192.0.2.7";
  e.source_port = 40000;
  e.subject = "user-" + std::to_string(n % 5);
  e.email = "user" + std::to_string(n % 5) + "@example.com";
  e.issuer = "https://idp.example.com";
  e.client_id = "web";
  e.groups = {"orders-readers", "staff"};
  e.decision = n % 3 ? "allow" : "deny";
  e.rule = "policies/orders.yaml#allow[0]";
  e.reason = n % 3 ? "matched" : "no rule matched";
  e.upstream = "orders";
  e.status = n % 3 ? 200 : 403;
  e.bytes_in = 10;
  e.bytes_out = 1234;
  e.duration = std::chrono::microseconds(1500 + n);
  return e;
}

}  // namespace portcullis::audit_test
