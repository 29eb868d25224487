#include "drainer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>

#include "drainer_fixture.h"

namespace capaudit {
namespace {

struct DrainerTest : ::testing::Test, test::StoreAndProgram {
  ExePathResolver paths{"/nonexistent-proc"};

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(open_store_and_program());
    key.cap = 0;
    key.uid = key.euid = 1000;
    key.target_ns_inum = 4026531837u;
    key.audit = CA_AUDIT_UNKNOWN;
    learn_exec(paths);
  }

  KernelSnapshot snap(uint64_t count) {
    KernelSnapshot s;
    s.counts.push_back({key, count});
    s.stats.v[CA_STAT_CHECKS] = count;
    return s;
  }
};

using test::kNoStacks;

TEST_F(DrainerTest, StoresDeltasOfMonotonicCounters) {
  Drainer d(*store, paths, nullptr, {});
  d.resume(false);
  ASSERT_TRUE(d.drain(snap(5), kNoStacks, 100).ok);
  ASSERT_TRUE(d.drain(snap(12), kNoStacks, 110).ok);
  ASSERT_TRUE(d.drain(snap(12), kNoStacks, 120).ok);
  EXPECT_EQ(stored(exe), 12u);
  EXPECT_EQ(d.checks_written(), 12u);
  EXPECT_EQ(store->stats()["checks"], 12u);
}

TEST_F(DrainerTest, FailedTransactionLosesNothing) {
  Drainer d(*store, paths, nullptr, {});
  d.resume(false);
  ASSERT_TRUE(d.drain(snap(5), kNoStacks, 100).ok);
  // Stands in for a full disk: every insert into checks fails.
  ASSERT_EQ(sqlite3_exec(store->handle(),
                         "CREATE TEMP TRIGGER fail BEFORE UPDATE ON main.checks "
                         "BEGIN SELECT RAISE(FAIL, 'simulated write failure'); END;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  DrainResult r = d.drain(snap(9), kNoStacks, 110);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("simulated write failure"), std::string::npos) << r.error;
  EXPECT_EQ(stored(exe), 5u);
  ASSERT_EQ(sqlite3_exec(store->handle(), "DROP TRIGGER temp.fail", nullptr, nullptr, nullptr), SQLITE_OK);
  ASSERT_TRUE(d.drain(snap(11), kNoStacks, 120).ok);
  EXPECT_EQ(stored(exe), 11u);
}

TEST_F(DrainerTest, ResumingOnAdoptedMapsDoesNotCountTwice) {
  {
    Drainer d(*store, paths, nullptr, {});
    d.resume(false);
    ASSERT_TRUE(d.drain(snap(100), kNoStacks, 100).ok);
  }
  Drainer again(*store, paths, nullptr, {});
  again.resume(true);  // the pinned maps still say 100, then 250
  ASSERT_TRUE(again.drain(snap(250), kNoStacks, 110).ok);
  EXPECT_EQ(stored(exe), 250u);
}

TEST_F(DrainerTest, FreshMapsAddToWhatWasStored) {
  {
    Drainer d(*store, paths, nullptr, {});
    d.resume(false);
    ASSERT_TRUE(d.drain(snap(100), kNoStacks, 100).ok);
  }
  Drainer again(*store, paths, nullptr, {});
  again.resume(false);  // new kernel maps count from zero
  ASSERT_TRUE(again.drain(snap(30), kNoStacks, 110).ok);
  EXPECT_EQ(stored(exe), 130u);
}

TEST_F(DrainerTest, UnresolvedExecutableIsHeldBackThenStored) {
  DrainOptions o;
  o.unresolved_grace_drains = 2;
  Drainer d(*store, paths, nullptr, o);
  d.resume(false);
  key.exe_ino += 1000000;  // nothing knows this inode
  EXPECT_EQ(d.drain(snap(4), kNoStacks, 1).keys_deferred, 1u);
  EXPECT_EQ(d.drain(snap(6), kNoStacks, 2).keys_deferred, 1u);
  DrainResult r = d.drain(snap(7), kNoStacks, 3);
  EXPECT_EQ(r.keys_written, 1u);
  EXPECT_EQ(stored(""), 7u);
}

TEST_F(DrainerTest, IgnoredPathsAreNotStored) {
  DrainOptions o;
  o.ignore_paths = {dir.path().string()};
  Drainer d(*store, paths, nullptr, o);
  d.resume(false);
  DrainResult r = d.drain(snap(3), kNoStacks, 1);
  EXPECT_EQ(r.keys_ignored, 1u);
  EXPECT_TRUE(store->binaries().empty());
}

TEST_F(DrainerTest, KernelThreadsAreKeptByComm) {
  Drainer d(*store, paths, nullptr, {});
  d.resume(false);
  ca_check_key k{};
  k.flags = CA_FLAG_KTHREAD;
  std::strcpy(k.comm, "kworker/0:1");
  KernelSnapshot s;
  s.counts.push_back({k, 2});
  ASSERT_TRUE(d.drain(s, kNoStacks, 1).ok);
  auto bins = store->binaries();
  ASSERT_EQ(bins.size(), 1u);
  EXPECT_EQ(bins[0].key.comm, "kworker/0:1");
  EXPECT_EQ(bins[0].key.path, "");
}

TEST_F(DrainerTest, OriginsAreSymbolisedAndDeduplicated) {
  Kallsyms syms = Kallsyms::from_text(
      "ffffffff81000000 T cap_capable\n"
      "ffffffff81000100 T security_capable\n"
      "ffffffff81000200 T inet_create\n"
      "ffffffff81000300 T __sock_create\n");
  Drainer d(*store, paths, &syms, {});
  d.resume(false);
  KernelSnapshot s = snap(3);
  s.origins.push_back({key, 7, 2});
  int reads = 0;
  StackReader reader = [&](int32_t id) {
    reads++;
    EXPECT_EQ(id, 7);
    return std::vector<uint64_t>{0xffffffff81000083, 0xffffffff8100013b, 0xffffffff81000210};
  };
  ASSERT_TRUE(d.drain(s, reader, 1).ok);
  s.origins[0].samples = 5;
  ASSERT_TRUE(d.drain(s, reader, 2).ok);
  EXPECT_EQ(reads, 1);
  auto bins = store->binaries(exe);
  ASSERT_EQ(bins.size(), 1u);
  auto checks = store->checks(bins[0].id);
  ASSERT_EQ(checks.size(), 1u);
  auto o = store->origins(checks[0].id);
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(o[0].origin, "inet_create");
  EXPECT_EQ(o[0].samples, 5u);
  ASSERT_EQ(o[0].frames.size(), 3u);
  EXPECT_EQ(o[0].frames[0], "cap_capable+0x83");
}

}  // namespace
}  // namespace capaudit
