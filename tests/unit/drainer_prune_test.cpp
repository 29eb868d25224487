// The drainer's side of issue 14: coarse counts stored as such, and pruning
// generation by generation without losing or repeating a count, also when
// the daemon dies between the steps (a new Drainer resuming on the store).
#include "drainer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "drainer_fixture.h"

namespace capaudit {
namespace {

using test::kNoStacks;

struct PruneTest : ::testing::Test, test::StoreAndProgram {
  ExePathResolver paths{"/nonexistent-proc"};

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(open_store_and_program());
    key.uid = key.euid = 1000;
    key.target_ns_inum = 4026531837u;
    key.cred_ns_inum = 4026531837u;
    key.cgroup_id = 7;
    key.audit = CA_AUDIT_YES;
    learn_exec(paths);
  }

  std::unique_ptr<Drainer> drainer(bool adopted) {
    auto d = std::make_unique<Drainer>(*store, paths, nullptr, DrainOptions{});
    d->resume(adopted);
    return d;
  }

  uint64_t stored() {
    uint64_t total = 0;
    for (auto& b : store->binaries())
      for (auto& c : store->checks(b.id)) total += c.count;
    return total;
  }
};

KernelSnapshot snap(uint64_t epoch, std::vector<CheckCount> counts, bool final = false) {
  KernelSnapshot s;
  s.epoch = epoch;
  s.retired_final = final;
  s.counts = std::move(counts);
  return s;
}

TEST_F(PruneTest, CoarseAndCapOnlyCountsAreStoredMarked) {
  auto d = drainer(false);
  ca_check_key coarse = key;
  coarse.flags = CA_FLAG_COARSE;
  coarse.uid = coarse.euid = coarse.target_ns_inum = coarse.cred_ns_inum = 0;
  coarse.cgroup_id = 0;
  ca_check_key cap_only{};
  cap_only.flags = CA_FLAG_COARSE | CA_FLAG_CAP_ONLY;
  cap_only.cap = 21;
  ASSERT_TRUE(d->drain(snap(0, {{key, 3, 0}, {coarse, 4, 0}, {cap_only, 5, 0}}), kNoStacks, 100).ok);
  EXPECT_EQ(stored(), 12u);
  int exact = 0, marked = 0;
  for (auto& b : store->binaries())
    for (auto& c : store->checks(b.id)) {
      if (!c.f.coarse) {
        exact++;
        EXPECT_EQ(c.f.uid, 1000u);
        continue;
      }
      marked++;
      EXPECT_EQ(c.f.uid, UINT32_MAX);
      EXPECT_EQ(c.f.target_ns_inum, 0u);
      if (c.f.cap == 21) EXPECT_EQ(b.key.comm, kCapOnlyComm);
      else EXPECT_EQ(b.key.path, exe);
    }
  EXPECT_EQ(exact, 1);
  EXPECT_EQ(marked, 2);
}

// Generation 0 drained, the epoch moves on, its final value drained, its map
// emptied; the key counts again from zero in generation 1, then in 2 (the
// map of generation 0 again): every check once.
TEST_F(PruneTest, PruningGenerationsStoresEveryCheckOnce) {
  auto d = drainer(false);
  ASSERT_TRUE(d->drain(snap(0, {{key, 10, 0}}), kNoStacks, 100).ok);
  // Moved on: generation 0 final at 12, generation 1 already has 2.
  ASSERT_TRUE(d->drain(snap(1, {{key, 12, 0}, {key, 2, 1}}, true), kNoStacks, 110).ok);
  EXPECT_EQ(d->drained_generation(), 0);
  EXPECT_EQ(stored(), 14u);
  // Not yet emptied: read again, passed by.
  ASSERT_TRUE(d->drain(snap(1, {{key, 12, 0}, {key, 3, 1}}), kNoStacks, 120).ok);
  EXPECT_EQ(stored(), 15u);
  std::string err;
  ASSERT_TRUE(d->forget_generation(0, &err)) << err;
  EXPECT_EQ(d->cleared_generation(), 0);
  ASSERT_TRUE(d->drain(snap(1, {{key, 5, 1}}), kNoStacks, 130).ok);
  EXPECT_EQ(stored(), 17u);
  // Generation 2 counts in generation 0's emptied map, from zero.
  ASSERT_TRUE(d->drain(snap(2, {{key, 6, 1}, {key, 4, 0}}, true), kNoStacks, 140).ok);
  ASSERT_TRUE(d->forget_generation(1, &err)) << err;
  ASSERT_TRUE(d->drain(snap(2, {{key, 9, 0}}), kNoStacks, 150).ok);
  EXPECT_EQ(stored(), 12u + 6u + 9u);  // each generation's final count
}

// kill -9 at each point of a pruning step: the next run resumes from the
// store's drain state and still stores every check exactly once.
TEST_F(PruneTest, PruningSurvivesADeathBetweenItsSteps) {
  {
    auto d = drainer(false);
    ASSERT_TRUE(d->drain(snap(0, {{key, 10, 0}}), kNoStacks, 100).ok);
  }  // died right after moving the epoch on: generation 0 not drained final
  {
    auto d = drainer(true);
    EXPECT_EQ(d->drained_generation(), -1);
    ASSERT_TRUE(d->drain(snap(1, {{key, 11, 0}, {key, 1, 1}}, true), kNoStacks, 110).ok);
    EXPECT_EQ(stored(), 12u);
  }  // died before emptying generation 0
  {
    auto d = drainer(true);
    EXPECT_EQ(d->drained_generation(), 0);
    EXPECT_EQ(d->cleared_generation(), -1);
    ASSERT_TRUE(d->drain(snap(1, {{key, 11, 0}, {key, 2, 1}}), kNoStacks, 120).ok);
    EXPECT_EQ(stored(), 13u);
  }  // died after emptying the map, before forgetting its drain state
  {
    auto d = drainer(true);
    ASSERT_TRUE(d->drain(snap(1, {{key, 3, 1}}), kNoStacks, 130).ok);
    std::string err;
    ASSERT_TRUE(d->forget_generation(0, &err)) << err;
  }
  auto d = drainer(true);
  EXPECT_EQ(d->cleared_generation(), 0);
  ASSERT_TRUE(d->drain(snap(2, {{key, 4, 1}, {key, 1, 0}}, true), kNoStacks, 140).ok);
  EXPECT_EQ(stored(), 4u + 1u + 10u + 1u);
}

}  // namespace
}  // namespace capaudit
