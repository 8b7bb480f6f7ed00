#pragma once
// gRPC in the gateway's own answers: the grpc-status for a refusal the gateway makes (the
// HTTP status it would have answered, mapped as gRPC's HTTP-to-gRPC table does, with the
// gateway's timeouts as DEADLINE_EXCEEDED and size limits as RESOURCE_EXHAUSTED), the
// percent-encoding of grpc-message, and what makes a request gRPC.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace portcullis {

// 0 OK .. 16 UNAUTHENTICATED (the codes of grpc/status.h).
int grpc_status_for_http(unsigned http_status);

// The grpc-status of a refusal: grpc_status_for_http, except a gRPC-Web body that cannot be
// decoded (`bad_grpc_web_body`), which is 13 INTERNAL like gRPC's own framing errors.
int grpc_status_for_reply(unsigned http_status, std::string_view error);

// grpc-message encoding: bytes outside 0x20..0x7E and '%' become %XX.
std::string grpc_percent_encode(std::string_view message);

// "application/grpc", "application/grpc+proto", "application/grpc;..." (not grpc-web).
bool is_grpc_content_type(std::string_view content_type);

// grpc-timeout: 1 to 8 digits and a unit (H M S m u n); nothing when malformed.
std::optional<std::chrono::nanoseconds> parse_grpc_timeout(std::string_view value);

// "/pkg.Service/Method" shape: two non-empty segments after a leading '/'.
bool is_grpc_path(std::string_view path);

}  // namespace portcullis
