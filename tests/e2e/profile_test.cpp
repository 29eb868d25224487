// capaudit profile end to end, closing the loop: each workload is profiled
// as an unprivileged user holding every capability, then run holding
// exactly the recommended set (it must work) and with each recommended
// capability removed (it must fail).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "capnames.h"
#include "e2e_util.h"
#include "store.h"

namespace capaudit::e2e {
namespace {

constexpr const char* kNobody = "65534";

// Runs command as nobody holding exactly `caps` (setpriv, independent of
// capaudit's own code), returning its exit code.
int run_with(const std::vector<std::string>& caps, const std::vector<std::string>& command) {
  std::string list;
  for (auto& c : caps) list += (list.empty() ? "" : ",") + std::string("+") + c.substr(4);
  std::vector<std::string> argv = {"setpriv", "--reuid=" + std::string(kNobody), "--regid=65534", "--clear-groups"};
  if (!caps.empty()) {
    argv.push_back("--inh-caps=" + list);
    argv.push_back("--ambient-caps=" + list);
  }
  argv.push_back("--");
  argv.insert(argv.end(), command.begin(), command.end());
  return run(argv).exit_code;
}

// Profiles, checks the set, and closes the loop.
void check_workload(const TempDir& dir, const std::vector<std::string>& command,
                    const std::vector<std::string>& expected) {
  ProfileRun p = profile_as_nobody(dir, command);
  ASSERT_EQ(p.run.exit_code, 0) << p.run.err;
  const nlohmann::json* b = find_binary(p.report, real_path(command[0]));
  ASSERT_TRUE(b) << "no entry for " << command[0] << " in " << p.report.dump(2);
  EXPECT_EQ(caps_of(*b), expected) << b->dump(2);
  if (expected.empty()) {
    EXPECT_TRUE((*b)["setcap"].is_null());
  }
  EXPECT_EQ(run_with(caps_of(*b), command), 0) << "fails holding exactly the recommended set";
  for (size_t i = 0; i < expected.size(); i++) {
    std::vector<std::string> fewer = expected;
    fewer.erase(fewer.begin() + static_cast<long>(i));
    EXPECT_NE(run_with(fewer, command), 0) << "still works without " << expected[i];
  }
}

TEST(Profile, RawSocketNeedsNetRaw) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  check_workload(dir, {workload("raw_socket")}, {"cap_net_raw"});
}

TEST(Profile, BindBelow1024NeedsNetBindService) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  check_workload(dir, {workload("bind_low_port")}, {"cap_net_bind_service"});
}

TEST(Profile, ForkAndMmapNeedNothing) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  check_workload(dir, {workload("fork_mmap_loop"), "50"}, {});
}

TEST(Profile, ReadingRootOnlyFileNeedsDacReadSearchNotOverride) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string secret = dir.file("secret");
  std::ofstream(secret) << "root only\n";
  ASSERT_EQ(chmod(secret.c_str(), 0600), 0);
  check_workload(dir, {workload("read_file"), secret}, {"cap_dac_read_search"});
}

TEST(Profile, ChmodSetgidOfAnotherUsersFileNeedsFownerAndFsetid) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string target = dir.file("theirs");
  std::ofstream(target) << "x\n";
  ASSERT_EQ(chown(target.c_str(), 1, 1), 0);  // daemon:daemon, not nobody
  check_workload(dir, {workload("chmod_file"), target}, {"cap_fowner", "cap_fsetid"});
}

TEST(Profile, SethostnameInOwnUserNamespaceNeedsNothing) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  check_workload(dir, {workload("userns_sethostname")}, {});
}

TEST(Profile, PingAsNobodyNeedsExactlyNetRaw) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string ping = real_path("/usr/bin/ping");
  ProfileRun p = profile_as_nobody(dir, {ping, "-c1", "-W1", "127.0.0.1"});
  ASSERT_EQ(p.run.exit_code, 0) << p.run.err;
  const nlohmann::json* b = find_binary(p.report, ping);
  ASSERT_TRUE(b) << p.report.dump(2);
  EXPECT_EQ(caps_of(*b), std::vector<std::string>{"cap_net_raw"}) << b->dump(2);
  EXPECT_EQ((*b)["setcap"], "cap_net_raw+ep");
}

TEST(Profile, ExitStatusAndStdoutAreTheCommands) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  auto r = run({capaudit_bin(), "profile", "--", "sh", "-c", "echo hello; exit 7"});
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_EQ(r.out, "hello\n");  // the report goes to standard error
  EXPECT_NE(r.err.find("sh"), std::string::npos) << r.err;
}

// The caller's PATH starts with a directory only root may search: run there,
// every command lookup of the tree would be a granted CAP_DAC_READ_SEARCH
// check, recommended although the program never needs it where it really runs.
TEST(Profile, RunsInTheUsersLoginEnvironment) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;  // 0700, root's
  const char* old = getenv("PATH");
  std::string saved = old ? old : "";
  setenv("PATH", (dir.path() + ":" + saved).c_str(), 1);
  ProfileRun p = profile_as_nobody(dir, {"sh", "-c", "cat /dev/null; echo \"$HOME|$USER|$PATH\""});
  setenv("PATH", saved.c_str(), 1);
  ASSERT_EQ(p.run.exit_code, 0) << p.run.err;
  EXPECT_EQ(p.run.out, "/nonexistent|nobody|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
  ASSERT_TRUE(p.report.contains("binaries")) << p.report.dump(2);
  EXPECT_GE(p.report["binaries"].size(), 2u) << p.report.dump(2);  // sh and cat
  for (const auto& b : p.report["binaries"]) EXPECT_EQ(caps_of(b), std::vector<std::string>{}) << b.dump(2);
}

TEST(Profile, DbStoresTheRunMarkedProfiled) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string db = dir.file("p.db");
  auto r = run({capaudit_bin(), "profile", "--user", "nobody", "--db", db, "--output", dir.file("out.txt"), "--",
                workload("raw_socket")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string err;
  auto s = Store::open(db, &err, true);
  ASSERT_TRUE(s) << err;
  auto bins = s->binaries(real_path(workload("raw_socket")));
  ASSERT_EQ(bins.size(), 1u);
  uint64_t net_raw = 0;
  for (auto& c : s->checks(bins[0].id)) {
    EXPECT_TRUE(c.f.profiled);
    EXPECT_EQ(c.f.euid, 65534u);
    if (c.f.cap == 13 && c.f.ret == 0) net_raw += c.count;
  }
  EXPECT_EQ(net_raw, 1u);
  // report reads what profile stored.
  auto rep = run({capaudit_bin(), "report", "--db", db, "--binary", real_path(workload("raw_socket")), "--json"});
  ASSERT_EQ(rep.exit_code, 0) << rep.err;
  auto j = nlohmann::json::parse(rep.out, nullptr, false);
  const nlohmann::json* b = find_binary(j, real_path(workload("raw_socket")));
  ASSERT_TRUE(b) << rep.out;
  EXPECT_EQ(caps_of(*b), std::vector<std::string>{"cap_net_raw"});
}

TEST(Profile, UnknownUserIsAUsageError) {
  CAPAUDIT_REQUIRE_E2E();
  auto r = run({capaudit_bin(), "profile", "--user", "no-such-user-xyz", "--", "true"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no-such-user-xyz"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace capaudit::e2e
