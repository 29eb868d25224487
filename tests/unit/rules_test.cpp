#include "rules.h"

#include "capnames.h"

#include <gtest/gtest.h>
#include <linux/capability.h>

#include <set>

namespace capaudit {
namespace {

using Frames = std::vector<std::string>;

const Rule* match(int cap, std::string_view origin, const Frames& frames = {}, bool insetid = false) {
  return Rules::builtin().match(cap, origin, frames, insetid);
}

std::string name_of(const Rule* r) { return r ? r->name : "(none)"; }

// What decides a check that no narrow-first alternative pairs up: the first
// rule that is not such an alternative.
const Rule* decisive(int cap, std::string_view origin, const Frames& frames) {
  for (const Rule* r : Rules::builtin().match_all(cap, origin, frames)) {
    if (r->kind != RuleKind::Alternative || !r->narrow_first) return r;
  }
  return nullptr;
}

TEST(Rules, BuiltinTableParsesAndCoversEveryKind) {
  const auto& all = Rules::builtin().all();
  ASSERT_FALSE(all.empty());
  std::set<RuleKind> kinds;
  for (const Rule& r : all) {
    kinds.insert(r.kind);
    EXPECT_FALSE(r.reason.empty()) << r.name;
    if (r.kind == RuleKind::Alternative) {
      EXPECT_TRUE(r.narrow) << r.name;
    }
  }
  EXPECT_EQ(kinds.size(), 5u);
}

TEST(Rules, ProbesAtTheirOrigins) {
  EXPECT_EQ(name_of(match(CAP_SYS_ADMIN, "security_vm_enough_memory_mm")), "vm_enough_memory");
  EXPECT_EQ(name_of(match(CAP_SYS_ADMIN, "cap_vm_enough_memory")), "vm_enough_memory");
  EXPECT_EQ(name_of(match(CAP_SYSLOG, "kallsyms_show_value")), "kernel_pointers");
  EXPECT_EQ(name_of(match(CAP_SYSLOG, "restricted_pointer")), "kernel_pointers");
  EXPECT_EQ(name_of(match(CAP_SYS_ADMIN, "simple_xattr_list")), "trusted_xattr_list");
  EXPECT_EQ(name_of(match(CAP_IPC_LOCK, "io_uring_setup")), "io_uring_memlock");
  EXPECT_EQ(name_of(match(CAP_NET_ADMIN, "net_ctl_permissions")), "net_sysctl_mode");
  EXPECT_EQ(name_of(match(CAP_NET_ADMIN, "__vsock_create")), "vsock_trusted");
  EXPECT_EQ(name_of(match(CAP_MAC_ADMIN, "selinux_inode_getsecurity")), "selinux_getxattr");
  EXPECT_EQ(name_of(match(CAP_FSETID, "setattr_should_drop_sgid")), "fsetid_keeps_bits");
  EXPECT_EQ(name_of(match(CAP_FSETID, "inode_init_owner")), "fsetid_keeps_bits");
  // The capability must match too.
  EXPECT_EQ(match(CAP_NET_RAW, "security_vm_enough_memory_mm"), nullptr);
}

TEST(Rules, ViaNeedsAMatchingFrame) {
  Frames ps = {"cap_capable+0x83", "security_capable+0x40", "ns_capable_noaudit+0x10",
               "__ptrace_may_access+0x99", "ptrace_may_access+0x20", "do_task_stat+0x1f0"};
  EXPECT_EQ(name_of(match(CAP_SYS_PTRACE, "__ptrace_may_access", ps)), "ps_task_stat");
  Frames gdb = {"cap_capable+0x83", "security_capable+0x40", "ns_capable+0x10", "__ptrace_may_access+0x99",
                "ptrace_attach+0x20"};
  EXPECT_EQ(match(CAP_SYS_PTRACE, "__ptrace_may_access", gdb), nullptr);
  // The oom_score_adj floor is a probe; lowering below it (plain capable()) is not.
  Frames floor = {"cap_capable+0x83", "security_capable+0x40", "has_capability_noaudit+0x10", "__set_oom_adj.isra.0+0x1"};
  EXPECT_EQ(name_of(match(CAP_SYS_RESOURCE, "__set_oom_adj", floor)), "oom_score_adj_floor");
  Frames lower = {"cap_capable+0x83", "security_capable+0x40", "capable+0x10", "__set_oom_adj.isra.0+0x1"};
  EXPECT_EQ(match(CAP_SYS_RESOURCE, "__set_oom_adj", lower), nullptr);
}

TEST(Rules, NoNewPrivsAndRequirements) {
  EXPECT_EQ(match(CAP_SYS_ADMIN, "do_seccomp")->kind, RuleKind::NoNewPrivs);
  EXPECT_EQ(match(CAP_SYS_ADMIN, "__do_sys_landlock_restrict_self")->kind, RuleKind::NoNewPrivs);
  EXPECT_EQ(match(CAP_SYS_ADMIN, "do_statmount")->kind, RuleKind::Requirement);
  EXPECT_EQ(match(CAP_SYS_ADMIN, "__do_sys_listmount")->kind, RuleKind::Requirement);
}

TEST(Rules, Alternatives) {
  const Rule* dac = match(CAP_DAC_OVERRIDE, "generic_permission");
  ASSERT_TRUE(dac);
  EXPECT_EQ(dac->kind, RuleKind::Alternative);
  EXPECT_EQ(dac->narrow, CAP_DAC_READ_SEARCH);
  EXPECT_TRUE(dac->narrow_first);
  const Rule* ioprio = match(CAP_SYS_ADMIN, "ioprio_check_cap");
  ASSERT_TRUE(ioprio);
  EXPECT_EQ(ioprio->narrow, CAP_SYS_NICE);
  EXPECT_FALSE(ioprio->narrow_first);
  const Rule* mark = match(CAP_NET_ADMIN, "sk_setsockopt");
  ASSERT_TRUE(mark);
  EXPECT_EQ(mark->narrow, CAP_NET_RAW);
  // perfmon_capable() is inlined anywhere: those alternatives have no origin
  // constraint, and all of them are offered in table order.
  std::set<int> narrows;
  for (const Rule* r : Rules::builtin().match_all(CAP_SYS_ADMIN, "bpf_token_capable", {})) {
    if (r->kind == RuleKind::Alternative) narrows.insert(*r->narrow);
  }
  EXPECT_EQ(narrows, (std::set<int>{CAP_PERFMON, CAP_BPF, CAP_CHECKPOINT_RESTORE}));
}

TEST(Rules, CheckedFirst) {
  const Rule* setid = match(CAP_SETUID, "__sys_setuid");
  ASSERT_TRUE(setid);
  EXPECT_EQ(setid->kind, RuleKind::CheckedFirst);
  EXPECT_TRUE(setid->keep_when_granted);
  EXPECT_EQ(name_of(match(CAP_SETGID, "__do_sys_setgroups")), "setid");
  EXPECT_EQ(name_of(match(CAP_SETGID, "__sys_setresgid")), "setid");
  // The INSETID flag marks the set*id paths even where the origin is unknown.
  EXPECT_EQ(name_of(match(CAP_SETUID, "", {}, /*insetid=*/true)), "setid");
  EXPECT_EQ(match(CAP_SETUID, "", {}, false), nullptr);
  const Rule* capset = match(CAP_SETPCAP, "cap_capset");
  ASSERT_TRUE(capset);
  EXPECT_FALSE(capset->keep_when_granted);
  Frames perf = {"cap_capable+0x83", "capable+0x10", "perf_allow_kernel+0x20", "__do_sys_perf_event_open+0x99"};
  EXPECT_EQ(name_of(match(CAP_PERFMON, "perf_allow_kernel", perf)), "perf_event_open");
  Frames bpf = {"cap_capable+0x83", "ns_capable+0x10", "bpf_token_capable+0x20", "bpf_prog_load+0x99"};
  EXPECT_EQ(name_of(match(CAP_BPF, "bpf_token_capable", bpf)), "bpf_prog_load");
}

TEST(Rules, GenericNoauditHelper) {
  Frames f = {"cap_capable+0x83", "security_capable+0x40", "ns_capable_noaudit+0x10", "do_jit+0x44"};
  EXPECT_EQ(name_of(decisive(CAP_SYS_ADMIN, "do_jit", f)), "noaudit_helper");
  // Specific rules come first: seccomp's noaudit check is a real failure.
  Frames seccomp = {"cap_capable+0x83", "security_capable+0x40", "ns_capable_noaudit+0x10", "do_seccomp+0x44"};
  EXPECT_EQ(name_of(decisive(CAP_SYS_ADMIN, "do_seccomp", seccomp)), "seccomp_filter");
}

std::string parse_error(const std::string& text) {
  std::string err;
  auto r = Rules::parse(text, "test.json", &err);
  EXPECT_FALSE(r) << text;
  return err;
}

TEST(Rules, ParsesAMinimalTable) {
  std::string err;
  auto r = Rules::parse(R"({"rules": [{"name": "x", "kind": "probe", "caps": ["net_raw"], "origins": ["f*"],
                                       "reason": "because"}]})",
                        "t", &err);
  ASSERT_TRUE(r) << err;
  ASSERT_EQ(r->all().size(), 1u);
  EXPECT_EQ(r->all()[0].caps, std::vector<int>{CAP_NET_RAW});
  EXPECT_EQ(name_of(r->match(CAP_NET_RAW, "foo", {})), "x");
  EXPECT_EQ(r->match(CAP_NET_RAW, "bar", {}), nullptr);
}

TEST(Rules, ParseErrorsNameRuleAndKey) {
  EXPECT_EQ(parse_error(R"({"rules": [{"name": "a", "kind": "probe", "reason": "r"},
                                      {"name": "bad", "kind": "probe", "caps": ["cap_bogus"], "reason": "r"}]})"),
            "test.json: rule 1 ('bad'), key 'caps': unknown capability 'cap_bogus'");
  EXPECT_EQ(parse_error(R"({"rules": [{"name": "k", "kind": "sometimes", "reason": "r"}]})"),
            "test.json: rule 0 ('k'), key 'kind': unknown kind 'sometimes' (probe, no_new_privs, requirement, "
            "alternative, checked_first)");
  EXPECT_EQ(parse_error(R"({"rules": [{"kind": "probe", "reason": "r"}]})"), "test.json: rule 0, key 'name': missing");
  EXPECT_EQ(parse_error(R"({"rules": [{"name": "t", "kind": "probe", "reason": "r", "orgins": []}]})"),
            "test.json: rule 0 ('t'), key 'orgins': unknown key");
  EXPECT_EQ(parse_error(R"({"rules": [{"name": "alt", "kind": "alternative", "caps": ["sys_admin"], "reason": "r"}]})"),
            "test.json: rule 0 ('alt'), key 'narrow': an alternative needs the narrower capability");
  EXPECT_EQ(parse_error(R"({"rules": [{"name": "o", "kind": "probe", "origins": "f", "reason": "r"}]})"),
            "test.json: rule 0 ('o'), key 'origins': must be a list of strings");
  EXPECT_EQ(parse_error(R"({"rules": [{"name": "d", "kind": "probe", "reason": "r"},
                                      {"name": "d", "kind": "probe", "reason": "r"}]})"),
            "test.json: rule 1 ('d'), key 'name': duplicate name");
  EXPECT_EQ(parse_error(R"({"rules": {}})"), "test.json: expected an object with a \"rules\" list");
  EXPECT_NE(parse_error(R"({"rules": [)").find("test.json: "), std::string::npos);
}

TEST(Rules, NumberTooLargeIsAnErrorNotAThrow) {
  std::string err;
  EXPECT_FALSE(Rules::parse("{\"rules\": [1e999]}", "r.json", &err));
  EXPECT_TRUE(err.starts_with("r.json: ")) << err;
}

}  // namespace
}  // namespace capaudit
