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

// Cgroups whose rows are kept (issue 14 item 3: bounded on a host that makes
// cgroups for months). 538 bytes an entry for a service, 682 for a docker
// container before its names are read (measured with mallinfo2: the row's
// strings, node and bucket), so some 2.8 MiB when full.
inline constexpr size_t kMaxCgroups = 4096;

class CgroupCatalog {
 public:
  explicit CgroupCatalog(std::string cgroup2_mount = find_cgroup2_mount(), RuntimeStateDirs dirs = {},
                         size_t max_cgroups = kMaxCgroups);

  // A cgroup was made (the BPF event): parses the path, and for a container
  // tries its state files now and again later (name_pending).
  void learn(uint64_t id, std::string_view path, int64_t now);
  // Looks for the cgroups of `ids` the daemon was not told of on the cgroup2
  // mount and makes a row for each found (for those only, not for every
  // cgroup there). The mount is walked once a second at most: what a walk
  // found serves the later parts of its drain, until trim(). An id not
  // found is not looked for again.
  void find(const std::vector<uint64_t>& ids, int64_t now);
  // The cgroup's row (found as find() does when not known); nullptr when
  // unknown.
  const CgroupRow* lookup(uint64_t id, int64_t now);
  // A check of this cgroup waits to be stored (its binary has no path yet):
  // its row is as recently used as one looked up.
  void touch(uint64_t id);
  // Changes each time the row gains something (a name, an image).
  uint64_t revision(uint64_t id) const;
  // The revision of the row the store holds (0: none), as the drainer
  // said after its commit; forgotten all at once for another store.
  uint64_t stored_revision(uint64_t id) const;
  void set_stored(uint64_t id, uint64_t revision);
  void forget_stored();
  // Containers whose state files were not there yet: tried again. Cheap
  // when none wait; the daemon calls it on every exec event and drain.
  void name_pending(int64_t now);
  size_t pending() const { return pending_.size(); }

  // Called after a drain that stored the rows of every check written:
  // above max_cgroups rows, forgets down to 3/4 of it, first the cgroups
  // gone from the mount, least recently learned or looked up first. One
  // forgotten and still there is found again by find(). Returns how many
  // were forgotten.
  size_t trim();
  size_t size() const { return known_.size(); }
  size_t missing() const { return missing_.size(); }

 private:
  struct Entry {
    CgroupRow row;
    uint64_t revision = 1;
    uint64_t stored = 0;  // the revision in the store
    uint64_t used = 0;    // use_clock_ when last learned or looked up
    int tries = 0;
  };
  Entry& remember(uint64_t id, std::string_view path, int64_t now);
  bool try_name(Entry& e);
  bool on_mount(uint64_t id, const std::string& path) const;
  void walk(int64_t now);
  // trim() but for the walk kept (a find() under way uses it).
  size_t shrink();

  std::string mount_;
  RuntimeStateDirs dirs_;
  size_t max_cgroups_;
  std::unordered_map<uint64_t, Entry> known_;
  std::set<uint64_t> pending_;  // a subset of known_
  std::set<uint64_t> missing_;  // not on the mount when looked for; at most max_cgroups
  uint64_t use_clock_ = 0;
  // The last walk: each directory's id and path (the size of the tree,
  // a fraction of its rows'), dropped by trim().
  std::unordered_map<uint64_t, std::string> walked_;
  int64_t walked_at_ = -1;
};

}  // namespace capaudit
