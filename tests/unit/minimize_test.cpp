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

TEST(ApplyVerification, TreeVerdictsAreNotAWrappersOwn) {
  // sh -c 'ping ...': the runs held cap_net_raw for the whole tree; sh never asked for it.
  BinaryDecision sh;
  sh.path = "/usr/bin/dash";
  FakeCommand cmd{[](const std::vector<int>& c) { return holds(c, CAP_NET_RAW); }, {}};
  apply_verification(sh, minimize({CAP_NET_RAW}, exited(0), cmd.runner(), Rules::builtin(), {}));
  EXPECT_TRUE(sh.capabilities.empty());
  EXPECT_TRUE(std::any_of(sh.warnings.begin(), sh.warnings.end(),
                          [](const std::string& w) { return w.find("whole process tree") != std::string::npos; }));
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
