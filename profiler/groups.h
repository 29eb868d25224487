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
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace capaudit {

enum class GroupBy { Binary, Unit, Container };

// What systemd says of a unit now (its unit file and drop-ins as loaded),
// asked when grouping: the drop-in is for the unit as it is configured, and
// only its User= says whether AmbientCapabilities= is wanted.
struct UnitSettings {
  std::string user;           // User=; "" when unset (root)
  bool dynamic_user = false;  // DynamicUser=yes: a uid allocated at start, never root
  uint64_t bounding = ~uint64_t{0};  // CapabilityBoundingSet= (bit n = capability n)
  uint64_t ambient = 0;              // AmbientCapabilities=
};
// nullopt, with *why, when the unit cannot be asked about or systemd does
// not know it.
using UnitLookup = std::function<std::optional<UnitSettings>(const std::string& unit, std::string* why)>;
// systemd's own answer over D-Bus (its private socket as root, else the
// system bus), one connection for all the look-ups (groups_systemd.cpp).
UnitLookup systemd_unit_lookup();

// Where a unit's user came from.
enum class UserSource { Unit, Checks, Unknown };

struct GroupDecision {
  std::string key;  // the unit's name, or the container's full id
  // A unit: its User= from systemd, else the uid its checks ran as when
  // none ran as root.
  std::string unit;
  std::optional<uint32_t> uid;
  std::optional<std::string> user;  // User=, the uid's name, or the number as text
  UserSource user_source = UserSource::Unknown;
  bool non_root = false;                 // wants AmbientCapabilities=
  std::optional<UnitSettings> settings;  // when systemd answered
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
  Analysis setup;  // the runtime's (or systemd's) set-up, listed apart
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
// systemd itself (PID 1's forked child, systemd-executor): it sets up each
// of a unit's processes in the unit's cgroup, as root, before the Exec
// line's program runs.
bool is_manager_binary(const BinaryRow& b);

// by Unit or Container. `only`: the one unit, or container (full id, an id
// prefix of at least 4 digits, or a name) to keep; nullopt: all. `units`:
// asked for each unit's settings (by Unit); without it, or where it does
// not answer, the user is the one the checks ran as, and the output says so.
GroupAnalysis analyze_groups(const std::vector<Observation>& obs, const std::vector<CgroupRow>& cgroups,
                             GroupBy by, const Rules& rules, const std::optional<std::string>& only = std::nullopt,
                             const UnitLookup* units = nullptr);

// The checks made in one unit or container, per binary, for report and
// recommend --by binary with --unit or --container (the runtime's set-up
// left out of a container's).
std::vector<Observation> observations_in(const std::vector<Observation>& obs, const std::vector<CgroupRow>& cgroups,
                                         GroupBy by, const std::string& which);

// "drops 10 of 11": the held set against what is recommended.
std::string drops_text(const GroupDecision& g);

}  // namespace capaudit
