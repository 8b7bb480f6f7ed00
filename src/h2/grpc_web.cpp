#include "h2/grpc_web.hpp"

#include <cctype>
#include <cstdint>

namespace portcullis {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int decode_char(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::optional<GrpcWebType> grpc_web_type(std::string_view content_type) {
  const auto semi = content_type.find(';');
  std::string ct = lower(content_type.substr(0, semi));
  while (!ct.empty() && (ct.back() == ' ' || ct.back() == '\t')) ct.pop_back();
  GrpcWebType t;
  std::string_view suffix;
  constexpr std::string_view kText = "application/grpc-web-text";
  constexpr std::string_view kBinary = "application/grpc-web";
  std::string_view v = ct;
  if (v.starts_with(kText)) {
    t.mode = GrpcWebMode::text;
    suffix = v.substr(kText.size());
  } else if (v.starts_with(kBinary)) {
    t.mode = GrpcWebMode::binary;
    suffix = v.substr(kBinary.size());
  } else {
    return std::nullopt;
  }
  if (!suffix.empty() && (suffix.front() != '+' || suffix.size() == 1)) return std::nullopt;
  t.web_content_type = ct;
  t.grpc_content_type = "application/grpc" + std::string(suffix);
  return t;
}

bool GrpcWebRequestDecoder::feed(std::string_view in, std::string& out) {
  if (mode_ == GrpcWebMode::binary) {
    out.append(in);
    return true;
  }
  for (char c : in) {
    pending_[pending_len_++] = c;
    if (pending_len_ < 4) continue;
    pending_len_ = 0;
    int v[4];
    int pad = 0;
    for (int i = 0; i < 4; ++i) {
      if (pending_[i] == '=') {
        if (i < 2) return false;
        v[i] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return false;  // data after padding inside one group
      v[i] = decode_char(pending_[i]);
      if (v[i] < 0) return false;
    }
    const unsigned bits = (static_cast<unsigned>(v[0]) << 18) |
                          (static_cast<unsigned>(v[1]) << 12) | (static_cast<unsigned>(v[2]) << 6) |
                          static_cast<unsigned>(v[3]);
    out.push_back(static_cast<char>((bits >> 16) & 0xFF));
    if (pad < 2) out.push_back(static_cast<char>((bits >> 8) & 0xFF));
    if (pad < 1) out.push_back(static_cast<char>(bits & 0xFF));
  }
  return true;
}

void GrpcWebResponseEncoder::encode(std::string_view in, std::string& out) {
  std::size_t i = 0;
  auto next = [&](unsigned char& b) {
    if (pending_len_ > 0) {
      b = pending_[0];
      pending_[0] = pending_[1];
      --pending_len_;
      return true;
    }
    if (i < in.size()) {
      b = static_cast<unsigned char>(in[i++]);
      return true;
    }
    return false;
  };
  while (pending_len_ + (in.size() - i) >= 3) {
    unsigned char b0 = 0, b1 = 0, b2 = 0;
    next(b0);
    next(b1);
    next(b2);
    const unsigned bits = (unsigned{b0} << 16) | (unsigned{b1} << 8) | b2;
    out.push_back(kAlphabet[(bits >> 18) & 63]);
    out.push_back(kAlphabet[(bits >> 12) & 63]);
    out.push_back(kAlphabet[(bits >> 6) & 63]);
    out.push_back(kAlphabet[bits & 63]);
  }
  while (i < in.size()) pending_[pending_len_++] = static_cast<unsigned char>(in[i++]);
}

void GrpcWebResponseEncoder::data(std::string_view in, std::string& out) {
  if (mode_ == GrpcWebMode::binary) {
    out.append(in);
  } else {
    encode(in, out);
  }
}

void GrpcWebResponseEncoder::trailers(const H2Headers& trailers, std::string& out) {
  std::string block;
  for (const auto& t : trailers) {
    block += lower(t.name);
    block += ": ";
    block += t.value;
    block += "\r\n";
  }
  std::string frame;
  frame.reserve(5 + block.size());
  frame.push_back(static_cast<char>(0x80));
  const auto n = static_cast<std::uint32_t>(block.size());
  frame.push_back(static_cast<char>((n >> 24) & 0xFF));
  frame.push_back(static_cast<char>((n >> 16) & 0xFF));
  frame.push_back(static_cast<char>((n >> 8) & 0xFF));
  frame.push_back(static_cast<char>(n & 0xFF));
  frame += block;
  data(frame, out);
}

void GrpcWebResponseEncoder::finish(std::string& out) {
  if (mode_ == GrpcWebMode::binary || pending_len_ == 0) return;
  const unsigned b0 = pending_[0];
  const unsigned b1 = pending_len_ > 1 ? pending_[1] : 0;
  const unsigned bits = (b0 << 16) | (b1 << 8);
  out.push_back(kAlphabet[(bits >> 18) & 63]);
  out.push_back(kAlphabet[(bits >> 12) & 63]);
  out.push_back(pending_len_ > 1 ? kAlphabet[(bits >> 6) & 63] : '=');
  out.push_back('=');
  pending_len_ = 0;
}

}  // namespace portcullis
