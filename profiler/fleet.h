// The fleet view (docs/fleet.md): each host exports its checks as NDJSON
// (schema capaudit.v1, render_export.cpp), `fleet load` reads them back
// (fleet_parse.cpp) into PostgreSQL (fleet_pg.cpp), and `fleet recommend` /
// `fleet outliers` aggregate there (render_fleet.cpp writes the answers).
// Plain data only: no database, no libpq.
#pragma once

#include "store.h"  // Audit

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace capaudit {

inline constexpr const char* kExportSchema = "capaudit.v1";

// One line of an export: one (binary version, capability, verdict, audit)
// of one host, with its cumulative count and the host's decision.
struct FleetLine {
  std::string host_id;
  int64_t exported_at = 0;            // unix seconds, the host's clock
  std::optional<std::string> sha256;  // lower-case hex; nullopt when the file could not be hashed
  std::string no_sha256;              // why there is no hash ("" when there is one)
  std::string path;
  std::string capability;             // "cap_net_raw"
  bool granted = true;
  Audit audit = Audit::Unknown;
  uint64_t count = 0;                 // cumulative: everything the host ever counted
  int64_t first_seen = 0, last_seen = 0;
  bool required = false;
  // The narrower capability the host keeps instead of this one ("" none):
  // the host's set is its required lines plus these.
  std::string replaced_by;
  std::string reason;
  friend bool operator==(const FleetLine&, const FleetLine&) = default;
};

// One line of NDJSON; false with *err saying what is wrong (the caller adds
// the file and line number). Keys other than the schema's are ignored, so a
// later capaudit.v1 exporter may add some.
bool parse_fleet_line(std::string_view text, FleetLine* line, std::string* err);

// A host id as export accepts it (--host-id, /etc/machine-id): 1 to 255
// printable ASCII characters, no spaces.
bool valid_host_id(std::string_view id);
bool valid_sha256(std::string_view hex);  // 64 lower-case hex digits

// ---- What the fleet queries answer -----------------------------------------

// One (capability, verdict, audit) of a binary version across the fleet.
struct FleetCheck {
  std::string capability;
  bool granted = true;
  Audit audit = Audit::Unknown;
  uint64_t count = 0;       // summed over hosts (each host's own count is cumulative)
  int64_t hosts = 0;        // hosts that saw it
  int64_t required_hosts = 0;
  int64_t first_seen = 0, last_seen = 0;
  std::string reason;       // a host's reason, preferring one that required it
};

// A binary version: one SHA-256 (or, unhashed, one path) across the fleet.
struct FleetBinary {
  std::string path;                 // the path most hosts ran it from
  std::vector<std::string> paths;   // every path it ran from, sorted
  std::optional<std::string> sha256;
  int64_t hosts = 0;                // hosts that ran it
  std::vector<std::string> capabilities;  // union of what hosts found required, sorted
  std::vector<FleetCheck> checks;
};

struct FleetOutlier {
  std::string path;
  std::optional<std::string> sha256;
  std::string capability;
  std::vector<std::string> hosts;  // the hosts that found it required, sorted
  int64_t of_hosts = 0;            // hosts that ran the version
};

}  // namespace capaudit
