// Plain runs decided from what the kernel can tell (issue 11): the syscall's
// request at the check and self-inspection, with real programs. Each
// expected set is checked by the closed loop: the command works holding
// exactly it, and fails (or loses its effect) with any one removed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "e2e_util.h"

namespace capaudit::e2e {
namespace {

using Strings = std::vector<std::string>;

// argv prefix that runs a command as nobody holding exactly `caps`.
Strings as_nobody_with(const Strings& caps) {
  std::string list;
  for (auto& c : caps) list += (list.empty() ? "" : ",") + std::string("+") + c.substr(4);
  Strings argv = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
  if (!caps.empty()) {
    argv.push_back("--inh-caps=" + list);
    argv.push_back("--ambient-caps=" + list);
  }
  argv.push_back("--");
  return argv;
}

Strings concat(Strings a, const Strings& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A network namespace of the initial user namespace, so /proc/sys/net in it
// is what net_ctl_permissions guards, and writing there harms nothing.
class NetNs {
 public:
  NetNs() : name_("capaudit-evidence-" + std::to_string(getpid())) {
    ok_ = run({"ip", "netns", "add", name_}).exit_code == 0;
  }
  ~NetNs() {
    if (ok_) run({"ip", "netns", "del", name_});
  }
  bool ok() const { return ok_; }
  Strings exec(const Strings& argv) const { return concat({"ip", "netns", "exec", name_}, argv); }

 private:
  std::string name_;
  bool ok_ = false;
};

ProfileRun profile(const TempDir& dir, const Strings& prefix, const Strings& command) {
  std::string out = dir.file("profile.json");
  Strings argv = concat(prefix, {capaudit_bin(), "profile", "--user", "nobody", "--json", "--output", out, "--"});
  ProfileRun p;
  p.run = run(concat(argv, command));
  p.report = nlohmann::json::parse(read_file(out), nullptr, false);
  return p;
}

const nlohmann::json& entry(const ProfileRun& p, const std::string& path) {
  static const nlohmann::json none;
  const nlohmann::json* b = find_binary(p.report, real_path(path));
  EXPECT_TRUE(b) << "no entry for " << path << " in " << p.report.dump(2);
  return b ? *b : none;
}

Strings caps_or_none(const nlohmann::json& b) { return b.is_object() ? caps_of(b) : Strings{"(none)"}; }

TEST(Evidence, SetuidToOwnUidIsNotRequiredInAPlainRun) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string wl = workload("setuid_self");
  ProfileRun p = profile(dir, {}, {wl});
  ASSERT_EQ(p.run.exit_code, 0) << p.run.err;
  const nlohmann::json& b = entry(p, wl);
  EXPECT_EQ(caps_or_none(b), Strings{}) << b.dump(2);
  EXPECT_NE(b.dump().find("setid_same_id"), std::string::npos) << b.dump(2);
  EXPECT_EQ(run(concat(as_nobody_with({}), {wl})).exit_code, 0) << "setuid(getuid()) needs nothing";
}

TEST(Evidence, SetuidToAnotherUidIsRequiredInAPlainRun) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string wl = workload("setuid_other");
  ProfileRun p = profile(dir, {}, {wl});
  ASSERT_EQ(p.run.exit_code, 0) << p.run.err;
  const nlohmann::json& b = entry(p, wl);
  EXPECT_EQ(caps_or_none(b), Strings{"cap_setuid"}) << b.dump(2);
  EXPECT_EQ(run(concat(as_nobody_with({"cap_setuid"}), {wl})).exit_code, 0);
  EXPECT_NE(run(concat(as_nobody_with({}), {wl})).exit_code, 0);
}

TEST(Evidence, WritingANetSysctlNeedsNetAdminReadingDoesNot) {
  CAPAUDIT_REQUIRE_E2E();
  NetNs ns;
  ASSERT_TRUE(ns.ok()) << "ip netns add failed";
  TempDir dir;
  const std::string knob = "/proc/sys/net/ipv4/tcp_keepalive_time";
  const Strings write = {"/bin/sh", "-c", "echo 7201 > " + knob};
  ProfileRun w = profile(dir, ns.exec({}), write);
  ASSERT_EQ(w.run.exit_code, 0) << w.run.err;
  const nlohmann::json& sh = entry(w, "/bin/sh");
  EXPECT_EQ(caps_or_none(sh), Strings{"cap_net_admin"}) << sh.dump(2);
  EXPECT_NE(sh.dump().find("net_sysctl_write"), std::string::npos) << sh.dump(2);
  EXPECT_EQ(run(ns.exec(concat(as_nobody_with({"cap_net_admin"}), write))).exit_code, 0);
  EXPECT_NE(run(ns.exec(concat(as_nobody_with({}), write))).exit_code, 0) << "the write works without it";
  EXPECT_EQ(run(ns.exec({"cat", knob})).out, "7201\n");

  ProfileRun r = profile(dir, ns.exec({}), {"/bin/cat", knob});
  ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
  const nlohmann::json& cat = entry(r, "/bin/cat");
  EXPECT_EQ(caps_or_none(cat), Strings{}) << cat.dump(2);
  EXPECT_EQ(run(ns.exec(concat(as_nobody_with({}), {"/bin/cat", knob}))).exit_code, 0);
}

// chmod exits 0 whether or not the setgid bit survives: the command checks
// the effect itself (and resets the mode first, which needs only cap_fowner).
TEST(Evidence, ChmodSetgidOfAnotherGroupsFileNeedsFsetidAndKeepsTheBit) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string target = dir.file("theirs");
  std::ofstream(target) << "x\n";
  ASSERT_EQ(chown(target.c_str(), 1, 1), 0);  // daemon:daemon: nobody is neither
  const Strings cmd = {"/bin/sh", "-c", "chmod 0644 " + target + " && chmod g+s " + target + " && test -g " + target};
  ProfileRun p = profile(dir, {}, cmd);
  ASSERT_EQ(p.run.exit_code, 0) << p.run.err;
  struct stat st {};
  ASSERT_EQ(stat(target.c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_ISGID) << "the profiled run kept the bit";
  const nlohmann::json& chmod_bin = entry(p, "/bin/chmod");
  EXPECT_EQ(caps_or_none(chmod_bin), (Strings{"cap_fowner", "cap_fsetid"})) << chmod_bin.dump(2);
  EXPECT_NE(chmod_bin.dump().find("fsetid_setgid_asked"), std::string::npos) << chmod_bin.dump(2);

  EXPECT_EQ(run(concat(as_nobody_with({"cap_fowner", "cap_fsetid"}), cmd)).exit_code, 0);
  ASSERT_EQ(stat(target.c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_ISGID);
  EXPECT_NE(run(concat(as_nobody_with({"cap_fowner"}), cmd)).exit_code, 0) << "the bit survived without cap_fsetid";
  ASSERT_EQ(stat(target.c_str(), &st), 0);
  EXPECT_FALSE(st.st_mode & S_ISGID);
  EXPECT_NE(run(concat(as_nobody_with({"cap_fsetid"}), cmd)).exit_code, 0) << "chmod worked without cap_fowner";

  // Without the setgid bit asked, cap_fsetid is a probe.
  const Strings plain = {"/bin/chmod", "0640", target};
  ProfileRun q = profile(dir, {}, plain);
  ASSERT_EQ(q.run.exit_code, 0) << q.run.err;
  EXPECT_EQ(caps_or_none(entry(q, "/bin/chmod")), Strings{"cap_fowner"}) << entry(q, "/bin/chmod").dump(2);
}

TEST(Evidence, CapshPrintInspectsItsOwnCapabilities) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  ProfileRun p = profile(dir, {}, {"/usr/sbin/capsh", "--print"});
  ASSERT_EQ(p.run.exit_code, 0) << p.run.err;
  const nlohmann::json& b = entry(p, "/usr/sbin/capsh");
  ASSERT_TRUE(b.contains("self_inspections")) << b.dump(2);
  EXPECT_GT(b["self_inspections"].get<uint64_t>(), 0u) << b.dump(2);
  EXPECT_NE(b["warnings"].dump().find("which capabilities it holds"), std::string::npos) << b.dump(2);
}

// `ip netns exec` remounts /sys: no tracefs, so the syscall tracepoints
// cannot attach; profile counts the same with tp_btf/sys_enter.
TEST(Evidence, SelfInspectionIsCountedInsideIpNetnsExec) {
  CAPAUDIT_REQUIRE_E2E();
  NetNs ns;
  ASSERT_TRUE(ns.ok()) << "ip netns add failed";
  TempDir dir;
  ProfileRun p = profile(dir, ns.exec({}), {"/usr/sbin/capsh", "--print"});
  ASSERT_EQ(p.run.exit_code, 0) << p.run.err;
  EXPECT_EQ(p.run.err.find("self-inspection not counted"), std::string::npos) << p.run.err;
  const nlohmann::json& b = entry(p, "/usr/sbin/capsh");
  ASSERT_TRUE(b.contains("self_inspections")) << b.dump(2);
  EXPECT_GT(b["self_inspections"].get<uint64_t>(), 0u) << b.dump(2);
}

// Every way in counts the same calls: 100 capget of itself and 100
// PR_CAPBSET_READ, and none of the same made through the ia32 entry (another
// ABI's numbers), here on the syscall tracepoints and, without tracefs, on
// tp_btf/sys_enter (the guest suite holds fentry on the syscalls to it).
TEST(Evidence, SelfInspectionIsCountedExactlyAndNotThroughIa32) {
  CAPAUDIT_REQUIRE_E2E();
  NetNs ns;
  ASSERT_TRUE(ns.ok()) << "ip netns add failed";
  TempDir dir;
  const std::string self_inspect = workload("self_inspect");
  for (const Strings& prefix : {Strings{}, ns.exec({})}) {
    ProfileRun p = profile(dir, prefix, {self_inspect, "100"});
    ASSERT_EQ(p.run.exit_code, 0) << p.run.err;
    EXPECT_EQ(p.run.out, "ia32 200\n") << "the ia32 calls were not made";
    const nlohmann::json& b = entry(p, self_inspect);
    ASSERT_TRUE(b.contains("self_inspections")) << b.dump(2);
    EXPECT_EQ(b["self_inspections"], 200) << b.dump(2);
  }
}

// capset keeping a capability in permitted asks no capability (cap_capset:
// the new permitted set must be a subset of the old), yet fails without it:
// the call's arguments are the evidence, in a plain run, with or without tracefs.
TEST(Evidence, CapsetKeepingAHeldCapabilityRequiresIt) {
  CAPAUDIT_REQUIRE_E2E();
  NetNs ns;
  ASSERT_TRUE(ns.ok()) << "ip netns add failed";
  TempDir dir;
  const Strings keep = {"/usr/sbin/capsh", "--caps=cap_net_raw+eip", "--", "-c", "true"};
  for (const Strings& prefix : {Strings{}, ns.exec({})}) {
    ProfileRun p = profile(dir, prefix, keep);
    ASSERT_EQ(p.run.exit_code, 0) << p.run.err;
    const nlohmann::json& b = entry(p, "/usr/sbin/capsh");
    EXPECT_EQ(caps_or_none(b), Strings{"cap_net_raw"}) << b.dump(2);
    EXPECT_NE(b["warnings"].dump().find("capset(2) to keep cap_net_raw"), std::string::npos) << b.dump(2);
  }
  EXPECT_EQ(run(concat(as_nobody_with({"cap_net_raw"}), keep)).exit_code, 0);
  EXPECT_NE(run(concat(as_nobody_with({}), keep)).exit_code, 0) << "capset raised net_raw without holding it";
  // ping keeps cap_net_admin permitted only (never effective) and drops it:
  // not counted. A copy has no file capabilities, so it holds everything.
  const std::string ping = dir.file("ping");
  std::filesystem::copy_file("/usr/bin/ping", ping);
  ASSERT_EQ(chmod(ping.c_str(), 0755), 0);
  ProfileRun pr = profile(dir, {}, {ping, "-c", "1", "-W", "2", "127.0.0.1"});
  ASSERT_EQ(pr.run.exit_code, 0) << pr.run.err;
  EXPECT_EQ(caps_or_none(entry(pr, ping)), Strings{"cap_net_raw"});
}

// tcpdump links libcap, whose constructor reads a few bounding-set bits in
// every program: that alone is no self-inspection. ip (iproute2's drop_cap)
// reads its own sets with cap_get_proc and drops them all unless
// cap_net_admin is inheritable: a real one.
TEST(Evidence, LibcapStartupProbeIsNoSelfInspectionButIpsDropCapIs) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  ProfileRun p = profile(dir, {}, {"/usr/bin/tcpdump", "--version"});
  ASSERT_EQ(p.run.exit_code, 0) << p.run.err;
  const nlohmann::json& b = entry(p, "/usr/bin/tcpdump");
  ASSERT_TRUE(b.contains("self_inspections")) << b.dump(2);
  EXPECT_EQ(b["self_inspections"], 0) << b.dump(2);

  ProfileRun q = profile(dir, {}, {"/usr/sbin/ip", "-o", "link", "show", "lo"});
  ASSERT_EQ(q.run.exit_code, 0) << q.run.err;
  const nlohmann::json& ip = entry(q, "/usr/sbin/ip");
  ASSERT_TRUE(ip.contains("self_inspections")) << ip.dump(2);
  EXPECT_EQ(ip["self_inspections"], 1) << ip.dump(2);
}

}  // namespace
}  // namespace capaudit::e2e
