// Nothing hidden by a flood, names through an outage (issue 14): a local user
// filling the kernel's counts map cannot push a root program's checks out of
// the record, and binaries run only while the daemon is down keep their names.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <fstream>
#include <set>

#include "drainer.h"
#include "e2e_util.h"
#include "store.h"

namespace capaudit::e2e {
namespace {

namespace fs = std::filesystem;

constexpr int kCapChown = 0;

struct Counted {
  uint64_t exact = 0, coarse = 0;
  size_t coarse_rows = 0;
};

Counted chown_checks(Store& s, const std::string& path) {
  Counted c;
  for (auto& b : s.binaries(real_path(path)))
    for (auto& row : s.checks(b.id)) {
      if (row.f.cap != kCapChown) continue;
      if (row.f.coarse) {
        c.coarse += row.count;
        c.coarse_rows++;
        // What the coarse key lost is marked, never guessed.
        EXPECT_EQ(row.f.uid, UINT32_MAX);
        EXPECT_EQ(row.f.target_ns_inum, 0u);
        EXPECT_EQ(row.f.cgroup_id, 0u);
      } else {
        c.exact += row.count;
        EXPECT_EQ(row.f.uid, 0u);
      }
    }
  return c;
}

void run_ok(const std::vector<std::string>& argv) {
  auto r = run(argv);
  ASSERT_EQ(r.exit_code, 0) << argv[0] << ": " << r.err;
}

// A small counts map: nobody's nested user namespaces fill their share of
// it, root's fchown_loop still gets its exact key from the quarter kept for
// root; then root fills the rest, and a new root binary's checks go to the
// coarse key. Every one of them is stored, exactly.
TEST(Flood, UnprivilegedFloodHidesNoRootCheck) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  const std::string db = dir.file("x.db"), conf = dir.file("conf.json");
  // No drain (so no pruning) until the stop: the map stays full throughout.
  // 2048 keys: nobody may hold 1536; the 512 kept for root are more than
  // other root processes on a busy machine make meanwhile.
  std::ofstream(conf) << R"({"max_checks": 2048, "drain_interval_sec": 3600})" << "\n";
  const std::string copy = dir.file("fchown_copy");
  fs::copy_file(workload("fchown_loop"), copy);
  chmod(copy.c_str(), 0755);

  Daemon d(db, {"--config", conf});
  ASSERT_TRUE(d.wait_ready()) << d.log();
  // 100 x 20 keys as nobody, well over the 1536 it may hold.
  run_ok({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", workload("userns_flood"), "100",
          "20"});
  run_ok({workload("fchown_loop"), dir.file("t1"), "5000"});
  // Root fills what is left; its new binary then finds no room.
  run_ok({workload("userns_flood"), "100", "20"});
  run_ok({copy, dir.file("t2"), "7000"});
  ASSERT_EQ(d.stop(), 0) << d.log();

  std::string err;
  auto s = Store::open(db, &err, true);
  ASSERT_TRUE(s) << err;
  Counted kept = chown_checks(*s, workload("fchown_loop"));
  EXPECT_EQ(kept.exact, 5000u) << "root's key was reserved: exact detail";
  EXPECT_EQ(kept.coarse, 0u);
  Counted late = chown_checks(*s, copy);
  EXPECT_EQ(late.exact + late.coarse, 7000u) << "no check lost to a full map";
  EXPECT_GE(late.coarse_rows, 1u) << "the map was full: counted at the coarse key";
  auto stats = s->stats();
  EXPECT_GT(stats["coarse_checks"], 7000u) << "nobody's flood went coarse too";
  EXPECT_EQ(stats["count_drops"], 0u);
}

// A pin directory of the test's own, removed (detaching what it holds).
struct Pins {
  std::string path = "/sys/fs/bpf/capaudit-test-" + std::to_string(getpid()) + "-flood";
  Pins() { clean(); }
  ~Pins() { clean(); }
  void clean() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// kill -9, then 10,000 binaries of their own (copies: each its own inode)
// exec'd once each while nothing drains: far more execs than the ring buffer
// holds; after the restart every one is stored under its path.
TEST(Flood, TenThousandBinariesRunWhileDownAreNamed) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  Pins pins;
  const std::string db = dir.file("x.db");
  constexpr int kBinaries = 10000;
  fs::create_directories(dir.file("bin"));
  std::vector<std::string> bins;
  for (int i = 0; i < kBinaries; i++) {
    bins.push_back(dir.file("bin/b" + std::to_string(i)));
    fs::copy_file(workload("one_check"), bins.back());
  }
  {
    Daemon d(db, {"--pin-dir", pins.path});
    ASSERT_TRUE(d.wait_ready()) << d.log();
    EXPECT_EQ(d.stop(SIGKILL), -SIGKILL);
  }
  for (const auto& b : bins) {
    pid_t pid = 0;
    char* argv[] = {const_cast<char*>(b.c_str()), nullptr};
    ASSERT_EQ(posix_spawn(&pid, b.c_str(), nullptr, nullptr, argv, environ), 0) << b;
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << b;
  }
  Daemon d(db, {"--pin-dir", pins.path});
  ASSERT_TRUE(d.wait_ready()) << d.log();
  ASSERT_EQ(d.stop(), 0) << d.log();

  std::string err;
  auto s = Store::open(db, &err, true);
  ASSERT_TRUE(s) << err;
  std::set<std::string> named;
  for (auto& b : s->binaries())
    if (b.key.path.rfind(real_path(dir.file("bin")) + "/", 0) == 0) {
      bool setgid = false;
      for (auto& c : s->checks(b.id)) setgid = setgid || c.f.cap == 6;  // CAP_SETGID
      if (setgid) named.insert(b.key.path);
    }
  EXPECT_EQ(named.size(), static_cast<size_t>(kBinaries));
  auto stats = s->stats();
  EXPECT_GT(stats["ringbuf_drops"], 0u) << "more execs than the ring buffer holds";
  EXPECT_EQ(stats["name_drops"], 0u);
  EXPECT_FALSE(fs::exists(pins.path));
}

}  // namespace
}  // namespace capaudit::e2e
