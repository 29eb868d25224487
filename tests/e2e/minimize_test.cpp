// capaudit profile --minimize end to end: a trace cannot tell a capability a
// program uses only when it has it from one it needs; runs without each
// capability can.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "e2e_util.h"

namespace capaudit::e2e {
namespace {

// profile --minimize as nobody: the shared harness with the flag added.
ProfileRun minimize(const TempDir& dir, const std::vector<std::string>& command,
                    const std::vector<std::string>& extra = {}) {
  std::vector<std::string> flags = {"--minimize"};
  flags.insert(flags.end(), extra.begin(), extra.end());
  return profile_as_nobody(dir, command, flags);
}

// The verdict the runs gave one capability, "" when they did not try it.
std::string verdict(const nlohmann::json& b, const std::string& cap) {
  if (!b["verification"].is_object()) return "";
  for (auto& c : b["verification"]["capabilities"])
    if (c["capability"] == cap) return c["verified"];
  return "";
}

// The runs started from a set holding `cap` (every capability granted in the traced run).
bool started_from(const nlohmann::json& b, const std::string& cap) {
  if (!b["verification"].is_object()) return false;
  for (auto& c : b["verification"]["observed"])
    if (c == cap) return true;
  return false;
}

// Every check line of the capability carries the same `verified`.
void expect_check_lines(const nlohmann::json& b, const std::string& cap, const std::string& verified, bool required) {
  bool seen = false;
  for (auto& c : b["checks"]) {
    if (c["capability"] != cap || c["verdict"] != "granted") continue;
    seen = true;
    EXPECT_EQ(c["verified"], verified) << c.dump(2);
    EXPECT_EQ(c["required"], required) << c.dump(2);
  }
  EXPECT_TRUE(seen) << "no granted " << cap << " line in " << b.dump(2);
}

// The runs verified `cap` as the binary's whole need: kept because a run
// without it failed, and the set recommended.
void expect_verified_need(const nlohmann::json& b, const std::string& cap) {
  EXPECT_EQ(b["source"], "verified") << b.dump(2);
  EXPECT_EQ(verdict(b, cap), "needed") << b.dump(2);
  EXPECT_EQ(caps_of(b), std::vector<std::string>{cap}) << b.dump(2);
}

// A root-only file in a directory nobody may search.
std::string secret_file(const TempDir& dir) {
  std::string secret = dir.file("secret");
  std::ofstream(secret) << "root only\n";
  EXPECT_EQ(chmod(secret.c_str(), 0600), 0);
  return secret;
}

// A directory only root may enter, like /root or what mktemp -d makes.
std::string private_dir(const TempDir& dir) {
  std::string p = dir.file("private");
  EXPECT_EQ(mkdir(p.c_str(), 0700), 0);
  EXPECT_EQ(chmod(p.c_str(), 0700), 0);
  return p;
}

std::string copy_file(const std::string& from, const std::string& to, mode_t mode) {
  {
    std::ifstream in(from, std::ios::binary);
    std::ofstream out(to, std::ios::binary);
    out << in.rdbuf();
  }
  EXPECT_EQ(chmod(to.c_str(), mode), 0);
  return to;
}

// The plain run already tells setuid(getuid()) apart (the ids asked for are
// the task's own: docs/rules.md, setid_same_id); minimizing keeps that.
TEST(Minimize, SetuidToOwnUidNeedsNoCapability) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string wl = workload("setuid_self");
  ProfileRun m = minimize(dir, {wl});
  ASSERT_EQ(m.run.exit_code, 0) << m.run.err;
  const nlohmann::json* b = find_binary(m.report, real_path(wl));
  ASSERT_TRUE(b) << m.report.dump(2);
  EXPECT_EQ(caps_of(*b), std::vector<std::string>{}) << b->dump(2);
  EXPECT_TRUE((*b)["setcap"].is_null());
  EXPECT_NE(verdict(*b, "cap_setuid"), "needed") << b->dump(2);
  for (auto& c : (*b)["checks"])
    if (c["capability"] == "cap_setuid") {
      EXPECT_FALSE(c["required"].get<bool>()) << c.dump(2);
    }
}

TEST(Minimize, SetuidToOtherUidKeepsCapSetuid) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string wl = workload("setuid_other");
  ProfileRun m = minimize(dir, {wl});
  ASSERT_EQ(m.run.exit_code, 0) << m.run.err;
  const nlohmann::json* b = find_binary(m.report, real_path(wl));
  ASSERT_TRUE(b) << m.report.dump(2);
  EXPECT_EQ(caps_of(*b), std::vector<std::string>{"cap_setuid"}) << b->dump(2);
  EXPECT_EQ((*b)["setcap"], "cap_setuid+ep");
  EXPECT_EQ(verdict(*b, "cap_setuid"), "needed") << b->dump(2);
  expect_check_lines(*b, "cap_setuid", "needed", true);
}

TEST(Minimize, CapabilityUsedOnlyWhenHeldIsDroppedByExitStatus) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string wl = workload("read_if_possible");
  ProfileRun m = minimize(dir, {wl, secret_file(dir)});
  ASSERT_EQ(m.run.exit_code, 0) << m.run.err;
  EXPECT_EQ(m.run.out, "root only\n");  // the traced run's output is the user's
  const nlohmann::json* b = find_binary(m.report, real_path(wl));
  ASSERT_TRUE(b) << m.report.dump(2);
  EXPECT_TRUE(started_from(*b, "cap_dac_read_search")) << b->dump(2);
  EXPECT_EQ(caps_of(*b), std::vector<std::string>{}) << b->dump(2);
  EXPECT_EQ(verdict(*b, "cap_dac_read_search"), "dropped");
  EXPECT_FALSE((*b)["verification"]["compare_output"].get<bool>());
}

TEST(Minimize, CompareOutputKeepsCapabilityThatChangesOutput) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string wl = workload("read_if_possible");
  ProfileRun m = minimize(dir, {wl, secret_file(dir)}, {"--compare-output"});
  ASSERT_EQ(m.run.exit_code, 0) << m.run.err;
  EXPECT_EQ(m.run.out, "root only\n");  // copied through, once
  const nlohmann::json* b = find_binary(m.report, real_path(wl));
  ASSERT_TRUE(b) << m.report.dump(2);
  EXPECT_EQ(caps_of(*b), std::vector<std::string>{"cap_dac_read_search"}) << b->dump(2);
  EXPECT_EQ(verdict(*b, "cap_dac_read_search"), "needed");
  EXPECT_TRUE((*b)["verification"]["compare_output"].get<bool>());
  expect_check_lines(*b, "cap_dac_read_search", "needed", true);
}

TEST(Minimize, RunBudgetLeavesCapabilitiesUnverified) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string wl = workload("read_if_possible");
  ProfileRun m = minimize(dir, {wl, secret_file(dir)}, {"--max-runs", "1"});
  ASSERT_EQ(m.run.exit_code, 0) << m.run.err;
  const nlohmann::json* b = find_binary(m.report, real_path(wl));
  ASSERT_TRUE(b) << m.report.dump(2);
  EXPECT_EQ((*b)["verification"]["runs"], 1);
  EXPECT_EQ(verdict(*b, "cap_dac_read_search"), "unverified") << b->dump(2);
  // Kept: no run showed otherwise.
  EXPECT_EQ(caps_of(*b), std::vector<std::string>{"cap_dac_read_search"});
  expect_check_lines(*b, "cap_dac_read_search", "unverified", true);
}

TEST(Minimize, CommandThatChangesBetweenRunsIsNotVerified) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  // Succeeds the first time only: the baseline run cannot match.
  std::string state = dir.file("state");
  ASSERT_EQ(mkdir(state.c_str(), 0777), 0);
  ASSERT_EQ(chmod(state.c_str(), 0777), 0);
  std::string flag = state + "/ran";
  std::string wl = workload("setuid_other");
  ProfileRun m = minimize(dir, {"/bin/sh", "-c", "test -e " + flag + " && exit 3; touch " + flag + "; exec " + wl});
  ASSERT_EQ(m.run.exit_code, 0) << m.run.err;
  EXPECT_NE(m.run.err.find("WARNING: nothing verified"), std::string::npos) << m.run.err;
  const nlohmann::json* sh = find_binary(m.report, real_path("/bin/sh"));
  ASSERT_TRUE(sh) << m.report.dump(2);
  EXPECT_EQ((*sh)["source"], "observed");
  EXPECT_FALSE((*sh)["verification"]["baseline_ok"].get<bool>());
  EXPECT_EQ((*sh)["verification"]["runs"], 2);  // the rules' set, then everything granted
}

TEST(Minimize, RecommendPrefersTheVerifiedSet) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string db = dir.file("v.db");
  // self: a capability the plain run keeps and the runs drop.
  std::string self = workload("read_if_possible"), other = workload("setuid_other");
  auto r = run({capaudit_bin(), "profile", "--user", "nobody", "--minimize", "--db", db, "--output",
                dir.file("a.txt"), "--", self, secret_file(dir)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Observed only: cap_setuid stays, unverified.
  r = run({capaudit_bin(), "profile", "--user", "nobody", "--db", db, "--output", dir.file("b.txt"), "--", other});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  auto rec = run({capaudit_bin(), "recommend", "--db", db, "--format", "json"});
  ASSERT_EQ(rec.exit_code, 0) << rec.err;
  auto j = nlohmann::json::parse(rec.out, nullptr, false);
  const nlohmann::json* s = find_binary(j, real_path(self));
  const nlohmann::json* o = find_binary(j, real_path(other));
  ASSERT_TRUE(s && o) << rec.out;
  EXPECT_EQ(caps_of(*s), std::vector<std::string>{}) << s->dump(2);
  EXPECT_EQ((*s)["source"], "verified");
  EXPECT_EQ((*s)["verification"]["runs"], 2);
  EXPECT_EQ(caps_of(*o), std::vector<std::string>{"cap_setuid"});
  EXPECT_EQ((*o)["source"], "observed");

  auto table = run({capaudit_bin(), "recommend", "--db", db, "--binary", real_path(self)});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("source: verified by 2 runs"), std::string::npos) << table.out;

  // report shows what was observed, whatever the runs said.
  auto rep = run({capaudit_bin(), "report", "--db", db, "--binary", real_path(self), "--json"});
  ASSERT_EQ(rep.exit_code, 0) << rep.err;
  auto rj = nlohmann::json::parse(rep.out, nullptr, false);
  ASSERT_TRUE(find_binary(rj, real_path(self))) << rep.out;
  EXPECT_EQ(caps_of(*find_binary(rj, real_path(self))), std::vector<std::string>{"cap_dac_read_search"});
}

TEST(Minimize, VerifiedSetOfOtherFileContentsIsNotUsed) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string db = dir.file("v.db");
  // A copy that is then changed: the verified set no longer describes it.
  std::string copy = dir.file("read_if_possible");
  {
    std::ifstream in(workload("read_if_possible"), std::ios::binary);
    std::ofstream out(copy, std::ios::binary);
    out << in.rdbuf();
  }
  ASSERT_EQ(chmod(copy.c_str(), 0755), 0);
  auto r = run({capaudit_bin(), "profile", "--user", "nobody", "--minimize", "--db", db, "--output",
                dir.file("a.txt"), "--", copy, secret_file(dir)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ofstream(copy, std::ios::app) << "changed";
  auto rec = run({capaudit_bin(), "recommend", "--db", db, "--binary", copy, "--format", "json"});
  ASSERT_EQ(rec.exit_code, 0) << rec.err;
  auto j = nlohmann::json::parse(rec.out, nullptr, false);
  const nlohmann::json* b = find_binary(j, real_path(copy));
  ASSERT_TRUE(b) << rec.out;
  EXPECT_EQ((*b)["source"], "observed");
  EXPECT_EQ(caps_of(*b), std::vector<std::string>{"cap_dac_read_search"});
  EXPECT_NE((*b)["warnings"].dump().find("SHA-256 differs"), std::string::npos) << b->dump(2);
}

// The traced run reaches a binary under a directory only root may enter
// holding every capability, and the path walk is made before its checks
// are counted: the re-runs, holding only the observed set, reach it through
// the descriptor capaudit opened.
TEST(Minimize, ExecutableInADirectoryOnlyRootMayEnter) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string wl = copy_file(workload("setuid_other"), private_dir(dir) + "/setuid_other", 0755);
  ProfileRun m = minimize(dir, {wl});
  ASSERT_EQ(m.run.exit_code, 0) << m.run.err;
  EXPECT_NE(m.run.err.find("every run executes it through a descriptor"), std::string::npos) << m.run.err;
  const nlohmann::json* b = find_binary(m.report, real_path(wl));
  ASSERT_TRUE(b) << m.report.dump(2);
  EXPECT_TRUE((*b)["verification"]["baseline_ok"].get<bool>()) << b->dump(2);
  EXPECT_TRUE(started_from(*b, "cap_setuid")) << b->dump(2);
  expect_verified_need(*b, "cap_setuid");
  EXPECT_EQ((*b)["verification"]["runs"], 2);
}

// A script there: its interpreter is given /dev/fd/N, which stays open
// across the exec, and reads the script through it.
TEST(Minimize, ScriptInADirectoryOnlyRootMayEnter) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string script = private_dir(dir) + "/read.sh";
  std::ofstream(script) << "#!/bin/sh\ncat " << secret_file(dir) << "\n";
  ASSERT_EQ(chmod(script.c_str(), 0755), 0);
  ProfileRun m = minimize(dir, {script});
  ASSERT_EQ(m.run.exit_code, 0) << m.run.err;
  EXPECT_EQ(m.run.out, "root only\n");
  EXPECT_NE(m.run.err.find("the script is given /dev/fd/"), std::string::npos) << m.run.err;
  const nlohmann::json* sh = find_binary(m.report, real_path("/bin/sh"));
  ASSERT_TRUE(sh) << m.report.dump(2);
  EXPECT_TRUE((*sh)["verification"]["baseline_ok"].get<bool>()) << sh->dump(2);
  // cat's read needs it; the shell's own granted checks at generic_permission are
  // requirements to the rules too, so both are credited (the runs hold one set for the tree).
  const nlohmann::json* cat = find_binary(m.report, real_path("/bin/cat"));
  ASSERT_TRUE(cat) << m.report.dump(2);
  expect_verified_need(*cat, "cap_dac_read_search");
}

// The common case: a shell script that runs the real program. The runs hold
// one set for the tree; each binary is credited what its own checks used.
TEST(Minimize, WrapperScriptCreditsTheProgramNotTheShell) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string db = dir.file("v.db");
  std::string wl = workload("raw_socket");
  std::string script = dir.file("start.sh");
  std::ofstream(script) << "#!/bin/sh\n" << wl << "\n";
  ASSERT_EQ(chmod(script.c_str(), 0755), 0);
  ProfileRun m = minimize(dir, {script}, {"--db", db});
  ASSERT_EQ(m.run.exit_code, 0) << m.run.err;
  const nlohmann::json* sh = find_binary(m.report, real_path("/bin/sh"));
  const nlohmann::json* prog = find_binary(m.report, real_path(wl));
  ASSERT_TRUE(sh && prog) << m.report.dump(2);
  EXPECT_EQ((*sh)["source"], "verified") << sh->dump(2);
  EXPECT_EQ(caps_of(*sh), std::vector<std::string>{}) << sh->dump(2);
  EXPECT_EQ(verdict(*sh, "cap_net_raw"), "") << sh->dump(2);  // not the shell's
  expect_verified_need(*prog, "cap_net_raw");
  expect_check_lines(*prog, "cap_net_raw", "needed", true);
  // Both runs of the tree count once, for both.
  EXPECT_EQ((*sh)["verification"]["runs"], (*prog)["verification"]["runs"]);

  // Each binary's verified set was stored: recommend uses both.
  auto rec = run({capaudit_bin(), "recommend", "--db", db, "--format", "json"});
  ASSERT_EQ(rec.exit_code, 0) << rec.err;
  auto j = nlohmann::json::parse(rec.out, nullptr, false);
  sh = find_binary(j, real_path("/bin/sh"));
  prog = find_binary(j, real_path(wl));
  ASSERT_TRUE(sh && prog) << rec.out;
  EXPECT_EQ((*sh)["source"], "verified") << sh->dump(2);
  EXPECT_EQ(caps_of(*sh), std::vector<std::string>{});
  EXPECT_EQ((*prog)["source"], "verified") << prog->dump(2);
  EXPECT_EQ(caps_of(*prog), std::vector<std::string>{"cap_net_raw"});
}

// The rules drop the memory-accounting cap_sys_admin probe every program
// makes: with them right, one run settles everything they drop.
TEST(Minimize, EverythingGrantedIsTriedTheRulesDropsInOneRun) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string wl = workload("setuid_other");
  ProfileRun m = minimize(dir, {wl});
  ASSERT_EQ(m.run.exit_code, 0) << m.run.err;
  const nlohmann::json* b = find_binary(m.report, real_path(wl));
  ASSERT_TRUE(b) << m.report.dump(2);
  EXPECT_TRUE(started_from(*b, "cap_sys_admin")) << b->dump(2);
  EXPECT_EQ(verdict(*b, "cap_sys_admin"), "dropped") << b->dump(2);
  EXPECT_EQ(verdict(*b, "cap_setuid"), "needed") << b->dump(2);
  EXPECT_EQ((*b)["verification"]["runs"], 2);  // the rules' set, then without cap_setuid
}

// Writing a /proc/sys/net file: the kernel's only check is the noaudit
// CAP_NET_ADMIN one in net_ctl_permissions, which decides whether the file
// is writable. Whatever the rules call it, the runs start from it (it was
// granted) and keep it because a run without it fails. The value written is
// the one already there.
TEST(Minimize, CapabilityOnlyANoauditCheckAskedIsTriedToo) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string value;
  std::ifstream("/proc/sys/net/ipv4/tcp_fin_timeout") >> value;
  ASSERT_FALSE(value.empty());
  ProfileRun m = minimize(dir, {"/usr/sbin/sysctl", "-w", "net.ipv4.tcp_fin_timeout=" + value});
  ASSERT_EQ(m.run.exit_code, 0) << m.run.err;
  const nlohmann::json* b = find_binary(m.report, real_path("/usr/sbin/sysctl"));
  ASSERT_TRUE(b) << m.report.dump(2);
  EXPECT_TRUE(started_from(*b, "cap_net_admin")) << b->dump(2);
  expect_verified_need(*b, "cap_net_admin");
  expect_check_lines(*b, "cap_net_admin", "needed", true);
}

// capsh --has-p=cap_net_raw reads its own capability sets (capget) and exits 1
// without cap_net_raw, which the kernel never checks: the runs start from
// everything the traced run held and keep what a run without it lacked.
TEST(Minimize, ProgramThatInspectsItsOwnCapabilitiesKeepsWhatItNeeds) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string capsh = real_path("/usr/sbin/capsh");
  ProfileRun m = minimize(dir, {capsh, "--has-p=cap_net_raw"});
  ASSERT_EQ(m.run.exit_code, 0) << m.run.err;
  const nlohmann::json* b = find_binary(m.report, capsh);
  ASSERT_TRUE(b) << m.report.dump(2);
  expect_verified_need(*b, "cap_net_raw");
  EXPECT_TRUE(started_from(*b, "cap_chown")) << b->dump(2);  // held, never checked
  EXPECT_NE((*b)["verification"]["note"].dump().find("asked the kernel what capabilities it holds"),
            std::string::npos)
      << b->dump(2);
  EXPECT_LE((*b)["verification"]["runs"].get<int>(), 32);
}

// What a descriptor cannot get past is refused before anything runs.
TEST(Minimize, CommandTheUserCannotStartIsRefusedUpFront) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string priv = private_dir(dir);
  // The kernel looks a script's interpreter up by path.
  std::string sh = copy_file(real_path("/bin/sh"), priv + "/sh", 0755);
  std::string script = priv + "/script";
  std::ofstream(script) << "#!" << sh << "\ntrue\n";
  ASSERT_EQ(chmod(script.c_str(), 0755), 0);
  ProfileRun m = minimize(dir, {script});
  EXPECT_EQ(m.run.exit_code, 1) << m.run.err;
  EXPECT_NE(m.run.err.find("is a script and the kernel looks its interpreter"), std::string::npos) << m.run.err;
  EXPECT_TRUE(m.report.is_discarded()) << "nothing should have run";
  // Only root may execute it, wherever it lies.
  std::string own = copy_file(workload("setuid_self"), dir.file("root_only"), 0700);
  m = minimize(dir, {own});
  EXPECT_EQ(m.run.exit_code, 1) << m.run.err;
  EXPECT_NE(m.run.err.find("mode (0700) does not let nobody execute it"), std::string::npos) << m.run.err;
}

TEST(Minimize, UsageErrors) {
  auto r = run({capaudit_bin(), "profile", "--minimize", "--", "true"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--minimize needs --user"), std::string::npos) << r.err;
  r = run({capaudit_bin(), "profile", "--user", "nobody", "--compare-output", "--", "true"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--compare-output only applies with --minimize"), std::string::npos) << r.err;
  r = run({capaudit_bin(), "profile", "--user", "nobody", "--minimize", "--max-runs", "0", "--", "true"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--max-runs"), std::string::npos) << r.err;
  r = run({capaudit_bin(), "profile", "--user", "root", "--minimize", "--", "true"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("other than root"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace capaudit::e2e
