#include "core/ids.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>

namespace portcullis {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void append_hex(std::string& out, std::span<const std::uint8_t> bytes) {
  for (auto b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xF]);
  }
}

bool is_lower_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool all_zero(std::string_view s) {
  return s.find_first_not_of('0') == std::string_view::npos;
}

}  // namespace

void OpenSslRandom::fill(std::span<std::uint8_t> out) {
  std::size_t done = 0;
  while (done < out.size()) {
    if (used_ == sizeof(pool_)) {
      if (RAND_bytes(pool_, sizeof(pool_)) != 1) {
        // The CSPRNG failing is not recoverable: ids would become predictable.
        std::abort();
      }
      used_ = 0;
    }
    std::size_t n = std::min(out.size() - done, sizeof(pool_) - used_);
    std::memcpy(out.data() + done, pool_ + used_, n);
    // Bytes handed out are wiped from the pool so they cannot be handed out twice.
    std::memset(pool_ + used_, 0, n);
    used_ += n;
    done += n;
  }
}

std::string make_request_id(RandomSource& random) {
  std::array<std::uint8_t, 16> bytes{};
  random.fill(bytes);
  std::string id;
  id.reserve(32);
  append_hex(id, bytes);
  return id;
}

bool is_acceptable_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string make_traceparent(RandomSource& random) {
  std::array<std::uint8_t, 24> bytes{};
  random.fill(bytes);
  bytes[0] |= 1;   // never an all-zero trace id
  bytes[16] |= 1;  // never an all-zero parent id
  std::string out = "00-";
  out.reserve(55);
  append_hex(out, std::span(bytes).first(16));
  out.push_back('-');
  append_hex(out, std::span(bytes).subspan(16, 8));
  out += "-01";
  return out;
}

bool is_valid_traceparent(std::string_view v) {
  // 00-<32 hex>-<16 hex>-<2 hex>
  if (v.size() != 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return false;
  auto version = v.substr(0, 2), trace = v.substr(3, 32), parent = v.substr(36, 16),
       flags = v.substr(53, 2);
  if (version != "00") return false;
  if (!is_lower_hex(trace) || !is_lower_hex(parent) || !is_lower_hex(flags)) return false;
  return !all_zero(trace) && !all_zero(parent);
}

std::string_view trace_id_of(std::string_view traceparent) {
  return is_valid_traceparent(traceparent) ? traceparent.substr(3, 32) : std::string_view{};
}

}  // namespace portcullis
