// Per-container recommendations with real podman containers (runc, a local
// image, private podman state; recipe in docs/containers.md): each container
// is named from its cgroup, a --rm one after it is gone; the runtime's own
// set-up is kept apart; and each recommendation is applied (the container
// re-run with --cap-drop=ALL and the recommended --cap-add) and must still
// work, while dropping any one recommended capability makes it fail.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "e2e_util.h"

namespace capaudit::e2e {
namespace {

namespace fs = std::filesystem;

constexpr const char* kImage = "localhost/capaudit-e2e:1";

bool on_path(const std::string& name) {
  return run({"sh", "-c", "command -v " + name}).exit_code == 0;
}

class Containers : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!can_run(&why) || !on_path("podman") || !on_path("runc") || !on_path("cc")) {
      if (why.empty()) why = "podman, runc and cc are needed (Debian packages podman runc gcc)";
      if (required()) FAIL() << "e2e required but: " << why;
      GTEST_SKIP() << why;
    }
    // The image: the workload, linked statically, and an empty /tmp.
    const std::string rootfs = dir_.file("rootfs");
    fs::create_directories(rootfs + "/tmp");
    fs::permissions(rootfs + "/tmp", fs::perms::all | fs::perms::sticky_bit);
    ProcessResult cc = run({"cc", "-static", "-O1", "-o", rootfs + "/wl",
                            std::string(CAPAUDIT_SOURCE_DIR) + "/tests/e2e/containers/ctr_workload.c"});
    ASSERT_EQ(cc.exit_code, 0) << cc.err;
    ProcessResult imp =
        run({"sh", "-c", "tar -C '" + rootfs + "' -c . | " + podman_prefix() + " import - " + kImage});
    ASSERT_EQ(imp.exit_code, 0) << imp.err;
  }

  void TearDown() override {
    run(podman({"rm", "-a", "-f", "-t", "0"}));
    run(podman({"system", "reset", "-f"}));
    // podman's cgroupfs manager leaves its parent behind, empty.
    for (const char* h : {"unified", "systemd", "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio",
                          "pids"})
      rmdir((std::string("/sys/fs/cgroup/") + h + "/libpod_parent").c_str());
  }

  std::string podman_prefix() const {
    return "podman --root '" + dir_.file("root") + "' --runroot '" + dir_.file("runroot") + "' --tmpdir '" +
           dir_.file("tmp") + "'";
  }

  std::vector<std::string> podman(std::vector<std::string> args) const {
    std::vector<std::string> argv = {"podman", "--root", dir_.file("root"), "--runroot", dir_.file("runroot"),
                                     "--tmpdir", dir_.file("tmp")};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  // podman run with this machine's limits (docs/containers.md): runc, no
  // network, the ulimits the bounding set allows.
  ProcessResult run_container(const std::string& name, std::vector<std::string> opts, const std::string& action) {
    rlimit nofile{};
    getrlimit(RLIMIT_NOFILE, &nofile);
    const std::string n = std::to_string(nofile.rlim_max);
    std::vector<std::string> argv = podman({"run", "--name", name, "--runtime", "runc", "--network", "none",
                                            "--ulimit", "nofile=" + n + ":" + n, "--ulimit", "nproc=32768:32768"});
    argv.insert(argv.end(), opts.begin(), opts.end());
    argv.push_back(kImage);
    argv.push_back("/wl");
    argv.push_back(action);
    return run(argv);
  }

  TempDir dir_;
};

const nlohmann::json* by_name(const nlohmann::json& j, const std::string& name) {
  for (const auto& c : j["containers"])
    if (c["name"] == name) return &c;
  return nullptr;
}

std::vector<std::string> strings(const nlohmann::json& a) {
  std::vector<std::string> out;
  for (const auto& s : a) out.push_back(s.get<std::string>());
  return out;
}

TEST_F(Containers, NamedAndRecommendedPerContainerAndTheAdviceWorks) {
  const std::string db = dir_.file("capaudit.db");
  Daemon d(db);
  ASSERT_TRUE(d.wait_ready()) << d.log();

  // Holding Debian's 11 default capabilities, using two.
  ProcessResult r = run_container("capaudit-more", {}, "chownmod");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Short-lived, removed as it ends: its cgroup and state are gone by the drain.
  r = run_container("capaudit-short", {"--rm"}, "chownmod");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Non-root with an added capability (ambient under podman).
  r = run_container("capaudit-nonroot", {"--user", "65534", "--cap-add=NET_RAW"}, "raw");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_container("capaudit-none", {}, "none");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_NE(run(podman({"container", "exists", "capaudit-short"})).exit_code, 0) << "--rm left it behind";
  ASSERT_TRUE(d.flush()) << d.log();

  ProcessResult rec = run({capaudit_bin(), "recommend", "--db", db, "--by", "container", "--format", "json"});
  ASSERT_EQ(rec.exit_code, 0) << rec.err;
  nlohmann::json j = nlohmann::json::parse(rec.out);
  ASSERT_TRUE(j.contains("containers")) << rec.out;

  struct Expect {
    std::string name;
    std::vector<std::string> opts;  // what it ran with, besides the capabilities
    std::string action;
    std::vector<std::string> caps;
  };
  const std::vector<Expect> expect = {
      {"capaudit-more", {}, "chownmod", {"cap_chown", "cap_fowner"}},
      {"capaudit-short", {}, "chownmod", {"cap_chown", "cap_fowner"}},
      {"capaudit-nonroot", {"--user", "65534"}, "raw", {"cap_net_raw"}},
      {"capaudit-none", {}, "none", {}},
  };
  for (const Expect& e : expect) {
    SCOPED_TRACE(e.name);
    const nlohmann::json* c = by_name(j, e.name);
    ASSERT_TRUE(c) << "not named: " << rec.out;
    EXPECT_EQ(strings((*c)["capabilities"]), e.caps) << c->dump(2);
    EXPECT_EQ((*c)["image"], kImage);
    EXPECT_EQ((*c)["runtime"], "podman");
    EXPECT_EQ((*c)["id"].get<std::string>().size(), 64u);
    EXPECT_EQ(strings((*c)["binaries"]), std::vector<std::string>{"/wl"}) << "the runtime's set-up counted as the workload's";
    // runc's init made checks of its own in the container's cgroup, apart.
    auto setup = strings((*c)["runtime_setup"]["binaries"]);
    EXPECT_TRUE(std::any_of(setup.begin(), setup.end(), [](const std::string& b) { return b.find("runc") != std::string::npos; }))
        << c->dump(2);
    EXPECT_EQ((*c)["kubernetes"]["capabilities"]["drop"], nlohmann::json::array({"ALL"}));
    std::vector<std::string> add;
    for (const auto& cap : e.caps) {
      std::string up;
      for (char ch : cap.substr(4)) up += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      add.push_back(up);
    }
    EXPECT_EQ(strings((*c)["kubernetes"]["capabilities"]["add"]), add);
    std::vector<std::string> flags = strings((*c)["docker"]);
    ASSERT_FALSE(flags.empty());
    EXPECT_EQ(flags.front(), "--cap-drop=ALL");
    if (e.name == "capaudit-more") {
      EXPECT_EQ((*c)["drops"], "drops 9 of 11 in its bounding set") << c->dump(2);
    }
    if (e.name == "capaudit-nonroot") {
      EXPECT_EQ((*c)["user"], 65534);
      EXPECT_NE((*c)["notes"].dump().find("file capabilities"), std::string::npos) << c->dump(2);
    }

    // The closed loop: the advice as given works ...
    std::vector<std::string> opts = e.opts;
    opts.insert(opts.end(), flags.begin(), flags.end());
    opts.push_back("--rm");
    ProcessResult again = run_container(e.name + "-applied", opts, e.action);
    EXPECT_EQ(again.exit_code, 0) << "fails with " << testing::PrintToString(flags) << ": " << again.err;
    EXPECT_EQ(again.out, e.action + " ok\n");
    // ... and every capability in it is needed.
    for (size_t i = 1; i < flags.size(); i++) {
      std::vector<std::string> fewer = e.opts;
      for (size_t k = 0; k < flags.size(); k++)
        if (k != i) fewer.push_back(flags[k]);
      fewer.push_back("--rm");
      EXPECT_NE(run_container(e.name + "-fewer", fewer, e.action).exit_code, 0) << "works without " << flags[i];
    }
  }

  // The formats each ecosystem takes, from the same decisions.
  ProcessResult k8s = run({capaudit_bin(), "recommend", "--db", db, "--container", "capaudit-more", "--format",
                           "kubernetes"});
  ASSERT_EQ(k8s.exit_code, 0) << k8s.err;
  EXPECT_NE(k8s.out.find("securityContext:\n  capabilities:\n    drop: [\"ALL\"]\n    add: [\"CHOWN\", \"FOWNER\"]\n"),
            std::string::npos)
      << k8s.out;
  EXPECT_EQ(k8s.out.find("capaudit-short"), std::string::npos) << "--container named one, printed others";
  ProcessResult docker = run({capaudit_bin(), "recommend", "--db", db, "--container", "capaudit-none", "--format",
                              "docker"});
  ASSERT_EQ(docker.exit_code, 0) << docker.err;
  EXPECT_NE(docker.out.find("\n--cap-drop=ALL\n"), std::string::npos) << docker.out;
  // Per binary within one container: the workload only.
  ProcessResult per_binary =
      run({capaudit_bin(), "report", "--db", db, "--container", "capaudit-short", "--json"});
  ASSERT_EQ(per_binary.exit_code, 0) << per_binary.err;
  nlohmann::json pb = nlohmann::json::parse(per_binary.out);
  ASSERT_EQ(pb["binaries"].size(), 1u) << per_binary.out;
  EXPECT_EQ(pb["binaries"][0]["path"], "/wl");
  EXPECT_EQ(d.stop(), 0) << d.log();
}

}  // namespace
}  // namespace capaudit::e2e
