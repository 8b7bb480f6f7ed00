// gRPC-Web translation pieces: content-type detection, the text-mode base64 decoder (chunks
// padded separately), the response encoder (frames, trailer frame, base64 without padding
// until the end).
#include "h2/grpc_web.hpp"

#include <gtest/gtest.h>

#include <string>

namespace portcullis {
namespace {

// Reference base64 (standard alphabet, padded) for checking the streaming encoder.
std::string b64(std::string_view in) {
  static constexpr char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63]};
  }
  if (in.size() - i == 1) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {a[v >> 18], a[(v >> 12) & 63], '=', '='};
  } else if (in.size() - i == 2) {
    const unsigned v =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], '='};
  }
  return out;
}

std::string bytes(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) & 0xFF);
  return s;
}

TEST(GrpcWebType, DetectsTheFourContentTypes) {
  auto t = grpc_web_type("application/grpc-web");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->mode, GrpcWebMode::binary);
  EXPECT_EQ(t->grpc_content_type, "application/grpc");
  EXPECT_EQ(t->web_content_type, "application/grpc-web");
  t = grpc_web_type("Application/GRPC-Web+Proto; charset=utf-8");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->mode, GrpcWebMode::binary);
  EXPECT_EQ(t->grpc_content_type, "application/grpc+proto");
  EXPECT_EQ(t->web_content_type, "application/grpc-web+proto");
  t = grpc_web_type("application/grpc-web-text");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->mode, GrpcWebMode::text);
  EXPECT_EQ(t->grpc_content_type, "application/grpc");
  t = grpc_web_type("application/grpc-web-text+proto");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->mode, GrpcWebMode::text);
  EXPECT_EQ(t->grpc_content_type, "application/grpc+proto");
}

TEST(GrpcWebType, RefusesEverythingElse) {
  for (const char* ct : {"", "application/grpc", "application/grpc+proto", "application/json",
                         "application/grpc-webx", "application/grpc-web+", "application/grpc-web-",
                         "text/grpc-web", "application/grpc-web-textual"}) {
    EXPECT_FALSE(grpc_web_type(ct)) << ct;
  }
}

TEST(GrpcWebRequestDecoder, BinaryIsUnchanged) {
  GrpcWebRequestDecoder d(GrpcWebMode::binary);
  std::string out;
  const std::string in = bytes(1000);
  ASSERT_TRUE(d.feed(in, out));
  EXPECT_EQ(out, in);
}

TEST(GrpcWebRequestDecoder, TextDecodesAcrossArbitrarySplits) {
  const std::string plain = bytes(1000);
  const std::string text = b64(plain);
  for (std::size_t split : {1u, 2u, 3u, 5u, 7u, 64u, 999u}) {
    GrpcWebRequestDecoder d(GrpcWebMode::text);
    std::string out;
    for (std::size_t i = 0; i < text.size(); i += split) {
      ASSERT_TRUE(d.feed(std::string_view(text).substr(i, split), out)) << split;
    }
    EXPECT_TRUE(d.complete());
    EXPECT_EQ(out, plain) << split;
  }
}

TEST(GrpcWebRequestDecoder, TextAcceptsChunksPaddedSeparately) {
  // A client may base64 each message on its own: padding then appears mid-body.
  const std::string a = bytes(10), b = bytes(11), c = bytes(12);
  GrpcWebRequestDecoder d(GrpcWebMode::text);
  std::string out;
  ASSERT_TRUE(d.feed(b64(a) + b64(b), out));
  ASSERT_TRUE(d.feed(b64(c), out));
  EXPECT_EQ(out, a + b + c);
}

TEST(GrpcWebRequestDecoder, TextRefusesNonBase64) {
  for (const char* bad : {"AB!D", "A===", "=AAA", "AB=C", "AAAA AAA", "AAAA\nAAA"}) {
    GrpcWebRequestDecoder d(GrpcWebMode::text);
    std::string out;
    EXPECT_FALSE(d.feed(bad, out)) << bad;
  }
  GrpcWebRequestDecoder partial(GrpcWebMode::text);
  std::string out;
  ASSERT_TRUE(partial.feed("AAAAAA", out));
  EXPECT_FALSE(partial.complete());
}

TEST(GrpcWebResponseEncoder, BinaryFramesThenTrailerFrame) {
  GrpcWebResponseEncoder e(GrpcWebMode::binary);
  std::string out;
  e.data(std::string("\0\0\0\0\2hi", 7), out);
  e.trailers({{"grpc-status", "0"}, {"Grpc-Message", "ok"}}, out);
  e.finish(out);
  const std::string block = "grpc-status: 0\r\ngrpc-message: ok\r\n";
  std::string expected("\0\0\0\0\2hi", 7);
  expected += '\x80';
  expected += std::string("\0\0\0", 3);
  expected += static_cast<char>(block.size());
  expected += block;
  EXPECT_EQ(out, expected);
}

TEST(GrpcWebResponseEncoder, TextIsOneBase64StreamPaddedOnlyAtTheEnd) {
  const std::string plain = bytes(1001);
  for (std::size_t split : {1u, 2u, 4u, 100u, 1001u}) {
    GrpcWebResponseEncoder e(GrpcWebMode::text);
    std::string out;
    for (std::size_t i = 0; i < plain.size(); i += split) {
      e.data(std::string_view(plain).substr(i, split), out);
      EXPECT_EQ(out.find('='), std::string::npos);
      EXPECT_EQ(out.size() % 4, 0u);
    }
    e.trailers({{"grpc-status", "0"}}, out);
    e.finish(out);
    std::string all = plain;
    all += '\x80';
    all += std::string("\0\0\0", 3);
    all += '\x10';
    all += "grpc-status: 0\r\n";
    EXPECT_EQ(out, b64(all)) << split;
  }
}

}  // namespace
}  // namespace portcullis
