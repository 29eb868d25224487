#include "cgroup_names.h"

#include "bounded_table.h"
#include "capnames.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace capaudit {
namespace {

// A few tries spread over the container's start: its state files appear
// when runc create has run, before the entrypoint's exec.
constexpr int kMaxNameTries = 200;

std::optional<nlohmann::json> read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

std::string str_at(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<uint64_t> cap_mask(const nlohmann::json& names) {
  if (!names.is_array()) return std::nullopt;
  uint64_t m = 0;
  for (const auto& n : names)
    if (n.is_string())
      if (auto c = cap_from_name(n.get<std::string>()); c && *c >= 0 && *c < 64) m |= uint64_t{1} << *c;
  return m;
}

// The OCI bundle's config.json: bounding set, user, Kubernetes names.
void read_bundle(const std::string& bundle, ContainerMeta* m) {
  auto cfg = read_json(bundle + "/config.json");
  if (!cfg || !cfg->is_object()) return;
  const nlohmann::json& proc = (*cfg)["process"];
  if (proc.is_object()) {
    if (proc.contains("capabilities") && proc["capabilities"].is_object())
      m->bounding = cap_mask(proc["capabilities"].value("bounding", nlohmann::json()));
    if (proc.contains("user") && proc["user"].is_object() && proc["user"].contains("uid") &&
        proc["user"]["uid"].is_number_unsigned())
      m->user = proc["user"]["uid"].get<uint32_t>();
  }
  const nlohmann::json& ann = (*cfg)["annotations"];
  if (!ann.is_object()) return;
  // containerd's CRI plugin, then CRI-O's.
  for (const char* k : {"io.kubernetes.cri.container-name", "io.kubernetes.container.name"})
    if (m->name.empty()) m->name = str_at(ann, k);
  for (const char* k : {"io.kubernetes.cri.image-name", "io.kubernetes.cri-o.ImageName"})
    if (m->image.empty()) m->image = str_at(ann, k);
  for (const char* k : {"io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"})
    if (m->pod_name.empty()) m->pod_name = str_at(ann, k);
  for (const char* k : {"io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace"})
    if (m->pod_namespace.empty()) m->pod_namespace = str_at(ann, k);
}

// containers/storage (podman, CRI-O): the bundle is
// <root>/<driver>-containers/<id>/userdata, and <root>/<driver>-containers/
// containers.json lists every container's names and image.
void read_containers_storage(const std::string& bundle, const std::string& id, ContainerMeta* m) {
  namespace fs = std::filesystem;
  fs::path list = fs::path(bundle).parent_path().parent_path() / "containers.json";
  auto all = read_json(list.string());
  if (!all || !all->is_array()) return;
  for (const auto& c : *all) {
    if (!c.is_object() || str_at(c, "id") != id) continue;
    if (c.contains("names") && c["names"].is_array() && !c["names"].empty() && c["names"][0].is_string() &&
        m->name.empty())
      m->name = c["names"][0].get<std::string>();
    auto meta = nlohmann::json::parse(str_at(c, "metadata"), nullptr, false);
    if (meta.is_object() && m->image.empty()) m->image = str_at(meta, "image-name");
  }
}

void read_docker(const std::string& root, const std::string& id, ContainerMeta* m) {
  auto cfg = read_json(root + "/containers/" + id + "/config.v2.json");
  if (!cfg || !cfg->is_object()) return;
  std::string name = str_at(*cfg, "Name");
  if (!name.empty() && name.front() == '/') name.erase(0, 1);
  if (m->name.empty()) m->name = name;
  if (cfg->contains("Config") && (*cfg)["Config"].is_object() && m->image.empty())
    m->image = str_at((*cfg)["Config"], "Image");
}

}  // namespace

std::optional<ContainerMeta> read_container_meta(const std::string& id, const std::string& runtime,
                                                 const RuntimeStateDirs& dirs) {
  if (!is_container_id(id)) return std::nullopt;  // never a path of our making from an odd name
  ContainerMeta m;
  bool found = false;
  for (const std::string& root : dirs.oci_state_roots) {
    auto state = read_json(root + "/" + id + "/state.json");
    if (!state || !state->is_object()) continue;
    std::string bundle;
    const nlohmann::json& cfg = (*state)["config"];
    if (cfg.is_object() && cfg.contains("labels") && cfg["labels"].is_array())
      for (const auto& l : cfg["labels"])
        if (l.is_string() && l.get<std::string>().rfind("bundle=", 0) == 0) bundle = l.get<std::string>().substr(7);
    if (bundle.empty()) continue;
    found = true;
    read_bundle(bundle, &m);
    if (runtime == "podman" || runtime == "cri-o") read_containers_storage(bundle, id, &m);
    break;
  }
  if (runtime == "docker") {
    read_docker(dirs.docker_root, id, &m);
    found = found || !m.name.empty();
  }
  if (!found) return std::nullopt;
  return m;
}

std::string find_cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // "36 25 0:31 / /sys/fs/cgroup/unified rw,... shared:9 - cgroup2 cgroup2 rw"
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream head(line.substr(0, dash));
    std::string f[5];
    for (auto& x : f) head >> x;
    return f[4];
  }
  return {};
}

CgroupCatalog::CgroupCatalog(std::string cgroup2_mount, RuntimeStateDirs dirs, size_t max_cgroups)
    : mount_(std::move(cgroup2_mount)), dirs_(std::move(dirs)), max_cgroups_(max_cgroups) {}

CgroupCatalog::Entry& CgroupCatalog::remember(uint64_t id, std::string_view path, int64_t now) {
  // Drains failing for long (the database unwritable) must not let a host
  // making ever new cgroups grow this without end: trimmed anyway.
  if (known_.size() >= 2 * max_cgroups_ && !known_.count(id)) shrink();
  Entry& e = known_[id];
  e.used = ++use_clock_;
  CgroupIdentity ident = parse_cgroup_path(path);
  e.row = CgroupRow{};
  e.row.id = id;
  e.row.path = std::string(path);
  e.row.first_seen = e.row.last_seen = now;
  e.row.unit = ident.unit;
  e.row.container_id = ident.container_id;
  e.row.runtime = ident.runtime;
  e.row.monitor = ident.monitor;
  e.row.pod_uid = ident.pod_uid;
  e.row.qos = ident.qos;
  e.revision++;
  e.tries = 0;
  missing_.erase(id);
  pending_.erase(id);
  if (!e.row.container_id.empty() && !e.row.monitor && !try_name(e)) pending_.insert(id);
  return e;
}

void CgroupCatalog::learn(uint64_t id, std::string_view path, int64_t now) { remember(id, path, now); }

bool CgroupCatalog::try_name(Entry& e) {
  e.tries++;
  auto m = read_container_meta(e.row.container_id, e.row.runtime, dirs_);
  if (!m) return false;
  e.row.container_name = m->name;
  e.row.image = m->image;
  e.row.pod_name = m->pod_name;
  e.row.pod_namespace = m->pod_namespace;
  e.row.bounding = m->bounding;
  e.row.user = m->user;
  e.revision++;
  return true;
}

void CgroupCatalog::name_pending(int64_t now) {
  (void)now;
  for (auto it = pending_.begin(); it != pending_.end();) {
    auto e = known_.find(*it);
    if (e == known_.end() || try_name(e->second) || e->second.tries >= kMaxNameTries) {
      if (e != known_.end() && e->second.tries >= kMaxNameTries && e->second.row.container_name.empty())
        spdlog::debug("cgroup {}: container {} not named: its runtime's state files were not found", *it,
                      e->second.row.container_id);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

const CgroupRow* CgroupCatalog::lookup(uint64_t id, int64_t now) {
  if (!known_.count(id)) find({id}, now);
  auto it = known_.find(id);
  if (it == known_.end()) return nullptr;
  it->second.used = ++use_clock_;
  return &it->second.row;
}

void CgroupCatalog::touch(uint64_t id) {
  if (auto it = known_.find(id); it != known_.end()) it->second.used = ++use_clock_;
}

void CgroupCatalog::find(const std::vector<uint64_t>& ids, int64_t now) {
  if (mount_.empty()) return;
  std::vector<uint64_t> wanted;
  for (uint64_t id : ids)
    if (!known_.count(id) && !missing_.count(id)) wanted.push_back(id);
  if (wanted.empty()) return;
  if (walked_at_ != now) walk(now);
  for (uint64_t id : wanted) {
    if (auto it = walked_.find(id); it != walked_.end()) {
      remember(id, it->second, now);
      continue;
    }
    // Gone before it was looked for (or its event was lost): another walk
    // would not find it. Bounded like the rows: past that, walked again.
    if (missing_.size() >= max_cgroups_) missing_.clear();
    missing_.insert(id);
  }
}

void CgroupCatalog::walk(int64_t now) {
  namespace fs = std::filesystem;
  walked_.clear();
  walked_at_ = now;
  // A cgroup's id is its directory's inode number.
  auto add = [&](const fs::path& dir) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) return;
    std::string rel = dir.string().substr(mount_.size());
    walked_.emplace(st.st_ino, rel.empty() ? "/" : rel);
  };
  add(mount_);
  std::error_code ec;
  for (fs::recursive_directory_iterator it(mount_, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) add(it->path());
  }
}

uint64_t CgroupCatalog::revision(uint64_t id) const {
  auto it = known_.find(id);
  return it == known_.end() ? 0 : it->second.revision;
}

uint64_t CgroupCatalog::stored_revision(uint64_t id) const {
  auto it = known_.find(id);
  return it == known_.end() ? 0 : it->second.stored;
}

void CgroupCatalog::set_stored(uint64_t id, uint64_t revision) {
  if (auto it = known_.find(id); it != known_.end()) it->second.stored = revision;
}

void CgroupCatalog::forget_stored() {
  for (auto& [id, e] : known_) e.stored = 0;
}

bool CgroupCatalog::on_mount(uint64_t id, const std::string& path) const {
  struct stat st {};
  return !mount_.empty() && ::stat((mount_ + (path == "/" ? "" : path)).c_str(), &st) == 0 && st.st_ino == id;
}

size_t CgroupCatalog::trim() {
  std::unordered_map<uint64_t, std::string>().swap(walked_);  // the drain that walked is over
  walked_at_ = -1;
  return shrink();
}

size_t CgroupCatalog::shrink() {
  const std::vector<uint64_t> drop = least_used_beyond(
      known_, max_cgroups_, [this](uint64_t id, const Entry& e) { return on_mount(id, e.row.path); });
  for (uint64_t id : drop) {
    known_.erase(id);
    pending_.erase(id);
  }
  return drop.size();
}

}  // namespace capaudit
