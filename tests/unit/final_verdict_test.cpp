// security_capable's final verdict (issue 16): from the kernel key's flags
// to the stored column, through the version 2 -> 3 migration, to the engine,
// which never keeps a capability for a grant an LSM took back.
#include "drainer.h"
#include "engine.h"
#include "pins.h"
#include "render.h"
#include "store.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sqlite3.h>

#include <algorithm>

#include "store_fixture.h"

namespace capaudit {
namespace {

TEST(FinalVerdict, FlagsBecomeTheColumn) {
  ca_check_key k{};
  k.cap = CAP_NET_RAW;
  EXPECT_EQ(check_fields(k, false).final_verdict, FinalVerdict::Unknown);
  k.flags = CA_FLAG_FINAL_KNOWN;
  EXPECT_EQ(check_fields(k, false).final_verdict, FinalVerdict::Granted);
  k.flags = CA_FLAG_FINAL_KNOWN | CA_FLAG_FINAL_DENIED;
  CheckFields f = check_fields(k, false);
  EXPECT_EQ(f.final_verdict, FinalVerdict::Denied);
  EXPECT_TRUE(f.lsm_denied()) << "commoncap granted (ret 0), an LSM denied";
  k.ret = -1;
  EXPECT_FALSE(check_fields(k, false).lsm_denied()) << "denied by commoncap itself";
}

TEST(FinalVerdict, IsPartOfTheCheckKey) {
  test::StoreWithBinary t;
  ASSERT_NO_FATAL_FAILURE(t.begin_with_binary());
  Store* s = t.store.get();
  const int64_t b = t.binary;
  std::string err;
  CheckFields f;
  f.cap = CAP_NET_RAW;
  f.final_verdict = FinalVerdict::Granted;
  CheckFields denied = f;
  denied.final_verdict = FinalVerdict::Denied;
  int64_t c1 = s->add_check(b, f, 2, 100);
  EXPECT_EQ(s->add_check(b, f, 3, 100), c1);
  EXPECT_NE(s->add_check(b, denied, 1, 100), c1);
  ASSERT_TRUE(s->commit(&err)) << err;
  auto rows = s->checks(b);
  ASSERT_EQ(rows.size(), 2u);
  std::sort(rows.begin(), rows.end(), [](auto& x, auto& y) { return x.f.final_verdict < y.f.final_verdict; });
  EXPECT_EQ(rows[0].f.final_verdict, FinalVerdict::Granted);
  EXPECT_EQ(rows[0].count, 5u);
  EXPECT_EQ(rows[1].f.final_verdict, FinalVerdict::Denied);
  EXPECT_EQ(s->all_checks().size(), 2u);
}

// A version 2 file (as released) with a check and its origin: migrated, both
// stay, the check's final verdict unknown; read-only, it is read unmigrated.
TEST(FinalVerdict, MigrationFromVersion2KeepsChecksAndOrigins) {
  test::TempDir dir;
  std::string path = dir.file("v2.db");
  CheckFields f;
  f.cap = CAP_CHOWN;
  test::StoredCheck old;
  ASSERT_NO_FATAL_FAILURE(test::store_check_with_origin(path, f, 7, "chown_common", 3, &old));
  const int64_t b = old.binary;
  // Back to what version 2 was: the old checks table, user_version 2.
  ASSERT_NO_FATAL_FAILURE(test::run_sql(path, R"sql(
PRAGMA foreign_keys=OFF;
DROP TABLE self_inspections;
CREATE TABLE old_checks AS SELECT id, binary_id, cap, ret, audit, insetid, uid, euid, syscall, target_ns_inum,
  target_ns_level, cred_ns_inum, cgroup_id, cap_effective, profiled, count, first_seen, last_seen FROM checks;
DROP TABLE checks;
CREATE TABLE checks(
  id INTEGER PRIMARY KEY, binary_id INTEGER NOT NULL REFERENCES binaries(id), cap INTEGER NOT NULL,
  ret INTEGER NOT NULL, audit INTEGER NOT NULL, insetid INTEGER NOT NULL, uid INTEGER NOT NULL,
  euid INTEGER NOT NULL, syscall INTEGER NOT NULL, target_ns_inum INTEGER NOT NULL,
  target_ns_level INTEGER NOT NULL, cred_ns_inum INTEGER NOT NULL, cgroup_id INTEGER NOT NULL,
  cap_effective INTEGER NOT NULL, profiled INTEGER NOT NULL, count INTEGER NOT NULL,
  first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
  UNIQUE(binary_id, cap, ret, audit, insetid, uid, euid, syscall, target_ns_inum,
         target_ns_level, cred_ns_inum, cgroup_id, cap_effective, profiled));
INSERT INTO checks SELECT * FROM old_checks;
DROP TABLE old_checks;
PRAGMA user_version=2;
)sql"));

  std::string err;
  {
    auto ro = Store::open(path, &err, /*readonly=*/true);
    ASSERT_TRUE(ro) << err;
    EXPECT_EQ(ro->schema_version(), 2);
    auto rows = ro->checks(b);
    ASSERT_EQ(rows.size(), 1u) << ro->last_error();
    EXPECT_EQ(rows[0].f.final_verdict, FinalVerdict::Unknown);
  }
  auto s = Store::open(path, &err);
  ASSERT_TRUE(s) << err;
  EXPECT_EQ(s->schema_version(), kSchemaVersion);
  EXPECT_TRUE(s->check_integrity(&err)) << err;
  auto rows = s->checks(b);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].count, 7u);
  EXPECT_EQ(rows[0].f.final_verdict, FinalVerdict::Unknown);
  auto origins = s->origins(rows[0].id);
  ASSERT_EQ(origins.size(), 1u) << "check_origins survive the rebuild";
  EXPECT_EQ(origins[0].samples, 3u);
  // The foreign key follows the renamed table: deleting the check cascades.
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &h), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(h, "PRAGMA foreign_keys=ON; DELETE FROM checks;", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(h, "SELECT count(*) FROM check_origins", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 0);
  sqlite3_finalize(st);
  sqlite3_close(h);
}

Observation raw_socket(FinalVerdict fv) {
  Observation o;
  o.binary.id = 1;
  o.binary.key = {2049, 100, "/usr/bin/prog", ""};
  ObservedCheck c;
  c.row.id = 2;
  c.row.binary_id = 1;
  c.row.f.cap = CAP_NET_RAW;
  c.row.f.audit = Audit::Yes;
  c.row.f.euid = c.row.f.uid = 65534;
  c.row.f.cap_effective = uint64_t{1} << CAP_NET_RAW;
  c.row.f.final_verdict = fv;
  c.row.count = 1;
  OriginRow origin;
  origin.check_id = 2;
  origin.stack_id = 3;
  origin.frames = {"ns_capable+0x12", "inet_create+0x2a"};
  origin.origin = "inet_create";
  origin.samples = 1;
  c.origins.push_back(origin);
  o.checks.push_back(c);
  return o;
}

TEST(FinalVerdict, AGrantAnLsmTookBackIsNoReasonToKeep) {
  std::vector<Observation> granted{raw_socket(FinalVerdict::Granted)};
  Analysis a = analyze(granted, Rules::builtin());
  ASSERT_EQ(a.binaries.size(), 1u);
  EXPECT_EQ(a.binaries[0].capabilities, std::vector<int>{CAP_NET_RAW});

  std::vector<Observation> denied{raw_socket(FinalVerdict::Denied)};
  a = analyze(denied, Rules::builtin());
  ASSERT_EQ(a.binaries.size(), 1u);
  const BinaryDecision& b = a.binaries[0];
  EXPECT_TRUE(b.capabilities.empty());
  ASSERT_EQ(b.checks.size(), 1u);
  EXPECT_TRUE(b.checks[0].granted) << "verdict stays commoncap's";
  EXPECT_FALSE(b.checks[0].required);
  EXPECT_NE(b.checks[0].reason.find("denied by an LSM"), std::string::npos) << b.checks[0].reason;
  EXPECT_NE(std::find_if(b.warnings.begin(), b.warnings.end(),
                         [](const std::string& w) { return w.find("held but never used: cap_net_raw") == 0; }),
            b.warnings.end())
      << "the program ran without it";
  nlohmann::json j = to_json(a);
  EXPECT_EQ(j["binaries"][0]["checks"][0]["final_verdict"], "denied");
  EXPECT_EQ(j["binaries"][0]["checks"][0]["verdict"], "granted");

  std::vector<Observation> unknown{raw_socket(FinalVerdict::Unknown)};
  j = to_json(analyze(unknown, Rules::builtin()));
  EXPECT_TRUE(j["binaries"][0]["checks"][0]["final_verdict"].is_null());
}

TEST(FinalVerdict, LinksPinnedAndHashed) {
  auto names = all_pin_names();
  for (const char* n : {"link_final_fexit", "link_final_fentry", "link_site_cap_mmap_addr_fentry",
                        "link_site_cap_vm_enough_memory_fexit"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  CollectorOptions o;
  EXPECT_NE(config_hash(o, AttachMethod::Fexit, false, true, true), config_hash(o, AttachMethod::Fexit, false, true))
      << "a link loaded without the final verdict is not adopted by a run with it";
  EXPECT_EQ(config_hash(o, AttachMethod::Fexit, false, true), config_hash(o, AttachMethod::Fexit, false, true, false));
}

}  // namespace
}  // namespace capaudit
