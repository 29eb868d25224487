#include "identity.h"

#include "capnames.h"
#include "fd.h"

#include <cap-ng.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>

#include <spdlog/fmt/fmt.h>

namespace capaudit {

namespace {

std::optional<std::string> sha256_fd(int fd) {
  Sha256 digest;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    digest.update(buf, static_cast<size_t>(n));
  }
  std::string hex = digest.finish();
  if (hex.empty()) return std::nullopt;
  return hex;
}

}  // namespace

std::string to_hex(const unsigned char* bytes, size_t len) {
  std::string out;
  out.reserve(2 * len);
  for (size_t i = 0; i < len; i++) fmt::format_to(std::back_inserter(out), "{:02x}", bytes[i]);
  return out;
}

Sha256::Sha256() {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(ctx);
    ctx = nullptr;
  }
  ctx_ = ctx;
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::update(const void* data, size_t len) {
  if (ctx_) EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, len);
}

std::string Sha256::finish() {
  if (!ctx_) return "";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &len) != 1) return "";
  return to_hex(md, len);
}

std::string sha256_hex(std::string_view data) {
  Sha256 digest;
  digest.update(data.data(), data.size());
  return digest.finish();
}

std::optional<FileIdentity> read_file_identity(const std::string& path, std::string* err) {
  Fd f(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!f) {
    if (err) *err = "cannot open '" + path + "': " + std::strerror(errno);
    return std::nullopt;
  }
  struct stat st {};
  if (fstat(f.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    if (err) *err = "'" + path + "' is not a regular file";
    return std::nullopt;
  }
  FileIdentity id;
  id.dev = st.st_dev;
  id.ino = st.st_ino;
  id.owner_uid = st.st_uid;
  id.owner_gid = st.st_gid;
  id.mode = st.st_mode;
  auto hash = sha256_fd(f.get());
  if (!hash) {
    if (err) *err = "cannot read '" + path + "': " + std::strerror(errno);
    return std::nullopt;
  }
  id.sha256 = *hash;
  // libcap-ng keeps one state per thread; clear it around the file read so
  // nothing of this file leaks into a later capng_apply elsewhere.
  capng_clear(CAPNG_SELECT_BOTH);
  if (capng_get_caps_fd(f.get()) == 0) {
    for (int cap = 0; cap <= last_cap(); cap++) {
      if (capng_have_capability(CAPNG_PERMITTED, static_cast<unsigned>(cap))) id.file_caps.push_back(cap);
      if (capng_have_capability(CAPNG_EFFECTIVE, static_cast<unsigned>(cap))) id.file_caps_effective = true;
    }
    if (!id.file_caps.empty()) {
      id.file_caps_text = setcap_text(id.file_caps);
      if (!id.file_caps_effective && id.file_caps_text.ends_with("+ep"))
        id.file_caps_text.replace(id.file_caps_text.size() - 3, 3, "+p");
    }
  }
  capng_clear(CAPNG_SELECT_BOTH);
  return id;
}

}  // namespace capaudit
