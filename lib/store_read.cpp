// Reading the store. Every scan runs in a key order it checks, so a damaged
// b-tree that yields rows forever is caught at its first repeated key; the
// statement budget (store.cpp) bounds whatever else a damaged file does.
// Any failure leaves the store read_failed(): what was read may be partial.
#include "store_query.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <tuple>
#include <unordered_map>

namespace capaudit {

namespace {

// final_verdict (column 18, version 3) and arg (column 19, version 4)
// last; a file of an older version read without migrating has 0 there:
// final verdicts unknown, requests not classified.
std::string check_columns(bool final_verdict, bool arg) {
  return std::string("SELECT id, binary_id, cap, ret, audit, insetid, uid, euid, syscall, target_ns_inum, "
                     "target_ns_level, cred_ns_inum, cgroup_id, cap_effective, profiled, count, first_seen, "
                     "last_seen, ") +
         (final_verdict ? "final_verdict" : "0") + ", " + (arg ? "arg" : "0") + " FROM checks";
}

CheckRow read_check_row(const Query& q) {
  CheckRow c;
  c.id = q.i64(0);
  c.binary_id = q.i64(1);
  c.f.cap = q.i32(2);
  c.f.ret = q.i32(3);
  int audit = q.i32(4);
  c.f.audit = audit == 0 ? Audit::No : audit == 1 ? Audit::Yes : Audit::Unknown;
  c.f.insetid = q.i32(5) != 0;
  c.f.uid = q.u32(6);
  c.f.euid = q.u32(7);
  c.f.syscall = q.i32(8);
  c.f.target_ns_inum = q.u32(9);
  c.f.target_ns_level = q.u32(10);
  c.f.cred_ns_inum = q.u32(11);
  c.f.cgroup_id = q.u64(12);
  c.f.cap_effective = q.u64(13);
  c.f.profiled = q.i32(14) != 0;
  const int fv = q.i32(18);
  c.f.final_verdict = fv == 1 ? FinalVerdict::Granted : fv == 2 ? FinalVerdict::Denied : FinalVerdict::Unknown;
  // The drainer's marks of a coarse row (check_fields): no real check has
  // uid -1 or namespace inum 0.
  c.f.coarse = c.f.uid == UINT32_MAX && c.f.euid == UINT32_MAX && c.f.target_ns_inum == 0 &&
               c.f.cred_ns_inum == 0;
  c.count = q.u64(15);
  c.first_seen = q.i64(16);
  c.last_seen = q.i64(17);
  c.f.arg = q.u32(19);
  return c;
}

constexpr const char* kBinaryColumns =
    "SELECT id, dev, ino, path, comm, path_stale, first_seen, last_seen, sha256, owner_uid, "
    "owner_gid, mode, file_caps FROM binaries";

BinaryRow read_binary_row(const Query& q) {
  BinaryRow b;
  b.id = q.i64(0);
  b.key.dev = q.u64(1);
  b.key.ino = q.u64(2);
  b.key.path = q.text(3);
  b.key.comm = q.text(4);
  b.path_stale = q.i32(5) != 0;
  b.first_seen = q.i64(6);
  b.last_seen = q.i64(7);
  b.sha256 = q.opt_text(8);
  b.owner_uid = q.opt_u32(9);
  b.owner_gid = q.opt_u32(10);
  b.mode = q.opt_u32(11);
  b.file_caps = q.opt_text(12);
  return b;
}

std::vector<std::string> parse_frames(const std::string& text) {
  std::vector<std::string> out;
  auto frames = nlohmann::json::parse(text, nullptr, false);
  if (frames.is_array())
    for (auto& f : frames)
      if (f.is_string()) out.push_back(f.get<std::string>());
  return out;
}

// Each check's origins, most sampled first: the order origins() gives.
void order_origins(std::vector<OriginRow>& l) {
  std::stable_sort(l.begin(), l.end(), [](const OriginRow& a, const OriginRow& b) {
    if (a.samples != b.samples) return a.samples > b.samples;
    return a.origin < b.origin;
  });
}

}  // namespace

const std::vector<std::string>& Frames::no_frames() {
  static const std::vector<std::string> none;
  return none;
}

std::optional<std::string> Store::meta(const std::string& key) {
  Query q(*this, "SELECT value FROM meta WHERE key = ?1", "read meta");
  q.bind(1, key);
  if (!q.next()) return std::nullopt;
  return q.text(0);
}

std::map<std::string, uint64_t> Store::load_drain_state() {
  std::map<std::string, uint64_t> out;
  // A WITHOUT ROWID table scans in key order; blobs compare as memcmp.
  Query q(*this, "SELECT key, value FROM drain_state", "read drain state");
  const std::string* last = nullptr;
  while (q.next()) {
    auto [it, fresh] = out.emplace(q.blob(0), q.u64(1));
    if (!fresh || (last && !(*last < it->first))) {
      mark_damaged("read drain state: rows out of key order");
      break;
    }
    last = &it->first;
  }
  return out;
}

namespace {

constexpr const char* kVerifiedSetColumns =
    "SELECT id, path, sha256, caps, verification, runs, compare_output, created FROM verified_sets";

VerifiedSetRow read_verified_set(const Query& q) {
  VerifiedSetRow r;
  r.id = q.i64(0);
  r.path = q.text(1);
  r.sha256 = q.text(2);
  r.caps = q.text(3);
  r.verification = q.text(4);
  r.runs = q.i64(5);
  r.compare_output = q.i32(6) != 0;
  r.created = q.i64(7);
  return r;
}

}  // namespace

std::vector<VerifiedSetRow> Store::verified_sets(const std::string& path) {
  std::vector<VerifiedSetRow> out;
  if (schema_version() < 2) return out;
  // In the path index's order (checked), reversed: newest first.
  Query q(*this, std::string(kVerifiedSetColumns) + " WHERE path = ?1 ORDER BY path, created, id",
          "read verified sets");
  q.bind(1, path);
  while (q.next() && q.in_key_order({q.i64(7), q.i64(0)})) out.push_back(read_verified_set(q));
  std::reverse(out.begin(), out.end());  // newest first
  return out;
}

std::map<std::string, std::vector<VerifiedSetRow>> Store::all_verified_sets() {
  std::map<std::string, std::vector<VerifiedSetRow>> out;
  if (schema_version() < 2) return out;
  // In rowid order (checked); each path's sets then ordered as verified_sets() gives them.
  Query q(*this, kVerifiedSetColumns, "read verified sets");
  while (q.next() && q.in_key_order(q.i64(0))) {
    VerifiedSetRow r = read_verified_set(q);
    out[r.path].push_back(std::move(r));
  }
  for (auto& [path, rows] : out)
    std::sort(rows.begin(), rows.end(), [](const VerifiedSetRow& a, const VerifiedSetRow& b) {
      return std::tie(a.created, a.id) > std::tie(b.created, b.id);
    });
  return out;
}

std::vector<CgroupRow> Store::cgroups() {
  std::vector<CgroupRow> out;
  if (schema_version() < 5) return out;
  Query q(*this,
          "SELECT id, path, first_seen, last_seen, unit, container_id, runtime, monitor, container_name, image, "
          "pod_uid, pod_name, pod_namespace, qos, bounding, user FROM cgroups ORDER BY id",
          "read cgroups");
  while (q.next() && q.in_key_order({q.i64(0)})) {
    CgroupRow r;
    r.id = q.u64(0);
    r.path = q.text(1);
    r.first_seen = q.i64(2);
    r.last_seen = q.i64(3);
    r.unit = q.text(4);
    r.container_id = q.text(5);
    r.runtime = q.text(6);
    r.monitor = q.i32(7) != 0;
    r.container_name = q.text(8);
    r.image = q.text(9);
    r.pod_uid = q.text(10);
    r.pod_name = q.text(11);
    r.pod_namespace = q.text(12);
    r.qos = q.text(13);
    r.bounding = q.opt_u64(14);
    r.user = q.opt_u32(15);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> Store::paths_of(uint64_t dev, uint64_t ino) {
  std::vector<std::string> out;
  Query q(*this, "SELECT path, last_seen FROM binaries WHERE dev = ?1 AND ino = ?2 AND path != ''",
          "read paths");
  q.bind(1, dev).bind(2, ino);
  std::vector<std::pair<int64_t, std::string>> rows;
  while (q.next()) rows.emplace_back(q.i64(1), q.text(0));
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (auto& r : rows) out.push_back(std::move(r.second));
  return out;
}

std::vector<BinaryRow> Store::binaries(const std::optional<std::string>& path) {
  std::vector<BinaryRow> out;
  // Rows come in rowid order, checked; sorting here (as ORDER BY path, comm,
  // id would: BINARY collation compares bytes) costs less than SQLite's sorter.
  Query q(*this, path ? std::string(kBinaryColumns) + " WHERE path = ?1 ORDER BY path, id" : kBinaryColumns,
          "read binaries");
  if (path) q.bind(1, *path);
  while (q.next() && q.in_key_order(q.i64(0))) out.push_back(read_binary_row(q));
  std::sort(out.begin(), out.end(), [](const BinaryRow& a, const BinaryRow& b) {
    return std::tie(a.key.path, a.key.comm, a.id) < std::tie(b.key.path, b.key.comm, b.id);
  });
  return out;
}

std::vector<CheckRow> Store::checks(int64_t binary_id) {
  std::vector<CheckRow> out;
  // In the order of the UNIQUE index this search uses, so no sorter runs.
  const bool fv = has_final_verdict();
  Query q(*this,
          check_columns(fv, has_arg()) +
              " WHERE binary_id = ?1 ORDER BY binary_id, cap, ret, audit, insetid, uid, euid, syscall, "
              "target_ns_inum, target_ns_level, cred_ns_inum, cgroup_id, cap_effective, profiled" +
              (fv ? ", final_verdict" : "") + (has_arg() ? ", arg" : ""),
          "read checks");
  q.bind(1, binary_id);
  while (q.next() && q.in_key_order({q.i64(2), q.i64(3), q.i64(4), q.i64(5), q.i64(6), q.i64(7), q.i64(8),
                                     q.i64(9), q.i64(10), q.i64(11), q.i64(12), q.i64(13), q.i64(14),
                                     q.i64(18), q.i64(19)}))
    out.push_back(read_check_row(q));
  std::sort(out.begin(), out.end(), [](const CheckRow& a, const CheckRow& b) {
    return std::tie(a.f.cap, a.f.ret, a.id) < std::tie(b.f.cap, b.f.ret, b.id);
  });
  return out;
}

std::vector<CheckRow> Store::all_checks() {
  std::vector<CheckRow> out;
  Query q(*this, check_columns(has_final_verdict(), has_arg()), "read checks");
  while (q.next() && q.in_key_order(q.i64(0))) out.push_back(read_check_row(q));
  // ORDER BY binary_id, cap, ret, id, done here: cheaper than SQLite's sorter.
  std::sort(out.begin(), out.end(), [](const CheckRow& a, const CheckRow& b) {
    return std::tie(a.binary_id, a.f.cap, a.f.ret, a.id) < std::tie(b.binary_id, b.f.cap, b.f.ret, b.id);
  });
  return out;
}

std::vector<OriginRow> Store::origins(int64_t check_id) {
  std::vector<OriginRow> out;
  Query q(*this,
          "SELECT o.stack_id, s.origin, s.frames, o.samples FROM check_origins o "
          "JOIN stacks s ON s.id = o.stack_id WHERE o.check_id = ?1 ORDER BY o.check_id, o.stack_id",
          "read origins");
  q.bind(1, check_id);
  while (q.next() && q.in_key_order(q.i64(0))) {
    OriginRow o;
    o.check_id = check_id;
    o.stack_id = q.i64(0);
    o.origin = q.text(1);
    o.frames = parse_frames(q.text(2));
    o.samples = q.u64(3);
    out.push_back(std::move(o));
  }
  order_origins(out);
  return out;
}

std::map<int64_t, std::vector<OriginRow>> Store::all_origins() {
  std::map<int64_t, std::vector<OriginRow>> out;
  // Thousands of origins share a few hundred stacks: each is read once.
  struct Stack {
    std::string origin;
    Frames frames;
  };
  std::unordered_map<int64_t, Stack> stacks;
  // Rows come in primary key order (check_id, stack_id), which is checked.
  Query q(*this, "SELECT check_id, stack_id, samples FROM check_origins ORDER BY check_id, stack_id",
          "read origins");
  std::vector<OriginRow>* list = nullptr;
  while (q.next() && q.in_key_order({q.i64(0), q.i64(1)})) {
    OriginRow o;
    o.check_id = q.i64(0);
    o.stack_id = q.i64(1);
    o.samples = q.u64(2);
    auto it = stacks.find(o.stack_id);
    if (it == stacks.end()) {
      Query sq(*this, "SELECT origin, frames FROM stacks WHERE id = ?1", "read stacks");
      sq.bind(1, o.stack_id);
      // The JOIN this replaces drops origins of a missing stack.
      if (!sq.next()) {
        if (sq.failed()) break;
        continue;
      }
      it = stacks.emplace(o.stack_id, Stack{sq.text(0), parse_frames(sq.text(1))}).first;
    }
    o.origin = it->second.origin;
    o.frames = it->second.frames;
    if (!list || list->front().check_id != o.check_id) {
      if (list) order_origins(*list);
      list = &out[o.check_id];
    }
    list->push_back(std::move(o));
  }
  if (list) order_origins(*list);
  return out;
}

namespace {

constexpr const char* kSelfInspectionColumns =
    "SELECT binary_id, kind, cap, profiled, count, first_seen, last_seen FROM self_inspections";

SelfInspectionRow read_self_inspection(const Query& q) {
  SelfInspectionRow r;
  r.binary_id = q.i64(0);
  r.kind = q.i32(1);
  r.cap = q.i32(2);
  r.profiled = q.i32(3) != 0;
  r.count = q.u64(4);
  r.first_seen = q.i64(5);
  r.last_seen = q.i64(6);
  return r;
}

}  // namespace

std::map<int64_t, std::vector<SelfInspectionRow>> Store::all_self_inspections() {
  std::map<int64_t, std::vector<SelfInspectionRow>> out;
  if (!has_arg()) return out;
  // A WITHOUT ROWID table scans in primary key order, which is checked.
  Query q(*this, kSelfInspectionColumns, "read self-inspections");
  while (q.next() && q.in_key_order({q.i64(0), q.i64(1), q.i64(2), q.i64(3)}))
    out[q.i64(0)].push_back(read_self_inspection(q));
  return out;
}

std::vector<SelfInspectionRow> Store::self_inspections(int64_t binary_id) {
  std::vector<SelfInspectionRow> out;
  if (!has_arg()) return out;
  Query q(*this, std::string(kSelfInspectionColumns) + " WHERE binary_id = ?1 ORDER BY binary_id, kind, cap, profiled",
          "read self-inspections");
  q.bind(1, binary_id);
  while (q.next() && q.in_key_order({q.i64(1), q.i64(2), q.i64(3)})) out.push_back(read_self_inspection(q));
  return out;
}

std::map<std::string, uint64_t> Store::stats() {
  std::map<std::string, uint64_t> out;
  Query q(*this, "SELECT name, value FROM collector_stats", "read stats");
  while (q.next()) {
    if (!out.emplace(q.text(0), q.u64(1)).second) {
      mark_damaged("read stats: a name repeated in a unique column");
      break;
    }
  }
  return out;
}

uint64_t Store::total_count() {
  Query q(*this, "SELECT coalesce(sum(count), 0) FROM checks", "count checks");
  return q.next() ? q.u64(0) : 0;
}

}  // namespace capaudit
