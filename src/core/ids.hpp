#pragma once
// Request ids and W3C trace context. Randomness comes from a RandomSource so tests can be
// deterministic; production uses OpenSSL's CSPRNG (request ids must not be guessable,
// they are shown to users and correlate audit records).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace portcullis {

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual void fill(std::span<std::uint8_t> out) = 0;
};

// OpenSSL's CSPRNG, read 4 KiB at a time: one RAND_bytes call serves ~100 requests, which
// matters on the request path (each call also costs a getpid for fork detection). Not
// thread-safe: one instance per worker.
class OpenSslRandom final : public RandomSource {
 public:
  void fill(std::span<std::uint8_t> out) override;

 private:
  std::uint8_t pool_[4096];
  std::size_t used_ = sizeof(pool_);
};

// 32 lower-case hex characters (128 random bits).
std::string make_request_id(RandomSource& random);

// True for ids we accept from clients: 1..128 characters of [A-Za-z0-9._:-].
bool is_acceptable_request_id(std::string_view id);

// A W3C traceparent: version 00, fresh trace id and parent id, flags 01.
std::string make_traceparent(RandomSource& random);

// True when `value` is a well-formed version-00 traceparent with non-zero ids.
bool is_valid_traceparent(std::string_view value);

// The 32-hex trace id of a valid traceparent (empty view otherwise).
std::string_view trace_id_of(std::string_view traceparent);

}  // namespace portcullis
