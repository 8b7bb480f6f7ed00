#include "authz/assertion_signer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "authn/base64url.hpp"

namespace portcullis {
namespace {

constexpr int kCoordBytes = 32;  // P-256 field size

struct BioDeleter {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct BnDeleter {
  void operator()(BIGNUM* b) const noexcept { BN_free(b); }
};
struct EcdsaSigDeleter {
  void operator()(ECDSA_SIG* s) const noexcept { ECDSA_SIG_free(s); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, EcdsaSigDeleter>;

std::string openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  std::array<char, 256> buf{};
  ERR_error_string_n(code, buf.data(), buf.size());
  return buf.data();
}

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("assertion signing key: " + what);
}

std::string sys_error(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

// Never prompt on a terminal for an encrypted key: refuse it instead.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

std::string coordinate(EVP_PKEY* key, const char* name) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) fail("cannot read the public key");
  BnPtr bn(raw);
  std::array<unsigned char, kCoordBytes> out{};
  if (BN_bn2binpad(bn.get(), out.data(), kCoordBytes) != kCoordBytes)
    fail("public key coordinate out of range");
  return base64url_encode(std::span<const unsigned char>(out));
}

bool is_p256(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "EC") != 1) return false;
  std::array<char, 64> group{};
  std::size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group.data(), group.size(),
                                     &len) != 1)
    return false;
  return std::string_view(group.data(), len) == "prime256v1";
}

// Reads a key file that must be private to its owner. Returns false when it does not exist.
bool read_private_file(const std::string& path, std::string& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return false;
    fail(sys_error("cannot open", path));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string msg = sys_error("cannot stat", path);
    ::close(fd);
    fail(msg);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path + " is not a regular file");
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    fail(path + " has mode " + mode + "; group/others must have no access (chmod 600)");
  }
  std::array<char, 4096> buf{};
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string msg = sys_error("cannot read", path);
      ::close(fd);
      fail(msg);
    }
    if (n == 0) break;
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  return true;
}

// Writes `data` to `path` with mode 0600: a temp file in the same directory, fsync, rename.
void write_private_file_atomically(const std::string& path, const std::string& data) {
  std::string tmpl = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmpl.data());  // mode 0600
  if (fd < 0) fail(sys_error("cannot create a temp file for", path));
  auto abandon = [&](const std::string& msg) {
    ::close(fd);
    ::unlink(tmpl.c_str());
    fail(msg);
  };
  if (::fchmod(fd, S_IRUSR | S_IWUSR) != 0) abandon(sys_error("cannot chmod", tmpl));
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) abandon(sys_error("cannot write", tmpl));
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) abandon(sys_error("cannot fsync", tmpl));
  if (::close(fd) != 0) {
    ::unlink(tmpl.c_str());
    fail(sys_error("cannot close", tmpl));
  }
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    const std::string msg = sys_error("cannot rename into", path);
    ::unlink(tmpl.c_str());
    fail(msg);
  }
}

// DER ECDSA-Sig-Value -> JOSE r||s, each left-padded to 32 bytes (RFC 7518 3.4).
bool der_to_raw(const unsigned char* der, std::size_t len,
                std::array<unsigned char, 2 * kCoordBytes>& raw) {
  const unsigned char* p = der;
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)));
  if (!sig) return false;
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  return BN_bn2binpad(r, raw.data(), kCoordBytes) == kCoordBytes &&
         BN_bn2binpad(s, raw.data() + kCoordBytes, kCoordBytes) == kCoordBytes;
}

}  // namespace

std::string ec_jwk_thumbprint(std::string_view crv, std::string_view x_b64,
                              std::string_view y_b64) {
  // RFC 7638 3.2: required members only, lexicographic order, no whitespace.
  std::string canonical = "{\"crv\":\"";
  canonical.append(crv).append("\",\"kty\":\"EC\",\"x\":\"");
  canonical.append(x_b64).append("\",\"y\":\"").append(y_b64).append("\"}");
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int len = 0;
  if (EVP_Digest(canonical.data(), canonical.size(), digest.data(), &len, EVP_sha256(), nullptr) !=
      1)
    fail("SHA-256 failed: " + openssl_error());
  return base64url_encode(std::span<const unsigned char>(digest.data(), len));
}

AssertionSigner::AssertionSigner(EvpPkeyPtr key) : key_(std::move(key)) {
  if (!key_ || !is_p256(key_.get())) fail("not an EC P-256 key");
  BIGNUM* priv = nullptr;
  if (EVP_PKEY_get_bn_param(key_.get(), OSSL_PKEY_PARAM_PRIV_KEY, &priv) != 1)
    fail("the key has no private part");
  BN_clear_free(priv);
  const std::string x = coordinate(key_.get(), OSSL_PKEY_PARAM_EC_PUB_X);
  const std::string y = coordinate(key_.get(), OSSL_PKEY_PARAM_EC_PUB_Y);
  kid_ = ec_jwk_thumbprint("P-256", x, y);

  boost::json::object jwk;
  jwk["kty"] = "EC";
  jwk["crv"] = "P-256";
  jwk["x"] = x;
  jwk["y"] = y;
  jwk["kid"] = kid_;
  jwk["alg"] = "ES256";
  jwk["use"] = "sig";
  boost::json::object doc;
  doc["keys"] = boost::json::array{std::move(jwk)};
  jwks_ = boost::json::serialize(doc);

  boost::json::object header;
  header["alg"] = "ES256";
  header["typ"] = "JWT";
  header["kid"] = kid_;
  header_b64_ = base64url_encode(boost::json::serialize(header));
}

AssertionSigner AssertionSigner::from_pem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) fail("out of memory");
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) fail("not a private key PEM (unencrypted PKCS#8 expected): " + openssl_error());
  return AssertionSigner(std::move(key));
}

AssertionSigner AssertionSigner::generate() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) fail("key generation failed: " + openssl_error());
  return AssertionSigner(std::move(key));
}

AssertionSigner AssertionSigner::load_or_create(const std::string& key_file) {
  std::string pem;
  if (read_private_file(key_file, pem)) {
    try {
      return from_pem(pem);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(std::string(e.what()) + " (in " + key_file + ")");
    }
  }
  AssertionSigner signer = generate();
  write_private_file_atomically(key_file, signer.private_pem());
  return signer;
}

std::string AssertionSigner::private_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    fail("cannot encode the private key: " + openssl_error());
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

Expected<std::string, std::string> AssertionSigner::sign(
    const Identity& id, std::string_view audience, std::string_view issuer,
    std::chrono::seconds ttl, const Clock& clock, RandomSource& random) const {
  // A client-credentials identity may have no subject; RFC 9068 uses the client id then.
  const std::string& subject = id.subject.empty() ? id.client_id : id.subject;
  if (subject.empty()) return unexpected(std::string("identity has no subject or client id"));
  if (audience.empty()) return unexpected(std::string("empty audience"));
  if (issuer.empty()) return unexpected(std::string("empty issuer"));
  if (ttl.count() <= 0) return unexpected(std::string("ttl must be positive"));

  const std::int64_t iat =
      std::chrono::duration_cast<std::chrono::seconds>(clock.system_now().time_since_epoch())
          .count();
  std::array<std::uint8_t, 16> jti{};
  random.fill(jti);

  boost::json::object claims;
  claims["iss"] = issuer;
  claims["aud"] = audience;
  claims["sub"] = subject;
  if (!id.client_id.empty()) claims["client_id"] = id.client_id;
  if (!id.email.empty()) claims["email"] = id.email;
  boost::json::array groups;
  groups.reserve(id.groups.size());
  for (const auto& g : id.groups) groups.emplace_back(g);
  claims["groups"] = std::move(groups);
  claims["iat"] = iat;
  claims["exp"] = iat + static_cast<std::int64_t>(ttl.count());
  claims["jti"] = base64url_encode(std::span<const unsigned char>(jti.data(), jti.size()));
  claims["idp"] = id.issuer;

  std::string token = header_b64_;
  token.push_back('.');
  token += base64url_encode(boost::json::serialize(claims));

  // A context per call: the EVP_PKEY itself is only read, so concurrent calls are safe.
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  std::array<unsigned char, 80> der{};  // a P-256 DER signature is at most 72 bytes
  std::size_t der_len = der.size();
  if (!ctx ||
      EVP_DigestSignInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, key_.get(), nullptr) !=
          1 ||
      EVP_DigestSign(ctx.get(), der.data(), &der_len,
                     reinterpret_cast<const unsigned char*>(token.data()), token.size()) != 1)
    return unexpected("ES256 signing failed: " + openssl_error());
  std::array<unsigned char, 2 * kCoordBytes> raw{};
  if (!der_to_raw(der.data(), der_len, raw))
    return unexpected(std::string("ES256 signing produced a malformed signature"));

  token.push_back('.');
  token += base64url_encode(std::span<const unsigned char>(raw));
  return token;
}

}  // namespace portcullis
