// The pieces behind capauditd's fault handling and the whole-database
// readers, without a kernel: telling a damaged database of capaudit's from
// someone else's file, naming a binary that ran while the daemon was down,
// and reading a database in bulk exactly as row by row.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "drainer.h"
#include "engine.h"
#include "render.h"
#include "store.h"
#include "drainer_fixture.h"

namespace capaudit {
namespace {

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string make_db(const test::TempDir& dir, const std::string& name) {
  std::string err, path = dir.file(name);
  auto s = Store::open(path, &err);
  EXPECT_TRUE(s) << err;
  return path;
}

TEST(StoreIdentify, TellsOursFromOthersWithoutSqlite) {
  test::TempDir dir;
  EXPECT_EQ(Store::identify(dir.file("missing.db")), Store::FileKind::Missing);
  write_file(dir.file("empty.db"), "");
  EXPECT_EQ(Store::identify(dir.file("empty.db")), Store::FileKind::Empty);
  write_file(dir.file("zero.db"), std::string(4096, '\0'));
  EXPECT_EQ(Store::identify(dir.file("zero.db")), Store::FileKind::Zeroed);
  write_file(dir.file("text.db"), "root:x:0:0:root:/root:/bin/bash\n");
  EXPECT_EQ(Store::identify(dir.file("text.db")), Store::FileKind::NotSqlite);
  EXPECT_EQ(Store::identify(make_db(dir, "ours.db")), Store::FileKind::Capaudit);

  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("other.db").c_str(), &h), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(h, "PRAGMA application_id=7; CREATE TABLE t(x);", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(h);
  EXPECT_EQ(Store::identify(dir.file("other.db")), Store::FileKind::OtherSqlite);
}

TEST(StoreOpen, SaysWhyItFailed) {
  test::TempDir dir;
  std::string err;
  Store::OpenFailure why = Store::OpenFailure::None;

  // Ours, cut short: damaged.
  const std::string ours = make_db(dir, "ours.db");
  {
    std::ifstream in(ours, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    write_file(ours, bytes.substr(0, 4096 + 100));
  }
  EXPECT_FALSE(Store::open(ours, &err, true, &why));
  EXPECT_EQ(why, Store::OpenFailure::Damaged) << err;

  write_file(dir.file("text.db"), "not a database, someone's notes\n");
  EXPECT_FALSE(Store::open(dir.file("text.db"), &err, false, &why));
  EXPECT_EQ(why, Store::OpenFailure::Damaged) << err;
  EXPECT_EQ(Store::identify(dir.file("text.db")), Store::FileKind::NotSqlite);

  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("other.db").c_str(), &h), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(h, "PRAGMA application_id=7; PRAGMA user_version=1; CREATE TABLE t(x);", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(h);
  EXPECT_FALSE(Store::open(dir.file("other.db"), &err, false, &why));
  EXPECT_EQ(why, Store::OpenFailure::Foreign) << err;

  const std::string newer = make_db(dir, "newer.db");
  ASSERT_EQ(sqlite3_open(newer.c_str(), &h), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(h, "PRAGMA user_version=999;", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(h);
  EXPECT_FALSE(Store::open(newer, &err, false, &why));
  EXPECT_EQ(why, Store::OpenFailure::TooNew) << err;

  auto fine = Store::open(dir.file("new.db"), &err, false, &why);
  EXPECT_TRUE(fine) << err;
  EXPECT_EQ(why, Store::OpenFailure::None);
}

// A database with two binaries, one of them holding checks with several
// origins sharing stacks.
std::string filled_db(const test::TempDir& dir) {
  std::string err, path = dir.file("full.db");
  auto s = Store::open(path, &err);
  EXPECT_TRUE(s) << err;
  s->begin(&err);
  int64_t st1 = s->put_stack({"cap_capable+0x1", "inet_create+0x2"}, "inet_create");
  int64_t st2 = s->put_stack({"cap_capable+0x1", "__inet_bind+0x3"}, "__inet_bind");
  for (int i = 0; i < 2; i++) {
    int64_t b = s->upsert_binary({0x801, 10u + i, "/bin/t" + std::to_string(i), ""}, false, 100);
    for (int cap : {13, 10, 21}) {
      CheckFields f;
      f.cap = cap;
      f.uid = 1000 + i;
      int64_t c = s->add_check(b, f, 3 + cap, 100);
      s->add_origin(c, st1, 1);
      if (cap != 21) s->add_origin(c, st2, 5);
    }
  }
  s->commit(&err);
  return path;
}

TEST(StoreBulk, ReadsWhatRowByRowReads) {
  test::TempDir dir;
  std::string err;
  auto s = Store::open(filled_db(dir), &err, true);
  ASSERT_TRUE(s) << err;
  std::vector<CheckRow> one_by_one;
  for (auto& b : s->binaries())
    for (auto& c : s->checks(b.id)) one_by_one.push_back(c);
  std::vector<CheckRow> bulk = s->all_checks();
  ASSERT_EQ(bulk.size(), one_by_one.size());
  auto origins = s->all_origins();
  for (const CheckRow& c : one_by_one) {
    auto it = std::find_if(bulk.begin(), bulk.end(), [&](const CheckRow& r) { return r.id == c.id; });
    ASSERT_NE(it, bulk.end());
    EXPECT_EQ(it->f, c.f);
    EXPECT_EQ(it->count, c.count);
    std::vector<OriginRow> want = s->origins(c.id);
    const std::vector<OriginRow>& got = origins[c.id];
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); i++) {
      EXPECT_EQ(got[i].stack_id, want[i].stack_id);
      EXPECT_EQ(got[i].origin, want[i].origin);
      EXPECT_EQ(got[i].frames, want[i].frames);
      EXPECT_EQ(got[i].samples, want[i].samples);
    }
  }
  // Whole database and one binary at a time: the same observations.
  auto all = load_observations(*s, std::nullopt, &err).value();
  ASSERT_EQ(all.size(), 2u);
  for (const Observation& o : all) {
    auto single = load_observations(*s, o.binary.key.path, &err).value();
    ASSERT_EQ(single.size(), 1u);
    ASSERT_EQ(single[0].checks.size(), o.checks.size());
    for (size_t i = 0; i < o.checks.size(); i++) {
      EXPECT_EQ(single[0].checks[i].row.id, o.checks[i].row.id);
      EXPECT_EQ(single[0].checks[i].origins.size(), o.checks[i].origins.size());
    }
  }
}

TEST(ReportJson, StreamedIsByteForByteTheDocument) {
  test::TempDir dir;
  std::string err;
  auto s = Store::open(filled_db(dir), &err);
  ASSERT_TRUE(s) << err;
  // A path with what JSON must escape, a newline among it.
  s->upsert_binary({0x801, 99, "/tmp/odd\n\"name\"\\\x01", ""}, false, 100);
  auto obs = load_observations(*s, std::nullopt, &err).value();
  Analysis a = analyze(obs, Rules::builtin());
  ASSERT_GE(a.binaries.size(), 3u);
  std::ostringstream streamed;
  write_json(streamed, a);
  EXPECT_EQ(streamed.str(), to_json(a).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");

  std::ostringstream empty;
  write_json(empty, Analysis{});
  EXPECT_EQ(empty.str(), to_json(Analysis{}).dump(2) + "\n");
}

struct NamingTest : ::testing::Test, test::StoreAndProgram {
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(open_store_and_program());
    key.uid = key.euid = 1000;
    key.audit = CA_AUDIT_UNKNOWN;
  }
};

using test::kNoStacks;

// A restarted daemon never saw the binary start (it ran while the daemon was
// down): the path the database holds for its (device, inode) names it, if
// the file there is still that one.
TEST_F(NamingTest, BinaryNotSeenStartingIsNamedFromTheDatabase) {
  {
    ExePathResolver paths("/nonexistent-proc");
    paths.learn_exec(ExeId{key.exe_dev, key.exe_ino}, exe, exe, 0);
    Drainer d(*store, paths, nullptr, {});
    d.resume(false);
    ASSERT_TRUE(d.drain(key_counted(5), kNoStacks, 100).ok);
  }
  ExePathResolver fresh("/nonexistent-proc");  // the restarted daemon knows nothing
  Drainer d(*store, fresh, nullptr, {});
  d.resume(true);
  DrainResult r = d.drain(key_counted(12), kNoStacks, 200);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.keys_deferred, 0u);
  uint64_t total = 0;
  for (auto& b : store->binaries(exe))
    for (auto& c : store->checks(b.id)) total += c.count;
  EXPECT_EQ(total, 12u);
}

TEST_F(NamingTest, StoredPathOfAnotherFileIsNotTrusted) {
  {
    ExePathResolver paths("/nonexistent-proc");
    paths.learn_exec(ExeId{key.exe_dev, key.exe_ino}, exe, exe, 0);
    Drainer d(*store, paths, nullptr, {});
    d.resume(false);
    ASSERT_TRUE(d.drain(key_counted(5), kNoStacks, 100).ok);
  }
  // Replaced since (as a package upgrade does): the path holds another inode.
  std::ofstream(exe + ".new") << "#!/bin/false\n";
  ASSERT_EQ(rename((exe + ".new").c_str(), exe.c_str()), 0);
  ExePathResolver fresh("/nonexistent-proc");
  Drainer d(*store, fresh, nullptr, {});
  d.resume(true);
  DrainResult r = d.drain(key_counted(12), kNoStacks, 200);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.keys_deferred, 1u);
}

// A task without an executable (exiting) carries its comm where the
// executable's identity would be.
TEST_F(NamingTest, TaskWithoutExecutableIsNamedByComm) {
  ca_check_key k{};
  k.flags = CA_FLAG_NO_EXE;
  std::strncpy(k.comm, "dying-task", sizeof k.comm);
  ExePathResolver paths("/nonexistent-proc");
  Drainer d(*store, paths, nullptr, {});
  d.resume(false);
  KernelSnapshot s;
  s.counts.push_back({k, 3});
  DrainResult r = d.drain(s, kNoStacks, 100);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.keys_deferred, 0u);
  auto bins = store->binaries();
  ASSERT_EQ(bins.size(), 1u);
  EXPECT_EQ(bins[0].key.comm, "dying-task");
  EXPECT_EQ(bins[0].key.path, "");
}

static_assert(sizeof(ca_check_key) == 64, "every check hashes the whole key: keep it to 64 bytes");

}  // namespace
}  // namespace capaudit
