// Per unit and per container: checks split by their cgroups, the runtime's
// set-up apart, and each ecosystem's spelling of the same decision.
#include "groups.h"
#include "render.h"

#include <gtest/gtest.h>

#include <sstream>

namespace capaudit {
namespace {

const std::string kId = "96c39abdb8f55ed3a328adf5161a1f5b206bba3237dbfd9e127fabc6c51c1161";

ObservedCheck check(int cap, uint64_t cgroup, uint32_t uid, uint64_t effective) {
  ObservedCheck c;
  c.row.f.cap = cap;
  c.row.f.ret = 0;
  c.row.f.audit = Audit::Yes;
  c.row.f.uid = c.row.f.euid = uid;
  c.row.f.cgroup_id = cgroup;
  c.row.f.cap_effective = effective;
  c.row.count = 1;
  return c;
}

Observation binary(int64_t id, const std::string& path, std::vector<ObservedCheck> checks) {
  Observation o;
  o.binary.id = id;
  o.binary.key.path = path;
  o.checks = std::move(checks);
  return o;
}

constexpr int kChown = 0, kNetRaw = 13, kNetBind = 10, kSysAdmin = 21, kSetuid = 7;
constexpr uint64_t bitof(int c) { return uint64_t{1} << c; }

std::vector<CgroupRow> cgroups() {
  CgroupRow unit;
  unit.id = 10;
  unit.path = "/system.slice/web.service";
  unit.unit = "web.service";
  CgroupRow ctr;
  ctr.id = 20;
  ctr.path = "/libpod_parent/libpod-" + kId;
  ctr.container_id = kId;
  ctr.runtime = "podman";
  ctr.container_name = "web";
  ctr.image = "localhost/web:1";
  ctr.bounding = bitof(kChown) | bitof(kNetRaw) | bitof(kSetuid);
  ctr.user = 65534;
  return {unit, ctr};
}

std::vector<Observation> observations() {
  const uint64_t ctr_caps = bitof(kChown) | bitof(kNetRaw) | bitof(kSetuid);
  return {
      binary(1, "/usr/sbin/web", {check(kNetBind, 10, 65534, bitof(kNetBind) | bitof(kNetRaw))}),
      binary(2, "/app", {check(kNetRaw, 20, 65534, ctr_caps),
                         // made with overlayfs's mounter's credential: not the container's
                         check(kSysAdmin, 20, 0, ~uint64_t{0} >> 23)}),
      binary(3, "/usr/sbin/runc", {check(kSysAdmin, 20, 0, ~uint64_t{0} >> 23), check(kSetuid, 20, 0, ctr_caps)}),
      binary(4, "/usr/bin/host-only", {check(kChown, 1, 0, ~uint64_t{0} >> 23)}),
  };
}

TEST(Groups, PerUnit) {
  auto obs = observations();
  auto cg = cgroups();
  GroupAnalysis ga = analyze_groups(obs, cg, GroupBy::Unit, Rules::builtin());
  ASSERT_EQ(ga.groups.size(), 1u);
  const GroupDecision& g = ga.groups[0];
  EXPECT_EQ(g.unit, "web.service");
  EXPECT_EQ(g.capabilities, std::vector<int>{kNetBind});
  EXPECT_EQ(g.uid, 65534u);
  EXPECT_EQ(drops_text(g), "drops 1 of 2 held");
  EXPECT_EQ(ga.checks_unnamed, 1u);  // host-only's, in cgroup 1, which the table does not name
  nlohmann::json j = groups_to_json(ga);
  EXPECT_EQ(j["units"][0]["systemd"]["CapabilityBoundingSet"], "CAP_NET_BIND_SERVICE");
  EXPECT_EQ(j["units"][0]["systemd"]["AmbientCapabilities"], "CAP_NET_BIND_SERVICE");
  EXPECT_EQ(j["units"][0]["binaries"], nlohmann::json::array({"/usr/sbin/web"}));
  std::ostringstream out;
  print_systemd_dropins(out, ga);
  EXPECT_NE(out.str().find("# /etc/systemd/system/web.service.d/capaudit.conf\n"), std::string::npos) << out.str();
  // Lists add up across a unit and its drop-ins: reset, then set.
  EXPECT_NE(out.str().find("[Service]\nCapabilityBoundingSet=\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"
                           "AmbientCapabilities=\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n"),
            std::string::npos)
      << out.str();
}

// The unit's User= as systemd has it wins over the uid its checks ran as;
// systemd's own set-up of the unit's processes (PID 1's child, as root,
// before the Exec line's program) is not the unit's.
TEST(Groups, PerUnitUserFromSystemd) {
  auto obs = observations();
  obs.push_back(binary(5, "/usr/lib/systemd/systemd", {check(kSetuid, 10, 0, ~uint64_t{0} >> 23)}));
  auto cg = cgroups();
  std::vector<std::string> asked;
  UnitSettings web;
  web.user = "nobody";
  web.bounding = bitof(kNetBind) | bitof(kNetRaw) | bitof(kChown);
  web.ambient = web.bounding;
  UnitLookup lookup = [&](const std::string& unit, std::string* why) -> std::optional<UnitSettings> {
    asked.push_back(unit);
    if (unit == "web.service") return web;
    *why = "systemd does not have it loaded (LoadState=not-found)";
    return std::nullopt;
  };
  GroupAnalysis ga = analyze_groups(obs, cg, GroupBy::Unit, Rules::builtin(), std::nullopt, &lookup);
  EXPECT_EQ(asked, std::vector<std::string>{"web.service"});
  ASSERT_EQ(ga.groups.size(), 1u);
  const GroupDecision& g = ga.groups[0];
  EXPECT_EQ(g.user_source, UserSource::Unit);
  EXPECT_EQ(g.user, "nobody");
  EXPECT_TRUE(g.non_root);
  EXPECT_EQ(g.capabilities, std::vector<int>{kNetBind});  // not systemd's CAP_SETUID
  EXPECT_EQ(g.setup_binaries(), std::vector<std::string>{"/usr/lib/systemd/systemd"});
  EXPECT_EQ(drops_text(g), "drops 2 of 3 in its bounding set");
  nlohmann::json j = groups_to_json(ga)["units"][0];
  EXPECT_EQ(j["user_source"], "unit");
  EXPECT_EQ(j["systemd"]["AmbientCapabilities"], "CAP_NET_BIND_SERVICE");
  EXPECT_EQ(j["unit_settings"]["User"], "nobody");
  std::ostringstream out;
  print_systemd_dropins(out, ga);
  EXPECT_NE(out.str().find("# web.service (User=nobody): needs cap_net_bind_service; drops 2 of 3 in its bounding "
                           "set\n"),
            std::string::npos)
      << out.str();

  // Root by its unit, though its checks ran as nobody: no ambient line.
  web.user = "";
  ga = analyze_groups(obs, cg, GroupBy::Unit, Rules::builtin(), std::nullopt, &lookup);
  ASSERT_EQ(ga.groups.size(), 1u);
  EXPECT_FALSE(ga.groups[0].non_root);
  EXPECT_EQ(groups_to_json(ga)["units"][0]["systemd"]["AmbientCapabilities"], nullptr);
  out.str("");
  print_systemd_dropins(out, ga);
  EXPECT_EQ(out.str().find("AmbientCapabilities"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("changes user itself"), std::string::npos) << out.str();
  // DynamicUser=yes: never root.
  web.dynamic_user = true;
  ga = analyze_groups(obs, cg, GroupBy::Unit, Rules::builtin(), std::nullopt, &lookup);
  EXPECT_TRUE(ga.groups[0].non_root);

  // systemd does not know it: the checks' uid, and the output says where it came from.
  UnitLookup unknown = [](const std::string&, std::string* why) -> std::optional<UnitSettings> {
    *why = "systemd is not the init system here";
    return std::nullopt;
  };
  ga = analyze_groups(obs, cg, GroupBy::Unit, Rules::builtin(), std::nullopt, &unknown);
  ASSERT_EQ(ga.groups.size(), 1u);
  EXPECT_EQ(ga.groups[0].user_source, UserSource::Checks);
  EXPECT_EQ(groups_to_json(ga)["units"][0]["user_source"], "checks");
  out.str("");
  print_systemd_dropins(out, ga);
  EXPECT_NE(out.str().find("from the uid its checks ran as"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("systemd is not the init system here"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("AmbientCapabilities=CAP_NET_BIND_SERVICE\n"), std::string::npos) << out.str();
}

// PID 1 is init.scope's own workload, not a set-up; a scope takes no
// drop-in, so its settings are shown commented.
TEST(Groups, ScopeKeepsSystemdAndGetsNoActiveDropIn) {
  CgroupRow init;
  init.id = 30;
  init.path = "/init.scope";
  init.unit = "init.scope";
  std::vector<Observation> obs = {binary(5, "/usr/lib/systemd/systemd", {check(kSetuid, 30, 0, ~uint64_t{0} >> 23)})};
  GroupAnalysis ga = analyze_groups(obs, {init}, GroupBy::Unit, Rules::builtin());
  ASSERT_EQ(ga.groups.size(), 1u);
  EXPECT_EQ(ga.groups[0].binaries(), std::vector<std::string>{"/usr/lib/systemd/systemd"});
  EXPECT_TRUE(ga.groups[0].setup_binaries().empty());
  std::ostringstream out;
  print_systemd_dropins(out, ga);
  EXPECT_NE(out.str().find("#[Service]\n#CapabilityBoundingSet=\n"), std::string::npos) << out.str();
  EXPECT_EQ(out.str().find("\n[Service]"), std::string::npos) << out.str();
}

TEST(Groups, PerContainerWithoutTheRuntimesSetUp) {
  auto obs = observations();
  auto cg = cgroups();
  GroupAnalysis ga = analyze_groups(obs, cg, GroupBy::Container, Rules::builtin());
  ASSERT_EQ(ga.groups.size(), 1u);
  const GroupDecision& g = ga.groups[0];
  EXPECT_EQ(g.capabilities, std::vector<int>{kNetRaw});
  EXPECT_EQ(g.binaries(), std::vector<std::string>{"/app"});
  EXPECT_EQ(g.setup_binaries(), std::vector<std::string>{"/usr/sbin/runc"});
  EXPECT_EQ(drops_text(g), "drops 2 of 3 in its bounding set");
  nlohmann::json c = groups_to_json(ga)["containers"][0];
  EXPECT_EQ(c["id"], kId);
  EXPECT_EQ(c["name"], "web");
  EXPECT_EQ(c["kubernetes"]["capabilities"]["drop"], nlohmann::json::array({"ALL"}));
  EXPECT_EQ(c["kubernetes"]["capabilities"]["add"], nlohmann::json::array({"NET_RAW"}));
  EXPECT_EQ(c["docker"], nlohmann::json::array({"--cap-drop=ALL", "--cap-add=NET_RAW"}));
  // Non-root under Docker or Kubernetes: the flags are not enough.
  EXPECT_NE(c["notes"].dump().find("file capabilities"), std::string::npos) << c.dump(2);
  EXPECT_NE(c["notes"].dump().find("overlayfs"), std::string::npos) << c.dump(2);
  std::ostringstream k8s;
  print_kubernetes(k8s, ga);
  EXPECT_NE(k8s.str().find("securityContext:\n  capabilities:\n    drop: [\"ALL\"]\n    add: [\"NET_RAW\"]\n"),
            std::string::npos)
      << k8s.str();
  // By name, by id prefix; not by a prefix too short to mean one.
  EXPECT_EQ(analyze_groups(obs, cg, GroupBy::Container, Rules::builtin(), "web").groups.size(), 1u);
  EXPECT_EQ(analyze_groups(obs, cg, GroupBy::Container, Rules::builtin(), kId.substr(0, 6)).groups.size(), 1u);
  EXPECT_EQ(analyze_groups(obs, cg, GroupBy::Container, Rules::builtin(), "96c").groups.size(), 0u);
  auto in = observations_in(obs, cg, GroupBy::Container, "web");
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(in[0].binary.key.path, "/app");
}

}  // namespace
}  // namespace capaudit
