// gRPC helpers of the HTTP/2 codec: the grpc-status of the gateway's own refusals, the
// grpc-message encoding, and what counts as a gRPC request.
#include "h2/grpc_status.hpp"

#include <gtest/gtest.h>

namespace portcullis {
namespace {

TEST(GrpcStatus, RefusalsMapToTheirGrpcCodes) {
  EXPECT_EQ(grpc_status_for_http(401), 16);  // UNAUTHENTICATED
  EXPECT_EQ(grpc_status_for_http(403), 7);   // PERMISSION_DENIED
  EXPECT_EQ(grpc_status_for_http(404), 12);  // UNIMPLEMENTED
  EXPECT_EQ(grpc_status_for_http(413), 8);   // RESOURCE_EXHAUSTED
  EXPECT_EQ(grpc_status_for_http(431), 8);
  EXPECT_EQ(grpc_status_for_http(504), 4);  // DEADLINE_EXCEEDED
  EXPECT_EQ(grpc_status_for_http(408), 4);
  EXPECT_EQ(grpc_status_for_http(502), 14);  // UNAVAILABLE
  EXPECT_EQ(grpc_status_for_http(503), 14);
  EXPECT_EQ(grpc_status_for_http(400), 3);   // INVALID_ARGUMENT
  EXPECT_EQ(grpc_status_for_http(500), 13);  // INTERNAL
  EXPECT_EQ(grpc_status_for_http(200), 0);
}

TEST(GrpcStatus, MessagesArePercentEncoded) {
  EXPECT_EQ(grpc_percent_encode("denied by rule"), "denied by rule");
  EXPECT_EQ(grpc_percent_encode("100% sure"), "100%25 sure");
  EXPECT_EQ(grpc_percent_encode("line\nbreak"), "line%0Abreak");
  EXPECT_EQ(grpc_percent_encode("caf\xC3\xA9"), "caf%C3%A9");
}

TEST(GrpcStatus, ContentTypes) {
  EXPECT_TRUE(is_grpc_content_type("application/grpc"));
  EXPECT_TRUE(is_grpc_content_type("application/grpc+proto"));
  EXPECT_TRUE(is_grpc_content_type("Application/GRPC;charset=utf-8"));
  EXPECT_FALSE(is_grpc_content_type("application/grpc-web"));
  EXPECT_FALSE(is_grpc_content_type("application/grpcx"));
  EXPECT_FALSE(is_grpc_content_type("application/json"));
  EXPECT_FALSE(is_grpc_content_type(""));
}

TEST(GrpcStatus, Timeouts) {
  using namespace std::chrono;
  EXPECT_EQ(parse_grpc_timeout("100m"), nanoseconds(milliseconds(100)));
  EXPECT_EQ(parse_grpc_timeout("2S"), nanoseconds(seconds(2)));
  EXPECT_EQ(parse_grpc_timeout("1H"), nanoseconds(hours(1)));
  EXPECT_EQ(parse_grpc_timeout("99999999n"), nanoseconds(99999999));
  EXPECT_EQ(parse_grpc_timeout("5u"), nanoseconds(microseconds(5)));
  EXPECT_FALSE(parse_grpc_timeout("100"));
  EXPECT_FALSE(parse_grpc_timeout("m"));
  EXPECT_FALSE(parse_grpc_timeout("123456789m"));  // 9 digits
  EXPECT_FALSE(parse_grpc_timeout("1.5S"));
  EXPECT_FALSE(parse_grpc_timeout("10x"));
}

TEST(GrpcStatus, GrpcPaths) {
  EXPECT_TRUE(is_grpc_path("/pkg.Service/Method"));
  EXPECT_FALSE(is_grpc_path("/pkg.Service/"));
  EXPECT_FALSE(is_grpc_path("//Method"));
  EXPECT_FALSE(is_grpc_path("/a/b/c"));
  EXPECT_FALSE(is_grpc_path("pkg.Service/Method"));
}

}  // namespace
}  // namespace portcullis
