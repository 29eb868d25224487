#include "groups.h"

#include "capnames.h"

#include <pwd.h>

#include <algorithm>
#include <bit>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>

namespace capaudit {
namespace {

// The runtimes' own programs: runc's init re-executes runc itself
// ("runc:[2:INIT]"), crun does the same; conmon and catatonit sit beside
// or before the entrypoint.
constexpr const char* kRuntimeBinaries[] = {"runc",      "crun",   "conmon", "catatonit", "youki", "runsc",
                                            "docker-init", "crio", "containerd-shim", "containerd-shim-runc-v2"};

uint64_t bit(int cap) { return (cap >= 0 && cap < 64) ? uint64_t{1} << cap : 0; }

std::string group_key(const CgroupRow& r, GroupBy by) {
  if (by == GroupBy::Unit) return r.unit;
  return r.monitor ? std::string() : r.container_id;
}

bool matches(const CgroupRow& r, GroupBy by, const std::string& which) {
  if (by == GroupBy::Unit) return r.unit == which || r.unit == which + ".service";
  if (r.container_id.empty() || r.monitor) return false;
  if (r.container_id == which || (!r.container_name.empty() && r.container_name == which)) return true;
  return which.size() >= 4 && r.container_id.compare(0, which.size(), which) == 0;
}

std::string user_name(uint32_t uid) {
  if (passwd* pw = getpwuid(uid)) return pw->pw_name;
  return std::to_string(uid);
}

// Per binary, the checks of each group; a binary with none in a group is not in it.
struct Split {
  std::map<std::string, std::vector<Observation>> workload, setup;
  std::map<std::string, std::set<uint64_t>> cgroups;
  std::map<std::string, uint64_t> foreign;  // checks of credentials the container does not hold
  uint64_t unnamed = 0;
};

// A check whose credential holds capabilities outside the container's
// bounding set was not made with the container's own credential: overlayfs
// acts in its upper and work directories with its mounter's (podman's,
// holding everything), and those checks land on whichever task caused them.
bool foreign_credential(const CgroupRow& r, const CheckFields& f, GroupBy by) {
  return by == GroupBy::Container && r.bounding && (f.cap_effective & ~*r.bounding) != 0;
}

bool ends_with(const std::string& s, const char* tail) {
  const size_t n = std::char_traits<char>::length(tail);
  return s.size() >= n && s.compare(s.size() - n, n, tail) == 0;
}

// The set-up of a group's processes by its runtime or by systemd, before
// the workload's program runs. systemd forks its executor for a service's
// Exec lines; a scope's processes come from elsewhere (PID 1 itself is
// init.scope's), and a user manager (user@UID.service) is systemd as the
// workload.
bool setup_binary(const Observation& o, GroupBy by, const std::string& key) {
  if (by == GroupBy::Container) return is_runtime_binary(o.binary);
  return is_manager_binary(o.binary) && ends_with(key, ".service") && key.rfind("user@", 0) != 0;
}

Split split(const std::vector<Observation>& obs, const std::unordered_map<uint64_t, const CgroupRow*>& rows,
            GroupBy by, const std::optional<std::string>& only) {
  Split s;
  for (const Observation& o : obs) {
    std::map<std::string, Observation> workload, setup;
    for (const ObservedCheck& c : o.checks) {
      auto it = rows.find(c.row.f.cgroup_id);
      if (it == rows.end()) {
        s.unnamed += c.row.count;
        continue;
      }
      const CgroupRow& r = *it->second;
      std::string key = group_key(r, by);
      if (key.empty()) continue;
      if (only && !matches(r, by, *only)) continue;
      s.cgroups[key].insert(r.id);
      const bool is_setup = setup_binary(o, by, key);
      if (!is_setup && foreign_credential(r, c.row.f, by)) {
        s.foreign[key] += c.row.count;
        continue;
      }
      Observation& part = (is_setup ? setup : workload)[key];
      if (part.checks.empty()) part.binary = o.binary;
      part.checks.push_back(c);
    }
    for (auto& [key, part] : workload) s.workload[key].push_back(std::move(part));
    for (auto& [key, part] : setup) s.setup[key].push_back(std::move(part));
  }
  return s;
}

uint64_t known_caps() {
  const int last = last_cap();
  return last >= 63 ? ~uint64_t{0} : (uint64_t{1} << (last + 1)) - 1;
}

bool is_root_user(const std::string& user) { return user.empty() || user == "root" || user == "0"; }

std::optional<uint32_t> uid_of(const std::string& user) {
  if (passwd* pw = getpwnam(user.c_str())) return pw->pw_uid;
  if (!user.empty() && user.find_first_not_of("0123456789") == std::string::npos && user.size() < 10)
    return static_cast<uint32_t>(std::stoul(user));
  return std::nullopt;
}

// A unit's user: its User= where systemd answers, else the uid its checks
// ran as (said in a note), else unknown (said too).
void settle_unit_user(GroupDecision& g, const std::set<uint32_t>& uids, const UnitLookup* units) {
  std::string why = "systemd was not asked";
  if (units && *units) {
    why.clear();
    if (std::optional<UnitSettings> s = (*units)(g.unit, &why)) {
      g.user_source = UserSource::Unit;
      g.non_root = !is_root_user(s->user) || s->dynamic_user;
      if (!is_root_user(s->user)) {
        g.user = s->user;
        g.uid = uid_of(s->user);
      } else if (s->dynamic_user) {
        g.user = "(dynamic)";
      }
      s->bounding &= known_caps();  // systemd says ~0 for "unset"
      s->ambient &= known_caps();
      g.held = s->bounding;
      g.held_is_bounding = true;
      if (g.non_root && uids.count(0))
        g.notes.push_back("some of its checks ran as root (an Exec line with \"+\", or a setuid program): the "
                          "ambient set is for its User=");
      else if (g.uid && !uids.empty() && !uids.count(*g.uid))
        g.notes.push_back("its checks ran as uid " + std::to_string(*uids.begin()) + ", not as User=" + *g.user +
                          " (uid " + std::to_string(*g.uid) + "): the unit was changed since, or it changes user");
      else if (!g.non_root && !uids.empty() && !uids.count(0))
        g.notes.push_back("it runs as root but its checks ran as uid " + std::to_string(*uids.begin()) +
                          ": it changes user itself, so the ambient set would not reach it");
      g.settings = std::move(s);
      return;
    }
  }
  if (uids.empty()) {
    g.notes.push_back("its user is not known (" + why + "): AmbientCapabilities= is wanted only when its User= is "
                      "not root");
    return;
  }
  g.user_source = UserSource::Checks;
  if (!uids.count(0)) {
    g.uid = *uids.begin();
    g.user = user_name(*g.uid);
    g.non_root = true;
    if (uids.size() > 1) g.notes.push_back("its checks ran as several users; the first is shown");
  }
  g.notes.push_back("User= not read from the unit (" + why + "): taken from the uid" +
                    std::string(uids.size() > 1 ? "s" : "") + " its checks ran as");
}

}  // namespace

bool is_runtime_binary(const BinaryRow& b) {
  if (b.key.comm.rfind("runc:[", 0) == 0) return true;
  std::string base = std::filesystem::path(b.key.path).filename().string();
  return std::any_of(std::begin(kRuntimeBinaries), std::end(kRuntimeBinaries),
                     [&](const char* n) { return base == n; });
}

bool is_manager_binary(const BinaryRow& b) {
  const std::filesystem::path p(b.key.path);
  const std::string base = p.filename().string();
  return (base == "systemd" || base == "systemd-executor") && p.parent_path().filename() == "systemd";
}

std::vector<std::string> GroupDecision::binaries() const {
  std::vector<std::string> out;
  for (const BinaryDecision& b : analysis.binaries) out.push_back(b.display_name);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> GroupDecision::setup_binaries() const {
  std::vector<std::string> out;
  for (const BinaryDecision& b : setup.binaries) out.push_back(b.display_name);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int> GroupDecision::setup_capabilities() const {
  std::vector<int> out;
  for (const BinaryDecision& b : setup.binaries)
    for (const CheckDecision& c : b.checks)
      if (c.granted && !c.only_other_user_ns) out.push_back(c.cap);
  sort_caps_by_name(out);
  return out;
}

std::string drops_text(const GroupDecision& g) {
  uint64_t keep = 0;
  for (int c : g.capabilities) keep |= bit(c);
  const int held = std::popcount(g.held);
  const int dropped = std::popcount(g.held & ~keep);
  return "drops " + std::to_string(dropped) + " of " + std::to_string(held) +
         (g.held_is_bounding ? " in its bounding set" : " held");
}

GroupAnalysis analyze_groups(const std::vector<Observation>& obs, const std::vector<CgroupRow>& cgroups, GroupBy by,
                             const Rules& rules, const std::optional<std::string>& only, const UnitLookup* units) {
  std::unordered_map<uint64_t, const CgroupRow*> rows;
  for (const CgroupRow& r : cgroups) rows.emplace(r.id, &r);
  Split s = split(obs, rows, by, only);

  GroupAnalysis ga;
  ga.by = by;
  ga.checks_unnamed = s.unnamed;
  std::set<std::string> keys;
  for (const auto& [k, _] : s.workload) keys.insert(k);
  for (const auto& [k, _] : s.setup) keys.insert(k);
  for (const auto& [k, _] : s.foreign) keys.insert(k);
  for (const std::string& key : keys) {
    GroupDecision g;
    g.key = key;
    for (uint64_t id : s.cgroups[key]) {
      const CgroupRow& r = *rows.at(id);
      g.cgroup_paths.push_back(r.path);
      // The row that was named, else the first.
      if (g.container.id == 0 || (g.container.container_name.empty() && !r.container_name.empty())) g.container = r;
    }
    if (by == GroupBy::Unit) g.unit = key;
    if (auto w = s.workload.find(key); w != s.workload.end()) g.observations = std::move(w->second);
    if (auto st = s.setup.find(key); st != s.setup.end()) g.setup_observations = std::move(st->second);
    g.analysis = analyze(g.observations, rules);
    g.setup = analyze(g.setup_observations, rules);

    std::set<int> caps;
    uint64_t effective = 0;
    std::set<uint32_t> uids;
    for (const BinaryDecision& b : g.analysis.binaries) {
      caps.insert(b.capabilities.begin(), b.capabilities.end());
      effective |= b.held_effective;
      for (const CheckDecision& c : b.checks) {
        uids.insert(c.uids.begin(), c.uids.end());
        if (c.granted && !c.only_other_user_ns) g.used |= bit(c.cap);
      }
    }
    g.capabilities.assign(caps.begin(), caps.end());
    sort_caps_by_name(g.capabilities);
    if (by == GroupBy::Container && g.container.bounding) {
      g.held = *g.container.bounding;
      g.held_is_bounding = true;
    } else {
      g.held = effective;
    }
    if (by == GroupBy::Unit) {
      settle_unit_user(g, uids, units);
    } else if (g.container.user) {
      if (*g.container.user != 0) g.uid = g.container.user;
    } else if (!uids.empty() && !uids.count(0)) {
      g.uid = *uids.begin();
      if (uids.size() > 1) g.notes.push_back("its checks ran as several users; the first is shown");
    }
    if (by == GroupBy::Container && g.uid) g.user = user_name(*g.uid);

    if (uint64_t n = s.foreign[key])
      g.notes.push_back(std::to_string(n) + " checks made in it with credentials holding capabilities outside its "
                        "bounding set (overlayfs acts with its mounter's) are not counted");
    if (by == GroupBy::Unit) {
      if (ends_with(key, ".scope"))
        g.notes.push_back("a scope has no unit file: give the capabilities where it is started (systemd-run -p "
                          "CapabilityBoundingSet=... -p AmbientCapabilities=...)");
      if (!g.setup.binaries.empty())
        g.notes.push_back("systemd's own set-up of its processes (as root, before each Exec line's program ran) is "
                          "not counted");
    } else {
      if (g.uid && !g.capabilities.empty())
        g.notes.push_back("runs as uid " + std::to_string(*g.uid) +
                          ": Docker and Kubernetes give a non-root container's process the added capabilities in "
                          "its bounding set only, not as ambient ones, so it needs file capabilities on the "
                          "entrypoint (setcap " + setcap_text(g.capabilities) +
                          " in the image) or to run as root; podman adds them as ambient capabilities too");
      if (!g.setup.binaries.empty())
        g.notes.push_back("the runtime's own set-up (" + std::to_string(g.setup.binaries.size()) +
                          " binaries, before the entrypoint ran) is not counted");
    }
    ga.groups.push_back(std::move(g));
  }
  return ga;
}

std::vector<Observation> observations_in(const std::vector<Observation>& obs, const std::vector<CgroupRow>& cgroups,
                                         GroupBy by, const std::string& which) {
  std::unordered_map<uint64_t, const CgroupRow*> rows;
  for (const CgroupRow& r : cgroups) rows.emplace(r.id, &r);
  Split s = split(obs, rows, by, which);
  std::vector<Observation> out;
  for (auto& [_, parts] : s.workload)
    for (Observation& o : parts) out.push_back(std::move(o));
  return out;
}

}  // namespace capaudit
