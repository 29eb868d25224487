// A real systemd for the service tests: systemd-nspawn boots systemd 252
// over the host's root (facts and traps: ../shared/MACHINE.md), and the test
// drives it with `nsenter -t LEADER -a ...`. One container serves a whole
// test suite: booting is the slow part.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "e2e_util.h"

namespace capaudit::e2e {

// `systemctl show` properties of a unit.
using UnitProps = std::map<std::string, std::string>;

// The unit's ActiveState/SubState say it runs.
inline bool unit_running(const UnitProps& p) {
  return p.count("ActiveState") && p.at("ActiveState") == "active" && p.count("SubState") &&
         p.at("SubState") == "running";
}

struct ContainerOptions {
  std::string name;  // machine name; also names the cgroup and the scratch directory
  // false: nspawn's --volatile=yes, a tmpfs root with the host's /usr
  // read-only (/etc, /var empty). true: the host's root filesystem under an
  // overlay whose upper layer is a tmpfs, so dpkg installs into a copy of the
  // host (its /etc, its dpkg database) and the host stays untouched (nspawn
  // refuses --volatile=overlay on /).
  bool overlay_root = false;
  std::vector<std::string> bind_ro;  // "SRC[:DST]"
  std::vector<std::string> bind;     // "SRC[:DST]", read-write
};

class Container {
 public:
  Container() = default;
  ~Container();
  Container(const Container&) = delete;
  Container& operator=(const Container&) = delete;

  // Boots and waits until `systemctl is-system-running` says running or
  // degraded. The container gets a bpffs of its own at /sys/fs/bpf (so its
  // pins meet no one else's) and the nspawn process a cgroup of its own (so
  // what nspawn leaves there is removed with it). False with *err on failure.
  bool boot(const ContainerOptions& opts, std::string* err);
  // Halts the container and removes everything boot made: the nspawn
  // process, its cgroups, the bpffs, the scratch directory. Idempotent.
  void shutdown();

  // argv run inside the container (all its namespaces), bounded in time.
  ProcessResult exec(const std::vector<std::string>& argv, int timeout_sec = 120) const;
  ProcessResult systemctl(const std::vector<std::string>& args) const;
  // `systemctl show -p P1,P2 UNIT` as a map.
  std::map<std::string, std::string> show(const std::string& unit, const std::string& props) const;
  // Polls `show` until pred holds; false on timeout (*last gets the last view).
  bool wait_for(const std::string& unit, const std::string& props,
                const std::function<bool(const std::map<std::string, std::string>&)>& pred,
                std::chrono::milliseconds timeout, std::map<std::string, std::string>* last = nullptr) const;
  // The journal of UNIT as `journalctl -o json` objects, oldest first.
  std::vector<nlohmann::json> journal(const std::string& unit) const;

  // A path inside the container as the host sees it (/proc/LEADER/root/...).
  std::string host_path(const std::string& path) const;
  // Writes a file inside the container (parents created).
  bool write_file(const std::string& path, const std::string& text, mode_t mode = 0644) const;
  // Host directory of the container's bpffs (its /sys/fs/bpf).
  const std::string& bpffs() const { return bpffs_; }
  const std::string& scratch() const { return scratch_; }
  pid_t leader() const { return leader_; }
  std::string log() const;  // nspawn's own output (the container's console)

 private:
  pid_t nspawn_ = -1, leader_ = -1;
  std::string scratch_, bpffs_, log_path_, upper_, merged_;
  std::vector<std::string> cgroups_;
};

// `DESTDIR=STAGE cmake --install BUILD`: this build as `cmake --install`
// lays it out, under STAGE (which must not exist yet). False with *err.
bool stage_install(const std::string& stage, std::string* err);
// The build tree these tests belong to.
std::string build_dir();
// Why the systemd tests cannot run here ("" when they can).
std::string nspawn_missing();

}  // namespace capaudit::e2e
