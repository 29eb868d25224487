// Recommendations per systemd unit and per container (issue 12): the
// observations split by the cgroup each check ran in (the cgroups table),
// then the same engine (engine.h) on each part. The container runtime's
// own set-up (runc/crun init, conmon, catatonit) runs in the container's
// cgroup before the entrypoint's exec: its checks are kept apart, never
// counted toward the container's set.
#pragma once

#include "engine.h"
#include "observations.h"
#include "rules.h"
#include "store.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace capaudit {

enum class GroupBy { Binary, Unit, Container };

struct GroupDecision {
  std::string key;  // the unit's name, or the container's full id
  // A unit: the uid its checks ran as when none ran as root (its User=).
  std::string unit;
  std::optional<uint32_t> uid;
  std::optional<std::string> user;  // the uid's name, or the number as text
  // A container: its cgroup row (the named one, when several).
  CgroupRow container;
  std::vector<std::string> cgroup_paths;

  std::vector<int> capabilities;  // what the workload needs, sorted by name
  uint64_t held = 0;              // the container's bounding set, else the effective sets seen
  bool held_is_bounding = false;
  uint64_t used = 0;              // granted in the initial user namespace
  std::vector<std::string> notes; // where the advice needs more than the flags

  // The engine's decisions per binary; they point into the observations,
  // which move with them (a vector's elements keep their addresses).
  std::vector<Observation> observations;
  Analysis analysis;
  std::vector<Observation> setup_observations;
  Analysis setup;  // the runtime's set-up, listed apart
  std::vector<std::string> binaries() const;       // the workload's paths, sorted
  std::vector<std::string> setup_binaries() const;
  std::vector<int> setup_capabilities() const;     // what the set-up was granted
};

struct GroupAnalysis {
  GroupBy by = GroupBy::Unit;
  std::vector<GroupDecision> groups;
  uint64_t checks_unnamed = 0;  // in no unit or container the database knows
};

// A container runtime's binary (runc, crun, conmon, catatonit, ...).
bool is_runtime_binary(const BinaryRow& b);

// by Unit or Container. `only`: the one unit, or container (full id, an id
// prefix of at least 4 digits, or a name) to keep; nullopt: all.
GroupAnalysis analyze_groups(const std::vector<Observation>& obs, const std::vector<CgroupRow>& cgroups,
                             GroupBy by, const Rules& rules, const std::optional<std::string>& only = std::nullopt);

// The checks made in one unit or container, per binary, for report and
// recommend --by binary with --unit or --container (the runtime's set-up
// left out of a container's).
std::vector<Observation> observations_in(const std::vector<Observation>& obs, const std::vector<CgroupRow>& cgroups,
                                         GroupBy by, const std::string& which);

// "drops 10 of 11": the held set against what is recommended.
std::string drops_text(const GroupDecision& g);

}  // namespace capaudit
