// What a binary file is right now: content hash, owner, mode, capabilities.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace capaudit {

struct FileIdentity {
  std::string sha256;  // hex
  uint64_t dev = 0;    // user-space dev_t
  uint64_t ino = 0;
  uint32_t owner_uid = 0;
  uint32_t owner_gid = 0;
  uint32_t mode = 0;   // st_mode, including type and setuid bits
  std::vector<int> file_caps;     // permitted set of security.capability
  bool file_caps_effective = false;
  std::string file_caps_text;     // "cap_net_raw+ep", "" when none
};

// Bytes as lower-case hex.
std::string to_hex(const unsigned char* bytes, size_t len);

// SHA-256 fed piece by piece (a file, a child's output). The one place that
// talks to OpenSSL's digest API.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t len);
  // Lower-case hex; "" when OpenSSL could not start or finish the digest.
  // Call once.
  std::string finish();

 private:
  void* ctx_ = nullptr;  // EVP_MD_CTX, kept out of the header
};

// SHA-256 of a byte string, lower-case hex.
std::string sha256_hex(std::string_view data);

// Reads the file (O_NOFOLLOW on the last component is not used: the kernel
// reported this path for the executable). nullopt with *err naming the path.
std::optional<FileIdentity> read_file_identity(const std::string& path, std::string* err = nullptr);

}  // namespace capaudit
