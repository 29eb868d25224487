// What capauditd must survive without losing a count: kill -9 (pinned maps
// and link keep counting, the next start adopts them), a full or read-only
// filesystem (counts wait in the kernel until the database can be written),
// and a damaged database (moved aside, a new one started, loudly).
#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "e2e_util.h"
#include "store.h"

namespace capaudit::e2e {
namespace {

namespace fs = std::filesystem;

constexpr int kCapChown = 0;

std::string real(const std::string& p) {
  char buf[PATH_MAX];
  return realpath(p.c_str(), buf) ? buf : p;
}

// CAP_CHOWN checks the database holds for fchown_loop.
uint64_t chown_count(const std::string& db) {
  std::string err;
  auto s = Store::open(db, &err, true);
  EXPECT_TRUE(s) << err;
  uint64_t n = 0;
  if (!s) return n;
  for (auto& b : s->binaries(real(workload("fchown_loop"))))
    for (auto& c : s->checks(b.id))
      if (c.f.cap == kCapChown) n += c.count;
  return n;
}

void fchown_storm(const std::string& target, long n) {
  auto r = run({workload("fchown_loop"), target, std::to_string(n)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A pin directory of this test's own; removing what is left in it detaches
// whatever a failed test left attached.
class PinDir {
 public:
  explicit PinDir(const std::string& name)
      : path_("/sys/fs/bpf/capaudit-test-" + std::to_string(getpid()) + "-" + name) {
    remove();
  }
  ~PinDir() { remove(); }
  const std::string& path() const { return path_; }
  bool has(const std::string& prefix) const {
    std::error_code ec;
    for (auto& e : fs::directory_iterator(path_, ec))
      if (e.path().filename().string().rfind(prefix, 0) == 0) return true;
    return false;
  }

 private:
  void remove() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string path_;
};

// Kernel ids of the links pinned in dir.
std::vector<uint32_t> pinned_link_ids(const std::string& dir) {
  std::vector<uint32_t> ids;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename().string().rfind("link_", 0) != 0) continue;
    int fd = bpf_obj_get(e.path().c_str());
    if (fd < 0) continue;
    bpf_link_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) ids.push_back(info.id);
    close(fd);
  }
  return ids;
}

// Whether every link in ids is gone, asked of the kernel for up to 30 s.
bool links_released(const std::vector<uint32_t>& ids) {
  for (int tries = 0; tries < 3000; tries++) {
    bool any = false;
    for (uint32_t id : ids) {
      int fd = bpf_link_get_fd_by_id(id);
      if (fd >= 0) {
        any = true;
        close(fd);
      }
    }
    if (!any) return true;
    usleep(10000);
  }
  return false;
}

// A small tmpfs, so that a full or read-only filesystem is cheap to make.
class SmallFs {
 public:
  SmallFs(const std::string& dir, const char* size) : path_(dir) {
    fs::create_directories(path_);
    std::string opts = std::string("size=") + size + ",mode=0755";
    mounted_ = mount("tmpfs", path_.c_str(), "tmpfs", 0, opts.c_str()) == 0;
    if (!mounted_) ADD_FAILURE() << "mount tmpfs on " << path_ << ": " << std::strerror(errno);
  }
  ~SmallFs() {
    if (mounted_) umount2(path_.c_str(), MNT_DETACH);
  }
  bool ok() const { return mounted_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  bool set_readonly(bool ro) {
    return mount(nullptr, path_.c_str(), nullptr, MS_REMOUNT | (ro ? MS_RDONLY : 0), nullptr) == 0;
  }
  // Writes `name` until the filesystem has no room left.
  void fill(const std::string& name) {
    int fd = open(file(name).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    char block[4096] = {};
    while (write(fd, block, sizeof block) > 0) {
    }
    EXPECT_EQ(errno, ENOSPC);
    close(fd);
  }

 private:
  std::string path_;
  bool mounted_ = false;
};

// kill -9, 100,000 checks while down, restart: every count arrives, once.
TEST(Faults, KillNineLosesNothingAndCleanStopLeavesNoPin) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  PinDir pins("kill9");
  const std::string db = dir.file("x.db"), target = dir.file("t");
  {
    Daemon d(db, {"--pin-dir", pins.path()});
    ASSERT_TRUE(d.wait_ready()) << d.log();
    // A drain before the kill: the restart must add only what is new.
    fchown_storm(target, 60000);
    ASSERT_TRUE(d.flush()) << d.log();
    EXPECT_EQ(chown_count(db), 60000u);
    // The kernel counts synchronously: once fchown_loop has exited, its
    // checks are in the pinned map.
    fchown_storm(target, 40000);
    EXPECT_EQ(d.stop(SIGKILL), -SIGKILL);
  }
  EXPECT_TRUE(pins.has("counts")) << "maps stay pinned after kill -9";
  EXPECT_TRUE(pins.has("link_")) << "the link stays pinned after kill -9";
  EXPECT_EQ(chown_count(db), 60000u);

  fchown_storm(target, 100000);  // nobody to drain: the pinned link counts

  Daemon d(db, {"--pin-dir", pins.path()});
  ASSERT_TRUE(d.wait_ready()) << d.log();
  EXPECT_NE(d.log().find("adopted pinned maps"), std::string::npos) << d.log();
  fchown_storm(target, 100000);
  ASSERT_EQ(d.stop(), 0) << d.log();

  EXPECT_EQ(chown_count(db), 300000u);
  EXPECT_FALSE(fs::exists(pins.path())) << "a clean stop removes every pin";
}

// A restart with another program (settings changed here; an upgrade is the
// same case) attaches its own program to the pinned maps. Those maps still
// hold what was drained before the kill: draining must resume from the
// store's drain state, or those checks are stored twice.
TEST(Faults, OtherSettingsReplaceThePinnedProgramAndStoreNothingTwice) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  PinDir pins("replaced");
  const std::string db = dir.file("x.db"), target = dir.file("t"), conf = dir.file("conf.json");
  {
    Daemon d(db, {"--pin-dir", pins.path()});
    ASSERT_TRUE(d.wait_ready()) << d.log();
    fchown_storm(target, 60000);
    ASSERT_TRUE(d.flush()) << d.log();
    fchown_storm(target, 40000);
    EXPECT_EQ(d.stop(SIGKILL), -SIGKILL);
  }
  fchown_storm(target, 100000);
  const std::vector<uint32_t> old_links = pinned_link_ids(pins.path());
  ASSERT_FALSE(old_links.empty());

  // stack_sample_period is baked into the program at load.
  std::ofstream(conf) << R"({"stack_sample_period": 512})" << "\n";
  Daemon d(db, {"--pin-dir", pins.path(), "--config", conf});
  ASSERT_TRUE(d.wait_ready()) << d.log();
  EXPECT_NE(d.log().find("adopted pinned maps"), std::string::npos) << d.log();
  EXPECT_NE(d.log().find("attached in place of the pinned one"), std::string::npos) << d.log();
  // Until the kernel has released the old links (from a workqueue, after
  // their pins went) both programs count: a known, bounded double count.
  ASSERT_TRUE(links_released(old_links)) << d.log();
  fchown_storm(target, 100000);
  ASSERT_EQ(d.stop(), 0) << d.log();
  EXPECT_EQ(chown_count(db), 300000u) << d.log();
}

// A program that ran only while the daemon was down: its exec waited in the
// pinned ring buffer, so its checks are stored under its path.
TEST(Faults, BinaryRunOnlyWhileDownIsNamed) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  PinDir pins("down");
  const std::string db = dir.file("x.db"), copy = dir.file("fchown_copy");
  fs::copy_file(workload("fchown_loop"), copy);
  chmod(copy.c_str(), 0755);
  {
    Daemon d(db, {"--pin-dir", pins.path()});
    ASSERT_TRUE(d.wait_ready()) << d.log();
    EXPECT_EQ(d.stop(SIGKILL), -SIGKILL);
  }
  EXPECT_TRUE(pins.has("link_exec"));
  auto r = run({copy, dir.file("t"), "777"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Gone, and nothing will run it again: only the queued exec can name it.
  Daemon d(db, {"--pin-dir", pins.path()});
  ASSERT_TRUE(d.wait_ready()) << d.log();
  ASSERT_EQ(d.stop(), 0) << d.log();

  std::string err;
  auto s = Store::open(db, &err, true);
  ASSERT_TRUE(s) << err;
  uint64_t n = 0;
  for (auto& b : s->binaries(real(copy)))
    for (auto& c : s->checks(b.id))
      if (c.f.cap == kCapChown) n += c.count;
  EXPECT_EQ(n, 777u) << d.log();
  EXPECT_FALSE(fs::exists(pins.path()));
}

// An older capaudit's counts map (another key size) cannot be read by this
// one: the pins are replaced, with a log line saying why.
TEST(Faults, IncompatiblePinsAreReplacedWithAClearLogLine) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  PinDir pins("incompatible");
  ASSERT_EQ(mkdir(pins.path().c_str(), 0700), 0) << std::strerror(errno);
  int fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_HASH, "counts", 8, 8, 16, nullptr);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(bpf_obj_pin(fd, (pins.path() + "/counts").c_str()), 0) << std::strerror(errno);
  close(fd);

  const std::string db = dir.file("x.db");
  Daemon d(db, {"--pin-dir", pins.path()});
  ASSERT_TRUE(d.wait_ready()) << d.log();
  std::string log = d.log();
  EXPECT_NE(log.find("incompatible"), std::string::npos) << log;
  EXPECT_NE(log.find(pins.path() + "/counts"), std::string::npos) << log;
  EXPECT_EQ(log.find("adopted pinned maps"), std::string::npos) << log;
  fchown_storm(dir.file("t"), 1000);
  ASSERT_EQ(d.stop(), 0) << d.log();
  EXPECT_EQ(chown_count(db), 1000u);
  EXPECT_FALSE(fs::exists(pins.path()));
}

// The database on a filesystem that fills up: drains fail, say so, and
// every count arrives once there is room again.
TEST(Faults, FullDiskLosesNothing) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  SmallFs small(dir.file("small"), "1M");
  ASSERT_TRUE(small.ok());
  const std::string db = small.file("x.db"), target = dir.file("t");
  // The log stays beside the test directory, where there is room.
  Daemon d(dir.file("d.db"), {"--db", db});
  ASSERT_TRUE(d.wait_ready()) << d.log();
  fchown_storm(target, 1000);
  std::string status;
  ASSERT_TRUE(d.flush(&status)) << d.log();
  EXPECT_EQ(status.find("database error"), std::string::npos) << status;

  small.fill("filler");
  fchown_storm(target, 5000);
  ASSERT_TRUE(d.flush(&status)) << d.log();
  EXPECT_NE(status.find("database error"), std::string::npos) << status;
  EXPECT_NE(status.find("full"), std::string::npos) << status;
  EXPECT_NE(d.log().find("cannot write to '" + db + "'"), std::string::npos) << d.log();
  fchown_storm(target, 2000);
  ASSERT_TRUE(d.flush(&status)) << d.log();
  EXPECT_NE(status.find("database error"), std::string::npos) << status;

  ASSERT_EQ(unlink(small.file("filler").c_str()), 0);
  ASSERT_TRUE(d.flush(&status)) << d.log();
  EXPECT_EQ(status.find("database error"), std::string::npos) << status;
  EXPECT_NE(d.log().find("writable again"), std::string::npos) << d.log();
  ASSERT_EQ(d.stop(), 0) << d.log();
  EXPECT_EQ(chown_count(db), 8000u);
}

// Still full when stopped: the counts stay pinned (exit 1), and the next
// start writes them.
TEST(Faults, FullDiskAtStopKeepsCountsPinnedForTheNextStart) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  PinDir pins("fullstop");
  SmallFs small(dir.file("small"), "1M");
  ASSERT_TRUE(small.ok());
  const std::string db = small.file("x.db"), target = dir.file("t");
  {
    Daemon d(dir.file("d.db"), {"--db", db, "--pin-dir", pins.path()});
    ASSERT_TRUE(d.wait_ready()) << d.log();
    fchown_storm(target, 1000);
    ASSERT_TRUE(d.flush()) << d.log();
    small.fill("filler");
    fchown_storm(target, 3000);
    EXPECT_EQ(d.stop(), 1) << d.log();
    EXPECT_NE(d.log().find("counts stay pinned"), std::string::npos) << d.log();
  }
  EXPECT_TRUE(pins.has("counts"));
  ASSERT_EQ(unlink(small.file("filler").c_str()), 0);
  Daemon d(dir.file("d.db"), {"--db", db, "--pin-dir", pins.path()});
  ASSERT_TRUE(d.wait_ready()) << d.log();
  ASSERT_EQ(d.stop(), 0) << d.log();
  EXPECT_EQ(chown_count(db), 4000u) << d.log();
  EXPECT_FALSE(fs::exists(pins.path()));
}

// A read-only database at start does not stop counting: the daemon runs,
// says what is wrong, and writes everything once it can.
TEST(Faults, ReadOnlyDatabaseIsWrittenOnceWritable) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  SmallFs small(dir.file("small"), "1M");
  ASSERT_TRUE(small.ok());
  const std::string db = small.file("x.db"), target = dir.file("t");
  {
    Daemon d(dir.file("d.db"), {"--db", db});
    ASSERT_TRUE(d.wait_ready()) << d.log();
    ASSERT_EQ(d.stop(), 0) << d.log();
  }
  ASSERT_TRUE(small.set_readonly(true)) << std::strerror(errno);
  Daemon d(dir.file("d.db"), {"--db", db});
  ASSERT_TRUE(d.wait_ready()) << d.log();
  EXPECT_NE(d.log().find("database unavailable"), std::string::npos) << d.log();
  fchown_storm(target, 2000);
  std::string status;
  ASSERT_TRUE(d.flush(&status)) << d.log();
  EXPECT_NE(status.find("database error"), std::string::npos) << status;
  EXPECT_NE(status.find("read-only"), std::string::npos) << status;

  ASSERT_TRUE(small.set_readonly(false)) << std::strerror(errno);
  ASSERT_TRUE(d.flush(&status)) << d.log();
  EXPECT_EQ(status.find("database error"), std::string::npos) << status;
  fchown_storm(target, 500);
  ASSERT_EQ(d.stop(), 0) << d.log();
  EXPECT_EQ(chown_count(db), 2500u);
}

// Overwrites the b-tree page header of every page but the first, which
// keeps the file recognisably capaudit's.
void damage_pages(const std::string& db) {
  std::fstream f(db, std::ios::in | std::ios::out | std::ios::binary);
  unsigned char hdr[18];
  f.read(reinterpret_cast<char*>(hdr), sizeof hdr);
  uint32_t page = (uint32_t{hdr[16]} << 8) | hdr[17];
  if (page == 1) page = 65536;
  auto size = static_cast<uint64_t>(fs::file_size(db));
  ASSERT_GT(size, 2ull * page);
  const char junk[8] = {0x0d, '\xff', '\xff', '\xff', '\xff', '\xff', '\xff', '\xff'};
  for (uint64_t off = page; off < size; off += page) {
    f.seekp(static_cast<std::streamoff>(off));
    f.write(junk, sizeof junk);
  }
}

// Where capauditd moved a damaged `name` (<name>.corrupt-<time>), or "".
std::string aside_file(const TempDir& dir, const std::string& name) {
  for (auto& e : fs::directory_iterator(dir.path()))
    if (e.path().filename().string().rfind(name + ".corrupt-", 0) == 0) return e.path().string();
  return "";
}

TEST(Faults, DamagedDatabaseIsMovedAsideAndANewOneStarted) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  const std::string db = dir.file("x.db"), target = dir.file("t");
  {
    Daemon d(db);
    ASSERT_TRUE(d.wait_ready()) << d.log();
    fchown_storm(target, 100);
    ASSERT_EQ(d.stop(), 0) << d.log();
  }
  damage_pages(db);
  const std::string damaged = slurp(db);

  Daemon d(db);
  ASSERT_TRUE(d.wait_ready()) << d.log();
  const std::string aside = aside_file(dir, "x.db");
  ASSERT_FALSE(aside.empty()) << d.log();
  EXPECT_EQ(slurp(aside), damaged) << "moved, not rewritten";
  std::string log = d.log();
  EXPECT_NE(log.find("[error]"), std::string::npos) << log;
  EXPECT_NE(log.find("'" + db + "' is damaged"), std::string::npos) << log;
  EXPECT_NE(log.find("'" + aside + "'"), std::string::npos) << log;
  std::string status;
  ASSERT_TRUE(d.flush(&status)) << d.log();
  EXPECT_NE(status.find(aside), std::string::npos) << status;

  fchown_storm(target, 250);
  ASSERT_EQ(d.stop(), 0) << d.log();
  EXPECT_EQ(chown_count(db), 250u);
}

// Damaged while the daemon runs: the next drain finds it, moves it aside,
// starts a new one and stores there every count the old one did not have.
TEST(Faults, DatabaseDamagedWhileRunningIsMovedAsideAtTheNextDrain) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  const std::string db = dir.file("x.db"), target = dir.file("t");
  Daemon d(db);
  ASSERT_TRUE(d.wait_ready()) << d.log();
  fchown_storm(target, 100);
  ASSERT_TRUE(d.flush()) << d.log();
  // Into the main file first, as SQLite's own checkpoints put it there.
  auto r = run({"sqlite3", db, "PRAGMA wal_checkpoint(TRUNCATE)"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  damage_pages(db);

  fchown_storm(target, 250);
  std::string status;
  ASSERT_TRUE(d.flush(&status)) << d.log();
  const std::string aside = aside_file(dir, "x.db");
  ASSERT_FALSE(aside.empty()) << d.log();
  std::string log = d.log();
  EXPECT_NE(log.find("'" + db + "' is damaged"), std::string::npos) << log;
  EXPECT_NE(status.find(aside), std::string::npos) << status;
  EXPECT_EQ(status.find("database error"), std::string::npos) << "the retry into the new file worked: " << status;
  ASSERT_EQ(d.stop(), 0) << d.log();
  EXPECT_EQ(chown_count(db), 250u) << d.log();
}

// Someone else's file behind --db is a configuration mistake: refused,
// never moved or written.
TEST(Faults, ForeignFilesAreRefusedAndLeftAlone) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  const std::string other = dir.file("other.db"), text = dir.file("notes.txt");
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(other.c_str(), &h), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(h, "PRAGMA application_id=42; PRAGMA user_version=3; CREATE TABLE t(x);", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(h);
  std::ofstream(text) << "not a database at all, and not ours to move\n";

  for (const std::string& path : {other, text}) {
    const std::string before = slurp(path);
    auto r = run({capauditd_bin(), "--db", path, "--config", dir.file("none.json"), "--pin-dir", ""});
    EXPECT_EQ(r.exit_code, 78) << r.err;
    EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
    EXPECT_EQ(slurp(path), before);
  }
  for (auto& e : fs::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().string().find(".corrupt-"), std::string::npos) << e.path();
}

}  // namespace
}  // namespace capaudit::e2e
