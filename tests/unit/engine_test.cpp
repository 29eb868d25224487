// The engine on synthetic observations shaped like what the daemon records
// on this kernel (origins and frames as measured with bpftrace).
#include "engine.h"
#include "render.h"

#include "capnames.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <algorithm>

namespace capaudit {
namespace {

constexpr uint32_t kNobody = 65534;
constexpr uint64_t kAllCaps = (uint64_t{1} << (CAP_CHECKPOINT_RESTORE + 1)) - 1;

uint64_t bits(std::initializer_list<int> caps) {
  uint64_t b = 0;
  for (int c : caps) b |= uint64_t{1} << c;
  return b;
}

// One check as the daemon stores it: fields, count, and its stacks
// (innermost first, starting with the check machinery).
struct Spec {
  int cap = 0;
  bool granted = true;
  uint64_t count = 1;
  std::vector<std::vector<std::string>> stacks;  // each: function names after the machinery
  Audit audit = Audit::Unknown;
  uint32_t euid = kNobody;
  uint64_t effective = 0;
  int32_t syscall = -1;
  uint32_t ns_level = 0;
  bool insetid = false;
};

class Builder {
 public:
  explicit Builder(std::string path = "/usr/bin/prog", uint64_t ino = 100, int64_t seen = 1000) {
    o_.binary.id = next_id_++;
    o_.binary.key.path = std::move(path);
    o_.binary.key.dev = 2049;
    o_.binary.key.ino = ino;
    o_.binary.first_seen = seen;
    o_.binary.last_seen = seen;
  }

  Builder& add(const Spec& s) {
    ObservedCheck c;
    c.row.id = next_id_++;
    c.row.binary_id = o_.binary.id;
    c.row.f.cap = s.cap;
    c.row.f.ret = s.granted ? 0 : -1;
    c.row.f.audit = s.audit;
    c.row.f.insetid = s.insetid;
    c.row.f.uid = s.euid;
    c.row.f.euid = s.euid;
    c.row.f.syscall = s.syscall;
    c.row.f.target_ns_level = s.ns_level;
    c.row.f.target_ns_inum = s.ns_level ? 4026532000u : 4026531837u;
    c.row.f.cap_effective = s.effective;
    c.row.count = s.count;
    c.row.first_seen = o_.binary.first_seen;
    c.row.last_seen = o_.binary.last_seen;
    for (const auto& stack : s.stacks) {
      OriginRow o;
      o.check_id = c.row.id;
      o.stack_id = next_id_++;
      o.frames = {"cap_capable+0x83", "security_capable+0x40", "ns_capable+0x12"};
      for (const std::string& fn : stack) o.frames.push_back(fn + "+0x2a");
      o.origin = stack.front();
      o.samples = 1;
      c.origins.push_back(std::move(o));
    }
    o_.checks.push_back(std::move(c));
    return *this;
  }

  Observation build() const { return o_; }

 private:
  static inline int64_t next_id_ = 1;
  Observation o_;
};

struct Result {
  std::vector<Observation> obs;  // the analysis points into these
  Analysis a;
  const BinaryDecision& only() const { return a.binaries.at(0); }
};

Result run(std::vector<Observation> obs) {
  Result r{std::move(obs), {}};
  r.a = analyze(r.obs, Rules::builtin());
  return r;
}

std::vector<std::string> names(const BinaryDecision& b) {
  std::vector<std::string> out;
  for (int c : b.capabilities) out.push_back(cap_name(c));
  return out;
}

const CheckDecision* find(const BinaryDecision& b, int cap, bool granted) {
  for (const CheckDecision& c : b.checks) {
    if (c.cap == cap && c.granted == granted) return &c;
  }
  return nullptr;
}

using Strings = std::vector<std::string>;

// The kernel interfaces: the 6.14+ tracepoint (no audit flag) and the
// methods that know it (fentry or kprobe on cap_capable).
class EngineByAudit : public ::testing::TestWithParam<bool> {
 protected:
  // What a method that knows the flag reports; the tracepoint reports Unknown.
  Audit audit(bool audited) const {
    if (!GetParam()) return Audit::Unknown;
    return audited ? Audit::Yes : Audit::No;
  }
};

INSTANTIATE_TEST_SUITE_P(Interfaces, EngineByAudit, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "AuditKnown" : "Tracepoint"; });

TEST_P(EngineByAudit, PingNeedsOnlyNetRaw) {
  uint64_t held = bits({CAP_NET_RAW});
  auto r = run({Builder("/usr/bin/ping")
                    .add({.cap = CAP_NET_RAW, .stacks = {{"inet_create", "__sock_create", "__sys_socket"}},
                          .audit = audit(true), .effective = held, .syscall = SYS_socket})
                    .add({.cap = CAP_SYS_ADMIN, .count = 9,
                          .stacks = {{"security_vm_enough_memory_mm", "__mmap_region", "do_mmap"},
                                     {"security_vm_enough_memory_mm", "do_brk_flags"}},
                          .audit = audit(false), .effective = held})
                    .add({.cap = CAP_SETPCAP, .count = 4, .stacks = {{"cap_capset", "security_capset"}},
                          .audit = audit(true), .effective = held, .syscall = SYS_capset})
                    .build()});
  const BinaryDecision& b = r.only();
  EXPECT_EQ(names(b), Strings{"cap_net_raw"});
  EXPECT_EQ(to_json(r.a)["binaries"][0]["setcap"], "cap_net_raw+ep");
  const CheckDecision* vm = find(b, CAP_SYS_ADMIN, true);
  ASSERT_TRUE(vm);
  EXPECT_FALSE(vm->required);
  EXPECT_EQ(vm->count, 9u);
  EXPECT_NE(vm->reason.find("probe"), std::string::npos) << vm->reason;
  EXPECT_EQ(vm->origins, Strings{"security_vm_enough_memory_mm"});
  const CheckDecision* capset = find(b, CAP_SETPCAP, true);
  ASSERT_TRUE(capset);
  EXPECT_FALSE(capset->required);
  EXPECT_NE(capset->reason.find("capset"), std::string::npos) << capset->reason;
  const CheckDecision* raw = find(b, CAP_NET_RAW, true);
  ASSERT_TRUE(raw);
  EXPECT_TRUE(raw->required);
  EXPECT_EQ(raw->uids, std::vector<uint32_t>{kNobody});
}

// ss: a sock_diag dump asks CAP_NET_ADMIN only to add socket marks.
TEST_P(EngineByAudit, SockDiagDumpNeedsNothing) {
  auto r = run({Builder("/usr/bin/ss")
                    .add({.cap = CAP_NET_ADMIN, .stacks = {{"tcp_diag_dump", "inet_diag_dump", "netlink_dump"}},
                          .audit = audit(true), .effective = kAllCaps, .syscall = SYS_recvmsg})
                    .build()});
  const BinaryDecision& b = r.only();
  EXPECT_TRUE(b.capabilities.empty()) << names(b)[0];
  const CheckDecision* c = find(b, CAP_NET_ADMIN, true);
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->required);
  EXPECT_NE(c->reason.find("sock_diag_net_admin"), std::string::npos) << c->reason;
}

// touch of a file one may write: cap_fowner at may_setattr is asked before
// write permission, so a grant proves nothing.
TEST_P(EngineByAudit, TouchToNowKeepsFownerUnverified) {
  auto r = run({Builder("/usr/bin/touch")
                    .add({.cap = CAP_FOWNER, .stacks = {{"may_setattr", "notify_change", "vfs_utimes"}},
                          .audit = audit(true), .effective = kAllCaps, .syscall = SYS_utimensat})
                    .build()});
  const BinaryDecision& b = r.only();
  EXPECT_EQ(names(b), Strings{"cap_fowner"});
  const CheckDecision* c = find(b, CAP_FOWNER, true);
  ASSERT_TRUE(c);
  EXPECT_NE(c->reason.find("unverified"), std::string::npos) << c->reason;
}

TEST_P(EngineByAudit, ForkMmapLoopNeedsNothing) {
  auto r = run({Builder("/usr/bin/fork_mmap_loop")
                    .add({.cap = CAP_SYS_ADMIN, .count = 40,
                          .stacks = {{"security_vm_enough_memory_mm", "__mmap_region"},
                                     {"security_vm_enough_memory_mm", "dup_mmap", "copy_process"}},
                          .audit = audit(false), .euid = 0, .effective = kAllCaps})
                    .build()});
  const BinaryDecision& b = r.only();
  EXPECT_TRUE(b.capabilities.empty());
  EXPECT_TRUE(to_json(r.a)["binaries"][0]["setcap"].is_null());
  // Seen only as root: say how to see the ownership checks root skips.
  ASSERT_FALSE(b.warnings.empty());
  EXPECT_NE(b.warnings[0].find("capaudit profile --user"), std::string::npos);
  bool held_unused = std::any_of(b.warnings.begin(), b.warnings.end(),
                                 [](const std::string& w) { return w.find("held but never used") == 0; });
  EXPECT_TRUE(held_unused);
}

TEST_P(EngineByAudit, ReadingRootFileWithAllCapsNeedsReadSearch) {
  // DAC_READ_SEARCH is asked first and granted: DAC_OVERRIDE is never asked.
  auto r = run({Builder("/usr/bin/read_file")
                    .add({.cap = CAP_DAC_READ_SEARCH, .stacks = {{"generic_permission", "inode_permission", "may_open"}},
                          .audit = audit(true), .effective = kAllCaps, .syscall = SYS_openat})
                    .build()});
  EXPECT_EQ(names(r.only()), Strings{"cap_dac_read_search"});
}

TEST_P(EngineByAudit, HoldingOnlyDacOverrideForReadsRecommendsReadSearch) {
  uint64_t held = bits({CAP_DAC_OVERRIDE});
  auto r = run({Builder("/usr/bin/read_file")
                    .add({.cap = CAP_DAC_READ_SEARCH, .granted = false, .stacks = {{"generic_permission", "may_open"}},
                          .audit = audit(true), .effective = held, .syscall = SYS_openat})
                    .add({.cap = CAP_DAC_OVERRIDE, .stacks = {{"generic_permission", "may_open"}},
                          .audit = audit(true), .effective = held, .syscall = SYS_openat})
                    .build()});
  const BinaryDecision& b = r.only();
  EXPECT_EQ(names(b), Strings{"cap_dac_read_search"});
  const CheckDecision* wide = find(b, CAP_DAC_OVERRIDE, true);
  ASSERT_TRUE(wide);
  EXPECT_FALSE(wide->required);
  EXPECT_EQ(wide->replaced_by, CAP_DAC_READ_SEARCH);
  const CheckDecision* narrow = find(b, CAP_DAC_READ_SEARCH, false);
  ASSERT_TRUE(narrow);
  EXPECT_TRUE(narrow->required) << narrow->reason;
  EXPECT_EQ(to_json(r.a)["binaries"][0]["checks"][0]["replaced_by"], "cap_dac_read_search");
  bool spare = std::any_of(b.warnings.begin(), b.warnings.end(), [](const std::string& w) {
    return w.find("not needed: cap_dac_override") != std::string::npos;
  });
  EXPECT_TRUE(spare);
}

TEST_P(EngineByAudit, WritingNeedsDacOverride) {
  auto r = run({Builder("/usr/bin/writer")
                    .add({.cap = CAP_DAC_OVERRIDE, .count = 2, .stacks = {{"generic_permission", "may_open"}},
                          .audit = audit(true), .effective = kAllCaps, .syscall = SYS_openat})
                    .build()});
  EXPECT_EQ(names(r.only()), Strings{"cap_dac_override"});
}

TEST_P(EngineByAudit, ReadsAndWritesKeepDacOverrideAlone) {
  // One read (READ_SEARCH denied, OVERRIDE granted) and two writes (OVERRIDE
  // only): DAC_OVERRIDE is needed anyway and covers the read too.
  uint64_t held = bits({CAP_DAC_OVERRIDE});
  auto r = run({Builder("/usr/bin/editor")
                    .add({.cap = CAP_DAC_READ_SEARCH, .granted = false, .stacks = {{"generic_permission"}},
                          .audit = audit(true), .effective = held, .syscall = SYS_openat})
                    .add({.cap = CAP_DAC_OVERRIDE, .count = 3, .stacks = {{"generic_permission"}},
                          .audit = audit(true), .effective = held, .syscall = SYS_openat})
                    .build()});
  const BinaryDecision& b = r.only();
  EXPECT_EQ(names(b), Strings{"cap_dac_override"});
  const CheckDecision* wide = find(b, CAP_DAC_OVERRIDE, true);
  ASSERT_TRUE(wide);
  EXPECT_TRUE(wide->required);
  EXPECT_NE(wide->reason.find("1 of 3"), std::string::npos) << wide->reason;
  const CheckDecision* narrow = find(b, CAP_DAC_READ_SEARCH, false);
  ASSERT_TRUE(narrow);
  EXPECT_FALSE(narrow->required);
}

TEST_P(EngineByAudit, SearchGrantedAndWriteNeedOnlyDacOverride) {
  // touch in a root-only directory with every capability: the lookup asks
  // READ_SEARCH (granted), the create asks OVERRIDE; OVERRIDE alone does both.
  auto r = run({Builder("/usr/bin/touch")
                    .add({.cap = CAP_DAC_READ_SEARCH, .stacks = {{"generic_permission", "inode_permission"}},
                          .audit = audit(true), .effective = kAllCaps, .syscall = SYS_openat})
                    .add({.cap = CAP_DAC_OVERRIDE, .stacks = {{"generic_permission", "may_create"}},
                          .audit = audit(true), .effective = kAllCaps, .syscall = SYS_openat})
                    .build()});
  const BinaryDecision& b = r.only();
  EXPECT_EQ(names(b), Strings{"cap_dac_override"});
  const CheckDecision* narrow = find(b, CAP_DAC_READ_SEARCH, true);
  ASSERT_TRUE(narrow);
  EXPECT_FALSE(narrow->required);
  EXPECT_NE(narrow->reason.find("passes the same check"), std::string::npos) << narrow->reason;
}

TEST_P(EngineByAudit, ReadSearchOutsideGenericPermissionIsNotCovered) {
  // open_by_handle_at asks CAP_DAC_READ_SEARCH alone: OVERRIDE does not stand in.
  auto r = run({Builder("/usr/bin/handles")
                    .add({.cap = CAP_DAC_READ_SEARCH, .stacks = {{"do_handle_open"}}, .audit = audit(true),
                          .effective = kAllCaps})
                    .add({.cap = CAP_DAC_OVERRIDE, .stacks = {{"generic_permission", "may_create"}},
                          .audit = audit(true), .effective = kAllCaps})
                    .build()});
  EXPECT_EQ(names(r.only()), (Strings{"cap_dac_override", "cap_dac_read_search"}));
}

TEST_P(EngineByAudit, NarrowDeniedInAnotherSyscallIsNoEvidence) {
  uint64_t held = bits({CAP_DAC_OVERRIDE});
  auto r = run({Builder("/usr/bin/x")
                    .add({.cap = CAP_DAC_READ_SEARCH, .granted = false, .stacks = {{"generic_permission"}},
                          .audit = audit(true), .effective = held, .syscall = SYS_execve})
                    .add({.cap = CAP_DAC_OVERRIDE, .stacks = {{"generic_permission"}}, .audit = audit(true),
                          .effective = held, .syscall = SYS_openat})
                    .build()});
  EXPECT_EQ(names(r.only()), Strings{"cap_dac_override"});
}

TEST_P(EngineByAudit, ChmodOfAnothersFileNeedsOnlyFowner) {
  uint64_t held = kAllCaps;
  auto r = run({Builder("/usr/bin/chmod_file")
                    .add({.cap = CAP_FOWNER, .stacks = {{"setattr_prepare", "ext4_setattr", "notify_change"}},
                          .audit = audit(true), .effective = held, .syscall = SYS_fchmodat})
                    .add({.cap = CAP_FSETID, .count = 2,
                          .stacks = {{"setattr_prepare", "ext4_setattr"}, {"setattr_copy", "ext4_setattr"}},
                          .audit = audit(true), .effective = held, .syscall = SYS_fchmodat})
                    .build()});
  const BinaryDecision& b = r.only();
  EXPECT_EQ(names(b), Strings{"cap_fowner"});
  const CheckDecision* fsetid = find(b, CAP_FSETID, true);
  ASSERT_TRUE(fsetid);
  EXPECT_NE(fsetid->reason.find("setgid bit survives"), std::string::npos) << fsetid->reason;
}

TEST_P(EngineByAudit, SethostnameInOwnUserNamespaceNeedsNothing) {
  auto r = run({Builder("/usr/bin/userns_sethostname")
                    .add({.cap = CAP_SYS_ADMIN, .stacks = {{"__x64_sys_sethostname"}}, .audit = audit(true),
                          .euid = 0, .effective = kAllCaps, .syscall = SYS_sethostname, .ns_level = 1})
                    .build()});
  const BinaryDecision& b = r.only();
  EXPECT_TRUE(b.capabilities.empty());
  ASSERT_EQ(b.checks.size(), 1u);
  EXPECT_TRUE(b.checks[0].only_other_user_ns);
  EXPECT_NE(b.checks[0].reason.find("user namespace"), std::string::npos);
}

TEST_P(EngineByAudit, BindBelow1024NeedsNetBindService) {
  auto r = run({Builder("/usr/bin/bind_low_port")
                    .add({.cap = CAP_NET_BIND_SERVICE, .stacks = {{"__inet_bind", "inet_bind_sk", "__sys_bind"}},
                          .audit = audit(true), .effective = bits({CAP_NET_BIND_SERVICE}), .syscall = SYS_bind})
                    .build()});
  EXPECT_EQ(names(r.only()), Strings{"cap_net_bind_service"});
  EXPECT_EQ(to_json(r.a)["binaries"][0]["setcap"], "cap_net_bind_service+ep");
}

TEST_P(EngineByAudit, DeniedIsNeverRequired) {
  auto r = run({Builder("/usr/bin/raw_socket")
                    .add({.cap = CAP_NET_RAW, .granted = false, .count = 2, .stacks = {{"inet_create"}},
                          .audit = audit(true), .syscall = SYS_socket})
                    .build()});
  const BinaryDecision& b = r.only();
  EXPECT_TRUE(b.capabilities.empty());
  EXPECT_EQ(b.checks[0].reason, "denied 2 times: if the program failed because of it, it needs cap_net_raw");
}

TEST_P(EngineByAudit, RealtimeIoprioNeedsSysNice) {
  // ioprio asks CAP_SYS_ADMIN first: a grant of it means CAP_SYS_NICE would do.
  auto r = run({Builder("/usr/bin/ionice")
                    .add({.cap = CAP_SYS_ADMIN, .stacks = {{"ioprio_check_cap", "__do_sys_ioprio_set"}},
                          .audit = audit(true), .effective = kAllCaps, .syscall = SYS_ioprio_set})
                    .build()});
  const BinaryDecision& b = r.only();
  EXPECT_EQ(names(b), Strings{"cap_sys_nice"});
  EXPECT_EQ(b.checks[0].replaced_by, CAP_SYS_NICE);
}

TEST_P(EngineByAudit, SoMarkWithNetAdminRecommendsNetRaw) {
  uint64_t held = bits({CAP_NET_ADMIN});
  auto r = run({Builder("/usr/bin/marker")
                    .add({.cap = CAP_NET_RAW, .granted = false, .stacks = {{"sk_setsockopt", "do_sock_setsockopt"}},
                          .audit = audit(true), .effective = held, .syscall = SYS_setsockopt})
                    .add({.cap = CAP_NET_ADMIN, .stacks = {{"sk_setsockopt", "do_sock_setsockopt"}},
                          .audit = audit(true), .effective = held, .syscall = SYS_setsockopt})
                    .build()});
  EXPECT_EQ(names(r.only()), Strings{"cap_net_raw"});
}

TEST_P(EngineByAudit, NetAdminAtSetsockoptWithoutNarrowAskIsKept) {
  // SO_RCVBUFFORCE asks only CAP_NET_ADMIN: no narrow check precedes it.
  auto r = run({Builder("/usr/bin/bufs")
                    .add({.cap = CAP_NET_ADMIN, .stacks = {{"sk_setsockopt"}}, .audit = audit(true),
                          .effective = kAllCaps, .syscall = SYS_setsockopt})
                    .build()});
  EXPECT_EQ(names(r.only()), Strings{"cap_net_admin"});
}

TEST_P(EngineByAudit, BpfLoadWithSysAdminSplitsIntoBpfAndPerfmon) {
  // bpf_token_capable() asks CAP_BPF or CAP_PERFMON first, then CAP_SYS_ADMIN.
  uint64_t held = bits({CAP_SYS_ADMIN});
  Strings stack = {"bpf_token_capable", "bpf_check", "bpf_prog_load", "__sys_bpf"};
  auto make = [&](uint64_t wide_count) {
    return Builder("/usr/bin/loader")
        .add({.cap = CAP_PERFMON, .granted = false, .count = 4, .stacks = {stack}, .audit = audit(true),
              .effective = held, .syscall = SYS_bpf})
        .add({.cap = CAP_BPF, .granted = false, .count = 3, .stacks = {stack}, .audit = audit(true),
              .effective = held, .syscall = SYS_bpf})
        .add({.cap = CAP_SYS_ADMIN, .count = wide_count, .stacks = {stack}, .audit = audit(true), .effective = held,
              .syscall = SYS_bpf})
        .build();
  };
  auto paired = run({make(7)});
  EXPECT_EQ(names(paired.only()), (Strings{"cap_bpf", "cap_perfmon"}));
  // One CAP_SYS_ADMIN check more than the narrow ones explain: something
  // asked CAP_SYS_ADMIN itself, so it stays.
  auto extra = run({make(8)});
  EXPECT_EQ(names(extra.only()), Strings{"cap_sys_admin"});
}

TEST_P(EngineByAudit, PerfEventOpenWithPerfmonIsKeptUnverified) {
  auto r = run({Builder("/usr/bin/perf")
                    .add({.cap = CAP_PERFMON, .stacks = {{"perf_allow_kernel", "__do_sys_perf_event_open"}},
                          .audit = audit(true), .effective = kAllCaps, .syscall = SYS_perf_event_open})
                    .build()});
  const BinaryDecision& b = r.only();
  EXPECT_EQ(names(b), Strings{"cap_perfmon"});
  EXPECT_NE(b.checks[0].reason.find("unverified"), std::string::npos) << b.checks[0].reason;
}

TEST_P(EngineByAudit, CheckpointRestoreNarrowed) {
  uint64_t held = bits({CAP_SYS_ADMIN});
  auto r = run({Builder("/usr/sbin/criu")
                    .add({.cap = CAP_CHECKPOINT_RESTORE, .granted = false, .stacks = {{"pid_ns_ctl_handler"}},
                          .audit = audit(true), .effective = held, .syscall = SYS_write})
                    .add({.cap = CAP_SYS_ADMIN, .stacks = {{"pid_ns_ctl_handler"}}, .audit = audit(true),
                          .effective = held, .syscall = SYS_write})
                    .build()});
  EXPECT_EQ(names(r.only()), Strings{"cap_checkpoint_restore"});
}

TEST_P(EngineByAudit, SetuidIsKeptUnverified) {
  auto r = run({Builder("/usr/bin/su")
                    .add({.cap = CAP_SETUID, .stacks = {{"__sys_setresuid"}}, .audit = audit(true),
                          .effective = kAllCaps, .syscall = SYS_setresuid})
                    .build()});
  const BinaryDecision& b = r.only();
  EXPECT_EQ(names(b), Strings{"cap_setuid"});
  EXPECT_NE(b.checks[0].reason.find("kept unverified"), std::string::npos);
}

TEST_P(EngineByAudit, SeccompWithoutNoNewPrivsIsNotACapability) {
  auto r = run({Builder("/usr/bin/sandboxed")
                    .add({.cap = CAP_SYS_ADMIN, .stacks = {{"do_seccomp"}}, .audit = audit(false),
                          .effective = kAllCaps, .syscall = SYS_seccomp})
                    .build()});
  const BinaryDecision& b = r.only();
  EXPECT_TRUE(b.capabilities.empty());
  EXPECT_NE(b.checks[0].reason.find("no_new_privs"), std::string::npos);
}

TEST_P(EngineByAudit, StatmountIsARequirementThoughNotAudited) {
  auto r = run({Builder("/usr/bin/findmnt")
                    .add({.cap = CAP_SYS_ADMIN, .stacks = {{"do_statmount", "__do_sys_statmount"}},
                          .audit = audit(false), .effective = kAllCaps})
                    .build()});
  EXPECT_EQ(names(r.only()), Strings{"cap_sys_admin"});
}

TEST(Engine, KnownNonAuditCheckAtUnknownOriginIsAProbe) {
  auto r = run({Builder().add({.cap = CAP_SYS_RAWIO, .stacks = {{"some_new_function"}}, .audit = Audit::No,
                               .effective = kAllCaps}).build()});
  EXPECT_TRUE(r.only().capabilities.empty());
  EXPECT_NE(r.only().checks[0].reason.find("did not audit"), std::string::npos);
}

TEST(Engine, UnknownOriginKeptWhenAuditedOrUnknown) {
  for (Audit a : {Audit::Yes, Audit::Unknown}) {
    auto r = run({Builder().add({.cap = CAP_SYS_RAWIO, .stacks = {{"some_new_function"}}, .audit = a,
                                 .effective = kAllCaps}).build()});
    EXPECT_EQ(names(r.only()), Strings{"cap_sys_rawio"});
    EXPECT_EQ(r.only().checks[0].reason, "no rule for origin some_new_function; kept because it was granted");
  }
}

TEST(Engine, NoStackAndUnknownAuditIsKeptSayingSo) {
  auto r = run({Builder().add({.cap = CAP_SYS_RAWIO, .stacks = {}, .audit = Audit::Unknown, .effective = kAllCaps}).build()});
  EXPECT_EQ(names(r.only()), Strings{"cap_sys_rawio"});
  EXPECT_NE(r.only().checks[0].reason.find("no stack was recorded"), std::string::npos);
}

TEST(Engine, NoauditHelperOnTheStackMarksAProbe) {
  // Tracepoint: no audit flag, but ns_capable_noaudit is among the frames.
  Observation o = Builder().add({.cap = CAP_SYS_ADMIN, .stacks = {{"do_jit", "bpf_int_jit_compile"}},
                                 .effective = kAllCaps}).build();
  o.checks[0].origins[0].frames[2] = "ns_capable_noaudit+0x12";
  auto r = run({o});
  EXPECT_TRUE(r.only().capabilities.empty()) << r.only().checks[0].reason;
}

TEST(Engine, ReplacedBinaryIsMergedAndNewestIdentityWins) {
  Observation old_file = Builder("/usr/bin/ping", 100, 1000)
                             .add({.cap = CAP_NET_RAW, .stacks = {{"inet_create"}}, .effective = bits({CAP_NET_RAW})})
                             .build();
  old_file.binary.file_caps = "cap_net_raw,cap_net_admin+ep";
  Observation new_file = Builder("/usr/bin/ping", 200, 2000)
                             .add({.cap = CAP_NET_RAW, .count = 2, .stacks = {{"inet6_create"}},
                                   .effective = bits({CAP_NET_RAW})})
                             .build();
  new_file.binary.file_caps = "cap_net_raw+ep";
  new_file.binary.mode = S_IFREG | 0755;
  new_file.binary.owner_uid = 0;
  auto r = run({old_file, new_file});
  ASSERT_EQ(r.a.binaries.size(), 1u);
  const BinaryDecision& b = r.only();
  EXPECT_EQ(names(b), Strings{"cap_net_raw"});
  EXPECT_EQ(b.file_caps, "cap_net_raw+ep");
  EXPECT_FALSE(b.setuid_root);
  ASSERT_EQ(b.checks.size(), 1u);
  EXPECT_EQ(b.checks[0].count, 3u);
  EXPECT_EQ(b.checks[0].origins.size(), 2u);
  EXPECT_EQ(b.row->key.ino, 200u);
}

TEST(Engine, SetuidRootAndHeldVersusUsed) {
  Observation o = Builder("/usr/bin/mount")
                      .add({.cap = CAP_SYS_ADMIN, .stacks = {{"path_mount"}}, .euid = 0,
                            .effective = bits({CAP_SYS_ADMIN, CAP_CHOWN, CAP_KILL})})
                      .build();
  o.binary.mode = S_IFREG | S_ISUID | 0755;
  o.binary.owner_uid = 0;
  auto r = run({o});
  const BinaryDecision& b = r.only();
  EXPECT_TRUE(b.setuid_root);
  EXPECT_FALSE(b.seen_non_root_euid);
  EXPECT_NE(std::find(b.warnings.begin(), b.warnings.end(), "held but never used: cap_chown, cap_kill"),
            b.warnings.end());
}

TEST(Engine, KernelThreadsAreNamedByComm) {
  Observation o = Builder("").add({.cap = CAP_SYS_ADMIN, .stacks = {{"some_fn"}}, .euid = 0}).build();
  o.binary.key.comm = "kworker/0:1";
  auto r = run({o});
  EXPECT_EQ(r.only().display_name, "[kworker/0:1]");
}

TEST(Engine, JsonShapeFollowsTheContract) {
  auto r = run({Builder("/usr/bin/ping").add({.cap = CAP_NET_RAW, .stacks = {{"inet_create"}}, .audit = Audit::Yes})
                    .add({.cap = CAP_SYS_ADMIN, .stacks = {{"security_vm_enough_memory_mm"}}})
                    .build()});
  nlohmann::json j = to_json(r.a);
  const auto& b = j["binaries"][0];
  EXPECT_EQ(b["path"], "/usr/bin/ping");
  EXPECT_EQ(b["capabilities"], nlohmann::json::array({"cap_net_raw"}));
  const auto& c = b["checks"][0];
  EXPECT_EQ(c["capability"], "cap_net_raw");
  EXPECT_EQ(c["verdict"], "granted");
  EXPECT_EQ(c["audit"], true);
  EXPECT_EQ(c["count"], 1);
  EXPECT_EQ(c["required"], true);
  EXPECT_TRUE(c["reason"].is_string());
  EXPECT_EQ(c["origins"], nlohmann::json::array({"inet_create"}));
  EXPECT_TRUE(b["checks"][1]["audit"].is_null());
}

}  // namespace
}  // namespace capaudit
