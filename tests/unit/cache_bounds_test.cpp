// Bounded for months (issue 14 item 3): the tables of executables' paths and
// of cgroups stay within their limits however many the host makes, trim()
// keeps what is still in use, and a name a count still needs is not lost.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "cgroup_names.h"
#include "drainer_fixture.h"
#include "exe_paths.h"

namespace capaudit {
namespace {

namespace fs = std::filesystem;

using test::kNoStacks;

// An executable seen at exec and gone since: remembered by its old path.
ExeId gone_exe(ExePathResolver& paths, uint64_t n) {
  const ExeId id{1, 100000 + n};
  paths.learn_exec(id, "/gone/bin" + std::to_string(n), "", 0);
  return id;
}

uint64_t inode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(stat(p.c_str(), &st), 0) << p;
  return st.st_ino;
}

TEST(ExePathBounds, StaysWithinTheLimitEvenWithoutADrain) {
  ExePathResolver paths("/nonexistent-proc", 16);
  for (uint64_t n = 0; n < 1000; n++) {
    gone_exe(paths, n);
    // Between drains (the database unwritable) at most twice the limit.
    ASSERT_LE(paths.size(), 32u);
  }
  // The newest are the ones kept.
  EXPECT_TRUE(paths.lookup(ExeId{1, 100000 + 999}));
  paths.trim();
  EXPECT_EQ(paths.size(), 12u);
}

TEST(ExePathBounds, TrimKeepsRunningAndRecentlyUsedExecutables) {
  test::TempDir dir;
  const std::string prog = dir.file("prog");
  std::ofstream(prog) << "#!/bin/true\n";
  struct stat st {};
  ASSERT_EQ(stat(prog.c_str(), &st), 0);
  const ExeId running{user_dev_to_kernel(st.st_dev), st.st_ino};
  // A process of `prog` runs (its /proc/PID/exe).
  fs::create_directories(dir.path() / "proc/4711");
  fs::create_symlink(prog, dir.path() / "proc/4711/exe");

  ExePathResolver paths((dir.path() / "proc").string(), 16);
  paths.learn_exec(running, prog, prog, 4711);  // the oldest entry
  for (uint64_t n = 0; n < 29; n++) gone_exe(paths, n);
  ASSERT_EQ(paths.size(), 30u);
  EXPECT_TRUE(paths.lookup(ExeId{1, 100000 + 3}));  // used by a drain: recent

  EXPECT_EQ(paths.trim(), 18u);
  EXPECT_EQ(paths.size(), 12u);
  ASSERT_TRUE(paths.lookup(running));
  EXPECT_EQ(paths.lookup(running)->path, prog);
  EXPECT_TRUE(paths.lookup(ExeId{1, 100000 + 3}));
  EXPECT_TRUE(paths.lookup(ExeId{1, 100000 + 28}));   // learned last
  EXPECT_FALSE(paths.lookup(ExeId{1, 100000 + 4}));   // neither
  EXPECT_EQ(paths.trim(), 0u);                         // within the limit: nothing
}

TEST(CgroupBounds, TrimForgetsRemovedCgroupsFirstThenTheLeastRecentlyUsed) {
  test::TempDir mount;
  CgroupCatalog cat(mount.path().string(), {}, 16);
  std::vector<uint64_t> ids;
  for (int n = 0; n < 30; n++) {
    const fs::path d = mount.path() / ("u" + std::to_string(n) + ".service");
    fs::create_directory(d);
    ids.push_back(inode_of(d));
    cat.learn(ids.back(), "/u" + std::to_string(n) + ".service", 100);
  }
  // u10..u29 removed; of those, u12 was used by a drain since.
  for (int n = 10; n < 30; n++) fs::remove(mount.path() / ("u" + std::to_string(n) + ".service"));
  ASSERT_NE(cat.lookup(ids[12], 101), nullptr);

  EXPECT_EQ(cat.trim(), 18u);
  EXPECT_EQ(cat.size(), 12u);
  for (int n = 0; n < 10; n++) EXPECT_EQ(cat.revision(ids[n]), 2u) << n;  // still there: all kept
  EXPECT_NE(cat.revision(ids[12]), 0u);
  EXPECT_NE(cat.revision(ids[29]), 0u);  // learned last
  EXPECT_EQ(cat.revision(ids[13]), 0u);
}

TEST(CgroupBounds, AWalkOfTheMountMakesARowOnlyForTheCgroupAskedFor) {
  test::TempDir mount;
  for (int n = 0; n < 20; n++) fs::create_directories(mount.path() / "system.slice" / ("u" + std::to_string(n) + ".service"));
  const uint64_t asked = inode_of(mount.path() / "system.slice/u7.service");
  CgroupCatalog cat(mount.path().string(), {}, 16);
  const CgroupRow* row = cat.lookup(asked, 100);
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(row->path, "/system.slice/u7.service");
  EXPECT_EQ(row->unit, "u7.service");
  EXPECT_EQ(cat.size(), 1u);
  // Ids on no walk's way: remembered as missing, at most the limit.
  for (uint64_t id = 1; id <= 100; id++) {
    EXPECT_EQ(cat.lookup(1u << 30 | id, 100), nullptr);
    ASSERT_LE(cat.missing(), 16u);
  }
  EXPECT_EQ(cat.size(), 1u);
}

TEST(CgroupBounds, ACgroupFoundByAWalkIsNotLostToTheLimitMidWalk) {
  test::TempDir mount;
  std::vector<uint64_t> ids;
  for (int n = 0; n < 40; n++) {
    fs::create_directory(mount.path() / ("u" + std::to_string(n) + ".service"));
    ids.push_back(inode_of(mount.path() / ("u" + std::to_string(n) + ".service")));
  }
  CgroupCatalog cat(mount.path().string(), {}, 8);
  for (uint64_t id = 1; id <= 15; id++) cat.learn(1u << 30 | id, "/gone" + std::to_string(id), 100);
  // Twice the limit is reached while the walk's finds are made.
  cat.find(ids, 100);
  EXPECT_EQ(cat.missing(), 0u);
  EXPECT_LE(cat.size(), 16u);
  EXPECT_NE(cat.revision(ids.back()), 0u);
}

TEST(CgroupBounds, StaysWithinTheLimitEvenWithoutADrain) {
  CgroupCatalog cat("", {}, 16);
  for (uint64_t id = 1; id <= 1000; id++) {
    cat.learn(id, "/u" + std::to_string(id) + ".service", 100);
    ASSERT_LE(cat.size(), 32u);
  }
  EXPECT_NE(cat.revision(1000), 0u);
}

struct BoundsDrainTest : ::testing::Test, test::StoreAndProgram {
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(open_store_and_program());
    key.uid = key.euid = 1000;
  }
  CgroupCatalog cat{"", {}, 4};  // no mount: only the cgroups it learns
  // A drainer naming cgroups from `cat`, with the key counted in cgroup 777 at `path`.
  std::unique_ptr<Drainer> drainer_in_cgroup(ExePathResolver& paths, const std::string& path) {
    cat.learn(777, path, 100);
    key.cgroup_id = 777;
    auto d = std::make_unique<Drainer>(*store, paths, nullptr, DrainOptions{});
    d->set_cgroups(&cat);
    d->resume(false);
    return d;
  }
};

TEST_F(BoundsDrainTest, APathTrimmedAfterItsKeyWasStoredNamesItsLaterCounts) {
  ExePathResolver paths("/nonexistent-proc", 8);
  learn_exec(paths);
  Drainer d(*store, paths, nullptr, {});
  d.resume(false);
  // Over the limit before the drain: nothing is trimmed until it stored the key.
  for (uint64_t n = 0; n < 9; n++) gone_exe(paths, n);
  ASSERT_TRUE(d.drain(key_counted(5), kNoStacks, 100).ok);
  EXPECT_EQ(stored(exe), 5u);
  // The drain used it last; newer ones push it out.
  for (uint64_t n = 9; n < 15; n++) gone_exe(paths, n);
  ASSERT_EQ(paths.trim(), 10u);
  ASSERT_FALSE(paths.lookup(ExeId{key.exe_dev, key.exe_ino}));
  // Counted again: named from the store, where the file still is.
  ASSERT_TRUE(d.drain(key_counted(9), kNoStacks, 110).ok);
  EXPECT_EQ(stored(exe), 9u);
  EXPECT_EQ(stored(""), 0u);
}

TEST_F(BoundsDrainTest, TheCgroupOfAKeyWaitingForItsPathKeepsItsName) {
  ExePathResolver paths("/nonexistent-proc", 4);
  auto d = drainer_in_cgroup(paths, "/system.slice/waiting.service");
  for (uint64_t id = 1; id <= 6; id++) cat.learn(id, "/u" + std::to_string(id) + ".service", 100);
  // The executable is not known yet: the key is held back, its cgroup used.
  DrainResult r = d->drain(key_counted(3), kNoStacks, 101);
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(r.keys_deferred, 1u);
  cat.trim();
  ASSERT_LE(cat.size(), 4u);
  learn_exec(paths);
  ASSERT_TRUE(d->drain(key_counted(3), kNoStacks, 102).ok);
  EXPECT_EQ(stored(exe), 3u);
  bool named = false;
  for (const CgroupRow& row : store->cgroups()) named |= row.id == 777 && row.unit == "waiting.service";
  EXPECT_TRUE(named);
}

TEST_F(BoundsDrainTest, ARowIsWrittenOnceAndAgainIntoAnotherStore) {
  ExePathResolver paths("/nonexistent-proc");
  learn_exec(paths);
  auto d = drainer_in_cgroup(paths, "/system.slice/a.service");
  ASSERT_TRUE(d->drain(key_counted(1), kNoStacks, 101).ok);
  EXPECT_EQ(cat.stored_revision(777), cat.revision(777));
  ASSERT_EQ(store->cgroups().size(), 1u);
  EXPECT_EQ(store->cgroups()[0].last_seen, 101);
  ASSERT_TRUE(d->drain(key_counted(2), kNoStacks, 102).ok);
  EXPECT_EQ(store->cgroups()[0].last_seen, 101);  // nothing new: not written again
  test::FreshStore other;
  ASSERT_NO_FATAL_FAILURE(other.open_store());
  d->rebind(*other.store);
  EXPECT_EQ(cat.stored_revision(777), 0u);
  ASSERT_TRUE(d->drain(key_counted(3), kNoStacks, 103).ok);
  ASSERT_EQ(other.store->cgroups().size(), 1u);  // the new store has its row
}

TEST_F(BoundsDrainTest, AFileDeletedAfterItsRowWasWrittenIsMarkedStale) {
  ExePathResolver paths("/nonexistent-proc");
  learn_exec(paths);
  Drainer d(*store, paths, nullptr, {});
  d.resume(false);
  ASSERT_TRUE(d.drain(key_counted(1), kNoStacks, 100).ok);
  ASSERT_EQ(store->binaries(exe).size(), 1u);
  EXPECT_FALSE(store->binaries(exe)[0].path_stale);
  ASSERT_EQ(::unlink(exe.c_str()), 0);
  ASSERT_TRUE(d.drain(key_counted(2), kNoStacks, 110).ok);
  ASSERT_EQ(store->binaries(exe).size(), 1u);
  EXPECT_TRUE(store->binaries(exe)[0].path_stale);
  EXPECT_EQ(stored(exe), 2u);
}

}  // namespace
}  // namespace capaudit
