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
