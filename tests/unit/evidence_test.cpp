// The syscall-argument evidence at a check (ca_check_key.arg) and the
// self-inspection counts, from the rules table through the store to the
// engine's decision (issue 11).
#include "capaudit.h"
#include "capnames.h"
#include "drainer.h"
#include "engine.h"
#include "rules.h"
#include "store.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sqlite3.h>
#include <sys/syscall.h>

#include <cstring>

#include "store_fixture.h"

namespace capaudit {
namespace {

constexpr uint32_t kNobody = 65534;

uint32_t arg(uint32_t family, uint32_t bits) { return (family << CA_ARG_FAMILY_SHIFT) | bits; }

const Rule* decide(int cap, std::string_view origin, uint32_t a, bool syscall_known = true, bool insetid = false) {
  return Rules::builtin().match(cap, origin, {}, insetid, CallEvidence{a, syscall_known});
}

std::string name_of(const Rule* r) { return r ? r->name : "(none)"; }

TEST(ArgEvidence, ClassesFollowTheFamily) {
  EXPECT_TRUE(arg_in_class(ArgClass::SetidHeld, {arg(CA_ARGF_SETID, CA_ARG_SETID_HELD)}));
  EXPECT_FALSE(arg_in_class(ArgClass::SetidHeld, {arg(CA_ARGF_SETID, 0)}));
  EXPECT_TRUE(arg_in_class(ArgClass::SetidNotHeld, {arg(CA_ARGF_SETID, 0)}));
  // The same bit means something else in another family.
  EXPECT_FALSE(arg_in_class(ArgClass::SetidHeld, {arg(CA_ARGF_OPEN, CA_ARG_WRITE)}));
  EXPECT_TRUE(arg_in_class(ArgClass::Write, {arg(CA_ARGF_OPEN, CA_ARG_WRITE | CA_ARG_TRUNC)}));
  EXPECT_TRUE(arg_in_class(ArgClass::Write, {arg(CA_ARGF_RW, CA_ARG_WRITE)}));
  EXPECT_TRUE(arg_in_class(ArgClass::Read, {arg(CA_ARGF_OPEN, 0)}));
  EXPECT_TRUE(arg_in_class(ArgClass::Read, {arg(CA_ARGF_RW, 0)}));
  EXPECT_FALSE(arg_in_class(ArgClass::Read, {0}));
  EXPECT_TRUE(arg_in_class(ArgClass::ModeSetgid, {arg(CA_ARGF_CHMOD, CA_ARG_MODE_SETGID)}));
  EXPECT_FALSE(arg_in_class(ArgClass::ModeSetgid, {arg(CA_ARGF_CHMOD, CA_ARG_MODE_SETUID)}));
  EXPECT_TRUE(arg_in_class(ArgClass::ModeNoSetgid, {arg(CA_ARGF_CHMOD, CA_ARG_MODE_SETUID)}));
  // Unknown: no syscall at all, not merely an unclassified one.
  EXPECT_TRUE(arg_in_class(ArgClass::Unknown, {0, false}));
  EXPECT_FALSE(arg_in_class(ArgClass::Unknown, {0, true}));
  EXPECT_TRUE(arg_in_class(ArgClass::Lookup, {arg(CA_ARGF_LOOKUP, 0)}));
  EXPECT_FALSE(arg_in_class(ArgClass::Lookup, {arg(CA_ARGF_OPEN, 0)}));
  EXPECT_FALSE(arg_in_class(ArgClass::Read, {arg(CA_ARGF_LOOKUP, 0)}));
  EXPECT_FALSE(arg_in_class(ArgClass::Unknown, {arg(CA_ARGF_LOOKUP, 0), true}));
  for (ArgClass c : {ArgClass::SetidHeld, ArgClass::SetidNotHeld, ArgClass::Write, ArgClass::Read,
                     ArgClass::ModeSetgid, ArgClass::ModeNoSetgid, ArgClass::Lookup, ArgClass::Unknown})
    EXPECT_EQ(arg_class_from_name(arg_class_name(c)), c);
}

TEST(ArgEvidence, BuiltinRulesDecideByTheRequest) {
  EXPECT_EQ(name_of(decide(CAP_SETUID, "__sys_setuid", arg(CA_ARGF_SETID, CA_ARG_SETID_HELD))), "setid_same_id");
  EXPECT_EQ(name_of(decide(CAP_SETUID, "__sys_setuid", arg(CA_ARGF_SETID, 0))), "setid_other_id");
  EXPECT_EQ(name_of(decide(CAP_SETGID, "__do_sys_setgroups", arg(CA_ARGF_SETID, 0))), "setid_other_id");
  // Not classified (an older kernel): as before, kept unverified.
  EXPECT_EQ(name_of(decide(CAP_SETUID, "__sys_setuid", 0, false)), "setid");
  EXPECT_EQ(name_of(decide(CAP_NET_ADMIN, "net_ctl_permissions", arg(CA_ARGF_OPEN, CA_ARG_WRITE))), "net_sysctl_write");
  EXPECT_EQ(name_of(decide(CAP_NET_ADMIN, "net_ctl_permissions", arg(CA_ARGF_RW, CA_ARG_WRITE))), "net_sysctl_write");
  EXPECT_EQ(name_of(decide(CAP_NET_ADMIN, "net_ctl_permissions", arg(CA_ARGF_OPEN, 0))), "net_sysctl_read");
  EXPECT_EQ(name_of(decide(CAP_NET_ADMIN, "net_ctl_permissions", 0)), "net_sysctl_mode");
  // sysctl stats and readlinks the file first: directory searches only.
  EXPECT_EQ(name_of(decide(CAP_NET_ADMIN, "net_ctl_permissions", arg(CA_ARGF_LOOKUP, 0))), "net_sysctl_lookup");
  EXPECT_EQ(decide(CAP_NET_ADMIN, "net_ctl_permissions", arg(CA_ARGF_LOOKUP, 0))->kind, RuleKind::Probe);
  EXPECT_EQ(Rules::builtin().match(CAP_NET_ADMIN, "net_ctl_permissions", {})->kind, RuleKind::CheckedFirst);
  EXPECT_EQ(name_of(decide(CAP_FSETID, "setattr_prepare", arg(CA_ARGF_CHMOD, CA_ARG_MODE_SETGID))),
            "fsetid_setgid_asked");
  EXPECT_EQ(name_of(decide(CAP_FSETID, "setattr_copy", arg(CA_ARGF_CHMOD, CA_ARG_MODE_SETUID))), "fsetid_keeps_bits");
  EXPECT_EQ(name_of(decide(CAP_FSETID, "setattr_prepare", 0, false)), "fsetid_unclassified");
  // chown's check of an existing setgid bit is no chmod: still a probe.
  EXPECT_EQ(name_of(decide(CAP_FSETID, "setattr_should_drop_sgid", 0)), "fsetid_keeps_bits");
}

TEST(ArgEvidence, ArgKeyParsesAndRejectsUnknownClasses) {
  std::string err;
  auto r = Rules::parse(R"({"rules": [{"name": "w", "kind": "requirement", "arg": ["write", "unknown"],
                                       "reason": "r"}]})",
                        "t", &err);
  ASSERT_TRUE(r) << err;
  EXPECT_EQ(r->all()[0].arg, (std::vector<ArgClass>{ArgClass::Write, ArgClass::Unknown}));
  EXPECT_TRUE(r->match(0, "f", {}, false, {arg(CA_ARGF_OPEN, CA_ARG_WRITE)}));
  EXPECT_FALSE(r->match(0, "f", {}, false, {arg(CA_ARGF_OPEN, 0)}));
  EXPECT_TRUE(r->match(0, "f", {}, false, {0, false}));

  EXPECT_FALSE(Rules::parse(R"({"rules": [{"name": "b", "kind": "probe", "arg": ["sideways"], "reason": "r"}]})", "t",
                            &err));
  EXPECT_EQ(err,
            "t: rule 0 ('b'), key 'arg': unknown class 'sideways' (setid_held, setid_not_held, write, read, "
            "mode_setgid, mode_no_setgid, lookup, unknown)");
  EXPECT_FALSE(Rules::parse(R"({"rules": [{"name": "e", "kind": "probe", "arg": [], "reason": "r"}]})", "t", &err));
  EXPECT_EQ(err, "t: rule 0 ('e'), key 'arg': must name at least one class");
  EXPECT_FALSE(Rules::parse(R"({"rules": [{"name": "s", "kind": "probe", "arg": "write", "reason": "r"}]})", "t", &err));
  EXPECT_EQ(err, "t: rule 0 ('s'), key 'arg': must be a list of strings");
}

// ---- the engine --------------------------------------------------------------

Observation one_binary(const std::string& path) {
  Observation o;
  o.binary.id = 1;
  o.binary.key = {2049, 77, path, ""};
  o.binary.first_seen = o.binary.last_seen = 1000;
  return o;
}

void add_check(Observation& o, int cap, const std::string& origin, uint32_t a, int32_t syscall, Audit audit,
               bool insetid = false, const std::string& caller = "") {
  ObservedCheck c;
  c.row.id = static_cast<int64_t>(o.checks.size()) + 10;
  c.row.binary_id = o.binary.id;
  c.row.f.cap = cap;
  c.row.f.audit = audit;
  c.row.f.insetid = insetid;
  c.row.f.uid = c.row.f.euid = kNobody;
  c.row.f.syscall = syscall;
  c.row.f.target_ns_inum = 4026531837u;
  c.row.f.cap_effective = uint64_t{1} << cap;
  c.row.f.arg = a;
  c.row.count = 1;
  OriginRow org;
  org.check_id = c.row.id;
  org.stack_id = c.row.id + 100;
  org.origin = origin;
  org.frames = {"cap_capable+0x1", "ns_capable_setid+0x2", origin + "+0x3"};
  if (!caller.empty()) org.frames.push_back(caller + "+0x4");
  org.samples = 1;
  c.origins.push_back(org);
  o.checks.push_back(std::move(c));
}

std::vector<std::string> caps_of(const Analysis& a) {
  std::vector<std::string> out;
  for (int c : a.binaries.at(0).capabilities) out.push_back(cap_name(c));
  return out;
}

using Strings = std::vector<std::string>;

TEST(ArgEvidenceEngine, SetuidToOwnIdIsNotNeededButAnotherIdIs) {
  std::vector<Observation> same{one_binary("/usr/bin/dropper")};
  add_check(same[0], CAP_SETUID, "__sys_setuid", arg(CA_ARGF_SETID, CA_ARG_SETID_HELD), SYS_setuid, Audit::Yes, true);
  Analysis a = analyze(same, Rules::builtin());
  EXPECT_EQ(caps_of(a), Strings{});
  EXPECT_NE(a.binaries[0].checks.at(0).reason.find("setid_same_id"), std::string::npos);

  std::vector<Observation> other{one_binary("/usr/bin/su")};
  add_check(other[0], CAP_SETUID, "__sys_setuid", arg(CA_ARGF_SETID, 0), SYS_setuid, Audit::Yes, true);
  EXPECT_EQ(caps_of(analyze(other, Rules::builtin())), Strings{"cap_setuid"});
}

TEST(ArgEvidenceEngine, NetSysctlWriteIsNeededReadIsNotUnknownIsKept) {
  auto run = [](uint32_t a, int32_t syscall) {
    std::vector<Observation> o{one_binary("/usr/sbin/sysctl")};
    add_check(o[0], CAP_NET_ADMIN, "net_ctl_permissions", a, syscall, Audit::No);
    return caps_of(analyze(o, Rules::builtin()));
  };
  EXPECT_EQ(run(arg(CA_ARGF_OPEN, CA_ARG_WRITE | CA_ARG_TRUNC), SYS_openat), Strings{"cap_net_admin"});
  EXPECT_EQ(run(arg(CA_ARGF_RW, CA_ARG_WRITE), SYS_write), Strings{"cap_net_admin"});
  EXPECT_EQ(run(arg(CA_ARGF_OPEN, 0), SYS_openat), Strings{});
  EXPECT_EQ(run(arg(CA_ARGF_RW, 0), SYS_read), Strings{});
  // Do no harm: a call the evidence cannot classify keeps it.
  EXPECT_EQ(run(0, -1), Strings{"cap_net_admin"});
  EXPECT_EQ(run(0, SYS_sendfile), Strings{"cap_net_admin"});
  EXPECT_EQ(run(arg(CA_ARGF_LOOKUP, 0), SYS_newfstatat), Strings{});
  EXPECT_EQ(run(arg(CA_ARGF_LOOKUP, 0), SYS_readlinkat), Strings{});
}

// ss -p reading other users' /proc/PID/fd: the evidence cannot say whether
// the program needs them, so they are kept and said to be unverified.
TEST(ArgEvidenceEngine, ProcPidReadersAreKeptUnverified) {
  std::vector<Observation> o{one_binary("/usr/bin/ss")};
  add_check(o[0], CAP_DAC_READ_SEARCH, "generic_permission", arg(CA_ARGF_OPEN, 0), SYS_openat, Audit::Unknown, false,
            "proc_fd_permission");
  add_check(o[0], CAP_SYS_PTRACE, "__ptrace_may_access", 0, SYS_readlinkat, Audit::Unknown, false, "call_proc_get_link");
  add_check(o[0], CAP_PERFMON, "mm_access", arg(CA_ARGF_OPEN, 0), SYS_openat, Audit::Unknown, false, "proc_mem_open");
  Analysis a = analyze(o, Rules::builtin());
  EXPECT_EQ(caps_of(a), (Strings{"cap_dac_read_search", "cap_perfmon", "cap_sys_ptrace"}));
  for (const CheckDecision& c : a.binaries[0].checks) {
    EXPECT_TRUE(c.required) << cap_name(c.cap);
    EXPECT_NE(c.reason.find("kept unverified"), std::string::npos) << c.reason;
    EXPECT_NE(c.reason.find("proc_pid_readers"), std::string::npos) << c.reason;
  }
  // Elsewhere (a file of another user) dac_read_search is as before.
  std::vector<Observation> cat{one_binary("/usr/bin/cat")};
  add_check(cat[0], CAP_DAC_READ_SEARCH, "generic_permission", arg(CA_ARGF_OPEN, 0), SYS_openat, Audit::Unknown);
  Analysis b = analyze(cat, Rules::builtin());
  EXPECT_EQ(b.binaries[0].checks.at(0).reason.find("proc_pid_readers"), std::string::npos);
}

// Reading /proc/kallsyms without CAP_SYSLOG succeeds with zeros for the
// addresses: capauditd's symbolizer then names nothing. Kept, said why.
TEST(ArgEvidenceEngine, KernelPointersAreKeptUnverified) {
  std::vector<Observation> o{one_binary("/usr/sbin/capauditd")};
  add_check(o[0], CAP_SYSLOG, "kallsyms_show_value", arg(CA_ARGF_OPEN, 0), SYS_openat, Audit::No);
  Analysis a = analyze(o, Rules::builtin());
  EXPECT_EQ(caps_of(a), Strings{"cap_syslog"});
  const CheckDecision& c = a.binaries[0].checks.at(0);
  EXPECT_TRUE(c.required);
  EXPECT_NE(c.reason.find("kept unverified"), std::string::npos) << c.reason;
  EXPECT_NE(c.reason.find("kernel_pointers"), std::string::npos) << c.reason;
}

TEST(ArgEvidenceEngine, FsetidNeededOnlyWhenTheSetgidBitWasAsked) {
  auto run = [](uint32_t a, int32_t syscall) {
    std::vector<Observation> o{one_binary("/usr/bin/chmod")};
    add_check(o[0], CAP_FOWNER, "setattr_prepare", a, syscall, Audit::Yes);
    add_check(o[0], CAP_FSETID, "setattr_prepare", a, syscall, Audit::Yes);
    return caps_of(analyze(o, Rules::builtin()));
  };
  EXPECT_EQ(run(arg(CA_ARGF_CHMOD, CA_ARG_MODE_SETGID), SYS_fchmodat), (Strings{"cap_fowner", "cap_fsetid"}));
  EXPECT_EQ(run(arg(CA_ARGF_CHMOD, 0), SYS_fchmodat), Strings{"cap_fowner"});
  EXPECT_EQ(run(0, -1), (Strings{"cap_fowner", "cap_fsetid"}));
}

TEST(SelfInspection, CountedWarnedAndLibcapStartupProbeDiscounted) {
  std::vector<Observation> o{one_binary("/usr/bin/inspector")};
  add_check(o[0], CAP_NET_RAW, "inet_create", 0, SYS_socket, Audit::Yes);
  // libcap's constructor on a kernel whose last capability is 40.
  for (int c : {32, 48, 40, 44, 42, 41}) o[0].self_inspections.push_back({1, CA_INSPECT_BSET, c, false, 1, 1000, 1000});
  o[0].self_inspections.push_back({1, CA_INSPECT_CAPGET_VERSION, 0, false, 3, 1000, 1000});
  o[0].self_inspections.push_back({1, CA_INSPECT_CAPGET_OTHER, 0, false, 2, 1000, 1000});
  Analysis quiet = analyze(o, Rules::builtin());
  EXPECT_EQ(quiet.binaries[0].self_inspections, 0u);
  for (const auto& w : quiet.binaries[0].warnings) EXPECT_EQ(w.find("which capabilities it holds"), std::string::npos);

  o[0].self_inspections.push_back({1, CA_INSPECT_CAPGET, 0, false, 2, 1000, 1000});
  o[0].self_inspections.push_back({1, CA_INSPECT_BSET, 12, false, 1, 1000, 1000});    // a real question
  o[0].self_inspections.push_back({1, CA_INSPECT_BSET, 40, false, 1, 1000, 1000});    // beyond the probe
  o[0].self_inspections.push_back({1, CA_INSPECT_AMBIENT, 13, false, 1, 1000, 1000});
  Analysis a = analyze(o, Rules::builtin());
  EXPECT_EQ(a.binaries[0].self_inspections, 5u);
  bool warned = false;
  for (const auto& w : a.binaries[0].warnings)
    warned = warned || w.find("capaudit profile --minimize") != std::string::npos;
  EXPECT_TRUE(warned);
  // The kernel's own evidence is unchanged by it.
  EXPECT_EQ(caps_of(a), Strings{"cap_net_raw"});
}

// capsh --caps=cap_net_raw+eip: capset keeps net_raw, no check asks it.
TEST(SelfInspection, WhatCapsetKeptIsRequiredWithAWarning) {
  std::vector<Observation> o{one_binary("/usr/sbin/capsh")};
  add_check(o[0], CAP_SETPCAP, "cap_capset", 0, SYS_capset, Audit::No);
  Analysis plain = analyze(o, Rules::builtin());
  EXPECT_EQ(caps_of(plain), Strings{});
  o[0].self_inspections.push_back({1, CA_INSPECT_CAPSET_KEEP, CAP_NET_RAW, false, 1, 1000, 1000});
  Analysis a = analyze(o, Rules::builtin());
  EXPECT_EQ(caps_of(a), Strings{"cap_net_raw"});
  bool warned = false;
  for (const auto& w : a.binaries[0].warnings) warned = warned || w.find("capset(2) to keep cap_net_raw") != std::string::npos;
  EXPECT_TRUE(warned);
  // A keep is not a question about what it holds.
  EXPECT_EQ(a.binaries[0].self_inspections, 0u);
}

// ---- the store -----------------------------------------------------------------

TEST(StoreV4, ArgIsPartOfTheCheckKeyAndSelfInspectionsAccumulate) {
  test::StoreWithBinary t;
  ASSERT_NO_FATAL_FAILURE(t.begin_with_binary());
  Store* s = t.store.get();
  const int64_t b = t.binary;
  std::string err;
  CheckFields f;
  f.cap = CAP_NET_ADMIN;
  f.arg = arg(CA_ARGF_OPEN, CA_ARG_WRITE);
  CheckFields r = f;
  r.arg = arg(CA_ARGF_OPEN, 0);
  int64_t w1 = s->add_check(b, f, 2, 100);
  int64_t r1 = s->add_check(b, r, 1, 100);
  EXPECT_NE(w1, r1);
  EXPECT_EQ(s->add_check(b, f, 1, 110), w1);
  ASSERT_TRUE(s->add_self_inspection({b, CA_INSPECT_CAPGET, 0, false, 2, 100, 100}));
  ASSERT_TRUE(s->add_self_inspection({b, CA_INSPECT_CAPGET, 0, false, 3, 120, 120}));
  ASSERT_TRUE(s->add_self_inspection({b, CA_INSPECT_BSET, 12, true, 1, 120, 120}));
  ASSERT_TRUE(s->commit(&err)) << err;
  auto checks = s->checks(b);
  ASSERT_EQ(checks.size(), 2u);
  EXPECT_FALSE(s->read_failed());
  uint64_t writes = 0;
  for (const auto& c : checks)
    if (c.f.arg == f.arg) writes = c.count;
  EXPECT_EQ(writes, 3u);
  EXPECT_EQ(s->all_checks().size(), 2u);
  auto ins = s->self_inspections(b);
  ASSERT_EQ(ins.size(), 2u);
  EXPECT_EQ(ins[0].kind, CA_INSPECT_CAPGET);
  EXPECT_EQ(ins[0].count, 5u);
  EXPECT_EQ(ins[0].last_seen, 120);
  EXPECT_EQ(ins[1].cap, 12);
  EXPECT_TRUE(ins[1].profiled);
  EXPECT_EQ(s->all_self_inspections()[b].size(), 2u);
  // Retention keeps a binary that only inspected itself, until that is old too.
  ASSERT_TRUE(s->apply_retention(1, 120 + 86400 / 2));
  EXPECT_EQ(s->binaries().size(), 1u);
}

// A version 3 database as released: checks without arg, its UNIQUE key
// without it, no self_inspections.
void downgrade_to_v3(const std::string& path) {
  ASSERT_NO_FATAL_FAILURE(test::run_sql(path, R"sql(
PRAGMA foreign_keys=OFF;
BEGIN;
DROP TABLE self_inspections;
CREATE TABLE checks_v3(
  id INTEGER PRIMARY KEY, binary_id INTEGER NOT NULL REFERENCES binaries(id), cap INTEGER NOT NULL,
  ret INTEGER NOT NULL, audit INTEGER NOT NULL, insetid INTEGER NOT NULL, uid INTEGER NOT NULL,
  euid INTEGER NOT NULL, syscall INTEGER NOT NULL, target_ns_inum INTEGER NOT NULL,
  target_ns_level INTEGER NOT NULL, cred_ns_inum INTEGER NOT NULL, cgroup_id INTEGER NOT NULL,
  cap_effective INTEGER NOT NULL, profiled INTEGER NOT NULL, count INTEGER NOT NULL,
  first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, final_verdict INTEGER NOT NULL DEFAULT 0,
  UNIQUE(binary_id, cap, ret, audit, insetid, uid, euid, syscall, target_ns_inum,
         target_ns_level, cred_ns_inum, cgroup_id, cap_effective, profiled, final_verdict));
INSERT INTO checks_v3 SELECT id, binary_id, cap, ret, audit, insetid, uid, euid, syscall, target_ns_inum,
  target_ns_level, cred_ns_inum, cgroup_id, cap_effective, profiled, count, first_seen, last_seen,
  final_verdict FROM checks;
DROP TABLE checks;
ALTER TABLE checks_v3 RENAME TO checks;
PRAGMA user_version=3;
COMMIT;
)sql"));
}

TEST(StoreV4, MigratesAVersion3DatabaseKeepingChecksAndTheirOrigins) {
  test::TempDir dir;
  std::string err;
  const std::string path = dir.file("old.db");
  CheckFields f;
  f.cap = CAP_SETUID;
  f.syscall = SYS_setuid;
  f.final_verdict = FinalVerdict::Granted;
  test::StoredCheck old;
  ASSERT_NO_FATAL_FAILURE(test::store_check_with_origin(path, f, 4, "__sys_setuid", 2, &old));
  const int64_t b = old.binary, c = old.check;
  ASSERT_NO_FATAL_FAILURE(downgrade_to_v3(path));
  {
    // Read-only, as recommend reads an old database: no arg column, read as 0.
    auto ro = Store::open(path, &err, true);
    ASSERT_TRUE(ro) << err;
    EXPECT_EQ(ro->schema_version(), 3);
    auto checks = ro->checks(b);
    ASSERT_EQ(checks.size(), 1u);
    EXPECT_EQ(checks[0].f.arg, 0u);
    EXPECT_TRUE(ro->all_self_inspections().empty());
    EXPECT_FALSE(ro->read_failed());
  }
  auto s = Store::open(path, &err);
  ASSERT_TRUE(s) << err;
  EXPECT_EQ(s->schema_version(), kSchemaVersion);  // and on through the later migrations
  EXPECT_TRUE(s->check_integrity(&err)) << err;
  auto checks = s->checks(b);
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].id, c);
  EXPECT_EQ(checks[0].count, 4u);
  EXPECT_EQ(checks[0].f.arg, 0u);
  EXPECT_EQ(checks[0].f.final_verdict, FinalVerdict::Granted);
  auto origins = s->origins(c);
  ASSERT_EQ(origins.size(), 1u);
  EXPECT_EQ(origins[0].samples, 2u);
  // The new key: the same check with another request is another row.
  ASSERT_TRUE(s->begin(&err));
  CheckFields held = f;
  held.arg = arg(CA_ARGF_SETID, CA_ARG_SETID_HELD);
  const int64_t later = test::kStoredAt + 10;
  EXPECT_NE(s->add_check(b, held, 1, later), c);
  EXPECT_EQ(s->add_check(b, f, 1, later), c);
  ASSERT_TRUE(s->add_self_inspection({b, CA_INSPECT_CAPGET, 0, false, 1, later, later}));
  ASSERT_TRUE(s->commit(&err)) << err;
  EXPECT_EQ(s->checks(b).size(), 2u);
  // Foreign keys are on again after the migration.
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(s->handle(), "PRAGMA foreign_keys", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 1);
  sqlite3_finalize(st);
}

// ---- the drainer -----------------------------------------------------------------

TEST(SelfInspectionDrain, WritesDeltasPerBinaryAndKind) {
  test::FreshStore t;
  ASSERT_NO_FATAL_FAILURE(t.open_store());
  Store* s = t.store.get();
  ExePathResolver paths;
  DrainOptions opts;
  opts.record_identity = false;
  Drainer d(*s, paths, nullptr, opts);
  ca_inspect_key k{};
  std::memcpy(k.comm, "kworker/0:1", 11);
  k.flags = CA_FLAG_KTHREAD;
  k.kind = CA_INSPECT_CAPGET;
  KernelSnapshot snap;
  snap.inspections.push_back({k, 3});
  auto none = [](int32_t) { return std::vector<uint64_t>{}; };
  DrainResult r = d.drain(snap, none, 100);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.inspections_added, 3u);
  snap.inspections[0].count = 5;
  r = d.drain(snap, none, 200);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.inspections_added, 2u);
  auto bins = s->binaries();
  ASSERT_EQ(bins.size(), 1u);
  EXPECT_EQ(bins[0].key.comm, "kworker/0:1");
  auto rows = s->self_inspections(bins[0].id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].count, 5u);
  EXPECT_EQ(rows[0].first_seen, 100);
  EXPECT_EQ(rows[0].last_seen, 200);
}

}  // namespace
}  // namespace capaudit
