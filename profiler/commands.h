// The capaudit subcommands. main.cpp parses arguments into these structs;
// each command returns the process exit status (0 ok, 1 runtime error,
// 2 usage error) and writes errors to standard error itself.
#pragma once

#include "config.h"  // kDefaultDb
#include "display.h"
#include "engine.h"
#include "groups.h"
#include "render.h"  // every output format, shared by report, recommend and profile

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace capaudit {

struct ReportArgs {
  std::string db = kDefaultDb;
  std::optional<std::string> binary;
  bool json = false;
  std::optional<std::string> unit;       // only the checks made in this systemd unit
  std::optional<std::string> container;  // ... or this container (id, id prefix, name)
};
int cmd_report(const ReportArgs& a);

enum class RecommendFormat { Table, Json, Script, Systemd, Docker, Kubernetes };
struct RecommendArgs {
  std::string db = kDefaultDb;
  std::optional<std::string> binary;
  RecommendFormat format = RecommendFormat::Table;
  std::optional<std::string> output;  // written atomically, mode 0600
  std::optional<GroupBy> by;  // unset: binary, or what --format systemd|docker|kubernetes implies
  std::optional<std::string> unit;
  std::optional<std::string> container;
};
int cmd_recommend(const RecommendArgs& a);

struct FilesArgs {
  std::vector<std::string> dirs;  // empty: PATH's directories
  bool json = false;
  std::string db = kDefaultDb;    // what the daemon saw each file use (optional)
};
int cmd_files(const FilesArgs& a);

struct ProfileArgs {
  std::optional<std::string> user;
  std::optional<std::string> output;
  bool json = false;
  std::optional<std::string> db;
  std::vector<std::string> command;
  // --minimize (docs/minimize.md): re-run COMMAND to verify the set.
  bool minimize = false;
  bool compare_output = false;  // also compare standard output, not only the exit status
  int max_runs = 32;            // re-runs, the baseline included
};
int cmd_profile(const ProfileArgs& a);

// pscap joined with the database: each process's sets and what was used.
struct PsArgs {
  std::string db = kDefaultDb;
  bool json = false;
  uint32_t pid = 0;  // 0: every process
};
int cmd_ps(const PsArgs& a);

struct TraceArgs {
  bool json = false;
  bool kernel_stacks = false;
  bool user_stacks = false;
  bool verbose = false;  // include non-audit checks
  uint32_t pid = 0;
};
int cmd_trace(const TraceArgs& a);

// The fleet (docs/fleet.md): export per host, load and ask on PostgreSQL.
struct ExportArgs {
  std::string db = kDefaultDb;
  std::optional<std::string> host_id;  // default: /etc/machine-id
  std::optional<std::string> output;   // written atomically, mode 0600
};
int cmd_export(const ExportArgs& a);

struct FleetLoadArgs {
  std::string postgres;            // libpq conninfo; may hold a password: never printed
  std::vector<std::string> files;  // empty: standard input
};
int cmd_fleet_load(const FleetLoadArgs& a);

struct FleetRecommendArgs {
  std::string postgres;
  std::optional<std::string> binary;
  std::optional<std::string> sha256;
  bool json = false;
};
int cmd_fleet_recommend(const FleetRecommendArgs& a);

struct FleetOutliersArgs {
  std::string postgres;
  bool json = false;
};
int cmd_fleet_outliers(const FleetOutliersArgs& a);

}  // namespace capaudit
