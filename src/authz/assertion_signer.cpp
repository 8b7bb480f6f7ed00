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

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "authn/base64url.hpp"
#include "authn/jws_sign.hpp"
#include "core/openssl_error.hpp"

namespace portcullis {
namespace {

struct BioDeleter {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("assertion signing key: " + what);
}

std::string sys_error(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
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

}  // namespace

AssertionSigner::AssertionSigner(EvpPkeyPtr key) : key_(std::move(key)) {
  if (!key_ || !is_p256_key(key_.get())) fail("not an EC P-256 key");
  if (!has_private_key(key_.get())) fail("the key has no private part");
  auto members = public_jwk_members(key_.get());  // kty, crv, x, y
  if (!members) fail(members.error());
  boost::json::object jwk = std::move(*members);
  kid_ = jwk_thumbprint(jwk);
  if (kid_.empty()) fail("cannot compute the key thumbprint");
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
  auto key = load_private_key_pem(pem);
  if (!key) fail("not a private key PEM (unencrypted PKCS#8 expected): " + key.error());
  return AssertionSigner(std::move(*key));
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

  auto signature = jws_signature(JwsAlg::ES256, key_.get(), token);  // raw r||s, own context
  if (!signature) return unexpected(signature.error());
  token.push_back('.');
  token += *signature;
  return token;
}

}  // namespace portcullis
