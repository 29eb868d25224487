// The least-privilege engine: observed checks + rules -> the minimal
// capability set per binary, with a reason for every capability kept or
// dropped. Pure logic over plain data: no kernel, no database.
#pragma once

#include "rules.h"
#include "store.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace capaudit {

// One binary as observed: its row, and each check row with its origins.
struct ObservedCheck {
  CheckRow row;
  std::vector<OriginRow> origins;
};

struct Observation {
  BinaryRow binary;  // for `profile` without a database, ids are 0
  std::vector<ObservedCheck> checks;
};

// Reads every binary (or those at `path`) with its checks and origins.
std::vector<Observation> load_observations(Store& store, const std::optional<std::string>& path);

enum class Verification { Unverified, ConfirmedNeeded, DroppedByRun };

// One line of the contract's "checks": one (capability, verdict, audit)
// group of a binary, with the decision about it.
struct CheckDecision {
  int cap = 0;
  bool granted = true;
  Audit audit = Audit::Unknown;
  uint64_t count = 0;
  bool required = false;
  std::string reason;
  std::vector<std::string> origins;       // distinct, most sampled first
  std::vector<uint32_t> uids, euids;      // distinct, sorted
  std::vector<uint64_t> cgroup_ids;       // distinct, sorted: which units ran it
  bool only_other_user_ns = false;        // every check targeted a child user namespace
  int64_t first_seen = 0, last_seen = 0;
  std::optional<int> replaced_by;         // alternative: the narrower capability kept instead
};

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
  const BinaryRow* row = nullptr;   // valid while the observations live
};

struct Analysis {
  std::vector<BinaryDecision> binaries;
};

Analysis analyze(const std::vector<Observation>& obs, const Rules& rules);

// First and last time any of the binary's checks was seen (0 when unknown).
std::pair<int64_t, int64_t> seen_span(const BinaryDecision& b);

// The contract's JSON shape ({"binaries": [...]}) plus free extra keys.
nlohmann::json to_json(const Analysis& a);

}  // namespace capaudit
