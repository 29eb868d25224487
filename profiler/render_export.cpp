// capaudit export: the engine's decisions as NDJSON, schema capaudit.v1
// (docs/fleet.md). One line per (binary version, capability, verdict, audit)
// so a shipper can forward lines one by one and a loader can upsert them by
// key; counts are the host's cumulative ones, never deltas, so a line loaded
// twice is the same fact twice.
#include "render.h"

#include "capnames.h"

#include <algorithm>
#include <tuple>

namespace capaudit {

std::vector<FleetLine> export_lines(const Analysis& a, const std::string& host_id, int64_t exported_at) {
  std::vector<FleetLine> lines;
  for (const BinaryDecision& b : a.binaries) {
    // Kernel threads and unresolved binaries name nothing another host has.
    if (b.path.empty() || b.path.front() != '/') continue;
    FleetLine base;
    base.host_id = host_id;
    base.exported_at = exported_at;
    base.path = b.path;
    if (b.row && b.row->sha256 && !b.row->sha256->empty()) {
      base.sha256 = *b.row->sha256;
    } else {
      base.no_sha256 = b.row && b.row->path_stale
                           ? "the file was deleted or replaced before the daemon could hash it"
                           : "the daemon could not read the file to hash it";
    }
    for (const CheckDecision& c : b.checks) {
      FleetLine l = base;
      l.capability = cap_name(c.cap);
      l.granted = c.granted;
      l.audit = c.audit;
      l.count = c.count;
      l.first_seen = c.first_seen;
      l.last_seen = c.last_seen;
      l.required = c.required;
      l.reason = c.reason;
      if (c.replaced_by) l.replaced_by = cap_name(*c.replaced_by);
      lines.push_back(std::move(l));
    }
  }
  // One order whatever order the database gave: exports of one state diff clean.
  std::stable_sort(lines.begin(), lines.end(), [](const FleetLine& x, const FleetLine& y) {
    return std::tie(x.path, x.sha256) < std::tie(y.path, y.sha256);
  });
  return lines;
}

std::string export_line_json(const FleetLine& l) {
  // In the schema's order, as a reader of the raw file expects it.
  nlohmann::ordered_json j;
  j["schema"] = kExportSchema;
  j["host_id"] = l.host_id;
  j["exported_at"] = l.exported_at;
  j["sha256"] = l.sha256 ? nlohmann::ordered_json(*l.sha256) : nlohmann::ordered_json(nullptr);
  if (!l.sha256) j["no_sha256"] = l.no_sha256;
  j["path"] = l.path;
  j["capability"] = l.capability;
  j["verdict"] = l.granted ? "granted" : "denied";
  j["audit"] = l.audit == Audit::Unknown ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(l.audit == Audit::Yes);
  j["count"] = l.count;
  j["first_seen"] = l.first_seen;
  j["last_seen"] = l.last_seen;
  j["required"] = l.required;
  j["replaced_by"] = l.replaced_by.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(l.replaced_by);
  j["reason"] = l.reason;
  // Paths are bytes: what is not UTF-8 is replaced rather than refused.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

void write_export(std::ostream& out, const std::vector<FleetLine>& lines) {
  for (const FleetLine& l : lines) out << export_line_json(l) << '\n';
}

}  // namespace capaudit
