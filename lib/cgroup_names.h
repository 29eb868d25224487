// The daemon's record of the cgroups checks run in (issue 12): each cgroup2
// directory's id and path, learned when it is made (ca_cgroup_event) or,
// for one made before the daemon started, found on the cgroup2 mount; who
// it belongs to (cgroup_identity.h); and, for a container, its name, image,
// user and bounding set from the runtime's state files, read while the
// container runs (a --rm container's files are gone a moment after it ends).
#pragma once

#include "cgroup_identity.h"
#include "store.h"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace capaudit {

// Where the runtimes keep what names a container. Tests point these at
// their own copies; the defaults are the runtimes' own.
struct RuntimeStateDirs {
  // runc-compatible state roots: <root>/<id>/state.json names the bundle.
  std::vector<std::string> oci_state_roots = {"/run/runc", "/run/docker/runtime-runc/moby",
                                              "/run/containerd/runc/k8s.io", "/run/containerd/runc/default"};
  std::string docker_root = "/var/lib/docker";  // containers/<id>/config.v2.json
};

// The container's metadata, from the files above; nullopt when none were
// there (not yet written, or gone).
struct ContainerMeta {
  std::string name, image, pod_name, pod_namespace;
  std::optional<uint64_t> bounding;
  std::optional<uint32_t> user;
};
std::optional<ContainerMeta> read_container_meta(const std::string& id, const std::string& runtime,
                                                 const RuntimeStateDirs& dirs);

// The cgroup2 mount point from /proc/self/mountinfo ("" when none).
std::string find_cgroup2_mount();

class CgroupCatalog {
 public:
  explicit CgroupCatalog(std::string cgroup2_mount = find_cgroup2_mount(), RuntimeStateDirs dirs = {});

  // A cgroup was made (the BPF event): parses the path, and for a container
  // tries its state files now and again later (name_pending).
  void learn(uint64_t id, std::string_view path, int64_t now);
  // The cgroup's row; one the daemon was not told of is looked for on the
  // cgroup2 mount (one scan per second at most). nullptr when unknown.
  const CgroupRow* lookup(uint64_t id, int64_t now);
  // Changes each time the row gains something (a name, an image).
  uint64_t revision(uint64_t id) const;
  // Containers whose state files were not there yet: tried again. Cheap
  // when none wait; the daemon calls it on every exec event and drain.
  void name_pending(int64_t now);
  size_t pending() const { return pending_.size(); }

 private:
  struct Entry {
    CgroupRow row;
    uint64_t revision = 1;
    int tries = 0;
  };
  Entry& remember(uint64_t id, std::string_view path, int64_t now);
  bool try_name(Entry& e);
  void scan(int64_t now);

  std::string mount_;
  RuntimeStateDirs dirs_;
  std::unordered_map<uint64_t, Entry> known_;
  std::set<uint64_t> pending_;
  std::set<uint64_t> missing_;  // not on the mount at the last scan
  int64_t last_scan_ = -1;
};

}  // namespace capaudit
