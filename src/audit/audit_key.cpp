#include "audit/audit_key.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "authn/base64url.hpp"
#include "core/openssl_error.hpp"
#include "core/sha256.hpp"

namespace portcullis {
namespace {

constexpr std::size_t kRawKeyBytes = 32;
constexpr std::size_t kSignatureBytes = 64;

struct BioFree {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

std::shared_ptr<EVP_PKEY> share(EVP_PKEY* key) {
  return std::shared_ptr<EVP_PKEY>(key, [](EVP_PKEY* k) { EVP_PKEY_free(k); });
}

std::string sys_error(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

int no_passphrase(char*, int, int, void*) {
  return -1;  // never prompt: an encrypted key is refused
}

std::string raw_public_x(EVP_PKEY* key) {
  std::array<unsigned char, kRawKeyBytes> raw{};
  std::size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(key, raw.data(), &len) != 1 || len != raw.size()) return {};
  return base64url_encode(std::span<const unsigned char>(raw));
}

std::string pem_of(EVP_PKEY* key, bool private_part) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return {};
  const int ok =
      private_part ? PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)
                   : PEM_write_bio_PUBKEY(bio.get(), key);
  if (ok != 1) return {};
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

// 0 = missing, 1 = read, -1 = error (message in `error`).
int read_private_file(const std::string& path, std::string& out, std::string& error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return 0;
    error = sys_error("cannot open", path);
    return -1;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    error = path + " is not a readable regular file";
    ::close(fd);
    return -1;
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    error = path + " has mode " + mode + "; group/others must have no access (chmod 600)";
    return -1;
  }
  std::array<char, 4096> buf{};
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = sys_error("cannot read", path);
      ::close(fd);
      return -1;
    }
    if (n == 0) break;
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  return 1;
}

// `exists` is set when `path` appeared meanwhile (another process created the key).
Expected<bool, std::string> write_private_file_atomically(const std::string& path,
                                                          const std::string& data, bool& exists) {
  exists = false;
  std::string tmpl = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmpl.data());  // mode 0600
  if (fd < 0) return unexpected(sys_error("cannot create a temp file for", path));
  const auto abandon = [&](const std::string& msg) {
    ::close(fd);
    ::unlink(tmpl.c_str());
    return unexpected(msg);
  };
  if (::fchmod(fd, S_IRUSR | S_IWUSR) != 0) return abandon(sys_error("cannot chmod", tmpl));
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return abandon(sys_error("cannot write", tmpl));
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) return abandon(sys_error("cannot fsync", tmpl));
  if (::close(fd) != 0) {
    ::unlink(tmpl.c_str());
    return unexpected(sys_error("cannot close", tmpl));
  }
  // link() instead of rename(): never replaces a key another process created meanwhile.
  if (::link(tmpl.c_str(), path.c_str()) != 0) {
    exists = errno == EEXIST;
    const std::string msg = sys_error("cannot create", path);
    ::unlink(tmpl.c_str());
    return unexpected(msg);
  }
  ::unlink(tmpl.c_str());
  return true;
}

}  // namespace

std::string ed25519_thumbprint(std::string_view x) {
  std::string canonical = "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"";
  canonical.append(x).append("\"}");
  const Sha256Digest d = sha256(canonical);
  return base64url_encode(std::span<const unsigned char>(d.data(), d.size()));
}

// ---- AuditSigningKey ----------------------------------------------------------------------

AuditSigningKey::AuditSigningKey(std::shared_ptr<EVP_PKEY> key) : key_(std::move(key)) {
  x_ = raw_public_x(key_.get());
  kid_ = ed25519_thumbprint(x_);
}

Expected<AuditSigningKey, std::string> AuditSigningKey::from_pem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return unexpected(std::string("out of memory"));
  EVP_PKEY* raw = PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr);
  if (!raw)
    return unexpected("not a private key PEM (unencrypted PKCS#8 expected): " + openssl_error());
  auto key = share(raw);
  if (EVP_PKEY_is_a(raw, "ED25519") != 1)
    return unexpected(
        std::string("not an Ed25519 key (generate one with: openssl genpkey "
                    "-algorithm ed25519)"));
  AuditSigningKey k(std::move(key));
  if (k.x_.empty()) return unexpected(std::string("cannot read the public key"));
  return k;
}

Expected<AuditSigningKey, std::string> AuditSigningKey::generate() {
  EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!raw) return unexpected("Ed25519 key generation failed: " + openssl_error());
  return AuditSigningKey(share(raw));
}

Expected<AuditSigningKey, std::string> AuditSigningKey::load_or_create(const std::string& path) {
  const auto fail = [&](const std::string& why) {
    return unexpected("audit key " + path + ": " + why);
  };
  std::string pem, error;
  const int found = read_private_file(path, pem, error);
  if (found < 0) return fail(error);
  if (found == 1) {
    auto key = from_pem(pem);
    if (!key) return fail(key.error());
    return key;
  }
  auto key = generate();
  if (!key) return fail(key.error());
  bool exists = false;
  auto written = write_private_file_atomically(path, key->private_pem(), exists);
  if (!written) {
    if (exists) return load_or_create(path);  // another process won the race
    return fail(written.error());
  }
  return key;
}

std::string AuditSigningKey::public_jwk() const {
  return "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" + x_ + "\"}";
}

std::string AuditSigningKey::public_pem() const {
  return pem_of(key_.get(), false);
}

std::string AuditSigningKey::private_pem() const {
  return pem_of(key_.get(), true);
}

Expected<std::string, std::string> AuditSigningKey::sign(std::string_view message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  std::array<unsigned char, kSignatureBytes> sig{};
  std::size_t len = sig.size();
  if (!ctx ||
      EVP_DigestSignInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, key_.get(), nullptr) !=
          1 ||
      EVP_DigestSign(ctx.get(), sig.data(), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      len != sig.size())
    return unexpected("Ed25519 signing failed: " + openssl_error());
  return base64url_encode(std::span<const unsigned char>(sig));
}

// ---- AuditVerifyKey -----------------------------------------------------------------------

AuditVerifyKey::AuditVerifyKey(std::shared_ptr<EVP_PKEY> key) : key_(std::move(key)) {
  x_ = raw_public_x(key_.get());
  kid_ = ed25519_thumbprint(x_);
}

Expected<AuditVerifyKey, std::string> AuditVerifyKey::from_x(std::string_view x_b64url) {
  std::array<unsigned char, kRawKeyBytes> raw{};
  auto n = base64url_decode(x_b64url, raw);
  if (!n || *n != raw.size()) return unexpected(std::string("\"x\" is not 32 bytes of base64url"));
  EVP_PKEY* key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size());
  if (!key) return unexpected("not an Ed25519 public key: " + openssl_error());
  return AuditVerifyKey(share(key));
}

Expected<AuditVerifyKey, std::string> AuditVerifyKey::from_pem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return unexpected(std::string("out of memory"));
  EVP_PKEY* raw = PEM_read_bio_PUBKEY(bio.get(), nullptr, no_passphrase, nullptr);
  if (!raw) {
    ERR_clear_error();
    BioPtr again(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    raw = again ? PEM_read_bio_PrivateKey(again.get(), nullptr, no_passphrase, nullptr) : nullptr;
  }
  if (!raw) return unexpected("not a public key PEM: " + openssl_error());
  auto key = share(raw);
  if (EVP_PKEY_is_a(raw, "ED25519") != 1) return unexpected(std::string("not an Ed25519 key"));
  // Keep only the public half, whatever was given.
  return from_x(raw_public_x(raw));
}

Expected<AuditVerifyKey, std::string> AuditVerifyKey::from_pem_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return unexpected("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  auto key = from_pem(text.str());
  if (!key) return unexpected(path + ": " + key.error());
  return key;
}

bool AuditVerifyKey::verify(std::string_view message, std::string_view sig_b64url) const {
  std::array<unsigned char, kSignatureBytes> sig{};
  auto n = base64url_decode(sig_b64url, sig);
  if (!n || *n != sig.size()) return false;
  MdCtxPtr ctx(EVP_MD_CTX_new());
  const bool ok =
      ctx &&
      EVP_DigestVerifyInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, key_.get(), nullptr) ==
          1 &&
      EVP_DigestVerify(ctx.get(), sig.data(), sig.size(),
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace portcullis
