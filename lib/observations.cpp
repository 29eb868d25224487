#include "observations.h"

#include <map>
#include <unordered_map>

namespace capaudit {

namespace {

void read_all(Store& store, std::vector<Observation>& out) {
  // The whole database: three queries rather than one per binary and check.
  std::vector<BinaryRow> bins = store.binaries();
  std::vector<CheckRow> checks = store.all_checks();
  std::map<int64_t, std::vector<OriginRow>> origins = store.all_origins();
  std::map<int64_t, std::vector<SelfInspectionRow>> inspections = store.all_self_inspections();
  std::unordered_map<int64_t, size_t> index;
  out.reserve(bins.size());
  for (BinaryRow& b : bins) {
    index.emplace(b.id, out.size());
    Observation& o = out.emplace_back();
    if (auto it = inspections.find(b.id); it != inspections.end()) o.self_inspections = std::move(it->second);
    o.binary = std::move(b);
  }
  for (CheckRow& c : checks) {
    auto at = index.find(c.binary_id);
    if (at == index.end()) continue;
    ObservedCheck& oc = out[at->second].checks.emplace_back();
    if (auto o = origins.find(c.id); o != origins.end()) oc.origins = std::move(o->second);
    oc.row = c;
  }
}

void read_path(Store& store, const std::string& path, std::vector<Observation>& out) {
  for (BinaryRow& b : store.binaries(path)) {
    Observation o;
    o.binary = std::move(b);
    o.self_inspections = store.self_inspections(o.binary.id);
    for (CheckRow& c : store.checks(o.binary.id)) {
      if (store.read_failed()) return;
      ObservedCheck oc;
      oc.origins = store.origins(c.id);
      oc.row = c;
      o.checks.push_back(std::move(oc));
    }
    out.push_back(std::move(o));
    if (store.read_failed()) return;
  }
}

}  // namespace

std::optional<std::vector<Observation>> load_observations(Store& store, const std::optional<std::string>& path,
                                                          std::string* err) {
  std::vector<Observation> out;
  if (path) read_path(store, *path, out);
  else read_all(store, out);
  if (store.read_failed()) {
    if (err) *err = store.damage_message();
    return std::nullopt;
  }
  return out;
}

}  // namespace capaudit
