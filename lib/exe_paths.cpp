#include "exe_paths.h"

#include "bounded_table.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <vector>

namespace capaudit {
namespace {

constexpr std::string_view kDeletedSuffix = " (deleted)";

std::string pid_dir(const std::string& proc_root, uint32_t pid) {
  return proc_root + "/" + std::to_string(pid);
}

std::optional<std::string> read_link(const std::string& link) {
  std::string buf(256, '\0');
  for (;;) {
    ssize_t n = ::readlink(link.c_str(), buf.data(), buf.size());
    if (n < 0) return std::nullopt;
    if (static_cast<size_t>(n) < buf.size()) {
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
    // Possibly truncated: readlink does not say, so retry larger.
    if (buf.size() >= 65536) return std::nullopt;
    buf.resize(buf.size() * 2);
  }
}

std::optional<ExeId> stat_id(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return ExeId{user_dev_to_kernel(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

bool all_digits(const char* s) {
  if (!*s) return false;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9') return false;
  }
  return true;
}

// Calls fn with "<proc_root>/PID/exe" of every process listed.
void for_each_exe_link(const std::string& proc_root, const std::function<void(const std::string&)>& fn) {
  DIR* dir = ::opendir(proc_root.c_str());
  if (!dir) return;
  while (struct dirent* entry = ::readdir(dir)) {
    if (all_digits(entry->d_name)) fn(proc_root + "/" + entry->d_name + "/exe");
  }
  ::closedir(dir);
}

}  // namespace

dev_t kernel_dev_to_user(uint64_t kdev) {
  // The kernel's internal dev_t: 12 bits major, 20 bits minor (MINORBITS).
  return makedev(static_cast<unsigned>(kdev >> 20), static_cast<unsigned>(kdev & 0xfffff));
}

uint64_t user_dev_to_kernel(dev_t dev) {
  return (static_cast<uint64_t>(major(dev)) << 20) | (minor(dev) & 0xfffff);
}

std::optional<std::string> read_proc_exe(const std::string& proc_root, uint32_t pid,
                                         bool* deleted) {
  std::optional<std::string> target = read_link(pid_dir(proc_root, pid) + "/exe");
  if (!target) return std::nullopt;
  bool was_deleted = false;
  if (target->ends_with(kDeletedSuffix)) {
    target->resize(target->size() - kDeletedSuffix.size());
    was_deleted = true;
  }
  if (deleted) *deleted = was_deleted;
  return target;
}

ExePathResolver::ExePathResolver(std::string proc_root, size_t max_paths)
    : proc_root_(std::move(proc_root)), max_paths_(max_paths) {}

bool ExePathResolver::remember(const ExeId& id, const std::string& path, bool stale) {
  auto it = known_.find(id);
  if (it == known_.end()) {
    // Drains failing for long (the database unwritable) must not let a host
    // running ever new executables grow this without end: trimmed anyway.
    if (known_.size() >= 2 * max_paths_) trim();
    known_.emplace(id, Known{ResolvedPath{path, stale}, ++use_clock_});
    return true;
  }
  it->second.used = ++use_clock_;
  // A verified path is better than a stale one; between two verified paths
  // (hard links) the first is kept so reports do not flip between names.
  if (it->second.path.stale && !stale) it->second.path = ResolvedPath{path, false};
  return false;
}

void ExePathResolver::learn_exec(const ca_exec_event& ev) {
  learn_exec(ExeId{ev.exe_dev, ev.exe_ino}, std::string(ev.dpath, strnlen(ev.dpath, sizeof ev.dpath)),
             std::string(ev.filename, strnlen(ev.filename, sizeof ev.filename)), ev.pid);
}

void ExePathResolver::learn_exec(const ExeId& id, const std::string& dpath,
                                 const std::string& filename, uint32_t pid) {
  // Execs of the same binary repeat constantly; spare them the syscalls.
  if (auto it = known_.find(id); it != known_.end() && !it->second.path.stale) {
    it->second.used = ++use_clock_;
    return;
  }
  std::vector<std::string> candidates;
  if (!dpath.empty() && dpath.front() == '/') {
    candidates.push_back(dpath);
  } else if (!filename.empty() && filename.front() == '/') {
    candidates.push_back(filename);
  } else if (!filename.empty()) {
    // Relative to the cwd at exec time; if the process has moved on or
    // exited this guess fails verification and /proc/PID/exe decides.
    if (auto cwd = read_link(pid_dir(proc_root_, pid) + "/cwd")) {
      candidates.push_back(
          (std::filesystem::path(*cwd) / filename).lexically_normal().string());
    }
  }
  // The exec'd file is not always the task's executable (a script's id is
  // its interpreter's; fexecve gives "/dev/fd/N"), and the kernel's view in
  // /proc/PID/exe settles it while the process lives.
  bool exe_deleted = false;
  if (auto exe = read_proc_exe(proc_root_, pid, &exe_deleted)) {
    candidates.push_back(*exe);
  }
  for (const std::string& path : candidates) {
    auto seen = stat_id(path);
    if (seen && *seen == id) {
      remember(id, path, false);
      return;
    }
  }
  // Nothing on disk has this id any more (replaced or deleted since the
  // exec): where it was is still the most useful answer.
  if (!candidates.empty()) remember(id, candidates.front(), true);
}

bool ExePathResolver::learn_verified(const ExeId& id, const std::string& path) {
  auto seen = stat_id(path);
  if (!seen || !(*seen == id)) return false;
  remember(id, path, false);
  return true;
}

size_t ExePathResolver::scan_proc() {
  size_t learned = 0;
  for_each_exe_link(proc_root_, [&](const std::string& exe_link) {
    // Kernel threads have no exe, other users' processes may refuse
    // (EACCES), and processes exit mid-scan: all simply skipped.
    std::optional<std::string> path = read_link(exe_link);
    if (!path) return;
    // stat through the magic link reaches the running inode even when its
    // path was deleted or now names another file.
    auto id = stat_id(exe_link);
    if (!id) return;
    bool stale = false;
    if (path->ends_with(kDeletedSuffix)) {
      path->resize(path->size() - kDeletedSuffix.size());
      stale = true;
    } else {
      auto at_path = stat_id(*path);
      stale = !at_path || !(*at_path == *id);
    }
    if (remember(*id, *path, stale)) ++learned;
  });
  return learned;
}

std::unordered_set<ExeId, ExeIdHash> ExePathResolver::running() const {
  std::unordered_set<ExeId, ExeIdHash> ids;
  for_each_exe_link(proc_root_, [&](const std::string& exe_link) {
    if (auto id = stat_id(exe_link)) ids.insert(*id);
  });
  return ids;
}

size_t ExePathResolver::trim() {
  if (known_.size() <= max_paths_) return 0;  // spared the /proc scan
  const std::unordered_set<ExeId, ExeIdHash> live = running();
  const std::vector<ExeId> drop =
      least_used_beyond(known_, max_paths_, [&](const ExeId& id, const Known&) { return live.count(id) > 0; });
  for (const ExeId& id : drop) known_.erase(id);
  return drop.size();
}

std::optional<ResolvedPath> ExePathResolver::lookup(const ExeId& id) const {
  auto it = known_.find(id);
  if (it == known_.end()) return std::nullopt;
  it->second.used = ++use_clock_;
  ResolvedPath result = it->second.path;
  // A package upgrade replaces the file after we learned it; re-check so
  // the answer is about now, not about when the exec was seen.
  if (!result.stale) {
    auto now = stat_id(result.path);
    result.stale = !now || !(*now == id);
  }
  return result;
}

std::optional<ResolvedPath> ExePathResolver::resolve(const ExeId& id) {
  if (auto known = lookup(id)) return known;
  scan_proc();
  return lookup(id);
}

}  // namespace capaudit
