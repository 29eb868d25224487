#include "store.h"

#include "identity.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <tuple>
#include <unordered_map>

namespace capaudit {

namespace {

// 'capa': marks the file as ours, so a wrong --db is refused instead of
// having capaudit tables added to someone else's database.
constexpr int kApplicationId = 0x63617061;

// Each entry migrates from version i to i+1. Never edit a released entry;
// append a new one (docs/schema.md lists them).
const char* const kMigrations[] = {
    // 0 -> 1
    R"sql(
CREATE TABLE meta(
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE binaries(
  id          INTEGER PRIMARY KEY,
  dev         INTEGER NOT NULL,
  ino         INTEGER NOT NULL,
  path        TEXT NOT NULL,
  comm        TEXT NOT NULL,
  path_stale  INTEGER NOT NULL DEFAULT 0,
  first_seen  INTEGER NOT NULL,
  last_seen   INTEGER NOT NULL,
  sha256      TEXT,
  owner_uid   INTEGER,
  owner_gid   INTEGER,
  mode        INTEGER,
  file_caps   TEXT,
  UNIQUE(dev, ino, path, comm)
);
CREATE INDEX binaries_path ON binaries(path);
CREATE TABLE checks(
  id              INTEGER PRIMARY KEY,
  binary_id       INTEGER NOT NULL REFERENCES binaries(id),
  cap             INTEGER NOT NULL,
  ret             INTEGER NOT NULL,
  audit           INTEGER NOT NULL,
  insetid         INTEGER NOT NULL,
  uid             INTEGER NOT NULL,
  euid            INTEGER NOT NULL,
  syscall         INTEGER NOT NULL,
  target_ns_inum  INTEGER NOT NULL,
  target_ns_level INTEGER NOT NULL,
  cred_ns_inum    INTEGER NOT NULL,
  cgroup_id       INTEGER NOT NULL,
  cap_effective   INTEGER NOT NULL,
  profiled        INTEGER NOT NULL,
  count           INTEGER NOT NULL,
  first_seen      INTEGER NOT NULL,
  last_seen       INTEGER NOT NULL,
  UNIQUE(binary_id, cap, ret, audit, insetid, uid, euid, syscall, target_ns_inum,
         target_ns_level, cred_ns_inum, cgroup_id, cap_effective, profiled)
);
CREATE TABLE stacks(
  id      INTEGER PRIMARY KEY,
  hash    TEXT NOT NULL UNIQUE,
  origin  TEXT NOT NULL,
  frames  TEXT NOT NULL
);
CREATE TABLE check_origins(
  check_id  INTEGER NOT NULL REFERENCES checks(id) ON DELETE CASCADE,
  stack_id  INTEGER NOT NULL REFERENCES stacks(id),
  samples   INTEGER NOT NULL,
  PRIMARY KEY(check_id, stack_id)
) WITHOUT ROWID;
CREATE TABLE collector_stats(
  name   TEXT PRIMARY KEY,
  value  INTEGER NOT NULL
);
CREATE TABLE drain_state(
  key    BLOB PRIMARY KEY,
  value  INTEGER NOT NULL
) WITHOUT ROWID;
)sql",
    // 1 -> 2: sets verified by re-running a command (capaudit profile --minimize)
    R"sql(
CREATE TABLE verified_sets(
  id              INTEGER PRIMARY KEY,
  path            TEXT NOT NULL,
  sha256          TEXT NOT NULL,
  caps            TEXT NOT NULL,
  verification    TEXT NOT NULL,
  runs            INTEGER NOT NULL,
  compare_output  INTEGER NOT NULL,
  created         INTEGER NOT NULL
);
CREATE INDEX verified_sets_path ON verified_sets(path, created);
)sql",
};

constexpr int kMigrationCount = sizeof(kMigrations) / sizeof(kMigrations[0]);
static_assert(kMigrationCount == kSchemaVersion);

// SQLite integers are signed 64-bit; u64 values (cgroup ids, cap sets) are
// stored bit for bit.
int64_t to_sql(uint64_t v) { return static_cast<int64_t>(v); }
uint64_t from_sql(int64_t v) { return static_cast<uint64_t>(v); }

std::string column_text(sqlite3_stmt* st, int col) {
  auto* p = sqlite3_column_text(st, col);
  return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
}

template <typename T>
std::optional<T> column_opt_int(sqlite3_stmt* st, int col) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL) return std::nullopt;
  return static_cast<T>(sqlite3_column_int64(st, col));
}

std::optional<std::string> column_opt_text(sqlite3_stmt* st, int col) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL) return std::nullopt;
  return column_text(st, col);
}

// Resets a cached statement however the caller leaves it.
struct StmtGuard {
  sqlite3_stmt* st;
  ~StmtGuard() {
    if (st) {
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
    }
  }
};

}  // namespace

std::string audit_name(Audit a) {
  switch (a) {
    case Audit::No: return "no";
    case Audit::Yes: return "yes";
    case Audit::Unknown: break;
  }
  return "unknown";
}

Store::Store(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

Store::~Store() {
  for (auto& [_, st] : stmts_) sqlite3_finalize(st);
  sqlite3_close(db_);
}

Store::FileKind Store::identify(const std::string& path) {
  // The 100-byte header: magic at 0, application_id (big-endian) at 68.
  unsigned char h[100];
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return errno == ENOENT ? FileKind::Missing : FileKind::Unreadable;
  size_t n = std::fread(h, 1, sizeof h, f);
  const bool read_error = std::ferror(f) != 0;
  std::fclose(f);
  if (read_error) return FileKind::Unreadable;
  if (n == 0) return FileKind::Empty;
  if (std::all_of(h, h + n, [](unsigned char c) { return c == 0; })) return FileKind::Zeroed;
  static constexpr char kMagic[] = "SQLite format 3";  // with its NUL: 16 bytes
  if (n < sizeof kMagic || std::memcmp(h, kMagic, sizeof kMagic) != 0) return FileKind::NotSqlite;
  if (n < 72) return FileKind::OtherSqlite;
  uint32_t app = (uint32_t{h[68]} << 24) | (uint32_t{h[69]} << 16) | (uint32_t{h[70]} << 8) | h[71];
  return app == static_cast<uint32_t>(kApplicationId) ? FileKind::Capaudit : FileKind::OtherSqlite;
}

std::unique_ptr<Store> Store::open(const std::string& path, std::string* err, bool readonly,
                                   OpenFailure* failure) {
  sqlite3* db = nullptr;
  auto fail = [&](OpenFailure why, const std::string& msg) -> std::unique_ptr<Store> {
    if (err) *err = msg;
    if (failure) *failure = why;
    return nullptr;
  };
  // SQLite's codes tell damage from everything else.
  auto kind_of = [](const Store& st) {
    int rc = st.last_code_ & 0xff;
    if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) return OpenFailure::Damaged;
    if (rc == SQLITE_CANTOPEN || rc == SQLITE_PERM || rc == SQLITE_READONLY) return OpenFailure::CannotOpen;
    return OpenFailure::Other;
  };
  if (failure) *failure = OpenFailure::None;
  int flags = readonly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = "cannot open database '" + path + "': " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return fail(OpenFailure::CannotOpen, msg);
  }
  std::unique_ptr<Store> s(new Store(db, path));
  sqlite3_busy_timeout(db, 5000);
  std::string e;
  // Reading the header first tells a foreign or damaged file from ours.
  if (!s->exec("PRAGMA foreign_keys=ON", &e)) return fail(kind_of(*s), "database '" + path + "': " + e);
  sqlite3_stmt* st = s->prepare("PRAGMA application_id");
  if (!st) {
    OpenFailure k = kind_of(*s);
    return fail(k, "database '" + path + "' " +
                       (k == OpenFailure::Damaged ? "is damaged or not a database: "
                                                  : "cannot be read: ") +
                       s->last_error_);
  }
  int app_id = 0;
  {
    StmtGuard g{st};
    if (sqlite3_step(st) == SQLITE_ROW) app_id = sqlite3_column_int(st, 0);
  }
  int version = s->schema_version();
  if (version < 0) return fail(kind_of(*s), "database '" + path + "' cannot be read: " + s->last_error_);
  if (version > 0 && app_id != kApplicationId)
    return fail(OpenFailure::Foreign, "database '" + path + "' is not a capaudit database (application_id " +
                                          std::to_string(app_id) + ")");
  if (version == 0) {
    sqlite3_stmt* t = s->prepare("SELECT count(*) FROM sqlite_master");
    int tables = 0;
    if (t) {
      StmtGuard g{t};
      if (sqlite3_step(t) == SQLITE_ROW) tables = sqlite3_column_int(t, 0);
    }
    if (tables > 0)
      return fail(OpenFailure::Foreign, "database '" + path + "' is not a capaudit database (it has other tables)");
  }
  if (version > kSchemaVersion)
    return fail(OpenFailure::TooNew, "database '" + path + "' has schema version " + std::to_string(version) +
                                         ", newer than this capaudit understands (" +
                                         std::to_string(kSchemaVersion) + ")");
  if (readonly) {
    if (version == 0)
      return fail(OpenFailure::Other, "database '" + path + "' is empty: has capauditd written to it?");
    return s;
  }
  if (!s->exec("PRAGMA journal_mode=WAL", &e) || !s->exec("PRAGMA synchronous=NORMAL", &e))
    return fail(kind_of(*s), "database '" + path + "': " + e);
  if (!s->migrate(&e)) return fail(kind_of(*s), "database '" + path + "': migration failed: " + e);
  return s;
}

bool Store::exec(const char* sql, std::string* err) {
  char* msg = nullptr;
  if (int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg); rc != SQLITE_OK) {
    last_error_ = msg ? msg : sqlite3_errmsg(db_);
    last_code_ = sqlite3_extended_errcode(db_);
    if (last_code_ == SQLITE_OK) last_code_ = rc;
    if (err) *err = last_error_;
    sqlite3_free(msg);
    return false;
  }
  return true;
}

int Store::schema_version() {
  sqlite3_stmt* st = prepare("PRAGMA user_version");
  if (!st) return -1;
  StmtGuard g{st};
  if (sqlite3_step(st) != SQLITE_ROW) {
    record_error("PRAGMA user_version");
    return -1;
  }
  return sqlite3_column_int(st, 0);
}

bool Store::migrate(std::string* err) {
  int version = schema_version();
  if (version < 0) {
    if (err) *err = last_error_;
    return false;
  }
  for (int v = version; v < kMigrationCount; v++) {
    if (!exec("BEGIN IMMEDIATE", err)) return false;
    std::string set_version = "PRAGMA user_version=" + std::to_string(v + 1);
    std::string set_app = "PRAGMA application_id=" + std::to_string(kApplicationId);
    if (!exec(kMigrations[v], err) || !exec(set_version.c_str(), err) || !exec(set_app.c_str(), err) ||
        !exec("COMMIT", err)) {
      exec("ROLLBACK");
      return false;
    }
  }
  return true;
}

bool Store::check_integrity(std::string* err) {
  sqlite3_stmt* st = prepare("PRAGMA quick_check");
  if (!st) {
    if (err) *err = last_error_;
    return false;
  }
  StmtGuard g{st};
  std::string problems;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    std::string line = column_text(st, 0);
    if (line != "ok") problems += (problems.empty() ? "" : "; ") + line;
  }
  if (rc != SQLITE_DONE) {
    if (err) *err = sqlite3_errmsg(db_);
    return false;
  }
  if (!problems.empty()) {
    if (err) *err = problems;
    return false;
  }
  return true;
}

sqlite3_stmt* Store::prepare(std::string_view sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &st,
                         nullptr) != SQLITE_OK) {
    record_error("prepare");
    return nullptr;
  }
  stmts_.emplace(std::string(sql), st);
  return st;
}

void Store::record_error(const char* what) {
  last_error_ = std::string(what) + ": " + sqlite3_errmsg(db_);
  last_code_ = sqlite3_extended_errcode(db_);
}

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
  sqlite3_stmt* st = prepare(
      "INSERT INTO binaries(dev, ino, path, comm, path_stale, first_seen, last_seen) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?6) "
      "ON CONFLICT(dev, ino, path, comm) DO UPDATE SET last_seen = max(last_seen, ?6), "
      "path_stale = ?5 RETURNING id");
  if (!st) return 0;
  StmtGuard g{st};
  sqlite3_bind_int64(st, 1, to_sql(key.dev));
  sqlite3_bind_int64(st, 2, to_sql(key.ino));
  sqlite3_bind_text(st, 3, key.path.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, key.comm.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(st, 5, path_stale ? 1 : 0);
  sqlite3_bind_int64(st, 6, now);
  if (sqlite3_step(st) != SQLITE_ROW) {
    record_error("upsert binary");
    return 0;
  }
  return sqlite3_column_int64(st, 0);
}

bool Store::set_binary_identity(int64_t binary_id, const BinaryRow& b) {
  sqlite3_stmt* st = prepare(
      "UPDATE binaries SET sha256 = ?2, owner_uid = ?3, owner_gid = ?4, mode = ?5, file_caps = ?6 "
      "WHERE id = ?1");
  if (!st) return false;
  StmtGuard g{st};
  sqlite3_bind_int64(st, 1, binary_id);
  auto bind_opt_text = [&](int i, const std::optional<std::string>& v) {
    if (v) sqlite3_bind_text(st, i, v->c_str(), -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
  };
  auto bind_opt_int = [&](int i, const std::optional<uint32_t>& v) {
    if (v) sqlite3_bind_int64(st, i, *v);
    else sqlite3_bind_null(st, i);
  };
  bind_opt_text(2, b.sha256);
  bind_opt_int(3, b.owner_uid);
  bind_opt_int(4, b.owner_gid);
  bind_opt_int(5, b.mode);
  bind_opt_text(6, b.file_caps);
  if (sqlite3_step(st) != SQLITE_DONE) {
    record_error("set binary identity");
    return false;
  }
  return true;
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
  sqlite3_stmt* st = prepare(
      "INSERT INTO checks(binary_id, cap, ret, audit, insetid, uid, euid, syscall, target_ns_inum, "
      "target_ns_level, cred_ns_inum, cgroup_id, cap_effective, profiled, count, first_seen, last_seen) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16) "
      "ON CONFLICT(binary_id, cap, ret, audit, insetid, uid, euid, syscall, target_ns_inum, "
      "target_ns_level, cred_ns_inum, cgroup_id, cap_effective, profiled) "
      "DO UPDATE SET count = count + ?15, last_seen = max(last_seen, ?16) RETURNING id");
  if (!st) return 0;
  StmtGuard g{st};
  sqlite3_bind_int64(st, 1, binary_id);
  sqlite3_bind_int(st, 2, f.cap);
  sqlite3_bind_int(st, 3, f.ret);
  sqlite3_bind_int(st, 4, static_cast<int>(f.audit));
  sqlite3_bind_int(st, 5, f.insetid);
  sqlite3_bind_int64(st, 6, f.uid);
  sqlite3_bind_int64(st, 7, f.euid);
  sqlite3_bind_int(st, 8, f.syscall);
  sqlite3_bind_int64(st, 9, f.target_ns_inum);
  sqlite3_bind_int64(st, 10, f.target_ns_level);
  sqlite3_bind_int64(st, 11, f.cred_ns_inum);
  sqlite3_bind_int64(st, 12, to_sql(f.cgroup_id));
  sqlite3_bind_int64(st, 13, to_sql(f.cap_effective));
  sqlite3_bind_int(st, 14, f.profiled);
  sqlite3_bind_int64(st, 15, to_sql(delta));
  sqlite3_bind_int64(st, 16, now);
  if (sqlite3_step(st) != SQLITE_ROW) {
    record_error("add check");
    return 0;
  }
  return sqlite3_column_int64(st, 0);
}

int64_t Store::put_stack(const std::vector<std::string>& frames, const std::string& origin) {
  std::string text = nlohmann::json(frames).dump();
  std::string hash = sha256_hex(text);
  sqlite3_stmt* st = prepare(
      "INSERT INTO stacks(hash, origin, frames) VALUES(?1, ?2, ?3) "
      "ON CONFLICT(hash) DO UPDATE SET origin = origin RETURNING id");
  if (!st) return 0;
  StmtGuard g{st};
  sqlite3_bind_text(st, 1, hash.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, origin.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, text.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st) != SQLITE_ROW) {
    record_error("put stack");
    return 0;
  }
  return sqlite3_column_int64(st, 0);
}

bool Store::add_origin(int64_t check_id, int64_t stack_row, uint64_t samples) {
  sqlite3_stmt* st = prepare(
      "INSERT INTO check_origins(check_id, stack_id, samples) VALUES(?1, ?2, ?3) "
      "ON CONFLICT(check_id, stack_id) DO UPDATE SET samples = samples + ?3");
  if (!st) return false;
  StmtGuard g{st};
  sqlite3_bind_int64(st, 1, check_id);
  sqlite3_bind_int64(st, 2, stack_row);
  sqlite3_bind_int64(st, 3, to_sql(samples));
  if (sqlite3_step(st) != SQLITE_DONE) {
    record_error("add origin");
    return false;
  }
  return true;
}

bool Store::add_stat(const std::string& name, uint64_t delta) {
  sqlite3_stmt* st = prepare(
      "INSERT INTO collector_stats(name, value) VALUES(?1, ?2) "
      "ON CONFLICT(name) DO UPDATE SET value = value + ?2");
  if (!st) return false;
  StmtGuard g{st};
  sqlite3_bind_text(st, 1, name.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 2, to_sql(delta));
  if (sqlite3_step(st) != SQLITE_DONE) {
    record_error("add stat");
    return false;
  }
  return true;
}

bool Store::set_meta(const std::string& key, const std::string& value) {
  sqlite3_stmt* st = prepare(
      "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2");
  if (!st) return false;
  StmtGuard g{st};
  sqlite3_bind_text(st, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, value.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st) != SQLITE_DONE) {
    record_error("set meta");
    return false;
  }
  return true;
}

std::optional<std::string> Store::meta(const std::string& key) {
  sqlite3_stmt* st = prepare("SELECT value FROM meta WHERE key = ?1");
  if (!st) return std::nullopt;
  StmtGuard g{st};
  sqlite3_bind_text(st, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st) != SQLITE_ROW) return std::nullopt;
  return column_text(st, 0);
}

std::map<std::string, uint64_t> Store::load_drain_state() {
  std::map<std::string, uint64_t> out;
  sqlite3_stmt* st = prepare("SELECT key, value FROM drain_state");
  if (!st) return out;
  StmtGuard g{st};
  while (sqlite3_step(st) == SQLITE_ROW) {
    const void* blob = sqlite3_column_blob(st, 0);
    int n = sqlite3_column_bytes(st, 0);
    out.emplace(std::string(static_cast<const char*>(blob), n), from_sql(sqlite3_column_int64(st, 1)));
  }
  return out;
}

bool Store::set_drain_state(std::string_view key, uint64_t value) {
  sqlite3_stmt* st = prepare(
      "INSERT INTO drain_state(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2");
  if (!st) return false;
  StmtGuard g{st};
  sqlite3_bind_blob(st, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 2, to_sql(value));
  if (sqlite3_step(st) != SQLITE_DONE) {
    record_error("set drain state");
    return false;
  }
  return true;
}

bool Store::clear_drain_state() { return exec("DELETE FROM drain_state"); }

int64_t Store::add_verified_set(const VerifiedSetRow& r) {
  sqlite3_stmt* st = prepare(
      "INSERT INTO verified_sets(path, sha256, caps, verification, runs, compare_output, created) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id");
  if (!st) return 0;
  StmtGuard g{st};
  sqlite3_bind_text(st, 1, r.path.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, r.sha256.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, r.caps.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, r.verification.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 5, r.runs);
  sqlite3_bind_int(st, 6, r.compare_output ? 1 : 0);
  sqlite3_bind_int64(st, 7, r.created);
  if (sqlite3_step(st) != SQLITE_ROW) {
    record_error("add verified set");
    return 0;
  }
  return sqlite3_column_int64(st, 0);
}

std::vector<VerifiedSetRow> Store::verified_sets(const std::string& path) {
  std::vector<VerifiedSetRow> out;
  if (schema_version() < 2) return out;
  sqlite3_stmt* st = prepare(
      "SELECT id, path, sha256, caps, verification, runs, compare_output, created FROM verified_sets "
      "WHERE path = ?1 ORDER BY created DESC, id DESC");
  if (!st) return out;
  StmtGuard g{st};
  sqlite3_bind_text(st, 1, path.c_str(), -1, SQLITE_TRANSIENT);
  while (sqlite3_step(st) == SQLITE_ROW) {
    VerifiedSetRow r;
    r.id = sqlite3_column_int64(st, 0);
    r.path = column_text(st, 1);
    r.sha256 = column_text(st, 2);
    r.caps = column_text(st, 3);
    r.verification = column_text(st, 4);
    r.runs = sqlite3_column_int64(st, 5);
    r.compare_output = sqlite3_column_int(st, 6) != 0;
    r.created = sqlite3_column_int64(st, 7);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> Store::paths_of(uint64_t dev, uint64_t ino) {
  std::vector<std::string> out;
  sqlite3_stmt* st = prepare(
      "SELECT path FROM binaries WHERE dev = ?1 AND ino = ?2 AND path != '' ORDER BY last_seen DESC");
  if (!st) return out;
  StmtGuard g{st};
  sqlite3_bind_int64(st, 1, to_sql(dev));
  sqlite3_bind_int64(st, 2, to_sql(ino));
  while (sqlite3_step(st) == SQLITE_ROW) out.push_back(column_text(st, 0));
  return out;
}

bool Store::apply_retention(uint32_t days, int64_t now) {
  if (days == 0) return true;
  sqlite3_stmt* st = prepare("DELETE FROM checks WHERE last_seen < ?1");
  if (!st) return false;
  StmtGuard g{st};
  sqlite3_bind_int64(st, 1, now - static_cast<int64_t>(days) * 86400);
  if (sqlite3_step(st) != SQLITE_DONE) {
    record_error("retention");
    return false;
  }
  return exec(
      "DELETE FROM binaries WHERE id NOT IN (SELECT binary_id FROM checks);"
      "DELETE FROM stacks WHERE id NOT IN (SELECT stack_id FROM check_origins);");
}

std::vector<BinaryRow> Store::binaries(const std::optional<std::string>& path) {
  std::vector<BinaryRow> out;
  // The whole table is sorted here (as ORDER BY path, comm, id would: BINARY
  // collation compares bytes), cheaper than SQLite's sorter over every column.
  sqlite3_stmt* st = prepare(path ? "SELECT id, dev, ino, path, comm, path_stale, first_seen, last_seen, sha256, owner_uid, "
                                    "owner_gid, mode, file_caps FROM binaries WHERE path = ?1 ORDER BY path, comm, id"
                                  : "SELECT id, dev, ino, path, comm, path_stale, first_seen, last_seen, sha256, owner_uid, "
                                    "owner_gid, mode, file_caps FROM binaries");
  if (!st) return out;
  StmtGuard g{st};
  if (path) sqlite3_bind_text(st, 1, path->c_str(), -1, SQLITE_TRANSIENT);
  while (sqlite3_step(st) == SQLITE_ROW) {
    BinaryRow b;
    b.id = sqlite3_column_int64(st, 0);
    b.key.dev = from_sql(sqlite3_column_int64(st, 1));
    b.key.ino = from_sql(sqlite3_column_int64(st, 2));
    b.key.path = column_text(st, 3);
    b.key.comm = column_text(st, 4);
    b.path_stale = sqlite3_column_int(st, 5) != 0;
    b.first_seen = sqlite3_column_int64(st, 6);
    b.last_seen = sqlite3_column_int64(st, 7);
    b.sha256 = column_opt_text(st, 8);
    b.owner_uid = column_opt_int<uint32_t>(st, 9);
    b.owner_gid = column_opt_int<uint32_t>(st, 10);
    b.mode = column_opt_int<uint32_t>(st, 11);
    b.file_caps = column_opt_text(st, 12);
    out.push_back(std::move(b));
  }
  if (!path) {
    std::sort(out.begin(), out.end(), [](const BinaryRow& a, const BinaryRow& b) {
      return std::tie(a.key.path, a.key.comm, a.id) < std::tie(b.key.path, b.key.comm, b.id);
    });
  }
  return out;
}

const std::vector<std::string>& Frames::no_frames() {
  static const std::vector<std::string> none;
  return none;
}

namespace {

// Columns check_id, stack_id, origin, (frames), samples of the origins SELECTs.
OriginRow read_origin_row(sqlite3_stmt* st) {
  OriginRow o;
  o.check_id = sqlite3_column_int64(st, 0);
  o.stack_id = sqlite3_column_int64(st, 1);
  o.origin = column_text(st, 2);
  o.samples = from_sql(sqlite3_column_int64(st, 4));
  return o;
}

std::vector<std::string> parse_frames(const std::string& text) {
  std::vector<std::string> out;
  auto frames = nlohmann::json::parse(text, nullptr, false);
  if (frames.is_array())
    for (auto& f : frames)
      if (f.is_string()) out.push_back(f.get<std::string>());
  return out;
}

// One row of the checks SELECTs below, whose columns are in this order.
CheckRow read_check_row(sqlite3_stmt* st) {
  CheckRow c;
  c.id = sqlite3_column_int64(st, 0);
  c.binary_id = sqlite3_column_int64(st, 1);
  c.f.cap = sqlite3_column_int(st, 2);
  c.f.ret = sqlite3_column_int(st, 3);
  int audit = sqlite3_column_int(st, 4);
  c.f.audit = audit == 0 ? Audit::No : audit == 1 ? Audit::Yes : Audit::Unknown;
  c.f.insetid = sqlite3_column_int(st, 5) != 0;
  c.f.uid = static_cast<uint32_t>(sqlite3_column_int64(st, 6));
  c.f.euid = static_cast<uint32_t>(sqlite3_column_int64(st, 7));
  c.f.syscall = sqlite3_column_int(st, 8);
  c.f.target_ns_inum = static_cast<uint32_t>(sqlite3_column_int64(st, 9));
  c.f.target_ns_level = static_cast<uint32_t>(sqlite3_column_int64(st, 10));
  c.f.cred_ns_inum = static_cast<uint32_t>(sqlite3_column_int64(st, 11));
  c.f.cgroup_id = from_sql(sqlite3_column_int64(st, 12));
  c.f.cap_effective = from_sql(sqlite3_column_int64(st, 13));
  c.f.profiled = sqlite3_column_int(st, 14) != 0;
  c.count = from_sql(sqlite3_column_int64(st, 15));
  c.first_seen = sqlite3_column_int64(st, 16);
  c.last_seen = sqlite3_column_int64(st, 17);
  return c;
}

}  // namespace

std::vector<CheckRow> Store::checks(int64_t binary_id) {
  std::vector<CheckRow> out;
  sqlite3_stmt* st = prepare(
      "SELECT id, binary_id, cap, ret, audit, insetid, uid, euid, syscall, target_ns_inum, "
      "target_ns_level, cred_ns_inum, cgroup_id, cap_effective, profiled, count, first_seen, last_seen "
      "FROM checks WHERE binary_id = ?1 ORDER BY cap, ret, id");
  if (!st) return out;
  StmtGuard g{st};
  sqlite3_bind_int64(st, 1, binary_id);
  while (sqlite3_step(st) == SQLITE_ROW) out.push_back(read_check_row(st));
  return out;
}

std::vector<CheckRow> Store::all_checks() {
  std::vector<CheckRow> out;
  sqlite3_stmt* st = prepare(
      "SELECT id, binary_id, cap, ret, audit, insetid, uid, euid, syscall, target_ns_inum, "
      "target_ns_level, cred_ns_inum, cgroup_id, cap_effective, profiled, count, first_seen, last_seen "
      "FROM checks");
  if (!st) return out;
  StmtGuard g{st};
  while (sqlite3_step(st) == SQLITE_ROW) out.push_back(read_check_row(st));
  // ORDER BY binary_id, cap, ret, id: sorting here costs less than SQLite's
  // sorter over every column.
  std::sort(out.begin(), out.end(), [](const CheckRow& a, const CheckRow& b) {
    return std::tie(a.binary_id, a.f.cap, a.f.ret, a.id) < std::tie(b.binary_id, b.f.cap, b.f.ret, b.id);
  });
  return out;
}

std::vector<OriginRow> Store::origins(int64_t check_id) {
  std::vector<OriginRow> out;
  sqlite3_stmt* st = prepare(
      "SELECT o.check_id, o.stack_id, s.origin, s.frames, o.samples FROM check_origins o "
      "JOIN stacks s ON s.id = o.stack_id WHERE o.check_id = ?1 ORDER BY o.samples DESC, s.origin");
  if (!st) return out;
  StmtGuard g{st};
  sqlite3_bind_int64(st, 1, check_id);
  while (sqlite3_step(st) == SQLITE_ROW) {
    OriginRow o = read_origin_row(st);
    o.frames = parse_frames(column_text(st, 3));
    out.push_back(std::move(o));
  }
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
  sqlite3_stmt* sst = prepare("SELECT origin, frames FROM stacks WHERE id = ?1");
  if (!sst) return out;
  StmtGuard sg{sst};
  // Rows come in primary key order (check_id, stack_id); each check's few
  // are then ordered as origins() orders them.
  sqlite3_stmt* st = prepare("SELECT check_id, stack_id, samples FROM check_origins ORDER BY check_id, stack_id");
  if (!st) return out;
  StmtGuard g{st};
  std::vector<OriginRow>* list = nullptr;
  int64_t list_check = 0;
  auto finish = [](std::vector<OriginRow>* l) {
    if (l && l->size() > 1)
      std::stable_sort(l->begin(), l->end(), [](const OriginRow& a, const OriginRow& b) {
        if (a.samples != b.samples) return a.samples > b.samples;
        return a.origin < b.origin;
      });
  };
  while (sqlite3_step(st) == SQLITE_ROW) {
    OriginRow o;
    o.check_id = sqlite3_column_int64(st, 0);
    o.stack_id = sqlite3_column_int64(st, 1);
    o.samples = from_sql(sqlite3_column_int64(st, 2));
    auto it = stacks.find(o.stack_id);
    if (it == stacks.end()) {
      sqlite3_reset(sst);
      sqlite3_bind_int64(sst, 1, o.stack_id);
      // The JOIN this replaces drops origins of a missing stack.
      if (sqlite3_step(sst) != SQLITE_ROW) continue;
      it = stacks.emplace(o.stack_id, Stack{column_text(sst, 0), parse_frames(column_text(sst, 1))}).first;
    }
    o.origin = it->second.origin;
    o.frames = it->second.frames;
    if (!list || list_check != o.check_id) {
      finish(list);
      list = &out[o.check_id];
      list_check = o.check_id;
    }
    list->push_back(std::move(o));
  }
  finish(list);
  return out;
}

std::map<std::string, uint64_t> Store::stats() {
  std::map<std::string, uint64_t> out;
  sqlite3_stmt* st = prepare("SELECT name, value FROM collector_stats");
  if (!st) return out;
  StmtGuard g{st};
  while (sqlite3_step(st) == SQLITE_ROW) out[column_text(st, 0)] = from_sql(sqlite3_column_int64(st, 1));
  return out;
}

uint64_t Store::total_count() {
  sqlite3_stmt* st = prepare("SELECT coalesce(sum(count), 0) FROM checks");
  if (!st) return 0;
  StmtGuard g{st};
  if (sqlite3_step(st) != SQLITE_ROW) return 0;
  return from_sql(sqlite3_column_int64(st, 0));
}

}  // namespace capaudit
