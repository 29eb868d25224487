// Every output format of the engine's decisions, in one place: the engine
// (engine.h) decides, these write. A new format is one render_*.cpp and its
// declaration here.
//
//   render_json.cpp    the contract's JSON ({"binaries": [...]}), whole or
//                      streamed, and the verification object both ways
//   render_table.cpp   the report and recommend tables, TextTable
//   render_script.cpp  the nightly setcap script
//   render_export.cpp  capaudit export: NDJSON, schema capaudit.v1
//   render_fleet.cpp   fleet recommend and fleet outliers, JSON and tables
//   render_groups.cpp  per unit and per container: JSON, systemd drop-ins,
//                      Kubernetes securityContext, docker flags, the table
#pragma once

#include "engine.h"
#include "fleet.h"
#include "groups.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace capaudit {

class Store;

// ---- JSON (render_json.cpp) -------------------------------------------------

// "unverified", "needed", "dropped": the JSON `verified` values.
std::string verification_name(Verification v);

// The contract's JSON shape ({"binaries": [...]}) plus free extra keys.
nlohmann::json to_json(const Analysis& a);
nlohmann::json binary_to_json(const BinaryDecision& b);  // one element of "binaries"
// to_json(a).dump(2) and a newline, written one binary at a time.
void write_json(std::ostream& out, const Analysis& a);

// write_json's text for binaries given one at a time, each written as soon
// as it is decided (the caller may free it then).
class JsonStream {
 public:
  explicit JsonStream(std::ostream& out);
  void add(const BinaryDecision& b);
  void finish();  // the closing brackets and newline: `out` has the whole text

  static constexpr size_t kFlushAt = 1 << 16;

 private:
  std::ostream& out_;
  std::string text_;  // text_[0, used_) is what is not yet written to out_
  size_t used_ = 0;
  size_t count_ = 0;
};

// A binary's "verification" object, which is also what the database keeps
// (verified_sets.verification). The from_json halves throw
// nlohmann::json::other_error on what the to_json halves never write.
void to_json(nlohmann::json& j, const CapabilityVerdict& cv);
void from_json(const nlohmann::json& j, CapabilityVerdict& cv);
void to_json(nlohmann::json& j, const VerificationInfo& v);
void from_json(const nlohmann::json& j, VerificationInfo& v);
nlohmann::json verification_to_json(const VerificationInfo& v);
// from_json without the throw: false with *err set, naming `what` ("verified
// set 3 is malformed") when the shape is wrong.
bool verification_from_json(const nlohmann::json& j, VerificationInfo* v, std::string* err,
                            std::string_view what = "verification");

// ---- Tables (render_table.cpp) ----------------------------------------------

// report: every check with when it was seen; recommend: the sets and why.
void print_report_table(std::ostream& out, const Analysis& a);
void print_recommend_table(std::ostream& out, const Analysis& a);

// Column-aligned text for the human formats. Cells must already be safe to
// print (display.h); widths are byte counts, which holds for escaped text.
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header);
  void add(std::vector<std::string> row);
  void align_right(size_t column);
  void print(std::ostream& out, std::string_view indent = "") const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<size_t> right_;
};

// ---- The setcap script (render_script.cpp) ----------------------------------

// recommend --format script: narrow-only, see docs/contract.md. Needs the store
// for each binary's recorded identity. Returns the exit status.
int print_setcap_script(std::ostream& out, const Analysis& a, Store& store);

// ---- The fleet (render_export.cpp, render_fleet.cpp) ------------------------

// Each binary's (capability, verdict, audit) lines as export writes them,
// in path order; kernel threads and unresolved binaries are left out.
std::vector<FleetLine> export_lines(const Analysis& a, const std::string& host_id, int64_t exported_at);
std::string export_line_json(const FleetLine& l);  // one line, no newline
void write_export(std::ostream& out, const std::vector<FleetLine>& lines);

// {"binaries": [...]} with "hosts" on each binary and check; {"outliers": [...]}.
nlohmann::json fleet_recommend_to_json(const std::vector<FleetBinary>& binaries);
nlohmann::json fleet_outliers_to_json(const std::vector<FleetOutlier>& outliers);
void print_fleet_recommend_table(std::ostream& out, const std::vector<FleetBinary>& binaries);
void print_fleet_outliers_table(std::ostream& out, const std::vector<FleetOutlier>& outliers);

// ---- Per unit and per container (render_groups.cpp) -------------------------

// {"units": [...]} or {"containers": [...]} (docs/contract.md).
nlohmann::json groups_to_json(const GroupAnalysis& ga);
nlohmann::json unit_to_json(const GroupDecision& g);
nlohmann::json container_to_json(const GroupDecision& g);
// "CAP_CHOWN CAP_NET_RAW"; ["CHOWN", "NET_RAW"]; ["--cap-drop=ALL", "--cap-add=CHOWN", ...].
std::string systemd_caps_text(const std::vector<int>& caps);
std::vector<std::string> kubernetes_caps(const std::vector<int>& caps);
std::vector<std::string> docker_flags(const std::vector<int>& caps);
void print_systemd_dropins(std::ostream& out, const GroupAnalysis& ga);
void print_kubernetes(std::ostream& out, const GroupAnalysis& ga);
void print_docker(std::ostream& out, const GroupAnalysis& ga);
void print_groups_table(std::ostream& out, const GroupAnalysis& ga);

}  // namespace capaudit
