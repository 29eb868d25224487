// The daemon's side of the store: one transaction per drain.
#include "identity.h"
#include "store_query.h"

#include <nlohmann/json.hpp>

namespace capaudit {

bool Store::begin(std::string* err) { return exec("BEGIN IMMEDIATE", err); }

bool Store::commit(std::string* err) {
  if (exec("COMMIT", err)) return true;
  rollback();
  return false;
}

void Store::rollback() {
  if (!sqlite3_get_autocommit(db_)) exec("ROLLBACK");
}

int64_t Store::upsert_binary(const BinaryKey& key, bool path_stale, int64_t now) {
  Query q(*this,
          "INSERT INTO binaries(dev, ino, path, comm, path_stale, first_seen, last_seen) "
          "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?6) "
          "ON CONFLICT(dev, ino, path, comm) DO UPDATE SET last_seen = max(last_seen, ?6), "
          "path_stale = ?5 RETURNING id",
          "upsert binary");
  q.bind(1, key.dev).bind(2, key.ino).bind(3, key.path).bind(4, key.comm).bind(5, path_stale).bind(6, now);
  return q.next() ? q.i64(0) : 0;
}

bool Store::set_binary_identity(int64_t binary_id, const BinaryRow& b) {
  Query q(*this,
          "UPDATE binaries SET sha256 = ?2, owner_uid = ?3, owner_gid = ?4, mode = ?5, file_caps = ?6 "
          "WHERE id = ?1",
          "set binary identity");
  q.bind(1, binary_id).bind(2, b.sha256).bind(3, b.owner_uid).bind(4, b.owner_gid).bind(5, b.mode);
  q.bind(6, b.file_caps);
  return q.run();
}

bool Store::set_binary_identity(int64_t binary_id, const FileIdentity& file) {
  BinaryRow row;
  row.sha256 = file.sha256;
  row.owner_uid = file.owner_uid;
  row.owner_gid = file.owner_gid;
  row.mode = file.mode;
  row.file_caps = file.file_caps_text;
  return set_binary_identity(binary_id, row);
}

int64_t Store::add_check(int64_t binary_id, const CheckFields& f, uint64_t delta, int64_t now) {
  Query q(*this,
          "INSERT INTO checks(binary_id, cap, ret, audit, insetid, uid, euid, syscall, target_ns_inum, "
          "target_ns_level, cred_ns_inum, cgroup_id, cap_effective, profiled, final_verdict, count, first_seen, "
          "last_seen, arg) "
          "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?17, ?15, ?16, ?16, ?18) "
          "ON CONFLICT(binary_id, cap, ret, audit, insetid, uid, euid, syscall, target_ns_inum, "
          "target_ns_level, cred_ns_inum, cgroup_id, cap_effective, profiled, final_verdict, arg) "
          "DO UPDATE SET count = count + ?15, last_seen = max(last_seen, ?16) RETURNING id",
          "add check");
  q.bind(1, binary_id).bind(2, f.cap).bind(3, f.ret).bind(4, static_cast<int>(f.audit)).bind(5, f.insetid);
  q.bind(6, f.uid).bind(7, f.euid).bind(8, f.syscall).bind(9, f.target_ns_inum).bind(10, f.target_ns_level);
  q.bind(11, f.cred_ns_inum).bind(12, f.cgroup_id).bind(13, f.cap_effective).bind(14, f.profiled);
  q.bind(15, delta).bind(16, now).bind(17, static_cast<int>(f.final_verdict)).bind(18, f.arg);
  return q.next() ? q.i64(0) : 0;
}

bool Store::add_self_inspection(const SelfInspectionRow& r) {
  Query q(*this,
          "INSERT INTO self_inspections(binary_id, kind, cap, profiled, count, first_seen, last_seen) "
          "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(binary_id, kind, cap, profiled) "
          "DO UPDATE SET count = count + ?5, last_seen = max(last_seen, ?7)",
          "add self-inspection");
  q.bind(1, r.binary_id).bind(2, r.kind).bind(3, r.cap).bind(4, r.profiled).bind(5, r.count);
  q.bind(6, r.first_seen).bind(7, r.last_seen);
  return q.run();
}

int64_t Store::put_stack(const std::vector<std::string>& frames, const std::string& origin) {
  std::string text = nlohmann::json(frames).dump();
  Query q(*this,
          "INSERT INTO stacks(hash, origin, frames) VALUES(?1, ?2, ?3) "
          "ON CONFLICT(hash) DO UPDATE SET origin = origin RETURNING id",
          "put stack");
  q.bind(1, sha256_hex(text)).bind(2, origin).bind(3, text);
  return q.next() ? q.i64(0) : 0;
}

bool Store::add_origin(int64_t check_id, int64_t stack_row, uint64_t samples) {
  Query q(*this,
          "INSERT INTO check_origins(check_id, stack_id, samples) VALUES(?1, ?2, ?3) "
          "ON CONFLICT(check_id, stack_id) DO UPDATE SET samples = samples + ?3",
          "add origin");
  q.bind(1, check_id).bind(2, stack_row).bind(3, samples);
  return q.run();
}

bool Store::add_stat(const std::string& name, uint64_t delta) {
  Query q(*this,
          "INSERT INTO collector_stats(name, value) VALUES(?1, ?2) "
          "ON CONFLICT(name) DO UPDATE SET value = value + ?2",
          "add stat");
  q.bind(1, name).bind(2, delta);
  return q.run();
}

bool Store::set_meta(const std::string& key, const std::string& value) {
  Query q(*this, "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
          "set meta");
  q.bind(1, key).bind(2, value);
  return q.run();
}

bool Store::set_drain_state(std::string_view key, uint64_t value) {
  Query q(*this,
          "INSERT INTO drain_state(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
          "set drain state");
  q.bind_blob(1, key).bind(2, value);
  return q.run();
}

bool Store::for_each_drain_state(const std::function<void(std::string_view, uint64_t)>& f) {
  Query q(*this, "SELECT key, value FROM drain_state", "read drain state");
  while (q.next()) {
    const std::string key = q.blob(0);
    f(key, q.u64(1));
  }
  return !q.failed();
}

bool Store::clear_drain_state() { return exec("DELETE FROM drain_state"); }

bool Store::upsert_cgroup(const CgroupRow& r) {
  Query q(*this,
          "INSERT INTO cgroups(id, path, first_seen, last_seen, unit, container_id, runtime, monitor, "
          "container_name, image, pod_uid, pod_name, pod_namespace, qos, bounding, user) "
          "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) "
          "ON CONFLICT(id) DO UPDATE SET last_seen = max(last_seen, ?4), "
          "container_name = CASE WHEN ?9 != '' THEN ?9 ELSE container_name END, "
          "image = CASE WHEN ?10 != '' THEN ?10 ELSE image END, "
          "pod_name = CASE WHEN ?12 != '' THEN ?12 ELSE pod_name END, "
          "pod_namespace = CASE WHEN ?13 != '' THEN ?13 ELSE pod_namespace END, "
          "bounding = coalesce(?15, bounding), user = coalesce(?16, user)",
          "upsert cgroup");
  q.bind(1, r.id).bind(2, r.path).bind(3, r.first_seen).bind(4, r.last_seen).bind(5, r.unit);
  q.bind(6, r.container_id).bind(7, r.runtime).bind(8, r.monitor).bind(9, r.container_name).bind(10, r.image);
  q.bind(11, r.pod_uid).bind(12, r.pod_name).bind(13, r.pod_namespace).bind(14, r.qos).bind(15, r.bounding);
  q.bind(16, r.user);
  return q.run();
}

bool Store::delete_drain_state(std::string_view key) {
  Query q(*this, "DELETE FROM drain_state WHERE key = ?1", "delete drain state");
  q.bind_blob(1, key);
  return q.run();
}

bool Store::clear_drain_state_kind(char kind) {
  // A range on the primary key: every blob starting with `kind`.
  const std::string lo(1, kind), hi(1, static_cast<char>(kind + 1));
  Query q(*this, "DELETE FROM drain_state WHERE key >= ?1 AND key < ?2", "clear drain state");
  q.bind_blob(1, lo).bind_blob(2, hi);
  return q.run();
}

int64_t Store::add_verified_set(const VerifiedSetRow& r) {
  Query q(*this,
          "INSERT INTO verified_sets(path, sha256, caps, verification, runs, compare_output, created) "
          "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
          "add verified set");
  q.bind(1, r.path).bind(2, r.sha256).bind(3, r.caps).bind(4, r.verification).bind(5, r.runs);
  q.bind(6, r.compare_output).bind(7, r.created);
  return q.next() ? q.i64(0) : 0;
}

bool Store::apply_retention(uint32_t days, int64_t now) {
  if (days == 0) return true;
  for (const char* sql : {"DELETE FROM checks WHERE last_seen < ?1", "DELETE FROM self_inspections WHERE last_seen < ?1"}) {
    Query q(*this, sql, "retention");
    q.bind(1, now - static_cast<int64_t>(days) * 86400);
    if (!q.run()) return false;
  }
  return exec(
      "DELETE FROM binaries WHERE id NOT IN (SELECT binary_id FROM checks) "
      "AND id NOT IN (SELECT binary_id FROM self_inspections);"
      "DELETE FROM stacks WHERE id NOT IN (SELECT stack_id FROM check_origins);");
}

}  // namespace capaudit
