// The least-privilege engine: observed checks + rules -> the minimal
// capability set per binary, with a reason for every capability kept or
// dropped. Pure logic over plain data: no kernel, no database (the
// observations are read by lib/observations.h). What it decides is written
// out by the renderers (render.h).
#pragma once

#include "observations.h"
#include "rules.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace capaudit {

enum class Verification { Unverified, ConfirmedNeeded, DroppedByRun };

// What re-running the command (`capaudit profile --minimize`) showed about
// one capability of the set it started from, or of a narrower one it tried.
struct CapabilityVerdict {
  int cap = 0;
  Verification verified = Verification::Unverified;
  int runs = 0;                    // runs spent deciding it
  std::string reason;
  std::optional<int> replaced_by;  // dropped because this narrower one did its job
};

// The runs behind a verified set (see docs/minimize.md).
struct VerificationInfo {
  int runs = 0;                // re-runs made, the baseline included
  bool baseline_ok = false;    // a run (the rules' set, else the whole start) behaved like the traced one
  bool compare_output = false; // standard output was compared, not only the exit status
  int64_t created = 0;         // unix seconds
  std::vector<int> observed;   // the set the runs started from (every capability granted in the tree)
  std::vector<CapabilityVerdict> capabilities;
  std::string note;            // why nothing could be verified, or why the runs started wider than the grants
};

// One line of the contract's "checks": one (capability, verdict, audit)
// group of a binary, with the decision about it.
struct CheckDecision {
  int cap = 0;
  bool granted = true;              // commoncap's answer (cap_capable)
  Audit audit = Audit::Unknown;
  // security_capable's, after every LSM; Unknown where the method cannot tell.
  FinalVerdict final_verdict = FinalVerdict::Unknown;
  uint64_t count = 0;
  bool required = false;
  std::string reason;
  std::vector<std::string> origins;       // distinct, most sampled first
  std::vector<uint32_t> uids, euids;      // distinct, sorted
  std::vector<uint64_t> cgroup_ids;       // distinct, sorted: which units ran it
  bool only_other_user_ns = false;        // every check targeted a child user namespace
  int64_t first_seen = 0, last_seen = 0;
  std::optional<int> replaced_by;         // alternative: the narrower capability kept instead
  Verification verified = Verification::Unverified;  // what re-runs showed (profile --minimize)
  // Of count, the checks counted at the coarse key (the kernel's map was
  // full): their uid, euid, cgroup, namespaces, syscall and effective set
  // are not known, and are not in the lists above.
  uint64_t coarse_count = 0;
};

// What a check counted at the coarse key is not known about (the JSON's
// "detail_lost", the table's "detail lost" line).
inline constexpr std::string_view kCoarseDetailLost = "uid, euid, cgroup, namespace, syscall, effective set";

struct BinaryDecision {
  std::string path;     // "" for kernel threads / unresolved (see display_name)
  std::string display_name;
  std::vector<int> capabilities;  // minimal set, sorted by name
  std::vector<CheckDecision> checks;
  std::vector<std::string> warnings;  // e.g. "seen only as root: ..."
  // What the binary held versus used.
  uint64_t held_effective = 0;  // union of the effective sets its checks ran with
  bool setuid_root = false;
  std::optional<std::string> file_caps;
  bool seen_non_root_euid = false;  // some check ran with euid != 0
  bool profiled = false;            // some check came from `capaudit profile`
  // Times the program asked the kernel what capabilities it holds (capget,
  // prctl capability queries): it may refuse to run without a capability the
  // kernel never checks, so a set drawn from kernel checks alone can break it.
  uint64_t self_inspections = 0;
  const BinaryRow* row = nullptr;   // valid while the observations live
  // Set when re-runs checked the set: `capabilities` is then the verified
  // set (when baseline_ok), else the observed one.
  std::optional<VerificationInfo> verification;
  bool verified_set() const { return verification && verification->baseline_ok; }
};

struct Analysis {
  std::vector<BinaryDecision> binaries;
};

Analysis analyze(const std::vector<Observation>& obs, const Rules& rules);
// The same decisions in the same order, each handed to `each` as soon as it
// is made: a caller that writes and frees them one by one never holds the
// whole analysis.
void analyze_each(const std::vector<Observation>& obs, const Rules& rules,
                  const std::function<void(BinaryDecision&)>& each);

// First and last time any of the binary's checks was seen (0 when unknown).
std::pair<int64_t, int64_t> seen_span(const BinaryDecision& b);

}  // namespace capaudit
