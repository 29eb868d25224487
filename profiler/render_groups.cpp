// recommend --by unit|container: the contract's {"units": [...]} and
// {"containers": [...]}, systemd drop-ins, Kubernetes securityContext
// snippets, docker/podman run flags, and the table (docs/containers.md).
#include "capnames.h"
#include "display.h"
#include "groups.h"
#include "render.h"
#include "text.h"

#include <algorithm>
#include <cctype>

namespace capaudit {
namespace {

// "CAP_NET_RAW": systemd's spelling.
std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

std::vector<std::string> systemd_names(const std::vector<int>& caps) {
  std::vector<std::string> out;
  for (int c : caps) out.push_back(upper(cap_name(c)));
  return out;
}

// "NET_RAW": what Kubernetes, Pod Security admission and docker --cap-add take.
std::vector<std::string> oci_names(const std::vector<int>& caps) {
  std::vector<std::string> out;
  for (const std::string& n : systemd_names(caps)) out.push_back(n.rfind("CAP_", 0) == 0 ? n.substr(4) : n);
  return out;
}

nlohmann::json null_if_empty(const std::string& s) { return s.empty() ? nlohmann::json() : nlohmann::json(s); }

std::string short_id(const std::string& id) { return id.substr(0, 12); }

std::string container_title(const GroupDecision& g) {
  const CgroupRow& c = g.container;
  std::string t = "container " + (c.container_name.empty() ? short_id(g.key) : c.container_name + " (" + short_id(g.key) + ")");
  if (!c.image.empty()) t += ", image " + c.image;
  if (!c.runtime.empty()) t += ", " + c.runtime;
  return escape_for_display(t);
}

// "User=nobody", "User=nobody, from its checks' uid", "root", "user unknown".
std::string user_text(const GroupDecision& g) {
  if (g.user_source == UserSource::Unknown) return "user unknown";
  std::string t = g.user ? "User=" + escape_for_display(*g.user) : "root";
  if (g.user_source == UserSource::Checks) t += ", from the uid its checks ran as";
  return t;
}

std::string used_text(const GroupDecision& g) {
  return g.capabilities.empty() ? "needs none" : "needs " + cap_list_text(g.capabilities, ", ");
}

nlohmann::json common(const GroupDecision& g) {
  nlohmann::json j;
  j["capabilities"] = cap_names(g.capabilities);
  j["binaries"] = g.binaries();
  std::vector<int> held;
  for (int c = 0; c < 64; c++)
    if (g.held & (uint64_t{1} << c)) held.push_back(c);
  sort_caps_by_name(held);
  j["held"] = cap_names(held);
  j["held_is_bounding_set"] = g.held_is_bounding;
  j["drops"] = drops_text(g);
  j["notes"] = g.notes;
  j["cgroups"] = g.cgroup_paths;
  nlohmann::json per_binary = nlohmann::json::array();
  for (const BinaryDecision& b : g.analysis.binaries) per_binary.push_back(binary_to_json(b));
  j["analysis"] = std::move(per_binary);
  return j;
}

}  // namespace

std::string systemd_caps_text(const std::vector<int>& caps) { return join(systemd_names(caps), " "); }
std::vector<std::string> kubernetes_caps(const std::vector<int>& caps) { return oci_names(caps); }

std::vector<std::string> docker_flags(const std::vector<int>& caps) {
  std::vector<std::string> out{"--cap-drop=ALL"};
  for (const std::string& n : oci_names(caps)) out.push_back("--cap-add=" + n);
  return out;
}

const char* user_source_name(UserSource s) {
  switch (s) {
    case UserSource::Unit: return "unit";
    case UserSource::Checks: return "checks";
    case UserSource::Unknown: break;
  }
  return "unknown";
}

nlohmann::json unit_to_json(const GroupDecision& g) {
  nlohmann::json j;
  j["unit"] = g.unit;
  j["user"] = g.user ? nlohmann::json(*g.user) : nlohmann::json();
  // "unit": its User= as systemd has it now; "checks": the uid its checks
  // ran as (systemd not asked or not knowing it); "unknown": neither.
  j["user_source"] = user_source_name(g.user_source);
  nlohmann::json rest = common(g);
  j.update(rest);
  j["systemd"] = {{"CapabilityBoundingSet", systemd_caps_text(g.capabilities)},
                  {"AmbientCapabilities", g.non_root ? nlohmann::json(systemd_caps_text(g.capabilities)) : nlohmann::json()}};
  if (g.settings)
    j["unit_settings"] = {{"User", g.settings->user},
                          {"DynamicUser", g.settings->dynamic_user},
                          {"CapabilityBoundingSet", cap_set_names(g.settings->bounding)},
                          {"AmbientCapabilities", cap_set_names(g.settings->ambient)}};
  else
    j["unit_settings"] = nullptr;
  j["systemd_setup"] = {{"binaries", g.setup_binaries()}, {"capabilities", cap_names(g.setup_capabilities())}};
  return j;
}

nlohmann::json container_to_json(const GroupDecision& g) {
  const CgroupRow& c = g.container;
  nlohmann::json j;
  j["id"] = g.key;
  j["name"] = null_if_empty(c.container_name);
  j["image"] = null_if_empty(c.image);
  j["runtime"] = null_if_empty(c.runtime);
  j["user"] = g.uid ? nlohmann::json(*g.uid) : nlohmann::json();
  j.update(common(g));
  j["kubernetes"] = {{"capabilities", {{"drop", {"ALL"}}, {"add", oci_names(g.capabilities)}}}};
  j["docker"] = docker_flags(g.capabilities);
  if (!c.pod_uid.empty() || !c.pod_name.empty())
    j["pod"] = {{"uid", null_if_empty(c.pod_uid)},
                {"name", null_if_empty(c.pod_name)},
                {"namespace", null_if_empty(c.pod_namespace)},
                {"qos", null_if_empty(c.qos)}};
  else
    j["pod"] = nullptr;
  j["runtime_setup"] = {{"binaries", g.setup_binaries()}, {"capabilities", cap_names(g.setup_capabilities())}};
  return j;
}

nlohmann::json groups_to_json(const GroupAnalysis& ga) {
  nlohmann::json list = nlohmann::json::array();
  for (const GroupDecision& g : ga.groups) list.push_back(ga.by == GroupBy::Unit ? unit_to_json(g) : container_to_json(g));
  return {{ga.by == GroupBy::Unit ? "units" : "containers", std::move(list)}};
}

void print_systemd_dropins(std::ostream& out, const GroupAnalysis& ga) {
  bool first = true;
  for (const GroupDecision& g : ga.groups) {
    if (!first) out << "\n";
    first = false;
    const std::string caps = systemd_caps_text(g.capabilities);
    out << "# " << escape_for_display("/etc/systemd/system/" + g.unit + ".d/capaudit.conf") << "\n";
    out << "# " << escape_for_display(g.unit) << " (" << user_text(g) << "): " << used_text(g) << "; "
        << drops_text(g) << "\n";
    for (const std::string& n : g.notes) out << "# " << escape_for_display(n) << "\n";
    // Only a service's drop-in takes these settings; for a scope they are
    // shown commented, for whatever starts it.
    const bool service = g.unit.size() > 8 && g.unit.compare(g.unit.size() - 8, 8, ".service") == 0;
    const char* set = service ? "" : "#";
    out << set << "[Service]\n";
    // Each list setting adds to what the unit file says: the empty
    // assignment resets it first, so the drop-in leaves exactly this set.
    out << set << "CapabilityBoundingSet=\n";
    if (!caps.empty()) out << set << "CapabilityBoundingSet=" << caps << "\n";
    if (g.non_root) {
      out << set << "AmbientCapabilities=\n";
      if (!caps.empty()) out << set << "AmbientCapabilities=" << caps << "\n";
    } else if (g.user_source == UserSource::Unknown) {
      // Not guessed: left for whoever knows the unit's User= to uncomment.
      out << "# if its User= is not root:\n#AmbientCapabilities=\n";
      if (!caps.empty()) out << "#AmbientCapabilities=" << caps << "\n";
    }
  }
}

void print_kubernetes(std::ostream& out, const GroupAnalysis& ga) {
  bool first = true;
  for (const GroupDecision& g : ga.groups) {
    if (!first) out << "---\n";
    first = false;
    out << "# " << container_title(g) << ": " << used_text(g) << "; " << drops_text(g) << "\n";
    for (const std::string& n : g.notes) out << "# " << escape_for_display(n) << "\n";
    std::vector<std::string> add;
    for (const std::string& n : oci_names(g.capabilities)) add.push_back("\"" + n + "\"");
    out << "securityContext:\n  capabilities:\n    drop: [\"ALL\"]\n    add: [" << join(add, ", ") << "]\n";
  }
}

void print_docker(std::ostream& out, const GroupAnalysis& ga) {
  for (const GroupDecision& g : ga.groups) {
    out << "# " << container_title(g) << ": " << used_text(g) << "; " << drops_text(g) << "\n";
    for (const std::string& n : g.notes) out << "# " << escape_for_display(n) << "\n";
    out << join(docker_flags(g.capabilities), " ") << "\n";
  }
}

void print_groups_table(std::ostream& out, const GroupAnalysis& ga) {
  const bool units = ga.by == GroupBy::Unit;
  TextTable t(units ? std::vector<std::string>{"UNIT", "USER", "NEEDS", "HELD VS NEEDED", "BINARIES"}
                    : std::vector<std::string>{"CONTAINER", "NAME", "IMAGE", "NEEDS", "HELD VS NEEDED", "BINARIES"});
  for (const GroupDecision& g : ga.groups) {
    std::string needs = cap_list_text(g.capabilities);
    std::string bins = escape_for_display(join(g.binaries(), ","));
    if (units)
      t.add({escape_for_display(g.unit),
             g.user_source == UserSource::Unknown ? "?" : g.user ? escape_for_display(*g.user) : "root", needs,
             drops_text(g), bins});
    else
      t.add({short_id(g.key), escape_for_display(g.container.container_name.empty() ? "-" : g.container.container_name),
             escape_for_display(g.container.image.empty() ? "-" : g.container.image), needs, drops_text(g), bins});
  }
  t.print(out);
  for (const GroupDecision& g : ga.groups) {
    for (const std::string& n : g.notes)
      out << (units ? escape_for_display(g.unit) : short_id(g.key)) << ": " << escape_for_display(n) << "\n";
    if (units && !g.setup.binaries.empty())
      out << escape_for_display(g.unit) << ": systemd's set-up, not counted: "
          << escape_for_display(join(g.setup_binaries(), ",")) << " (" << cap_list_text(g.setup_capabilities()) << ")\n";
    if (!units && !g.setup.binaries.empty())
      out << short_id(g.key) << ": runtime set-up, not counted: " << escape_for_display(join(g.setup_binaries(), ","))
          << " (" << cap_list_text(g.setup_capabilities()) << ")\n";
  }
  if (ga.checks_unnamed)
    out << ga.checks_unnamed << " checks ran in cgroups the database has no name for (before capauditd "
        << "recorded cgroups, or the host's own)\n";
}

}  // namespace capaudit
