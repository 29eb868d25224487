#include "store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>

#include "test_util.h"

namespace capaudit {
namespace {

TEST(Store, CreatesSchemaAtCurrentVersion) {
  test::TempDir dir;
  std::string err;
  auto s = Store::open(dir.file("a.db"), &err);
  ASSERT_TRUE(s) << err;
  EXPECT_EQ(s->schema_version(), kSchemaVersion);
  EXPECT_TRUE(s->check_integrity(&err)) << err;
}

TEST(Store, AddCheckAccumulatesPerKeyAndAcrossReopen) {
  test::TempDir dir;
  std::string err;
  CheckFields f;
  f.cap = 0;
  f.uid = 1000;
  f.euid = 1000;
  f.cap_effective = ~0ull;  // every bit: survives the signed round trip
  f.cgroup_id = 0x8000000000000001ull;
  {
    auto s = Store::open(dir.file("a.db"), &err);
    ASSERT_TRUE(s) << err;
    ASSERT_TRUE(s->begin(&err)) << err;
    int64_t b = s->upsert_binary({64769, 42, "/usr/bin/x", ""}, false, 100);
    ASSERT_NE(b, 0) << s->last_error();
    EXPECT_EQ(s->upsert_binary({64769, 42, "/usr/bin/x", ""}, false, 200), b);
    int64_t c1 = s->add_check(b, f, 5, 100);
    int64_t c2 = s->add_check(b, f, 7, 150);
    EXPECT_EQ(c1, c2);
    CheckFields other = f;
    other.ret = -1;
    EXPECT_NE(s->add_check(b, other, 1, 150), c1);
    ASSERT_TRUE(s->commit(&err)) << err;
  }
  auto s = Store::open(dir.file("a.db"), &err);
  ASSERT_TRUE(s) << err;
  ASSERT_TRUE(s->begin(&err));
  auto bins = s->binaries(std::string("/usr/bin/x"));
  ASSERT_EQ(bins.size(), 1u);
  s->add_check(bins[0].id, f, 3, 300);
  ASSERT_TRUE(s->commit(&err));
  auto checks = s->checks(bins[0].id);
  ASSERT_EQ(checks.size(), 2u);
  // Ordered by (cap, ret): the denied row (ret -1) comes first.
  EXPECT_EQ(checks[0].f.ret, -1);
  EXPECT_EQ(checks[0].count, 1u);
  std::swap(checks[0], checks[1]);
  EXPECT_EQ(checks[0].count, 15u);
  EXPECT_EQ(checks[0].first_seen, 100);
  EXPECT_EQ(checks[0].last_seen, 300);
  EXPECT_EQ(checks[0].f.cap_effective, ~0ull);
  EXPECT_EQ(checks[0].f.cgroup_id, 0x8000000000000001ull);
  EXPECT_EQ(bins[0].first_seen, 100);
  EXPECT_EQ(bins[0].last_seen, 200);
  EXPECT_EQ(s->total_count(), 16u);
}

TEST(Store, RollbackKeepsNothingOfTheTransaction) {
  test::TempDir dir;
  std::string err;
  auto s = Store::open(dir.file("a.db"), &err);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->begin(&err));
  int64_t b = s->upsert_binary({1, 2, "/bin/y", ""}, false, 1);
  s->add_check(b, CheckFields{}, 9, 1);
  s->rollback();
  EXPECT_EQ(s->total_count(), 0u);
  EXPECT_TRUE(s->binaries().empty());
}

TEST(Store, StacksAreStoredOnce) {
  test::TempDir dir;
  std::string err;
  auto s = Store::open(dir.file("a.db"), &err);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->begin(&err));
  std::vector<std::string> frames = {"cap_capable+0x83", "inet_create+0x10"};
  int64_t a = s->put_stack(frames, "inet_create");
  int64_t b = s->put_stack(frames, "inet_create");
  EXPECT_EQ(a, b);
  EXPECT_NE(s->put_stack({"cap_capable+0x83"}, ""), a);
  int64_t bin = s->upsert_binary({1, 2, "/bin/ping", ""}, false, 1);
  int64_t chk = s->add_check(bin, CheckFields{}, 1, 1);
  ASSERT_TRUE(s->add_origin(chk, a, 2));
  ASSERT_TRUE(s->add_origin(chk, a, 3));
  ASSERT_TRUE(s->commit(&err));
  auto o = s->origins(chk);
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(o[0].origin, "inet_create");
  EXPECT_EQ(o[0].frames, frames);
  EXPECT_EQ(o[0].samples, 5u);
}

TEST(Store, DrainStateRoundTripsBinaryKeys) {
  test::TempDir dir;
  std::string err;
  auto s = Store::open(dir.file("a.db"), &err);
  ASSERT_TRUE(s);
  std::string key("c\0\x01\xff", 4);
  ASSERT_TRUE(s->set_drain_state(key, 77));
  auto st = s->load_drain_state();
  ASSERT_EQ(st.count(key), 1u);
  EXPECT_EQ(st[key], 77u);
  ASSERT_TRUE(s->clear_drain_state());
  EXPECT_TRUE(s->load_drain_state().empty());
}

TEST(Store, RefusesAForeignDatabaseNamingIt) {
  test::TempDir dir;
  std::string path = dir.file("other.db");
  sqlite3* db;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "CREATE TABLE t(x); PRAGMA user_version=3;", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  std::string err;
  EXPECT_FALSE(Store::open(path, &err));
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find("not a capaudit database"), std::string::npos) << err;
}

TEST(Store, RefusesGarbageNamingTheFile) {
  test::TempDir dir;
  std::string path = dir.file("garbage.db");
  std::ofstream(path) << std::string(8192, 'x');
  std::string err;
  EXPECT_FALSE(Store::open(path, &err));
  EXPECT_NE(err.find(path), std::string::npos) << err;
}

TEST(Store, ReadonlyOpenOfMissingDatabaseFails) {
  test::TempDir dir;
  std::string err;
  EXPECT_FALSE(Store::open(dir.file("none.db"), &err, true));
  EXPECT_NE(err.find("none.db"), std::string::npos) << err;
}

TEST(Store, RetentionRemovesOldChecksAndOrphans) {
  test::TempDir dir;
  std::string err;
  auto s = Store::open(dir.file("a.db"), &err);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->begin(&err));
  int64_t old_bin = s->upsert_binary({1, 1, "/old", ""}, false, 0);
  s->add_check(old_bin, CheckFields{}, 1, 0);
  int64_t new_bin = s->upsert_binary({1, 2, "/new", ""}, false, 10 * 86400);
  s->add_check(new_bin, CheckFields{}, 1, 10 * 86400);
  ASSERT_TRUE(s->commit(&err));
  ASSERT_TRUE(s->apply_retention(5, 10 * 86400));
  auto bins = s->binaries();
  ASSERT_EQ(bins.size(), 1u);
  EXPECT_EQ(bins[0].key.path, "/new");
}

}  // namespace
}  // namespace capaudit
