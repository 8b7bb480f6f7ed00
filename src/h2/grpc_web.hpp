#pragma once
// gRPC-Web (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md) as the gateway
// translates it: a browser's gRPC-Web call becomes a gRPC call to an HTTP/2 upstream. The
// message frames are the same in both; what changes is the content type, the trailers (sent
// as a last body frame flagged 0x80 instead of HTTP trailers) and, in the "-text" variants,
// base64 over the whole body in both directions.
//
//   auto web = grpc_web_type(content_type);          // nothing: not gRPC-Web
//   GrpcWebRequestDecoder in(web->mode);             // client body -> gRPC frames
//   GrpcWebResponseEncoder out(web->mode);           // upstream body + trailers -> client body
//   out.data(bytes, client_bytes); out.trailers(t, client_bytes); out.finish(client_bytes);
#include <optional>
#include <string>
#include <string_view>

#include "h2/h2_header.hpp"

namespace portcullis {

enum class GrpcWebMode { binary, text };

struct GrpcWebType {
  GrpcWebMode mode = GrpcWebMode::binary;
  std::string web_content_type;   // what the client sent, without parameters (for the answer)
  std::string grpc_content_type;  // what the upstream gets: application/grpc[+suffix]
};

// application/grpc-web[+suffix] and application/grpc-web-text[+suffix], parameters ignored,
// case-insensitive. Nothing for anything else (plain gRPC included).
std::optional<GrpcWebType> grpc_web_type(std::string_view content_type);

// The request body: unchanged in binary mode, base64-decoded in text mode (each chunk the
// client sends may end with '=' padding, so padding may appear between 4-character groups).
class GrpcWebRequestDecoder {
 public:
  explicit GrpcWebRequestDecoder(GrpcWebMode mode) : mode_(mode) {}
  // Appends the decoded bytes to `out`; false when the input is not base64 (text mode).
  bool feed(std::string_view in, std::string& out);
  // True when the body ended on a group boundary (no partial group left).
  bool complete() const { return pending_len_ == 0; }

 private:
  GrpcWebMode mode_;
  char pending_[4] = {};
  std::size_t pending_len_ = 0;
};

// The response body: message frames unchanged (base64 in text mode, without padding until
// the end), then the trailers as one frame: 0x80, a 4-byte big-endian length, and
// "name: value\r\n" lines.
class GrpcWebResponseEncoder {
 public:
  explicit GrpcWebResponseEncoder(GrpcWebMode mode) : mode_(mode) {}
  void data(std::string_view in, std::string& out);
  void trailers(const H2Headers& trailers, std::string& out);
  void finish(std::string& out);  // flushes the last base64 group (text mode)

 private:
  void encode(std::string_view in, std::string& out);
  GrpcWebMode mode_;
  unsigned char pending_[2] = {};
  std::size_t pending_len_ = 0;
};

}  // namespace portcullis
