// The --minimize search and how its verdicts rewrite a binary's decision,
// with a fake runner standing in for the command: no root, no re-runs.
#include "minimize.h"
#include "render.h"

#include "capnames.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <linux/capability.h>

#include <algorithm>
#include <set>

namespace capaudit {
namespace {

bool holds(const std::vector<int>& caps, int cap) { return std::find(caps.begin(), caps.end(), cap) != caps.end(); }

Behaviour exited(int status, std::optional<std::string> out = std::nullopt) {
  Behaviour b;
  b.exit_status = status;
  b.stdout_sha256 = std::move(out);
  return b;
}

// A command whose exit status is 0 when `ok` says so for the set it holds;
// records every set it was run with.
struct FakeCommand {
  std::function<bool(const std::vector<int>&)> ok;
  std::vector<std::vector<int>> runs;
  Runner runner() {
    return [this](const std::vector<int>& caps) {
      runs.push_back(caps);
      RunResult r;
      r.ran = true;
      r.behaviour = exited(ok(caps) ? 0 : 1);
      return r;
    };
  }
};

const CapabilityVerdict* verdict(const VerificationInfo& v, int cap) {
  for (const CapabilityVerdict& cv : v.capabilities)
    if (cv.cap == cap) return &cv;
  return nullptr;
}

TEST(Minimize, DropsWhatTheCommandDoesNotNeed) {
  FakeCommand cmd{[](const std::vector<int>& c) { return holds(c, CAP_NET_RAW); }, {}};
  VerificationInfo v = minimize({CAP_SETUID, CAP_NET_RAW}, exited(0), cmd.runner(), Rules::builtin(), {});
  ASSERT_TRUE(v.baseline_ok);
  EXPECT_EQ(v.runs, 3);
  EXPECT_EQ(verified_caps(v), std::vector<int>{CAP_NET_RAW});
  EXPECT_EQ(verdict(v, CAP_NET_RAW)->verified, Verification::ConfirmedNeeded);
  EXPECT_EQ(verdict(v, CAP_SETUID)->verified, Verification::DroppedByRun);
  EXPECT_EQ(verdict(v, CAP_SETUID)->runs, 1);
  // Baseline first, holding everything observed; then one capability at a time in name order.
  ASSERT_EQ(cmd.runs.size(), 3u);
  EXPECT_EQ(cmd.runs[0].size(), 2u);
  EXPECT_EQ(cmd.runs[1], std::vector<int>{CAP_SETUID});  // without cap_net_raw
  EXPECT_EQ(cmd.runs[2], std::vector<int>{CAP_NET_RAW});  // without cap_setuid
}

TEST(Minimize, ReplacesAWideCapabilityByANarrowerOne) {
  // Reads a root-only file: cap_dac_override does it, and so does cap_dac_read_search.
  FakeCommand cmd{[](const std::vector<int>& c) { return holds(c, CAP_DAC_OVERRIDE) || holds(c, CAP_DAC_READ_SEARCH); },
                  {}};
  VerificationInfo v = minimize({CAP_DAC_OVERRIDE}, exited(0), cmd.runner(), Rules::builtin(), {});
  ASSERT_TRUE(v.baseline_ok);
  EXPECT_EQ(verified_caps(v), std::vector<int>{CAP_DAC_READ_SEARCH});
  const CapabilityVerdict* wide = verdict(v, CAP_DAC_OVERRIDE);
  ASSERT_TRUE(wide);
  EXPECT_EQ(wide->verified, Verification::DroppedByRun);
  EXPECT_EQ(wide->replaced_by, CAP_DAC_READ_SEARCH);
  EXPECT_EQ(wide->runs, 2);
  EXPECT_EQ(verdict(v, CAP_DAC_READ_SEARCH)->verified, Verification::ConfirmedNeeded);
  EXPECT_EQ(v.runs, 3);
}

TEST(Minimize, GreedyKeepsOneOfTwoThatDoTheSameJob) {
  // Either is enough: the first one tried (by name) goes, the other stays.
  FakeCommand cmd{[](const std::vector<int>& c) { return holds(c, CAP_CHOWN) || holds(c, CAP_FOWNER); }, {}};
  VerificationInfo v = minimize({CAP_FOWNER, CAP_CHOWN}, exited(0), cmd.runner(), Rules::builtin(), {});
  EXPECT_EQ(verified_caps(v), std::vector<int>{CAP_FOWNER});
  EXPECT_EQ(verdict(v, CAP_CHOWN)->verified, Verification::DroppedByRun);
  EXPECT_EQ(verdict(v, CAP_FOWNER)->verified, Verification::ConfirmedNeeded);
}

TEST(Minimize, BaselineThatDiffersVerifiesNothing) {
  FakeCommand cmd{[](const std::vector<int>&) { return false; }, {}};
  VerificationInfo v = minimize({CAP_SETUID}, exited(0), cmd.runner(), Rules::builtin(), {});
  EXPECT_FALSE(v.baseline_ok);
  EXPECT_EQ(v.runs, 1);
  EXPECT_NE(v.note.find("exited with status 1"), std::string::npos) << v.note;
  EXPECT_EQ(verified_caps(v), std::vector<int>{CAP_SETUID});
  EXPECT_EQ(verdict(v, CAP_SETUID)->verified, Verification::Unverified);
}

TEST(Minimize, RunBudgetLeavesTheRestUnverified) {
  FakeCommand cmd{[](const std::vector<int>&) { return true; }, {}};
  MinimizeOptions opts;
  opts.max_runs = 2;
  VerificationInfo v = minimize({CAP_CHOWN, CAP_SETUID}, exited(0), cmd.runner(), Rules::builtin(), opts);
  EXPECT_EQ(v.runs, 2);
  EXPECT_EQ(verdict(v, CAP_CHOWN)->verified, Verification::DroppedByRun);
  EXPECT_EQ(verdict(v, CAP_SETUID)->verified, Verification::Unverified);
  EXPECT_NE(verdict(v, CAP_SETUID)->reason.find("--max-runs 2"), std::string::npos);
  EXPECT_EQ(verified_caps(v), std::vector<int>{CAP_SETUID});
}

TEST(Minimize, OutputIsComparedOnlyWhenAsked) {
  Runner quiet_without = [](const std::vector<int>& caps) {
    RunResult r;
    r.ran = true;
    r.behaviour = exited(0, holds(caps, CAP_DAC_READ_SEARCH) ? "content" : "empty");
    return r;
  };
  Behaviour reference = exited(0, "content");
  VerificationInfo by_status = minimize({CAP_DAC_READ_SEARCH}, reference, quiet_without, Rules::builtin(), {});
  EXPECT_EQ(verified_caps(by_status), std::vector<int>{});
  MinimizeOptions opts;
  opts.compare_output = true;
  VerificationInfo by_output = minimize({CAP_DAC_READ_SEARCH}, reference, quiet_without, Rules::builtin(), opts);
  EXPECT_EQ(verified_caps(by_output), std::vector<int>{CAP_DAC_READ_SEARCH});
  EXPECT_NE(verdict(by_output, CAP_DAC_READ_SEARCH)->reason.find("different output"), std::string::npos);
}

TEST(Minimize, ARunCapauditCouldNotMakeStopsTheSearch) {
  int calls = 0;
  Runner flaky = [&calls](const std::vector<int>&) {
    RunResult r;
    r.ran = ++calls == 1;
    if (!r.ran) r.error = "interrupted";
    return r;
  };
  VerificationInfo v = minimize({CAP_CHOWN, CAP_SETUID}, exited(0), flaky, Rules::builtin(), {});
  EXPECT_TRUE(v.baseline_ok);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(verdict(v, CAP_CHOWN)->verified, Verification::Unverified);
  EXPECT_EQ(verdict(v, CAP_SETUID)->verified, Verification::Unverified);
  EXPECT_NE(verdict(v, CAP_SETUID)->reason.find("interrupted"), std::string::npos);
}

CheckDecision line(int cap, bool required, std::string reason = "observed") {
  CheckDecision d;
  d.cap = cap;
  d.required = required;
  d.reason = std::move(reason);
  return d;
}

TEST(ApplyVerification, RewritesSetAndCheckLines) {
  BinaryDecision b;
  b.path = "/usr/bin/prog";
  b.capabilities = {CAP_SETUID};
  b.checks = {line(CAP_SETUID, true), line(CAP_SYS_ADMIN, false)};
  FakeCommand cmd{[](const std::vector<int>&) { return true; }, {}};
  apply_verification(b, minimize({CAP_SETUID}, exited(0), cmd.runner(), Rules::builtin(), {}));
  EXPECT_TRUE(b.verified_set());
  EXPECT_TRUE(b.capabilities.empty());
  EXPECT_EQ(b.checks[0].verified, Verification::DroppedByRun);
  EXPECT_FALSE(b.checks[0].required);
  EXPECT_EQ(b.checks[0].reason.rfind("dropped by a run: ", 0), 0u) << b.checks[0].reason;
  // Not held by any run, which all behaved like the traced one.
  EXPECT_EQ(b.checks[1].verified, Verification::DroppedByRun);
  nlohmann::json j = to_json(Analysis{{b}});
  EXPECT_EQ(j["binaries"][0]["source"], "verified");
  EXPECT_EQ(j["binaries"][0]["checks"][0]["verified"], "dropped");
  EXPECT_TRUE(j["binaries"][0]["setcap"].is_null());
}

TEST(ApplyVerification, KeepsWhatTheRunsNeverSaw) {
  // recommend: the daemon saw a use the verifying runs did not make.
  BinaryDecision b;
  b.path = "/usr/bin/prog";
  b.capabilities = {CAP_NET_RAW, CAP_SETUID};
  b.checks = {line(CAP_NET_RAW, true), line(CAP_SETUID, true)};
  FakeCommand cmd{[](const std::vector<int>&) { return true; }, {}};
  apply_verification(b, minimize({CAP_SETUID}, exited(0), cmd.runner(), Rules::builtin(), {}));
  EXPECT_EQ(b.capabilities, std::vector<int>{CAP_NET_RAW});
  EXPECT_EQ(b.checks[0].verified, Verification::Unverified);
  EXPECT_TRUE(b.checks[0].required);
  EXPECT_TRUE(std::any_of(b.warnings.begin(), b.warnings.end(),
                          [](const std::string& w) { return w.find("not verified: cap_net_raw") != std::string::npos; }));
}

TEST(ApplyVerification, FailedBaselineKeepsTheObservedSet) {
  BinaryDecision b;
  b.capabilities = {CAP_SETUID};
  b.checks = {line(CAP_SETUID, true)};
  FakeCommand cmd{[](const std::vector<int>&) { return false; }, {}};
  apply_verification(b, minimize({CAP_SETUID}, exited(0), cmd.runner(), Rules::builtin(), {}));
  EXPECT_FALSE(b.verified_set());
  EXPECT_EQ(b.capabilities, std::vector<int>{CAP_SETUID});
  EXPECT_TRUE(b.checks[0].required);
  EXPECT_EQ(to_json(Analysis{{b}})["binaries"][0]["source"], "observed");
}

CheckDecision at_origin(int cap, bool required, std::string origin, std::string reason = "observed") {
  CheckDecision d = line(cap, required, std::move(reason));
  d.origins = {std::move(origin)};
  d.count = 1;
  return d;
}

BinaryDecision binary(std::string path, std::vector<int> caps, std::vector<CheckDecision> checks) {
  BinaryDecision b;
  b.path = b.display_name = std::move(path);
  b.capabilities = std::move(caps);
  b.checks = std::move(checks);
  return b;
}

// sh running ping: every binary makes the memory-accounting cap_sys_admin
// probe; only ping opens a raw socket.
Analysis wrapper_tree() {
  Analysis a;
  a.binaries.push_back(binary("/usr/bin/dash", {}, {at_origin(CAP_SYS_ADMIN, false, "security_vm_enough_memory_mm")}));
  a.binaries.push_back(binary("/usr/bin/ping", {CAP_NET_RAW},
                              {at_origin(CAP_SYS_ADMIN, false, "security_vm_enough_memory_mm"),
                               at_origin(CAP_NET_RAW, true, "inet_create")}));
  return a;
}

TEST(PlanSearch, StartsFromEveryGrantOfTheTreeWithTheRulesSetFirst) {
  Analysis a = wrapper_tree();
  a.binaries[1].capabilities = {CAP_NET_RAW, CAP_SETUID};
  a.binaries[1].checks.push_back(at_origin(CAP_SETUID, true, "__sys_setuid", "checked first (setid): ..."));
  CheckDecision denied = line(CAP_CHOWN, false);
  denied.granted = false;
  a.binaries[1].checks.push_back(denied);
  CheckDecision userns = line(CAP_SYS_CHROOT, true);
  userns.only_other_user_ns = true;
  a.binaries[1].checks.push_back(userns);
  SearchPlan p = plan_search(a, {CAP_CHOWN, CAP_NET_RAW, CAP_SETUID, CAP_SYS_ADMIN, CAP_SYS_CHROOT});
  EXPECT_EQ(p.start, (std::vector<int>{CAP_NET_RAW, CAP_SETUID, CAP_SYS_ADMIN}));  // neither denied nor child-namespace
  EXPECT_EQ(p.kept, (std::vector<int>{CAP_SETUID, CAP_NET_RAW}));  // kept only as checked first: tried first
  EXPECT_TRUE(p.note.empty());
}

TEST(PlanSearch, SelfInspectionStartsFromEverythingHeld) {
  Analysis a = wrapper_tree();
  a.binaries[1].self_inspections = 3;
  SearchPlan p = plan_search(a, {CAP_CHOWN, CAP_NET_RAW, CAP_SYS_ADMIN, CAP_SETPCAP});
  EXPECT_EQ(p.start, (std::vector<int>{CAP_CHOWN, CAP_NET_RAW, CAP_SETPCAP, CAP_SYS_ADMIN}));
  EXPECT_EQ(p.kept, std::vector<int>{CAP_NET_RAW});
  EXPECT_NE(p.note.find("/usr/bin/ping asked the kernel what capabilities it holds (3 times)"), std::string::npos)
      << p.note;
}

TEST(Minimize, RightRulesCostOneRunForEverythingTheyDrop) {
  FakeCommand cmd{[](const std::vector<int>& c) { return holds(c, CAP_NET_RAW); }, {}};
  SearchPlan p{{CAP_CHOWN, CAP_FOWNER, CAP_NET_RAW, CAP_SYS_ADMIN}, {CAP_NET_RAW}, ""};
  VerificationInfo v = minimize(p, exited(0), cmd.runner(), Rules::builtin(), {});
  ASSERT_TRUE(v.baseline_ok);
  EXPECT_EQ(v.runs, 2);  // the rules' set, then without cap_net_raw
  EXPECT_EQ(cmd.runs[0], std::vector<int>{CAP_NET_RAW});
  EXPECT_EQ(verified_caps(v), std::vector<int>{CAP_NET_RAW});
  EXPECT_EQ(v.observed.size(), 4u);
  EXPECT_EQ(verdict(v, CAP_CHOWN)->verified, Verification::DroppedByRun);
  EXPECT_NE(verdict(v, CAP_CHOWN)->reason.find("only the rules' set"), std::string::npos);
  EXPECT_EQ(verdict(v, CAP_NET_RAW)->verified, Verification::ConfirmedNeeded);
}

TEST(Minimize, FindsWhatTheRulesWronglyDroppedByHalves) {
  // Needs cap_net_admin, which the rules dropped (say, a noaudit check that decides the outcome).
  FakeCommand cmd{[](const std::vector<int>& c) { return holds(c, CAP_NET_ADMIN) && holds(c, CAP_NET_RAW); }, {}};
  std::vector<int> dropped = {CAP_CHOWN, CAP_FOWNER, CAP_IPC_LOCK, CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_SYSLOG};
  SearchPlan p;
  p.start = dropped;
  p.start.push_back(CAP_NET_RAW);
  sort_caps_by_name(p.start);
  p.kept = {CAP_NET_RAW};
  VerificationInfo v = minimize(p, exited(0), cmd.runner(), Rules::builtin(), {});
  ASSERT_TRUE(v.baseline_ok);
  EXPECT_EQ(verified_caps(v), (std::vector<int>{CAP_NET_ADMIN, CAP_NET_RAW}));
  EXPECT_EQ(verdict(v, CAP_NET_ADMIN)->verified, Verification::ConfirmedNeeded);
  for (int c : dropped) {
    if (c != CAP_NET_ADMIN) {
      EXPECT_EQ(verdict(v, c)->verified, Verification::DroppedByRun) << cap_name(c);
    }
  }
  // The rules' set, the whole start, then halves: fewer than one run per capability.
  EXPECT_EQ(cmd.runs[0], std::vector<int>{CAP_NET_RAW});
  EXPECT_EQ(cmd.runs[1], p.start);
  EXPECT_LT(v.runs, static_cast<int>(p.start.size()) + 1);
  // The last accepted run held exactly the final set.
  std::vector<int> last;
  for (auto& r : cmd.runs)
    if (cmd.ok(r)) last = r;
  sort_caps_by_name(last);
  EXPECT_EQ(last, verified_caps(v));
}

TEST(Minimize, BaselineNoteNamesBothRuns) {
  FakeCommand cmd{[](const std::vector<int>&) { return false; }, {}};
  SearchPlan p{{CAP_NET_RAW, CAP_SYS_ADMIN}, {CAP_NET_RAW}, ""};
  VerificationInfo v = minimize(p, exited(0), cmd.runner(), Rules::builtin(), {});
  EXPECT_FALSE(v.baseline_ok);
  EXPECT_EQ(v.runs, 2);
  EXPECT_NE(v.note.find("whole start set (cap_net_raw, cap_sys_admin) exited with status 1"), std::string::npos)
      << v.note;
  EXPECT_NE(v.note.find("only the rules' set (cap_net_raw) exited with status 1"), std::string::npos) << v.note;
  MinimizeOptions one;
  one.max_runs = 1;
  v = minimize(p, exited(0), cmd.runner(), Rules::builtin(), one);
  EXPECT_FALSE(v.baseline_ok);
  EXPECT_EQ(v.runs, 1);
  EXPECT_NE(v.note.find("--max-runs 1 left no run"), std::string::npos) << v.note;
}

TEST(TreeVerification, WrapperGetsNothingAndTheProgramItsSet) {
  Analysis a = wrapper_tree();
  FakeCommand cmd{[](const std::vector<int>& c) { return holds(c, CAP_NET_RAW); }, {}};
  VerificationInfo v = minimize(plan_search(a, {}), exited(0), cmd.runner(), Rules::builtin(), {});
  ASSERT_TRUE(v.baseline_ok);
  apply_tree_verification(a, v, &a.binaries[0]);
  const BinaryDecision& sh = a.binaries[0];
  const BinaryDecision& ping = a.binaries[1];
  EXPECT_TRUE(sh.verified_set());
  EXPECT_TRUE(sh.capabilities.empty());
  EXPECT_EQ(verdict(*sh.verification, CAP_NET_RAW), nullptr);  // never its concern
  EXPECT_EQ(verdict(*sh.verification, CAP_SYS_ADMIN)->verified, Verification::DroppedByRun);
  EXPECT_TRUE(ping.verified_set());
  EXPECT_EQ(ping.capabilities, std::vector<int>{CAP_NET_RAW});
  EXPECT_EQ(verdict(*ping.verification, CAP_NET_RAW)->verified, Verification::ConfirmedNeeded);
  EXPECT_EQ(ping.checks[1].verified, Verification::ConfirmedNeeded);
  nlohmann::json j = to_json(a);
  EXPECT_EQ(j["binaries"][0]["source"], "verified");
  EXPECT_EQ(j["binaries"][0]["capabilities"], nlohmann::json::array());
  EXPECT_EQ(j["binaries"][1]["capabilities"], nlohmann::json::array({"cap_net_raw"}));
}

TEST(TreeVerification, WronglyDroppedGoesToTheBinaryWhoseCheckWasItsOwn) {
  // The rules call both binaries' cap_sys_admin checks probes; the runs show the tree needs it.
  Analysis a = wrapper_tree();
  a.binaries[1].checks.push_back(at_origin(CAP_SYS_ADMIN, false, "path_mount"));
  FakeCommand cmd{[](const std::vector<int>& c) { return holds(c, CAP_NET_RAW) && holds(c, CAP_SYS_ADMIN); }, {}};
  VerificationInfo v = minimize(plan_search(a, {}), exited(0), cmd.runner(), Rules::builtin(), {});
  apply_tree_verification(a, v, &a.binaries[0]);
  EXPECT_TRUE(a.binaries[0].capabilities.empty());
  const CapabilityVerdict* other = verdict(*a.binaries[0].verification, CAP_SYS_ADMIN);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->verified, Verification::DroppedByRun);
  EXPECT_NE(other->reason.find("credited to /usr/bin/ping"), std::string::npos) << other->reason;
  EXPECT_EQ(a.binaries[1].capabilities, (std::vector<int>{CAP_NET_RAW, CAP_SYS_ADMIN}));
  // Its lines the rules called probes are now required, with the runs' reason.
  EXPECT_TRUE(a.binaries[1].checks[2].required);
  EXPECT_EQ(a.binaries[1].checks[2].reason.rfind("confirmed needed by a run: ", 0), 0u) << a.binaries[1].checks[2].reason;
}

TEST(TreeVerification, SelfInspectorGetsWhatNoKernelCheckAsked) {
  // capsh --has-p=cap_net_raw under sh: it reads its own sets and fails without
  // cap_net_raw, which the kernel never checks.
  Analysis a;
  a.binaries.push_back(binary("/usr/bin/dash", {}, {at_origin(CAP_SYS_ADMIN, false, "security_vm_enough_memory_mm")}));
  a.binaries.push_back(binary("/usr/sbin/capsh", {}, {at_origin(CAP_SYS_ADMIN, false, "security_vm_enough_memory_mm")}));
  a.binaries[1].self_inspections = 1;
  FakeCommand cmd{[](const std::vector<int>& c) { return holds(c, CAP_NET_RAW); }, {}};
  std::vector<int> held = {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_KILL, CAP_NET_ADMIN, CAP_NET_RAW,
                           CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN, CAP_SYS_PTRACE};
  SearchPlan p = plan_search(a, held);
  EXPECT_EQ(p.start.size(), held.size());
  VerificationInfo v = minimize(p, exited(0), cmd.runner(), Rules::builtin(), {});
  ASSERT_TRUE(v.baseline_ok);
  EXPECT_EQ(verified_caps(v), std::vector<int>{CAP_NET_RAW});
  EXPECT_LT(v.runs, static_cast<int>(held.size()));
  EXPECT_NE(v.note.find("asked the kernel what capabilities it holds"), std::string::npos) << v.note;
  apply_tree_verification(a, v, &a.binaries[0]);
  EXPECT_TRUE(a.binaries[0].capabilities.empty());
  EXPECT_EQ(a.binaries[1].capabilities, std::vector<int>{CAP_NET_RAW});
  const CapabilityVerdict* mine = verdict(*a.binaries[1].verification, CAP_NET_RAW);
  ASSERT_TRUE(mine);
  EXPECT_NE(mine->reason.find("inspected its own capabilities"), std::string::npos) << mine->reason;
  EXPECT_TRUE(std::any_of(a.binaries[1].warnings.begin(), a.binaries[1].warnings.end(), [](const std::string& w) {
    return w.find("no check of cap_net_raw was seen") != std::string::npos;
  }));
}

TEST(TreeVerification, UncheckedNeedWithoutInspectorGoesToTheWrappedProgram) {
  Analysis a = wrapper_tree();
  a.binaries[1].capabilities.clear();
  a.binaries[1].checks.pop_back();
  a.binaries[0].self_inspections = 0;
  // Held by the runs (a wider start), checked by nobody, needed.
  SearchPlan p = plan_search(a, {});
  p.start.push_back(CAP_KILL);
  sort_caps_by_name(p.start);
  FakeCommand cmd{[](const std::vector<int>& c) { return holds(c, CAP_KILL); }, {}};
  VerificationInfo v = minimize(p, exited(0), cmd.runner(), Rules::builtin(), {});
  apply_tree_verification(a, v, &a.binaries[0]);
  EXPECT_TRUE(a.binaries[0].capabilities.empty());
  EXPECT_EQ(a.binaries[1].capabilities, std::vector<int>{CAP_KILL});
}

TEST(TreeVerification, FailedBaselineLeavesEveryBinaryObserved) {
  Analysis a = wrapper_tree();
  FakeCommand cmd{[](const std::vector<int>&) { return false; }, {}};
  VerificationInfo v = minimize(plan_search(a, {}), exited(0), cmd.runner(), Rules::builtin(), {});
  apply_tree_verification(a, v, &a.binaries[0]);
  for (const BinaryDecision& b : a.binaries) {
    EXPECT_FALSE(b.verified_set());
    ASSERT_TRUE(b.verification);
  }
  EXPECT_EQ(a.binaries[1].capabilities, std::vector<int>{CAP_NET_RAW});
}

TEST(VerifiedSetRow, RoundTripsThroughTheDatabaseForm) {
  BinaryDecision b;
  b.capabilities = {CAP_DAC_OVERRIDE};
  b.checks = {line(CAP_DAC_OVERRIDE, true)};
  FakeCommand cmd{[](const std::vector<int>& c) { return holds(c, CAP_DAC_OVERRIDE) || holds(c, CAP_DAC_READ_SEARCH); },
                  {}};
  apply_verification(b, minimize({CAP_DAC_OVERRIDE}, exited(0), cmd.runner(), Rules::builtin(), {}));
  VerifiedSetRow row = verified_set_row("/usr/bin/prog", "abc", b);
  EXPECT_EQ(row.caps, "[\"cap_dac_read_search\"]");
  EXPECT_EQ(row.runs, 3);
  std::string err;
  auto v = verification_from_row(row, &err);
  ASSERT_TRUE(v) << err;
  EXPECT_EQ(verification_to_json(*v), verification_to_json(*b.verification));

  test::TempDir dir;
  auto store = Store::open(dir.file("v.db"), &err);
  ASSERT_TRUE(store) << err;
  ASSERT_NE(store->add_verified_set(row), 0) << store->last_error();
  auto rows = store->verified_sets("/usr/bin/prog");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].verification, row.verification);
  EXPECT_TRUE(store->verified_sets("/usr/bin/other").empty());
}

}  // namespace
}  // namespace capaudit
