// The audit format's building blocks: ASCII JSON strings, RFC 3339 times, the record body, the
// Ed25519 key (RFC 8037 vectors), chain lines and checkpoint signing, file names and tails.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <boost/json/parse.hpp>

#include "../tools/audit_test_support.hpp"
#include "audit/audit_event.hpp"
#include "audit/audit_file_sink.hpp"
#include "audit/audit_files.hpp"
#include "audit/audit_json.hpp"
#include "audit/audit_key.hpp"
#include "audit/audit_record.hpp"
#include "audit/audit_redis.hpp"
#include "core/sha256.hpp"

namespace portcullis {
namespace {

using namespace audit_test;
namespace json = boost::json;

std::string as_json(std::string_view s) {
  std::string out;
  append_audit_string(out, s);
  return out;
}

TEST(AuditJson, StringsAreAsciiAndRoundTrip) {
  EXPECT_EQ(as_json("plain"), "\"plain\"");
  EXPECT_EQ(as_json("a\"b\\c\n\t\r"), "\"a\\\"b\\\\c\\n\\t\\r\"");
  EXPECT_EQ(as_json(std::string("\x01\x7f", 2)), "\"\\u0001\\u007f\"");
  EXPECT_EQ(as_json("jos\xc3\xa9"), "\"jos\\u00e9\"");
  EXPECT_EQ(as_json("\xe2\x82\xac"), "\"\\u20ac\"");
  EXPECT_EQ(as_json("\xf0\x9f\x98\x80"), "\"\\ud83d\\ude00\"");
  EXPECT_EQ(as_json("\xff"), "\"\\ufffd\"");                        // invalid byte
  EXPECT_EQ(as_json("\xc0\xaf"), "\"\\ufffd\\ufffd\"");             // overlong '/'
  EXPECT_EQ(as_json("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate
  EXPECT_EQ(json::parse(as_json("jos\xc3\xa9 \xf0\x9f\x98\x80")).as_string(),
            "jos\xc3\xa9 \xf0\x9f\x98\x80");
}

TEST(AuditJson, TimesAreRfc3339Microseconds) {
  using namespace std::chrono;
  const auto t = system_clock::time_point(seconds(1'796'040'000) + microseconds(123456));
  EXPECT_EQ(format_audit_time(t), "2026-11-30T12:00:00.123456Z");
  EXPECT_EQ(compact_utc_time(t), "20261130T120000Z");
  auto parsed = parse_rfc3339("2026-11-30T12:00:00.123456Z");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->time_since_epoch(), duration_cast<microseconds>(t.time_since_epoch()));
  EXPECT_EQ(*parse_rfc3339("2026-11-30T13:30:00+01:30"), *parse_rfc3339("2026-11-30T12:00:00Z"));
  EXPECT_EQ(*parse_rfc3339("2026-11-30"), *parse_rfc3339("2026-11-30T00:00:00Z"));
  EXPECT_EQ(*parse_rfc3339("2026-11-30t12:00:00.5z"), *parse_rfc3339("2026-11-30T12:00:00.500Z"));
  for (const char* bad :
       {"", "2026-11-31", "2026-11-30T12:00:00", "2026-11-30T25:00:00Z", "2026-11-30T12:00Z",
        "yesterday", "2026-11-30T12:00:00.Z", "2026-11-30T12:00:00+0100"})
    EXPECT_FALSE(parse_rfc3339(bad).has_value()) << bad;
}

TEST(AuditEventBody, HasEveryFieldInOrderAndParses) {
  ManualClock clock;
  AuditEvent e = sample_event(clock, 3);
  e.completed = false;
  e.duration = std::chrono::microseconds(12345);
  const std::string body = audit_event_body(e);
  EXPECT_TRUE(body.starts_with("\"time\":\"2027-01-15T08:00:00.000000Z\",\"request_id\":\"req-3\""))
      << body;
  const auto o = json::parse("{" + body + "}").as_object();
  for (const char* k :
       {"time",        "request_id", "trace_id",  "listener",         "route",
        "method",      "authority",  "path",      "grpc_method",      "source",
        "source_port", "subject",    "email",     "issuer",           "client_id",
        "groups",      "decision",   "rule",      "reason",           "shadow_decision",
        "shadow_rule", "cache",      "upstream",  "upstream_address", "status",
        "error",       "bytes_in",   "bytes_out", "duration_ms",      "completed"})
    EXPECT_TRUE(o.contains(k)) << k;
  EXPECT_EQ(o.size(), 30u);
  EXPECT_EQ(o.at("duration_ms").as_double(), 12.345);
  EXPECT_EQ(o.at("completed").as_bool(), false);
  EXPECT_EQ(o.at("groups").as_array().size(), 2u);
  EXPECT_NE(body.find("\"duration_ms\":12.345,"), std::string::npos);
}

// RFC 8037 appendix A: the Ed25519 example key, its thumbprint and a signature.
constexpr std::string_view kRfcX = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
constexpr std::string_view kRfcThumbprint = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
constexpr std::string_view kRfcInput = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
constexpr std::string_view kRfcSig =
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

TEST(AuditKey, MatchesTheRfc8037Vectors) {
  EXPECT_EQ(ed25519_thumbprint(kRfcX), kRfcThumbprint);
  auto key = AuditVerifyKey::from_x(kRfcX);
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(key->kid(), kRfcThumbprint);
  EXPECT_TRUE(key->verify(kRfcInput, kRfcSig));
  EXPECT_FALSE(key->verify("something else", kRfcSig));
  EXPECT_FALSE(key->verify(kRfcInput, "AAAA"));
}

TEST(AuditKey, SignsVerifiesAndRoundTripsThroughPem) {
  auto key = AuditSigningKey::generate();
  ASSERT_TRUE(key.has_value());
  auto sig = key->sign("message");
  ASSERT_TRUE(sig.has_value());
  EXPECT_EQ(sig->size(), 86u);
  auto pub = AuditVerifyKey::from_pem(key->public_pem());
  ASSERT_TRUE(pub.has_value()) << pub.error();
  EXPECT_EQ(pub->kid(), key->kid());
  EXPECT_TRUE(pub->verify("message", *sig));
  auto from_private = AuditVerifyKey::from_pem(key->private_pem());
  ASSERT_TRUE(from_private.has_value());
  EXPECT_EQ(from_private->kid(), key->kid());
  auto reloaded = AuditSigningKey::from_pem(key->private_pem());
  ASSERT_TRUE(reloaded.has_value());
  EXPECT_EQ(reloaded->kid(), key->kid());
  EXPECT_EQ(key->public_jwk(), "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" + key->x() + "\"}");
}

TEST(AuditKey, RefusesOtherKeyTypes) {
  EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  ASSERT_NE(ec, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, ec, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  const std::string pem(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  EVP_PKEY_free(ec);
  EXPECT_FALSE(AuditSigningKey::from_pem(pem).has_value());
  EXPECT_FALSE(AuditVerifyKey::from_pem(pem).has_value());
  EXPECT_FALSE(AuditSigningKey::from_pem("not a pem").has_value());
}

TEST(AuditRecord, LinesChainBySha256OfThePreviousLine) {
  AuditChain chain;
  std::string buf;
  chain.append(buf, audit_type::request, "\"a\":1");
  chain.append(buf, audit_type::request, "\"b\":2");
  const std::string first =
      "{\"seq\":0,\"prev\":\"" + std::string(kAuditZeroHash) + "\",\"type\":\"request\",\"a\":1}";
  const std::string second =
      "{\"seq\":1,\"prev\":\"" + sha256_hex(first) + "\",\"type\":\"request\",\"b\":2}";
  EXPECT_EQ(buf, first + "\n" + second + "\n");
  EXPECT_EQ(chain.next_seq, 2u);
  EXPECT_EQ(chain.prev, sha256_hex(second));
}

TEST(AuditRecord, CheckpointSignsTheLineWithoutItsSig) {
  auto key = *AuditSigningKey::generate();
  AuditChain chain;
  chain.next_seq = 7;
  chain.prev = sha256_hex("x");
  auto line = audit_checkpoint_line(chain, "2026-11-30T12:00:00.000000Z", "gw", key, "count");
  ASSERT_TRUE(line.has_value());
  const std::string expected_message =
      "{\"seq\":7,\"prev\":\"" + sha256_hex("x") +
      "\",\"type\":\"checkpoint\",\"time\":\"2026-11-30T12:00:00.000000Z\",\"instance\":\"gw\","
      "\"kid\":\"" +
      key.kid() + "\",\"reason\":\"count\"}";
  auto parts = split_checkpoint(*line);
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->message, expected_message);
  EXPECT_EQ(*line, expected_message.substr(0, expected_message.size() - 1) + ",\"sig\":\"" +
                       parts->sig + "\"}");
  EXPECT_TRUE(AuditVerifyKey::from_x(key.x())->verify(parts->message, parts->sig));
  EXPECT_FALSE(split_checkpoint("{\"seq\":1}").has_value());
  EXPECT_FALSE(split_checkpoint("{\"sig\":\"a b\"}").has_value());
}

TEST(AuditFiles, RotatedNames) {
  AuditFileNames n("/var/log/portcullis/audit.jsonl");
  using namespace std::chrono;
  const auto t = system_clock::time_point(seconds(1'796'040'000));
  EXPECT_EQ(n.rotated_basename(t, 1234), "audit-20261130T120000Z-000000001234.jsonl");
  EXPECT_EQ(n.path_of("x"), "/var/log/portcullis/x");
  EXPECT_TRUE(n.is_rotated("audit-20261130T120000Z-000000001234.jsonl"));
  EXPECT_TRUE(n.is_rotated("audit-20261130T120000Z-000000001234-2.jsonl"));
  EXPECT_TRUE(n.is_rotated("audit-20261130T120000Z-1000000000000000.jsonl"));
  EXPECT_FALSE(n.is_rotated("audit.jsonl"));
  EXPECT_FALSE(n.is_rotated("audit-20261130T120000Z-1234.jsonl"));
  EXPECT_FALSE(n.is_rotated("other-20261130T120000Z-000000001234.jsonl"));
  EXPECT_FALSE(n.is_rotated("audit-20261130T120000Z-000000001234.jsonl.gz"));
  AuditFileNames bare("audit");
  EXPECT_EQ(bare.dir(), ".");
  EXPECT_EQ(bare.rotated_basename(t, 1), "audit-20261130T120000Z-000000000001");
}

TEST(AuditFiles, TailFindsFirstLastAndTornBytes) {
  TempDir dir;
  const std::string f = dir / "a.jsonl";
  EXPECT_FALSE(read_audit_tail(f)->has_value());
  write_file(f, "");
  auto t = *read_audit_tail(f);
  EXPECT_FALSE(t->last_line.has_value());
  EXPECT_TRUE(t->torn.empty());

  write_file(f, "one\ntwo\nthr");
  t = *read_audit_tail(f);
  EXPECT_EQ(t->first_line, "one");
  EXPECT_EQ(t->last_line, "two");
  EXPECT_EQ(t->torn, "thr");
  EXPECT_EQ(t->torn_offset, 8u);

  write_file(f, "only torn");
  t = *read_audit_tail(f);
  EXPECT_FALSE(t->last_line.has_value());
  EXPECT_EQ(t->torn, "only torn");
  EXPECT_EQ(t->torn_offset, 0u);

  // Lines longer than the read chunk, and a file of one line.
  const std::string big(200000, 'x');
  write_file(f, big + "\n" + big + "y\n");
  t = *read_audit_tail(f);
  EXPECT_EQ(t->first_line, big);
  EXPECT_EQ(t->last_line, big + "y");
  EXPECT_TRUE(t->torn.empty());
  write_file(f, "single\n");
  t = *read_audit_tail(f);
  EXPECT_EQ(t->first_line, "single");
  EXPECT_EQ(t->last_line, "single");
}

TEST(AuditFiles, LineSeqPrefix) {
  EXPECT_EQ(audit_line_seq("{\"seq\":42,\"prev\":"), 42u);
  EXPECT_FALSE(audit_line_seq("{\"prev\":\"x\",\"seq\":42}").has_value());
  EXPECT_FALSE(audit_line_seq("{\"seq\":x").has_value());
}

TEST(AuditRedisAddress, Parses) {
  EXPECT_EQ(parse_redis_address("127.0.0.1:6380")->port, 6380);
  EXPECT_EQ(parse_redis_address("redis.internal")->host, "redis.internal");
  EXPECT_EQ(parse_redis_address("redis.internal")->port, 6379);
  EXPECT_EQ(parse_redis_address("[::1]:7000")->host, "::1");
  EXPECT_FALSE(parse_redis_address(":6379").has_value());
  EXPECT_FALSE(parse_redis_address("host:0").has_value());
  EXPECT_FALSE(parse_redis_address("host:").has_value());
  EXPECT_FALSE(parse_redis_address("[::1").has_value());
}

}  // namespace
}  // namespace portcullis
