// Mapping the kernel's (device, inode) identity of an executable to a path.
#pragma once

#include <sys/types.h>

#include "capaudit.h"

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace capaudit {

// super_block->s_dev (major << 20 | minor) to the user-space dev_t of stat().
dev_t kernel_dev_to_user(uint64_t kdev);
uint64_t user_dev_to_kernel(dev_t dev);

struct ExeId {
  uint64_t kdev = 0;  // kernel encoding, as in ca_check_key
  uint64_t ino = 0;
  bool operator==(const ExeId&) const = default;
};
struct ExeIdHash {
  size_t operator()(const ExeId& id) const noexcept { return id.kdev * 1000003u ^ id.ino; }
};

struct ResolvedPath {
  std::string path;
  // The file at `path` no longer has this (dev, ino): deleted or replaced
  // since it ran (the path is where it was when seen).
  bool stale = false;
};

// Ids whose path is kept (issue 14 item 3: bounded on a host that runs new
// executables for months). 154 bytes an entry with paths of 40 characters
// (measured with mallinfo2: node, bucket and the path's heap block), so
// some 1.2 MiB when full.
inline constexpr size_t kMaxExePaths = 8192;

// Learns paths from exec events and /proc, and answers (dev, ino) -> path.
class ExePathResolver {
 public:
  explicit ExePathResolver(std::string proc_root = "/proc", size_t max_paths = kMaxExePaths);

  // From an exec event: `dpath` is the kernel-built absolute path (may be
  // empty), `filename` what execve was given (may be relative), pid the
  // process (its /proc entry may already be gone).
  void learn_exec(const ExeId& id, const std::string& dpath, const std::string& filename,
                  uint32_t pid);
  // The same, from the kernel's exec event (its strings are fixed-size,
  // NUL-padded buffers).
  void learn_exec(const ca_exec_event& ev);
  // A path known from elsewhere (the database of an earlier run): kept only
  // when the file there still is `id`. True when it is.
  bool learn_verified(const ExeId& id, const std::string& path);
  // Scans /proc/*/exe for ids not yet known (processes that started before
  // the daemon). Returns how many new ids were learned.
  size_t scan_proc();
  // `stale` is re-checked against the file system on every call.
  std::optional<ResolvedPath> lookup(const ExeId& id) const;
  // lookup, and if unknown, scan /proc once more.
  std::optional<ResolvedPath> resolve(const ExeId& id);

  // Called after a drain that stored every key the kernel maps held, so no
  // path a count still waits for is dropped: above max_paths ids, forgets
  // down to 3/4 of it, first the ids no running process has, least
  // recently learned or looked up first. One forgotten is found again if
  // needed: in /proc while it runs, in the store (Drainer) while its file
  // is there. Returns how many were forgotten.
  size_t trim();
  size_t size() const { return known_.size(); }

 private:
  struct Known {
    ResolvedPath path;
    // When last learned or looked up (use_clock_), for trim(); lookup is a
    // read, the use is bookkeeping.
    mutable uint64_t used = 0;
  };
  // True when id was not known before.
  bool remember(const ExeId& id, const std::string& path, bool stale = false);
  // The executables of the processes in /proc now.
  std::unordered_set<ExeId, ExeIdHash> running() const;
  std::string proc_root_;
  size_t max_paths_;
  std::unordered_map<ExeId, Known, ExeIdHash> known_;
  mutable uint64_t use_clock_ = 0;
};

// readlink(/proc/PID/exe) without the " (deleted)" suffix; sets *deleted.
std::optional<std::string> read_proc_exe(const std::string& proc_root, uint32_t pid,
                                         bool* deleted = nullptr);

}  // namespace capaudit
