#include "h2/grpc_status.hpp"

namespace portcullis {

int grpc_status_for_http(unsigned http_status) {
  switch (http_status) {
    case 400:
      return 3;  // INVALID_ARGUMENT: the gateway refused a malformed request
    case 401:
      return 16;  // UNAUTHENTICATED
    case 403:
      return 7;  // PERMISSION_DENIED
    case 404:
      return 12;  // UNIMPLEMENTED: no route for this service/method
    case 408:
    case 504:
      return 4;  // DEADLINE_EXCEEDED
    case 413:
    case 431:
      return 8;  // RESOURCE_EXHAUSTED
    case 429:
    case 502:
    case 503:
      return 14;  // UNAVAILABLE
    default:
      return http_status >= 200 && http_status < 300 ? 0 : 13;  // INTERNAL
  }
}

int grpc_status_for_reply(unsigned http_status, std::string_view error) {
  if (error == "bad_grpc_web_body") return 13;
  return grpc_status_for_http(http_status);
}

std::string grpc_percent_encode(std::string_view message) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(message.size());
  for (unsigned char c : message) {
    if (c < 0x20 || c > 0x7E || c == '%') {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

bool is_grpc_content_type(std::string_view ct) {
  constexpr std::string_view kGrpc = "application/grpc";
  if (ct.size() < kGrpc.size()) return false;
  for (std::size_t i = 0; i < kGrpc.size(); ++i) {
    char c = ct[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kGrpc[i]) return false;
  }
  if (ct.size() == kGrpc.size()) return true;
  return ct[kGrpc.size()] == '+' || ct[kGrpc.size()] == ';';
}

std::optional<std::chrono::nanoseconds> parse_grpc_timeout(std::string_view v) {
  if (v.size() < 2 || v.size() > 9) return std::nullopt;
  std::int64_t n = 0;
  for (char c : v.substr(0, v.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  using namespace std::chrono;
  switch (v.back()) {
    case 'H':
      return duration_cast<nanoseconds>(hours(n));
    case 'M':
      return duration_cast<nanoseconds>(minutes(n));
    case 'S':
      return duration_cast<nanoseconds>(seconds(n));
    case 'm':
      return duration_cast<nanoseconds>(milliseconds(n));
    case 'u':
      return duration_cast<nanoseconds>(microseconds(n));
    case 'n':
      return nanoseconds(n);
    default:
      return std::nullopt;
  }
}

bool is_grpc_path(std::string_view path) {
  if (path.size() < 4 || path[0] != '/') return false;
  const auto slash = path.find('/', 1);
  return slash != std::string_view::npos && slash > 1 && slash + 1 < path.size() &&
         path.find('/', slash + 1) == std::string_view::npos;
}

}  // namespace portcullis
