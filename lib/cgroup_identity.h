// Who a cgroup2 path belongs to: a systemd unit, a container (podman,
// docker, containerd, CRI-O) and its Kubernetes pod, as the path alone
// tells. Pure: no file is read (issue 12; docs/containers.md has the layouts).
#pragma once

#include <string>
#include <string_view>

namespace capaudit {

struct CgroupIdentity {
  // The deepest systemd unit in the path that is not a container's own
  // scope ("nginx.service", "session-2.scope"); "" when none.
  std::string unit;
  // The container's full lower-case hex id; "" when the path is no container's.
  std::string container_id;
  // "podman", "docker", "containerd", "cri-o", or "kubernetes" when only the
  // kubepods layout says it is a container; "" when no container.
  std::string runtime;
  // The runtime's monitor (conmon) in the container's name, not the
  // container: libpod-conmon-<id>.scope, crio-conmon-<id>.scope.
  bool monitor = false;
  std::string pod_uid;  // kubepods: the pod's uid, dashes restored
  std::string qos;      // kubepods: "guaranteed", "burstable", "besteffort"
};

// path: from the cgroup2 root ("/system.slice/nginx.service"); a v1
// hierarchy's path of a hybrid layout parses the same way.
CgroupIdentity parse_cgroup_path(std::string_view path);

// 64 lower-case hex digits: what every runtime names containers by.
bool is_container_id(std::string_view s);

}  // namespace capaudit
