// Who a cgroup path belongs to: the layouts of systemd, podman, docker,
// containerd and CRI-O under both cgroup drivers (docs/containers.md).
#include "cgroup_identity.h"
#include "cgroup_names.h"
#include "store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace capaudit {
namespace {

const std::string kId = "96c39abdb8f55ed3a328adf5161a1f5b206bba3237dbfd9e127fabc6c51c1161";

TEST(CgroupIdentity, SystemdServiceAndScope) {
  auto s = parse_cgroup_path("/system.slice/nginx.service");
  EXPECT_EQ(s.unit, "nginx.service");
  EXPECT_EQ(s.container_id, "");
  EXPECT_EQ(parse_cgroup_path("/user.slice/user-1000.slice/session-2.scope").unit, "session-2.scope");
  // The deepest unit: a user's service under their manager's.
  EXPECT_EQ(parse_cgroup_path("/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service").unit,
            "foo.service");
  // A systemd booted in a container (nspawn's payload): its own units.
  EXPECT_EQ(parse_cgroup_path("/machine.slice/systemd-nspawn@t.service/payload/system.slice/web.service").unit,
            "web.service");
  EXPECT_EQ(parse_cgroup_path("/").unit, "");
  EXPECT_EQ(parse_cgroup_path("/system.slice").unit, "");
}

TEST(CgroupIdentity, Podman) {
  auto c = parse_cgroup_path("/libpod_parent/libpod-" + kId);  // cgroupfs manager
  EXPECT_EQ(c.container_id, kId);
  EXPECT_EQ(c.runtime, "podman");
  EXPECT_FALSE(c.monitor);
  EXPECT_EQ(c.unit, "");
  auto s = parse_cgroup_path("/machine.slice/libpod-" + kId + ".scope");  // systemd manager
  EXPECT_EQ(s.container_id, kId);
  EXPECT_EQ(s.unit, "");
  auto m = parse_cgroup_path("/machine.slice/libpod-conmon-" + kId + ".scope");
  EXPECT_EQ(m.container_id, kId);
  EXPECT_TRUE(m.monitor);
  // Rootless: inside the user's manager, the container is not the manager's unit.
  auto r = parse_cgroup_path("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + kId + ".scope");
  EXPECT_EQ(r.container_id, kId);
  EXPECT_EQ(r.unit, "");
  // systemd inside the container: its services are units of that container.
  auto n = parse_cgroup_path("/machine.slice/libpod-" + kId + ".scope/container/system.slice/web.service");
  EXPECT_EQ(n.container_id, kId);
  EXPECT_EQ(n.unit, "web.service");
}

TEST(CgroupIdentity, DockerContainerdCrio) {
  auto d = parse_cgroup_path("/system.slice/docker-" + kId + ".scope");
  EXPECT_EQ(d.container_id, kId);
  EXPECT_EQ(d.runtime, "docker");
  EXPECT_EQ(d.unit, "");
  EXPECT_EQ(parse_cgroup_path("/docker/" + kId).runtime, "docker");  // cgroupfs driver
  EXPECT_EQ(parse_cgroup_path("/system.slice/docker.service").unit, "docker.service");
  EXPECT_EQ(parse_cgroup_path("/system.slice/docker.service").container_id, "");

  auto k = parse_cgroup_path(
      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f3c5b7e_1d2a_4c3b_9e8f_0123456789ab.slice/"
      "cri-containerd-" + kId + ".scope");
  EXPECT_EQ(k.container_id, kId);
  EXPECT_EQ(k.runtime, "containerd");
  EXPECT_EQ(k.pod_uid, "0f3c5b7e-1d2a-4c3b-9e8f-0123456789ab");
  EXPECT_EQ(k.qos, "burstable");

  auto g = parse_cgroup_path("/kubepods.slice/kubepods-pod0f3c5b7e_1d2a.slice/crio-" + kId + ".scope");
  EXPECT_EQ(g.runtime, "cri-o");
  EXPECT_EQ(g.qos, "guaranteed");
  EXPECT_EQ(g.pod_uid, "0f3c5b7e-1d2a");
  EXPECT_TRUE(parse_cgroup_path("/kubepods.slice/kubepods-pod1.slice/crio-conmon-" + kId + ".scope").monitor);

  auto f = parse_cgroup_path("/kubepods/besteffort/pod0f3c5b7e-1d2a/" + kId);  // cgroupfs driver
  EXPECT_EQ(f.container_id, kId);
  EXPECT_EQ(f.qos, "besteffort");
  EXPECT_EQ(f.pod_uid, "0f3c5b7e-1d2a");
  EXPECT_EQ(f.runtime, "kubernetes");
}

TEST(CgroupIdentity, NotContainers) {
  EXPECT_EQ(parse_cgroup_path("/libpod_parent/libpod-1234").container_id, "");  // not a full id
  EXPECT_EQ(parse_cgroup_path("/system.slice/docker-" + kId).container_id, "");  // no .scope
  EXPECT_EQ(parse_cgroup_path("/system.slice/docker-" + kId).unit, "");
  EXPECT_EQ(parse_cgroup_path("/libpod_parent/conmon").container_id, "");
  EXPECT_FALSE(is_container_id(std::string(64, 'G')));
}

// A podman container's state files, as runc and containers/storage lay
// them out: named from them, bounding set and user included.
TEST(CgroupNames, PodmanStateFiles) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("capaudit-cg-" + std::to_string(getpid()));
  fs::path bundle = dir / "storage/overlay-containers" / kId / "userdata";
  fs::create_directories(bundle);
  fs::create_directories(dir / "runc" / kId);
  std::ofstream(dir / "runc" / kId / "state.json")
      << R"({"id":")" << kId << R"(","config":{"labels":["io.container.manager=libpod","bundle=)" << bundle.string()
      << R"("]}})";
  std::ofstream(bundle / "config.json")
      << R"({"process":{"user":{"uid":65534,"gid":65534},"capabilities":{"bounding":["CAP_CHOWN","CAP_NET_RAW"]}}})";
  std::ofstream(dir / "storage/overlay-containers/containers.json")
      << R"([{"id":")" << kId << R"(","names":["web"],"metadata":"{\"image-name\":\"localhost/img:1\"}"}])";
  RuntimeStateDirs dirs;
  dirs.oci_state_roots = {(dir / "runc").string()};
  CgroupCatalog cat("", dirs);
  cat.learn(4242, "/libpod_parent/libpod-" + kId, 100);
  const CgroupRow* r = cat.lookup(4242, 100);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->container_name, "web");
  EXPECT_EQ(r->image, "localhost/img:1");
  EXPECT_EQ(r->bounding, (uint64_t{1} << 0) | (uint64_t{1} << 13));
  EXPECT_EQ(r->user, 65534u);
  EXPECT_EQ(cat.pending(), 0u);
  // Made before its state files exist: named on a later try.
  const std::string other = std::string(63, 'a') + "b";
  cat.learn(4243, "/libpod_parent/libpod-" + other, 100);
  EXPECT_EQ(cat.pending(), 1u);
  EXPECT_EQ(cat.lookup(4243, 100)->container_name, "");
  fs::create_directories(dir / "runc" / other);
  fs::copy_file(dir / "runc" / kId / "state.json", dir / "runc" / other / "state.json");
  cat.name_pending(101);
  EXPECT_EQ(cat.pending(), 0u);
  EXPECT_EQ(cat.lookup(4243, 101)->user, 65534u);
  fs::remove_all(dir);
}

TEST(CgroupNames, StoreKeepsWhatALaterWriteLacks) {
  std::string err;
  auto s = Store::open(":memory:", &err);
  ASSERT_TRUE(s) << err;
  CgroupRow r;
  r.id = 7;
  r.path = "/libpod_parent/libpod-" + kId;
  r.container_id = kId;
  r.runtime = "podman";
  r.container_name = "web";
  r.bounding = 3;
  r.first_seen = r.last_seen = 10;
  ASSERT_TRUE(s->upsert_cgroup(r));
  r.container_name = "";
  r.bounding.reset();
  r.last_seen = 20;
  ASSERT_TRUE(s->upsert_cgroup(r));
  auto rows = s->cgroups();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].container_name, "web");
  EXPECT_EQ(rows[0].bounding, 3u);
  EXPECT_EQ(rows[0].last_seen, 20);
  EXPECT_EQ(rows[0].first_seen, 10);
}

}  // namespace
}  // namespace capaudit
