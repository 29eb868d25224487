// The SQLite store shared by capauditd (writer) and the capaudit CLI
// (readers). Schema and migrations: docs/schema.md.
#pragma once

#include <sqlite3.h>

#include "identity.h"

#include <cstdint>
#include <initializer_list>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace capaudit {

inline constexpr int kSchemaVersion = 5;

// Audit flag as stored: 0 no, 1 yes, 2 unknown (NULL would break UNIQUE).
enum class Audit : int { No = 0, Yes = 1, Unknown = 2 };

// security_capable()'s answer after every LSM, as stored: 0 unknown (the
// tracepoint, kprobe, a check made outside security_capable), 1 granted,
// 2 denied. ret stays commoncap's answer.
enum class FinalVerdict : int { Unknown = 0, Granted = 1, Denied = 2 };

struct BinaryKey {
  uint64_t dev = 0;  // user-space dev_t (stat's st_dev)
  uint64_t ino = 0;
  std::string path;  // "" when it could not be resolved
  std::string comm;  // kernel threads: their comm; "" for executables
};

struct BinaryRow {
  int64_t id = 0;
  BinaryKey key;
  bool path_stale = false;
  int64_t first_seen = 0;
  int64_t last_seen = 0;
  // File identity, when the daemon could read the file.
  std::optional<std::string> sha256;
  std::optional<uint32_t> owner_uid;
  std::optional<uint32_t> owner_gid;
  std::optional<uint32_t> mode;
  std::optional<std::string> file_caps;  // text form, "" when none
};

struct CheckFields {
  int cap = 0;
  int ret = 0;
  Audit audit = Audit::Unknown;
  bool insetid = false;
  uint32_t uid = 0;
  uint32_t euid = 0;
  int32_t syscall = -1;
  uint32_t target_ns_inum = 0;
  uint32_t target_ns_level = 0;
  uint32_t cred_ns_inum = 0;
  uint64_t cgroup_id = 0;
  uint64_t cap_effective = 0;
  bool profiled = false;
  FinalVerdict final_verdict = FinalVerdict::Unknown;
  uint32_t arg = 0;  // ca_check_key.arg: the syscall's request, classified (0: not)
  // commoncap granted it and an LSM denied it: the program ran without it.
  bool lsm_denied() const { return ret == 0 && final_verdict == FinalVerdict::Denied; }
  // Counted at the coarse key when the kernel's counts map had no room: uid,
  // euid, syscall, namespaces, cgroup and cap_effective are not known (stored
  // as uid -1, namespace inum 0: no real check has them; docs/schema.md).
  bool coarse = false;
  auto operator<=>(const CheckFields&) const = default;
};

struct CheckRow {
  int64_t id = 0;
  int64_t binary_id = 0;
  CheckFields f;
  uint64_t count = 0;
  int64_t first_seen = 0;
  int64_t last_seen = 0;
};

// A stack's frames, shared by every origin row of the stack (a whole
// database holds tens of thousands of origins but a few hundred stacks).
// Reads like a const std::vector<std::string>; writing copies it first.
class Frames {
 public:
  using value_type = std::string;
  using const_iterator = std::vector<std::string>::const_iterator;
  using iterator = const_iterator;

  Frames() = default;
  Frames(std::vector<std::string> v) : p_(std::make_shared<std::vector<std::string>>(std::move(v))) {}
  Frames(std::initializer_list<std::string> l) : Frames(std::vector<std::string>(l)) {}

  const std::vector<std::string>& get() const { return p_ ? *p_ : no_frames(); }
  operator const std::vector<std::string>&() const { return get(); }
  size_t size() const { return get().size(); }
  bool empty() const { return get().empty(); }
  const_iterator begin() const { return get().begin(); }
  const_iterator end() const { return get().end(); }
  const std::string& operator[](size_t i) const { return get()[i]; }
  std::string& operator[](size_t i) { return own()[i]; }
  void push_back(std::string f) { own().push_back(std::move(f)); }
  friend bool operator==(const Frames& a, const Frames& b) { return a.get() == b.get(); }

 private:
  static const std::vector<std::string>& no_frames();
  std::vector<std::string>& own() {
    if (!p_) p_ = std::make_shared<std::vector<std::string>>();
    else if (p_.use_count() > 1) p_ = std::make_shared<std::vector<std::string>>(*p_);
    return *p_;
  }
  std::shared_ptr<std::vector<std::string>> p_;
};

struct OriginRow {
  int64_t check_id = 0;
  int64_t stack_id = 0;
  std::string origin;  // first non-machinery function
  Frames frames;       // symbolised, innermost first
  uint64_t samples = 0;
};

// Times a binary asked the kernel what capabilities it holds (schema
// version 3), per kind (ca_inspect_kind) and capability asked about.
struct SelfInspectionRow {
  int64_t binary_id = 0;
  int kind = 0;
  int cap = 0;
  bool profiled = false;
  uint64_t count = 0;
  int64_t first_seen = 0;
  int64_t last_seen = 0;
};

// A capability set `capaudit profile --minimize` verified by re-running a
// command (schema version 2). The JSON texts are the profiler's to read.
struct VerifiedSetRow {
  int64_t id = 0;
  std::string path;
  std::string sha256;        // of the file the runs executed
  std::string caps;          // JSON array of capability names: the verified set
  std::string verification;  // JSON object: the observed set and each capability's verdict
  int64_t runs = 0;
  bool compare_output = false;
  int64_t created = 0;
};

// A cgroup checks were counted in (schema version 5, issue 12): its id as
// the checks carry it, its path when first seen, and who it belonged to
// (lib/cgroup_identity.h; name, image and the held bounding set where the
// container runtime's state files told).
struct CgroupRow {
  uint64_t id = 0;
  std::string path;
  int64_t first_seen = 0;
  int64_t last_seen = 0;
  std::string unit;
  std::string container_id;
  std::string runtime;
  bool monitor = false;  // the runtime's monitor (conmon), not the container
  std::string container_name;
  std::string image;
  std::string pod_uid;
  std::string pod_name;
  std::string pod_namespace;
  std::string qos;
  std::optional<uint64_t> bounding;  // the container's bounding set (bit n = capability n)
  std::optional<uint32_t> user;      // the uid the container's process runs as
};

class Store {
 public:
  // Why open() failed, for callers that treat some failures differently
  // (the daemon moves a damaged database of its own aside, but must never
  // touch someone else's file).
  enum class OpenFailure { None, CannotOpen, Damaged, Foreign, TooNew, Other };
  // What a file's header says it is, read without SQLite, which refuses a
  // damaged file before saying whose it is.
  enum class FileKind { Missing, Empty, Capaudit, OtherSqlite, Zeroed, NotSqlite, Unreadable };
  static FileKind identify(const std::string& path);

  // Opens (creating if needed) and migrates. Returns nullptr with *err set
  // naming the file when it cannot be opened, is not a capaudit database,
  // or is newer than this build understands. `readonly` never migrates.
  static std::unique_ptr<Store> open(const std::string& path, std::string* err,
                                     bool readonly = false, OpenFailure* failure = nullptr);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }
  int schema_version();
  // One snapshot for every read that follows, until the store closes: the
  // statements share one read lock (not one each: a command that looks up
  // 10,000 binaries took and dropped it 20,000 times) and see one state of
  // the file, so the schema version is read once. For readers only.
  bool begin_read(std::string* err);
  // PRAGMA quick_check; false with *err when the file is damaged.
  bool check_integrity(std::string* err);

  // ---- writing: one transaction per drain ------------------------------
  bool begin(std::string* err);
  bool commit(std::string* err);
  void rollback();

  // Returns the row id; updates last_seen. 0 on error (see last_error()).
  int64_t upsert_binary(const BinaryKey& key, bool path_stale, int64_t now);
  bool set_binary_identity(int64_t binary_id, const BinaryRow& identity);
  // The identity as read from the file now.
  bool set_binary_identity(int64_t binary_id, const FileIdentity& file);
  // Adds delta to the check's count (creating it), returns its row id.
  int64_t add_check(int64_t binary_id, const CheckFields& f, uint64_t delta, int64_t now);
  // Stores a symbolised stack once (deduplicated by content), returns its id.
  int64_t put_stack(const std::vector<std::string>& frames, const std::string& origin);
  bool add_origin(int64_t check_id, int64_t stack_row, uint64_t samples);
  bool add_self_inspection(const SelfInspectionRow& row);
  bool add_stat(const std::string& name, uint64_t delta);
  bool set_meta(const std::string& key, const std::string& value);
  std::optional<std::string> meta(const std::string& key);

  // What was already stored of the kernel's monotonic counters, keyed by an
  // opaque blob (the raw map key), so a daemon restarted on pinned maps
  // stores only what is new.
  std::map<std::string, uint64_t> load_drain_state();
  // The same rows one at a time (the daemon's drainer keeps only hashes);
  // false when reading failed.
  bool for_each_drain_state(const std::function<void(std::string_view key, uint64_t value)>& f);
  bool set_drain_state(std::string_view key, uint64_t value);
  bool clear_drain_state();
  // Removes the drain state of keys whose first byte is `kind`.
  bool clear_drain_state_kind(char kind);
  bool delete_drain_state(std::string_view key);

  // Inserts or updates (a later name, image or bounding set fills what an
  // earlier write lacked; the path and first_seen stay).
  bool upsert_cgroup(const CgroupRow& row);

  // Returns the row id, 0 on error (see last_error()).
  int64_t add_verified_set(const VerifiedSetRow& row);

  // Paths stored for a (dev, ino), most recently seen first.
  std::vector<std::string> paths_of(uint64_t dev, uint64_t ino);

  // Removes checks not seen for `days` days (and orphaned origins).
  bool apply_retention(uint32_t days, int64_t now);

  // ---- reading -------------------------------------------------------------
  std::vector<BinaryRow> binaries(const std::optional<std::string>& path = std::nullopt);
  std::vector<CheckRow> checks(int64_t binary_id);
  std::vector<OriginRow> origins(int64_t check_id);
  // Every check and every origin in one query each, for reading a whole
  // database: per-row queries cost more than the rows. Checks come ordered
  // by binary then as checks(); origins grouped by check, ordered as
  // origins(), each distinct stack's frames parsed once.
  std::vector<CheckRow> all_checks();
  std::map<int64_t, std::vector<OriginRow>> all_origins();
  // Every self-inspection row by binary (none before schema version 3).
  std::map<int64_t, std::vector<SelfInspectionRow>> all_self_inspections();
  std::vector<SelfInspectionRow> self_inspections(int64_t binary_id);
  std::map<std::string, uint64_t> stats();
  uint64_t total_count();
  // Verified sets recorded for `path`, newest first; none in a database
  // older than schema version 2 (opened read-only, so not migrated).
  std::vector<VerifiedSetRow> verified_sets(const std::string& path);
  // Every verified set by path, each path's as verified_sets() gives them,
  // in one scan: a command that asks for each of 10,000 binaries pays
  // more for the lookups than for the rows.
  std::map<std::string, std::vector<VerifiedSetRow>> all_verified_sets();
  // Every named cgroup, by id; none before schema version 5.
  std::vector<CgroupRow> cgroups();

  const std::string& last_error() const { return last_error_; }
  sqlite3* handle() { return db_; }
  // Drops the page cache: the next statement reads the file again.
  void release_memory() { sqlite3_db_release_memory(db_); }

  // Every read that fails (SQLite's error, rows out of key order, a budget
  // run out) leaves the store failed: what any read returned since may be
  // partial, so callers check this before presenting it as complete.
  bool read_failed() const { return read_failed_; }
  // The failure, read or write, came from a damaged file.
  bool damaged() const { return damaged_; }
  // For the user: names the file, says what is wrong and how to check it.
  std::string damage_message() const;

  // Work allowed to one statement, in SQLite virtual machine operations per
  // KiB of the file (and its WAL): a damaged b-tree can yield rows forever,
  // and no statement of the store needs more than a few thousand operations
  // per KiB it reads (docs/schema.md has the measurement).
  static constexpr uint64_t kOpsPerKiB = 20'000;
  static constexpr uint64_t kOpsSlackKiB = 256;
  static constexpr int kProgressOps = 1000;  // how often SQLite asks

 private:
  friend class Query;
  Store(sqlite3* db, std::string path);
  bool exec(const char* sql, std::string* err = nullptr);
  bool migrate(std::string* err);
  sqlite3_stmt* prepare(std::string_view sql);
  void record_error(const char* what);
  // Records a failed step; rc is sqlite3_step's result.
  void record_step_error(const char* what, int rc);
  void mark_damaged(const std::string& why);
  // The statement budget: reset when a top-level statement starts.
  void start_statement();
  void end_statement() { active_statements_--; }
  static int on_progress(void* self);
  uint64_t ops_limit() const;
  // The checks table has final_verdict (version 3+; a read-only open of an
  // older file is not migrated).
  bool has_final_verdict();
  // checks.arg and self_inspections (version 4+).
  bool has_arg();

  sqlite3* db_ = nullptr;
  std::optional<bool> has_final_verdict_;
  std::optional<bool> has_arg_;
  std::optional<int> snapshot_version_;  // inside begin_read's transaction
  std::string path_;
  std::string last_error_;
  int last_code_ = SQLITE_OK;  // SQLite's code of last_error_
  std::map<std::string, sqlite3_stmt*, std::less<>> stmts_;
  bool read_failed_ = false;
  bool damaged_ = false;
  int active_statements_ = 0;
  uint64_t ops_ = 0;
  uint64_t ops_checked_at_ = 0;
  bool over_budget_ = false;
};

std::string audit_name(Audit a);  // "yes", "no", "unknown"

}  // namespace capaudit
