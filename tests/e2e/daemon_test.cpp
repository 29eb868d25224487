// capauditd end to end: real kernel, real workloads, real SQLite.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <fstream>

#include "e2e_util.h"
#include "store.h"

namespace capaudit::e2e {
namespace {

std::string real(const std::string& p) {
  char buf[PATH_MAX];
  return realpath(p.c_str(), buf) ? buf : p;
}

struct Totals {
  uint64_t count = 0;
  std::vector<CheckRow> rows;
  std::vector<std::string> origins;
};

// Every check of `cap` the database holds for the binary at `path`.
Totals checks_of(const std::string& db, const std::string& path, int cap) {
  std::string err;
  auto s = Store::open(db, &err, true);
  EXPECT_TRUE(s) << err;
  Totals t;
  if (!s) return t;
  for (auto& b : s->binaries(path))
    for (auto& c : s->checks(b.id))
      if (c.f.cap == cap) {
        t.count += c.count;
        t.rows.push_back(c);
        for (auto& o : s->origins(c.id)) t.origins.push_back(o.origin);
      }
  return t;
}

constexpr int kCapChown = 0;
constexpr int kCapNetRaw = 13;

TEST(Daemon, CountsEveryFchownExactlyAndNamesTheMethod) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string db = dir.file("x.db");
  Daemon d(db);
  ASSERT_TRUE(d.wait_ready()) << d.log();
  auto r = run({workload("fchown_loop"), dir.file("target"), "1000"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(d.stop(), 0) << d.log();

  Totals t = checks_of(db, real(workload("fchown_loop")), kCapChown);
  EXPECT_EQ(t.count, 1000u);
  ASSERT_FALSE(t.rows.empty());
  for (auto& c : t.rows) {
    EXPECT_EQ(c.f.ret, 0);
    EXPECT_EQ(c.f.uid, 0u);
    EXPECT_EQ(c.f.euid, 0u);
    EXPECT_EQ(c.f.target_ns_level, 0u);
    EXPECT_FALSE(c.f.profiled);
  }
  EXPECT_NE(std::find(t.origins.begin(), t.origins.end(), "setattr_prepare"), t.origins.end());
  EXPECT_NE(d.log().find("attach method '"), std::string::npos) << d.log();
  EXPECT_NE(d.log().find("in use"), std::string::npos) << d.log();
}

TEST(Daemon, RawSocketOfNonRootUserHoldingTheCapability) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string db = dir.file("x.db");
  Daemon d(db);
  ASSERT_TRUE(d.wait_ready()) << d.log();
  auto ok = run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+net_raw",
                 "--ambient-caps=+net_raw", "--", workload("raw_socket")});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto refused = run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", workload("raw_socket")});
  ASSERT_EQ(refused.exit_code, 1) << refused.err;
  ASSERT_EQ(d.stop(), 0) << d.log();

  Totals t = checks_of(db, real(workload("raw_socket")), kCapNetRaw);
  EXPECT_EQ(t.count, 2u);
  uint64_t granted = 0, denied = 0;
  for (auto& c : t.rows) {
    EXPECT_EQ(c.f.uid, 65534u);
    EXPECT_EQ(c.f.euid, 65534u);
    if (c.f.ret == 0) {
      granted += c.count;
      EXPECT_TRUE(c.f.cap_effective & (1ull << kCapNetRaw));
    } else {
      denied += c.count;
      EXPECT_EQ(c.f.cap_effective, 0u);
    }
  }
  EXPECT_EQ(granted, 1u);
  EXPECT_EQ(denied, 1u);
  EXPECT_NE(std::find(t.origins.begin(), t.origins.end(), "inet_create"), t.origins.end());
}

TEST(Daemon, FlushOnSigusr1WhileRunning) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string db = dir.file("x.db");
  Daemon d(db);
  ASSERT_TRUE(d.wait_ready()) << d.log();
  ASSERT_EQ(run({workload("fchown_loop"), dir.file("t"), "250"}).exit_code, 0);
  ASSERT_TRUE(d.flush()) << d.log();
  EXPECT_EQ(checks_of(db, real(workload("fchown_loop")), kCapChown).count, 250u);
  ASSERT_EQ(d.stop(), 0);
}

TEST(Daemon, CountsAccumulateAcrossRestarts) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string db = dir.file("x.db");
  for (const char* n : {"300", "700"}) {
    Daemon d(db);
    ASSERT_TRUE(d.wait_ready()) << d.log();
    ASSERT_EQ(run({workload("fchown_loop"), dir.file("t"), n}).exit_code, 0);
    ASSERT_EQ(d.stop(), 0) << d.log();
  }
  EXPECT_EQ(checks_of(db, real(workload("fchown_loop")), kCapChown).count, 1000u);
}

TEST(Daemon, DatabaseIsNotWorldReadable) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string db = dir.file("sub/x.db");
  Daemon d(db);
  ASSERT_TRUE(d.wait_ready()) << d.log();
  ASSERT_EQ(d.stop(), 0);
  struct stat st {};
  ASSERT_EQ(stat(db.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
  ASSERT_EQ(stat(dir.file("sub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
}

class ForcedMethod : public ::testing::TestWithParam<const char*> {};

// Here fexit and kprobes are refused; a forced method must fail loudly,
// naming itself, never fall back.
TEST_P(ForcedMethod, RefusedMethodIsAClearError) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string db = dir.file("x.db");
  auto r = run({capauditd_bin(), "--db", db, "--config", dir.file("none.json"), "--pin-dir", "",
                "--attach-method", GetParam()});
  if (r.exit_code == 0) GTEST_SKIP() << GetParam() << " works on this kernel";
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(std::string("'") + GetParam() + "'"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("in use"), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Daemon, ForcedMethod, ::testing::Values("fexit", "kprobe"));

TEST(Daemon, MalformedConfigNamesFileLineAndKey) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string conf = dir.file("bad.json");
  std::ofstream(conf) << "{\n  \"drain_interval_sec\": 10,\n  \"max_checks\": \"lots\"\n}\n";
  auto r = run({capauditd_bin(), "--db", dir.file("x.db"), "--config", conf, "--pin-dir", ""});
  EXPECT_EQ(r.exit_code, 78) << "EX_CONFIG: no restart fixes it";
  EXPECT_NE(r.err.find(conf + ":3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("max_checks"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace capaudit::e2e
