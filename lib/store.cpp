#include "store.h"

#include "store_query.h"
#include "store_schema.h"

#include <sys/stat.h>

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
  // An in-memory database is the profiler's own; only files can be damaged.
  if (path != ":memory:") sqlite3_progress_handler(db, kProgressOps, &Store::on_progress, s.get());
  std::string e;
  // Reading the header first tells a foreign or damaged file from ours.
  if (!s->exec("PRAGMA foreign_keys=ON", &e)) return fail(kind_of(*s), "database '" + path + "': " + e);
  int app_id = 0;
  {
    Query q(*s, "PRAGMA application_id", "read application_id");
    if (!q.ok()) {
      OpenFailure k = kind_of(*s);
      return fail(k, "database '" + path + "' " +
                         (k == OpenFailure::Damaged ? "is damaged or not a database: "
                                                    : "cannot be read: ") +
                         s->last_error_);
    }
    if (q.next()) app_id = q.i32(0);
  }
  int version = s->schema_version();
  if (version < 0) return fail(kind_of(*s), "database '" + path + "' cannot be read: " + s->last_error_);
  if (version > 0 && app_id != kApplicationId)
    return fail(OpenFailure::Foreign, "database '" + path + "' is not a capaudit database (application_id " +
                                          std::to_string(app_id) + ")");
  if (version == 0) {
    int tables = 0;
    Query q(*s, "SELECT count(*) FROM sqlite_master", "count tables");
    if (q.next()) tables = q.i32(0);
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
  start_statement();
  char* msg = nullptr;
  struct End {
    Store* s;
    ~End() { s->end_statement(); }
  } end{this};
  if (int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg); rc != SQLITE_OK) {
    last_error_ = msg ? msg : sqlite3_errmsg(db_);
    last_code_ = sqlite3_extended_errcode(db_);
    if (last_code_ == SQLITE_OK) last_code_ = rc;
    sqlite3_free(msg);
    if (rc == SQLITE_INTERRUPT && over_budget_) record_step_error(sql, rc);
    else if ((last_code_ & 0xff) == SQLITE_CORRUPT || (last_code_ & 0xff) == SQLITE_NOTADB) mark_damaged(last_error_);
    if (err) *err = last_error_;
    return false;
  }
  return true;
}

bool Store::has_final_verdict() {
  if (!has_final_verdict_) has_final_verdict_ = schema_version() >= 3;
  return *has_final_verdict_;
}

bool Store::has_arg() {
  if (!has_arg_) has_arg_ = schema_version() >= 4;
  return *has_arg_;
}

int Store::schema_version() {
  if (snapshot_version_) return *snapshot_version_;
  Query q(*this, "PRAGMA user_version", "PRAGMA user_version");
  if (!q.next()) {
    if (!q.failed()) record_error("PRAGMA user_version");
    return -1;
  }
  return q.i32(0);
}

bool Store::begin_read(std::string* err) {
  if (!exec("BEGIN", err)) return false;
  // Reading the header takes the read lock: the snapshot starts here.
  int version = schema_version();
  if (version < 0) {
    if (err) *err = last_error_;
    exec("ROLLBACK");
    return false;
  }
  snapshot_version_ = version;
  return true;
}

bool Store::migrate(std::string* err) {
  int version = schema_version();
  if (version < 0) {
    if (err) *err = last_error_;
    return false;
  }
  const std::vector<std::string>& migrations = schema_migrations();
  for (int v = version; v < static_cast<int>(migrations.size()); v++) {
    if (!exec("BEGIN IMMEDIATE", err)) return false;
    std::string set_version = "PRAGMA user_version=" + std::to_string(v + 1);
    std::string set_app = "PRAGMA application_id=" + std::to_string(kApplicationId);
    if (!exec(migrations[v].c_str(), err) || !exec(set_version.c_str(), err) || !exec(set_app.c_str(), err) ||
        !exec("COMMIT", err)) {
      exec("ROLLBACK");
      return false;
    }
  }
  return true;
}

bool Store::check_integrity(std::string* err) {
  Query q(*this, "PRAGMA quick_check", "PRAGMA quick_check");
  std::string problems;
  while (q.next()) {
    std::string line = q.text(0);
    if (line != "ok") problems += (problems.empty() ? "" : "; ") + line;
  }
  if (q.failed()) {
    if (err) *err = last_error_;
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

void Store::record_step_error(const char* what, int rc) {
  read_failed_ = true;
  if (rc == SQLITE_INTERRUPT && over_budget_) {
    mark_damaged(std::string(what) + ": did not end within " + std::to_string(ops_limit()) +
                 " operations, more than any read of a file this size takes");
    last_code_ = SQLITE_CORRUPT;
    return;
  }
  record_error(what);
  int primary = last_code_ & 0xff;
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) damaged_ = true;
}

void Store::mark_damaged(const std::string& why) {
  read_failed_ = true;
  damaged_ = true;
  last_error_ = why;
  last_code_ = SQLITE_CORRUPT;
}

std::string Store::damage_message() const {
  if (!damaged_) return "database '" + path_ + "': " + last_error_;
  return "database '" + path_ + "' is damaged (" + last_error_ + "); check it with: sqlite3 '" + path_ +
         "' 'PRAGMA integrity_check'";
}

void Store::start_statement() {
  if (active_statements_++ > 0) return;  // a lookup inside a scan shares the scan's budget
  ops_ = 0;
  ops_checked_at_ = 0;
  over_budget_ = false;
}

uint64_t Store::ops_limit() const {
  // The file and its WAL, read with stat: the progress handler may not use
  // the connection it interrupts.
  uint64_t bytes = 0;
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) bytes += static_cast<uint64_t>(st.st_size);
  if (::stat((path_ + "-wal").c_str(), &st) == 0) bytes += static_cast<uint64_t>(st.st_size);
  return (bytes / 1024 + kOpsSlackKiB) * kOpsPerKiB;
}

int Store::on_progress(void* self) {
  auto* s = static_cast<Store*>(self);
  s->ops_ += kProgressOps;
  // Most statements end long before their first check.
  if (s->ops_ - s->ops_checked_at_ < kOpsSlackKiB * kOpsPerKiB) return 0;
  s->ops_checked_at_ = s->ops_;
  if (s->ops_ <= s->ops_limit()) return 0;
  s->over_budget_ = true;
  return 1;
}

}  // namespace capaudit
