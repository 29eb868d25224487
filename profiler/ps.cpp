// capaudit ps: libcap-ng's pscap, joined with the database. Each process's
// effective, permitted, bounding and ambient sets (capng_get_caps_process),
// its unit or container from its cgroup, and which of the capabilities it
// holds its binary, unit or container was seen using.
#include "capnames.h"
#include "cgroup_identity.h"
#include "commands.h"
#include "groups.h"
#include "text.h"

#include <cap-ng.h>
#include <pwd.h>
#include <unistd.h>

#include <bit>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

namespace capaudit {
namespace {

struct ProcCaps {
  uint32_t pid = 0;
  uint32_t uid = 0;
  std::string exe;  // "" when unreadable (kernel thread, gone, or not ours to read)
  std::string comm;
  std::string cgroup;
  CgroupIdentity ident;
  uint64_t effective = 0, permitted = 0, bounding = 0, ambient = 0;
};

uint64_t set_of(capng_type_t type) {
  uint64_t m = 0;
  for (int c = 0; c <= last_cap() && c < 64; c++)
    if (capng_have_capability(type, static_cast<unsigned>(c))) m |= uint64_t{1} << c;
  return m;
}

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The cgroup2 path ("0::/system.slice/x.service"), else the name=systemd one.
std::string cgroup_of(uint32_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  std::string line, v1;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
    if (size_t at = line.find(":name=systemd:"); at != std::string::npos) v1 = line.substr(at + 14);
  }
  return v1;
}

std::optional<ProcCaps> read_proc(uint32_t pid) {
  ProcCaps p;
  p.pid = pid;
  capng_clear(CAPNG_SELECT_ALL);
  capng_setpid(static_cast<int>(pid));
  if (capng_get_caps_process() != 0) return std::nullopt;  // gone
  p.effective = set_of(CAPNG_EFFECTIVE);
  p.permitted = set_of(CAPNG_PERMITTED);
  p.bounding = set_of(CAPNG_BOUNDING_SET);
#ifdef CAPNG_SUPPORTS_AMBIENT  // CAPNG_AMBIENT is an enumerator, never defined
  p.ambient = set_of(CAPNG_AMBIENT);
#endif
  const std::string dir = "/proc/" + std::to_string(pid);
  std::error_code ec;
  p.exe = std::filesystem::read_symlink(dir + "/exe", ec).string();
  p.comm = first_line(dir + "/comm");
  std::ifstream status(dir + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("Uid:", 0) == 0) p.uid = static_cast<uint32_t>(std::stoul(line.substr(4)));
  p.cgroup = cgroup_of(pid);
  p.ident = parse_cgroup_path(p.cgroup);
  return p;
}

std::string user_of(uint32_t uid) {
  if (passwd* pw = getpwuid(uid)) return pw->pw_name;
  return std::to_string(uid);
}

std::vector<int> caps_in(uint64_t m) {
  std::vector<int> out;
  for (int c = 0; c < 64; c++)
    if (m & (uint64_t{1} << c)) out.push_back(c);
  sort_caps_by_name(out);
  return out;
}

// What the database saw used: per binary path, unit and container id.
struct Seen {
  std::map<std::string, uint64_t> by_binary, by_unit, by_container;
  bool loaded = false;
};

uint64_t granted(const BinaryDecision& b) {
  uint64_t m = 0;
  for (const CheckDecision& c : b.checks)
    if (c.granted && !c.only_other_user_ns && c.cap >= 0 && c.cap < 64) m |= uint64_t{1} << c.cap;
  return m;
}

Seen load_seen(const std::string& db) {
  Seen s;
  std::string err;
  auto store = Store::open(db, &err, /*readonly=*/true);
  if (!store) return s;
  auto obs = load_observations(*store, std::nullopt, &err);
  if (!obs) return s;
  s.loaded = true;
  const Rules& rules = Rules::builtin();
  Analysis a = analyze(*obs, rules);
  for (const BinaryDecision& b : a.binaries)
    if (!b.path.empty()) s.by_binary[b.path] |= granted(b);
  std::vector<CgroupRow> cgroups = store->cgroups();
  for (GroupBy by : {GroupBy::Unit, GroupBy::Container}) {
    GroupAnalysis ga = analyze_groups(*obs, cgroups, by, rules);
    for (const GroupDecision& g : ga.groups) (by == GroupBy::Unit ? s.by_unit : s.by_container)[g.key] = g.used;
  }
  return s;
}

nlohmann::json to_json(const ProcCaps& p, const Seen& seen) {
  auto names = [](uint64_t m) { return cap_names(caps_in(m)); };
  nlohmann::json j = {{"pid", p.pid},
                      {"uid", p.uid},
                      {"user", user_of(p.uid)},
                      {"executable", p.exe.empty() ? nlohmann::json() : nlohmann::json(p.exe)},
                      {"comm", p.comm},
                      {"cgroup", p.cgroup},
                      {"unit", p.ident.unit.empty() ? nlohmann::json() : nlohmann::json(p.ident.unit)},
                      {"container", p.ident.container_id.empty() ? nlohmann::json() : nlohmann::json(p.ident.container_id)},
                      {"effective", names(p.effective)},
                      {"permitted", names(p.permitted)},
                      {"bounding", names(p.bounding)},
                      {"ambient", names(p.ambient)}};
  const uint64_t held = p.effective | p.permitted | p.ambient;
  auto used = [&](const std::map<std::string, uint64_t>& m, const std::string& k) -> nlohmann::json {
    if (!seen.loaded || k.empty()) return nullptr;
    auto it = m.find(k);
    return it == m.end() ? nlohmann::json() : nlohmann::json(names(it->second & held));
  };
  j["used"] = {{"binary", used(seen.by_binary, p.exe)},
               {"unit", used(seen.by_unit, p.ident.unit)},
               {"container", used(seen.by_container, p.ident.container_id)}};
  return j;
}

}  // namespace

int cmd_ps(const PsArgs& a) {
  std::vector<ProcCaps> procs;
  if (a.pid) {
    auto p = read_proc(a.pid);
    if (!p) {
      std::cerr << "capaudit ps: no process " << a.pid << "\n";
      return 1;
    }
    procs.push_back(std::move(*p));
  } else {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
      const std::string name = e.path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      if (auto p = read_proc(static_cast<uint32_t>(std::stoul(name)))) procs.push_back(std::move(*p));
    }
    std::sort(procs.begin(), procs.end(), [](const ProcCaps& x, const ProcCaps& y) { return x.pid < y.pid; });
  }
  Seen seen = load_seen(a.db);
  if (a.json) {
    nlohmann::json all = nlohmann::json::array();
    for (const ProcCaps& p : procs) all.push_back(to_json(p, seen));
    std::cout << all.dump(2) << "\n";
    return std::cout.flush() ? 0 : 1;
  }
  // As pscap: only processes holding something, then what was seen used.
  TextTable t({"PID", "USER", "EXECUTABLE", "UNIT/CONTAINER", "EFFECTIVE", "AMBIENT", "BOUNDING", "SEEN USED"});
  t.align_right(0);
  const uint64_t full = last_cap() >= 63 ? ~uint64_t{0} : (uint64_t{1} << (last_cap() + 1)) - 1;
  for (const ProcCaps& p : procs) {
    if (!p.effective && !p.permitted && !p.ambient) continue;
    auto text = [&](uint64_t m) {
      if (m == full) return std::string("full");
      // As pscap: a set short of a few is said by what it lacks.
      if (std::popcount(full & ~m) <= 3 && std::popcount(m) > 3) return "all but " + cap_list_text(caps_in(full & ~m));
      return cap_list_text(caps_in(m));
    };
    std::string where = !p.ident.container_id.empty() ? "container " + p.ident.container_id.substr(0, 12)
                        : !p.ident.unit.empty()       ? p.ident.unit
                                                      : "-";
    std::string used = "-";
    if (seen.loaded) {
      uint64_t u = 0;
      bool any = false;
      for (auto* m : {&seen.by_binary, &seen.by_unit, &seen.by_container}) {
        const std::string& k = m == &seen.by_binary ? p.exe : m == &seen.by_unit ? p.ident.unit : p.ident.container_id;
        if (auto it = m->find(k); !k.empty() && it != m->end()) {
          u |= it->second;
          any = true;
        }
      }
      const uint64_t held = p.effective | p.permitted | p.ambient;
      used = any ? cap_list_text(caps_in(u & held)) : "never seen";
    }
    t.add({std::to_string(p.pid), escape_for_display(user_of(p.uid)),
           escape_for_display(p.exe.empty() ? "[" + p.comm + "]" : p.exe), escape_for_display(where),
           text(p.effective), text(p.ambient), text(p.bounding), used});
  }
  t.print(std::cout);
  if (!seen.loaded) std::cout << "(no database at " << quote_for_display(a.db) << ": nothing on what was used)\n";
  return std::cout.flush() ? 0 : 1;
}

}  // namespace capaudit
