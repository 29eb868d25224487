// Reads of a damaged database end, in bounded time, with an error that names
// the file: never a hang, never a partial answer taken for a whole one.
#include <gtest/gtest.h>

#include <filesystem>

#include "observations.h"
#include "store.h"
#include "store_query.h"
#include "test_util.h"

namespace capaudit {
namespace {

// Found by fuzz_store: a b-tree SQLite keeps returning rows from, on which
// `capaudit report` once ran forever (issue 9).
const std::string kDamagedLoop = std::string(CAPAUDIT_SOURCE_DIR) + "/fuzz/corpus/store/damaged-loop.db";

std::string copy_of(const test::TempDir& dir, const std::string& from) {
  std::string to = dir.file("copy.db");
  std::filesystem::copy_file(from, to);
  return to;
}

TEST(StoreDamage, LoopingBtreeEndsWithAnErrorNamingTheFile) {
  test::TempDir dir;
  const std::string db = copy_of(dir, kDamagedLoop);
  std::string err;
  auto store = Store::open(db, &err, /*readonly=*/true);
  ASSERT_TRUE(store) << err;
  auto obs = load_observations(*store, std::nullopt, &err);
  EXPECT_FALSE(obs);
  EXPECT_TRUE(store->damaged());
  EXPECT_NE(err.find("'" + db + "' is damaged"), std::string::npos) << err;
  EXPECT_NE(err.find("PRAGMA integrity_check"), std::string::npos) << err;
}

TEST(StoreDamage, EveryReadOfTheLoopingFileEnds) {
  test::TempDir dir;
  const std::string db = copy_of(dir, kDamagedLoop);
  std::string err;
  auto store = Store::open(db, &err, /*readonly=*/true);
  ASSERT_TRUE(store) << err;
  // Each read on its own, as the per-binary report and the daemon make them.
  for (int64_t id = 0; id < 8; id++) {
    store->checks(id);
    store->origins(id);
  }
  store->all_origins();
  store->all_checks();
  store->binaries();
  store->stats();
  store->load_drain_state();
  store->verified_sets("/usr/bin/tool0");
  EXPECT_TRUE(store->read_failed());
  EXPECT_TRUE(store->damaged());
}

TEST(StoreDamage, AStatementPastItsBudgetIsStopped) {
  test::TempDir dir;
  std::string err;
  auto store = Store::open(dir.file("ok.db"), &err);
  ASSERT_TRUE(store) << err;
  // Never ends by itself: only the budget can stop it.
  Query q(*store, "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT x FROM n",
          "count forever");
  uint64_t rows = 0;
  while (q.next()) rows++;
  EXPECT_TRUE(q.failed());
  EXPECT_GT(rows, 1000u);
  EXPECT_TRUE(store->read_failed());
  EXPECT_NE(store->damage_message().find("count forever: did not end within"), std::string::npos)
      << store->damage_message();
}

TEST(StoreDamage, RowsOutOfKeyOrderStopTheScan) {
  test::TempDir dir;
  std::string err;
  auto store = Store::open(dir.file("ok.db"), &err);
  ASSERT_TRUE(store) << err;
  Query q(*store, "SELECT column1 FROM (VALUES (1), (2), (3), (2), (4))", "scan");
  std::vector<int64_t> seen;
  while (q.next() && q.in_key_order(q.i64(0))) seen.push_back(q.i64(0));
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(store->damaged());
  EXPECT_NE(store->damage_message().find("rows out of key order"), std::string::npos);
}

TEST(StoreDamage, AHealthyDatabaseReadsWhole) {
  test::TempDir dir;
  std::string err;
  auto store = Store::open(dir.file("ok.db"), &err);
  ASSERT_TRUE(store) << err;
  int64_t bin = store->upsert_binary({0x801, 7, "/usr/bin/ping", ""}, false, 100);
  CheckFields f;
  f.cap = 13;
  store->add_check(bin, f, 3, 100);
  auto obs = load_observations(*store, std::nullopt, &err);
  ASSERT_TRUE(obs) << err;
  ASSERT_EQ(obs->size(), 1u);
  EXPECT_EQ((*obs)[0].checks.at(0).row.count, 3u);
  EXPECT_FALSE(store->read_failed());
}

}  // namespace
}  // namespace capaudit
