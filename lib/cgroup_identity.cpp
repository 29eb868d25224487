#include "cgroup_identity.h"

#include <algorithm>
#include <vector>

namespace capaudit {
namespace {

std::vector<std::string_view> components(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

std::string_view strip(std::string_view s, std::string_view suffix) {
  return ends_with(s, suffix) ? s.substr(0, s.size() - suffix.size()) : s;
}

struct ScopeForm {
  std::string_view prefix;
  std::string_view runtime;
  bool monitor;
  bool scope_optional;  // podman's cgroupfs manager names it without ".scope"
};

// Longer prefixes first: "libpod-conmon-" before "libpod-".
constexpr ScopeForm kScopeForms[] = {
    {"libpod-conmon-", "podman", true, true},  {"libpod-", "podman", false, true},
    {"docker-", "docker", false, false},       {"cri-containerd-", "containerd", false, false},
    {"crio-conmon-", "cri-o", true, false},    {"crio-", "cri-o", false, true},
};

// A container's own cgroup named by its runtime, or false.
bool container_scope(std::string_view c, CgroupIdentity* id) {
  for (const ScopeForm& f : kScopeForms) {
    if (!starts_with(c, f.prefix)) continue;
    std::string_view rest = c.substr(f.prefix.size());
    if (ends_with(rest, ".scope")) rest = strip(rest, ".scope");
    else if (!f.scope_optional) continue;
    if (!is_container_id(rest)) continue;
    id->container_id = std::string(rest);
    id->runtime = std::string(f.runtime);
    id->monitor = f.monitor;
    return true;
  }
  return false;
}

bool is_unit(std::string_view c) { return ends_with(c, ".service") || ends_with(c, ".scope"); }

// kubepods-burstable-pod1234_abcd.slice, kubepods-pod<uid>.slice, or the
// cgroupfs driver's pod<uid>: the uid, with the systemd driver's '_' back to '-'.
std::string pod_uid_of(std::string_view c) {
  std::string_view s = strip(c, ".slice");
  size_t at = s.rfind("pod");
  if (at == std::string_view::npos) return {};
  if (at != 0 && s[at - 1] != '-') return {};
  std::string uid(s.substr(at + 3));
  if (uid.empty()) return {};
  std::replace(uid.begin(), uid.end(), '_', '-');
  return uid;
}

}  // namespace

bool is_container_id(std::string_view s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

CgroupIdentity parse_cgroup_path(std::string_view path) {
  CgroupIdentity id;
  std::vector<std::string_view> parts = components(path);
  bool in_kubepods = false;
  for (size_t i = 0; i < parts.size(); i++) {
    std::string_view c = parts[i];
    CgroupIdentity found;
    if (container_scope(c, &found)) {
      id.unit.clear();  // the unit it sits in (user@1000.service, rootless) is not its own
      id.container_id = found.container_id;
      id.runtime = found.runtime;
      id.monitor = found.monitor;
      continue;
    }
    if (c == "kubepods" || c == "kubepods.slice") {
      in_kubepods = true;
      id.qos = "guaranteed";  // a pod right under kubepods; burstable and besteffort have their own level
      continue;
    }
    if (in_kubepods) {
      std::string_view s = strip(c, ".slice");
      if (s == "burstable" || s == "kubepods-burstable") {
        id.qos = "burstable";
        continue;
      }
      if (s == "besteffort" || s == "kubepods-besteffort") {
        id.qos = "besteffort";
        continue;
      }
      if (id.pod_uid.empty() && (starts_with(s, "pod") || s.find("-pod") != std::string_view::npos)) {
        id.pod_uid = pod_uid_of(c);
        continue;
      }
      // The cgroupfs driver names a container by its bare id under the pod.
      if (!id.pod_uid.empty() && is_container_id(c)) {
        id.unit.clear();
        id.container_id = std::string(c);
        if (id.runtime.empty()) id.runtime = "kubernetes";
        continue;
      }
    }
    // docker's cgroupfs driver: /docker/<id>.
    if (i > 0 && parts[i - 1] == "docker" && is_container_id(c)) {
      id.unit.clear();
      id.container_id = std::string(c);
      id.runtime = "docker";
      continue;
    }
    if (is_unit(c)) id.unit = std::string(c);
  }
  return id;
}

}  // namespace capaudit
