#include "cli/revoke_command.hpp"

#include <hiredis/hiredis.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>

#include "audit/audit_redis.hpp"
#include "cache/redis_config.hpp"
#include "cache/revocation_sync.hpp"
#include "cache/revocations.hpp"
#include "core/config_loader.hpp"
#include "core/units.hpp"

namespace portcullis {
namespace {

constexpr std::string_view kUsage =
    "usage: portcullis revoke --config FILE (--subject S | --token-id JTI | --session ID)\n"
    "                         [--ttl DURATION]\n"
    "\n"
    "Denies a subject, a token (its jti) or an SSO session on every gateway sharing the\n"
    "config's cache.redis, within a second, until the ttl ends (default 24h; make it at least\n"
    "the tokens' lifetime). Replicas that cannot reach Redis catch up when they reconnect.\n";

struct Reply {
  redisReply* r;
  ~Reply() {
    if (r) freeReplyObject(r);
  }
};

int fail(const std::string& message) {
  std::cerr << "portcullis revoke: " << message << "\n";
  return 1;
}

}  // namespace

int run_revoke(const std::vector<std::string_view>& args) {
  std::string config_path;
  std::optional<RevocationKind> kind;
  std::string value;
  std::chrono::seconds ttl = std::chrono::hours(24);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (i + 1 >= args.size()) {
      std::cerr << "portcullis revoke: " << a << " needs a value\n\n" << kUsage;
      return 2;
    }
    const std::string_view v = args[++i];
    if (a == "--config") {
      config_path = v;
    } else if (a == "--subject" || a == "--token-id" || a == "--session") {
      if (kind) {
        std::cerr << "portcullis revoke: give one of --subject, --token-id, --session\n";
        return 2;
      }
      kind = a == "--subject"    ? RevocationKind::kSubject
             : a == "--token-id" ? RevocationKind::kTokenId
                                 : RevocationKind::kSession;
      value = v;
    } else if (a == "--ttl") {
      auto d = parse_duration(v);
      if (!d || d->count() < 1000) {
        std::cerr << "portcullis revoke: --ttl needs a duration of at least 1s (e.g. 8h)\n";
        return 2;
      }
      ttl = std::chrono::duration_cast<std::chrono::seconds>(*d);
    } else {
      std::cerr << "portcullis revoke: unknown argument '" << a << "'\n\n" << kUsage;
      return 2;
    }
  }
  if (config_path.empty() || !kind || value.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  auto loaded = load_config_file(config_path);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::cerr << e.to_string() << "\n";
    return 1;
  }
  if (!loaded.config->redis) return fail(config_path + " has no cache.redis: nothing to revoke in");
  const RedisConfig& rc = *loaded.config->redis;
  const Revocation r{*kind, value, std::chrono::system_clock::now() + ttl};
  const std::string message = encode_revocation(r);
  if (!parse_revocation(message)) return fail("the value is not a valid revocation value");

  auto address = parse_redis_address(rc.address);
  if (!address) return fail(address.error());
  const auto ms =
      rc.connect_timeout.count() < 1000 ? std::chrono::milliseconds(1000) : rc.connect_timeout;
  const timeval tv{static_cast<time_t>(ms.count() / 1000),
                   static_cast<suseconds_t>(ms.count() % 1000 * 1000)};
  std::unique_ptr<redisContext, decltype(&redisFree)> c(
      redisConnectWithTimeout(address->host.c_str(), address->port, tv), &redisFree);
  if (!c || c->err) {
    return fail("cannot connect to Redis at " + rc.address + ": " + (c ? c->errstr : "no memory"));
  }
  redisSetTimeout(c.get(), tv);
  const auto command = [&](std::vector<std::string> argv) {
    std::vector<const char*> ptrs;
    std::vector<size_t> lens;
    for (const auto& s : argv) {
      ptrs.push_back(s.data());
      lens.push_back(s.size());
    }
    return Reply{static_cast<redisReply*>(
        redisCommandArgv(c.get(), static_cast<int>(argv.size()), ptrs.data(), lens.data()))};
  };
  const auto failed = [&](const Reply& reply) -> std::optional<std::string> {
    if (!reply.r) return std::string(c->errstr);
    if (reply.r->type == REDIS_REPLY_ERROR) return std::string(reply.r->str, reply.r->len);
    return std::nullopt;
  };
  auto password = resolve_redis_password(rc);
  if (!password) return fail(password.error());
  if (!password->empty()) {
    Reply auth = rc.username.empty() ? command({"AUTH", *password})
                                     : command({"AUTH", rc.username, *password});
    if (auto why = failed(auth)) return fail("AUTH failed: " + *why);
  }
  if (rc.db != 0) {
    if (auto why = failed(command({"SELECT", std::to_string(rc.db)}))) {
      return fail("SELECT failed: " + *why);
    }
  }
  const auto until = std::chrono::duration_cast<std::chrono::seconds>(r.until.time_since_epoch());
  if (auto why = failed(command({"HSET", std::string(kRevocationsKey), revocation_field(r),
                                 std::to_string(until.count())}))) {
    return fail("HSET failed: " + *why);
  }
  Reply published = command({"PUBLISH", std::string(kRevocationsChannel), message});
  if (auto why = failed(published)) return fail("PUBLISH failed: " + *why);
  std::cout << "revoked " << revocation_kind_name(*kind) << " '" << value << "' for " << ttl.count()
            << "s; announced to "
            << (published.r->type == REDIS_REPLY_INTEGER ? published.r->integer : 0)
            << " gateway(s) now, the others read it when they reconnect\n";
  return 0;
}

}  // namespace portcullis
