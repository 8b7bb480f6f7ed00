#pragma once
// The validated configuration model. A Config is built once by ConfigLoader from YAML,
// checked completely (unknown keys, units, references, files), and then shared as an
// immutable snapshot (std::shared_ptr<const Config>); a reload builds a new one.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/audit_config.hpp"
#include "cache/redis_config.hpp"
#include "core/net_types.hpp"

namespace portcullis {

using Duration = std::chrono::milliseconds;

struct TlsConfig {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;       // empty: no client certificates requested
  std::string min_version = "1.2";  // "1.2" or "1.3"
};

struct ListenerLimits {
  std::size_t max_header_bytes = 64 * 1024;            // request line + headers; larger -> 431
  Duration header_timeout = std::chrono::seconds(10);  // slow client sending headers -> 408
  Duration idle_timeout = std::chrono::seconds(60);    // keep-alive between requests
  Duration handshake_timeout = std::chrono::seconds(10);
  std::size_t max_requests_per_connection = 0;  // 0: unlimited
  // HTTP/2: a PING after this long without a frame from the client; no answer within
  // ping_timeout closes the connection (a dead peer holding long gRPC streams open).
  Duration ping_interval = std::chrono::seconds(60);  // 0: no PINGs
  Duration ping_timeout = std::chrono::seconds(20);
};

struct ListenerConfig {
  std::string name;
  SocketAddress address;
  std::optional<TlsConfig> tls;  // absent: plaintext
  ListenerLimits limits;
  int line = 0;  // position in the config file, for messages
};

struct AdminConfig {
  std::optional<SocketAddress> address;  // absent: no admin listener
};

struct ServerConfig {
  unsigned workers = 0;  // 0 = auto (hardware concurrency)
  Duration drain_timeout = std::chrono::seconds(20);
  std::vector<Cidr> trusted_proxies;  // peers whose X-Forwarded-* headers are kept
  std::string instance_name;          // defaults to the host name
  bool watch_config = true;           // reload when the config or a policy file changes (inotify)
};

struct AccessLogConfig {
  std::string path = "stdout";  // "stdout", "stderr", "off" or a file path
};

enum class UpstreamProtocol { http1, h2c, h2 };

struct EndpointConfig {
  SocketAddress address;
  unsigned weight = 1;
};

struct UpstreamTimeouts {
  Duration connect = std::chrono::seconds(2);   // TCP connect, and the TLS handshake after it
  Duration request = std::chrono::seconds(30);  // request sent -> response headers received
  Duration idle = std::chrono::seconds(60);     // pooled connection idle / body inactivity
  // HTTP/2 sessions (h2c, h2): a PING after this long without a frame from the upstream; no
  // answer within ping_timeout closes the session (its streams fail with 502 / UNAVAILABLE).
  Duration ping_interval = std::chrono::seconds(30);  // 0: no PINGs
  Duration ping_timeout = std::chrono::seconds(10);
};

// TLS towards an upstream (protocol h2). The certificate is always verified: against `ca_file`
// (else the system store) and for `server_name` (else the endpoint's host name or IP).
struct UpstreamTlsConfig {
  std::string ca_file;      // "" = the system's CA store
  std::string server_name;  // SNI and the name checked in the certificate; "" = endpoint host
  std::string cert_file;    // client certificate (mTLS to the upstream); with key_file
  std::string key_file;
  std::string min_version = "1.2";
};

struct UpstreamPoolConfig {
  std::size_t max_idle_per_endpoint = 64;  // per worker
};

struct EjectionConfig {
  unsigned consecutive_failures = 5;  // 0 disables passive ejection
  Duration base_duration = std::chrono::seconds(10);
};

struct UpstreamConfig {
  std::string name;
  UpstreamProtocol protocol = UpstreamProtocol::http1;
  std::vector<EndpointConfig> endpoints;
  UpstreamTimeouts timeouts;
  UpstreamPoolConfig pool;
  EjectionConfig ejection;
  unsigned retries = 1;  // extra attempts on connect failure, idempotent methods only
  std::optional<UpstreamTlsConfig> tls;  // set exactly when protocol is h2
  int line = 0;
};

// How a provider's claims become an Identity ("" = the defaults described in docs/config.md).
struct ClaimsConfig {
  std::string subject = "sub";
  std::string email = "email";
  std::string groups = "groups";
  std::string scopes;     // "" = "scp" when present, else "scope"
  std::string client_id;  // "" = "client_id", else "cid", else "azp"
};

// auto: JWT-shaped tokens are verified locally and other tokens introspected (and every token
// of an Okta org authorization server, whose access tokens can only be introspected).
enum class IntrospectionMode { automatic, always, never };

struct IntrospectionConfig {
  std::string endpoint;  // "" = the introspection_endpoint from discovery
  std::string client_id;
  std::string client_secret_file;
  std::string client_secret;  // the file's content (trailing newline removed); never printed
  Duration cache_ttl = std::chrono::minutes(5);
  IntrospectionMode mode = IntrospectionMode::automatic;
};

struct JwksRefreshConfig {
  Duration default_refresh = std::chrono::hours(1);  // when the IdP sends no max-age
  Duration min_refresh = std::chrono::minutes(1);
  Duration max_refresh = std::chrono::hours(24);
  Duration unknown_kid_cooldown = std::chrono::seconds(30);
  Duration fetch_timeout = std::chrono::seconds(5);
};

struct IdentityProviderConfig {
  std::string name;
  std::string issuer;
  std::vector<std::string> audiences;
  bool allow_any_audience = false;  // the explicit waiver of the audience check
  std::string jwks_file;  // resolved path; one of jwks_file / jwks_uri / neither (discovery)
  std::string jwks_uri;
  std::vector<std::string> algorithms = {"RS256", "ES256"};
  Duration clock_skew = std::chrono::seconds(60);
  std::string token_type;  // "" = typ not checked; e.g. "at+jwt"
  std::uint64_t max_token_bytes = 16 * 1024;
  ClaimsConfig claims;
  std::string ca_file;  // for HTTPS fetches; "" = system store
  JwksRefreshConfig jwks;
  std::optional<IntrospectionConfig> introspection;
  int line = 0;
};

enum class AuthMode { public_access, bearer, sso, bearer_or_sso, mtls };

// The config's spelling: "public", "bearer", "sso", "bearer_or_sso", "mtls".
std::string_view to_string(AuthMode mode);

struct Policy;  // authz/policy.hpp

// A route's policy: how the config referred to it and its compiled form (shared by every
// route naming the same file).
struct PolicyBinding {
  std::string ref;   // as written: a name ("orders"), a file ("policies/x.yaml") or "inline"
  std::string file;  // the resolved file; "" when inline (compiled->source: relative to the config)
  std::shared_ptr<const Policy> compiled;
  int line = 0;  // of the route's `policy:` key
};

// X-Portcullis-Assertion: the gateway's own ES256 statement of the caller's identity.
struct AssertionConfig {
  std::string key_file;  // "" = a key generated at start-up, lost at exit (demo, tests)
  std::string issuer = "portcullis";
  Duration ttl = std::chrono::minutes(5);
};

struct RouteMatch {
  std::string host;                  // "" = any; "api.example.com" or "*.example.com"; lowercased
  std::string path;                  // exact path ("" = not set)
  std::string path_prefix;           // prefix ("" = not set; "/" matches everything)
  std::vector<std::string> methods;  // uppercase; empty = any
  std::string grpc_service;          // reserved for the HTTP/2 issue
  std::string grpc_method;
};

struct RouteConfig {
  std::string name;
  RouteMatch match;
  std::string upstream;
  AuthMode auth = AuthMode::public_access;
  std::optional<std::uint64_t> max_body_bytes;  // absent: the server default
  std::optional<Duration> timeout;              // overrides upstream.timeouts.request
  bool allow_encoded_slash = false;             // keep %2F/%5C undecoded instead of 400
  std::vector<std::string> providers;           // bearer: providers accepted ("" = all)
  std::vector<std::string> required_scopes;     // bearer: every one must be granted
  bool forward_token = true;                    // keep Authorization for the upstream
  // Absent: public routes allow everyone; other routes deny everything ("route has no policy").
  std::optional<PolicyBinding> policy;
  std::optional<PolicyBinding> shadow_policy;  // evaluated and recorded, never enforced
  bool show_deny_reason = false;               // the 403 body names the rule that denied
  bool identity_headers = true;                // X-Portcullis-User/Email/Groups/Assertion
  int line = 0;
};

// Where browser sessions live: sealed into the cookie, or in Redis (cache.redis) with only a
// sealed reference in the cookie.
enum class SessionStoreKind { cookie, redis };

// Browser single sign-on (auth: sso / bearer_or_sso routes): OIDC authorization code + PKCE
// against one identity provider, the session sealed into a cookie or kept in Redis
// (docs/sso.md).
struct SsoConfig {
  std::string provider;  // identity_providers[].name: issuer, discovery and keys
  std::string client_id;
  std::string client_secret_file;
  std::string client_secret;  // the file's content (trailing newline removed); never printed
  // "client_secret_basic", "client_secret_post" or "private_key_jwt" (client_key_file).
  std::string client_auth = "client_secret_basic";
  std::string client_key_file;                   // private_key_jwt: PEM private key (P-256 or RSA)
  std::string client_key;                        // its content; never printed
  std::string client_key_id;                     // "" = the key's RFC 7638 thumbprint
  std::vector<std::string> cookie_secret_files;  // the first seals, every one opens
  std::vector<std::string> cookie_secrets;       // their contents (parsed by the runtime)
  bool cookie_secure = true;
  // "" = "__Host-portcullis" when secure (without cookie_domain), "__Secure-portcullis" when
  // secure with cookie_domain, else "portcullis".
  std::string cookie_name;
  std::string cookie_domain;  // "" = host-only cookies; "example.com": one sign-in, many hosts
  Duration session_ttl = std::chrono::hours(8);               // absolute (moved on by each refresh)
  Duration idle_timeout{0};                                   // 0 = none
  Duration refresh_interval = std::chrono::minutes(5);        // with a refresh token
  SessionStoreKind session_store = SessionStoreKind::cookie;  // "auto": redis with cache.redis
  std::string callback_path = "/.portcullis/callback";
  std::vector<std::string> scopes{"openid", "email", "profile"};
  std::vector<std::string> allowed_redirect_hosts;
  std::string post_logout_redirect_uri;  // "" = none sent to the IdP
  int line = 0;

  const std::string& effective_cookie_name() const;
};

struct Config {
  std::string source_file;  // the file it was loaded from (for messages and /config)
  ServerConfig server;
  AccessLogConfig access_log;
  std::vector<ListenerConfig> listeners;
  AdminConfig admin;
  std::vector<IdentityProviderConfig> identity_providers;
  std::vector<UpstreamConfig> upstreams;
  std::vector<RouteConfig> routes;
  std::uint64_t default_max_body_bytes = 10ull * 1024 * 1024;
  std::string policy_dir;  // resolved directory of named policies (`policy: NAME`)
  AssertionConfig assertion;
  std::optional<AuditConfig> audit;  // absent: no audit log (the access log still runs)
  // cache.redis: shared state of the replicas (revocations now; issue 5 adds more). Absent:
  // in-process only.
  std::optional<RedisConfig> redis;
  std::optional<SsoConfig> sso;  // absent: no browser sign-in (auth: sso refused at load)
  // Every file the config was built from (the config itself, policy files): a change to any
  // of them triggers a reload when watching is on.
  std::vector<std::string> source_files;

  const UpstreamConfig* find_upstream(std::string_view name) const;
  const IdentityProviderConfig* find_provider(std::string_view name) const;
};

}  // namespace portcullis
