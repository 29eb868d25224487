#include "store_schema.h"

#include "store.h"

#include <spdlog/fmt/fmt.h>

#include <stdexcept>

namespace capaudit {

namespace {

// The checks table of version 1; later versions add key columns after it.
constexpr const char* kChecksColumns = R"sql(
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
  last_seen       INTEGER NOT NULL)sql";

constexpr const char* kChecksKey =
    "binary_id, cap, ret, audit, insetid, uid, euid, syscall, target_ns_inum,\n"
    "         target_ns_level, cred_ns_inum, cgroup_id, cap_effective, profiled";

constexpr const char* kChecksCopied =
    "id, binary_id, cap, ret, audit, insetid, uid, euid, syscall, target_ns_inum,\n"
    "  target_ns_level, cred_ns_inum, cgroup_id, cap_effective, profiled, count, first_seen, last_seen";

// check_origins as `name`, its rows deleted with their check in `checks`.
std::string check_origins_table(const char* name, const char* checks) {
  return fmt::format(R"sql(CREATE TABLE {}(
  check_id  INTEGER NOT NULL REFERENCES {}(id) ON DELETE CASCADE,
  stack_id  INTEGER NOT NULL REFERENCES stacks(id),
  samples   INTEGER NOT NULL,
  PRIMARY KEY(check_id, stack_id)
) WITHOUT ROWID;
)sql",
                     name, checks);
}

// Joins names, each preceded by ", ".
std::string listed(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += ", " + n;
  return s;
}

// Adds `column` (an integer, 0 in rows already stored) to checks and to its
// UNIQUE key after the key columns earlier migrations added (`earlier`).
// SQLite cannot change a UNIQUE constraint in place: both tables are rebuilt
// with ids kept, check_origins first out so dropping checks cascades nowhere.
std::string add_checks_key_column(const std::vector<std::string>& earlier, const std::string& column) {
  std::string added;
  for (const auto& c : earlier) added += fmt::format(",\n  {:<15} INTEGER NOT NULL DEFAULT 0", c);
  added += fmt::format(",\n  {:<15} INTEGER NOT NULL DEFAULT 0", column);
  return fmt::format(R"sql(
CREATE TABLE checks_next({columns}{added},
  UNIQUE({key}{earlier}, {column})
);
INSERT INTO checks_next({copied}{earlier})
  SELECT {copied}{earlier} FROM checks;
{origins}INSERT INTO check_origins_next(check_id, stack_id, samples) SELECT check_id, stack_id, samples FROM check_origins;
DROP TABLE check_origins;
DROP TABLE checks;
ALTER TABLE checks_next RENAME TO checks;
ALTER TABLE check_origins_next RENAME TO check_origins;
)sql",
                     fmt::arg("columns", kChecksColumns), fmt::arg("added", added), fmt::arg("key", kChecksKey),
                     fmt::arg("origins", check_origins_table("check_origins_next", "checks_next")),
                     fmt::arg("earlier", listed(earlier)), fmt::arg("column", column),
                     fmt::arg("copied", kChecksCopied));
}

// Never change what an entry does once released; append a new one.
std::vector<std::string> make_migrations() {
  std::vector<std::string> m;
  // 0 -> 1
  m.push_back(fmt::format(R"sql(
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
CREATE TABLE checks({columns},
  UNIQUE({key})
);
CREATE TABLE stacks(
  id      INTEGER PRIMARY KEY,
  hash    TEXT NOT NULL UNIQUE,
  origin  TEXT NOT NULL,
  frames  TEXT NOT NULL
);
{origins}CREATE TABLE collector_stats(
  name   TEXT PRIMARY KEY,
  value  INTEGER NOT NULL
);
CREATE TABLE drain_state(
  key    BLOB PRIMARY KEY,
  value  INTEGER NOT NULL
) WITHOUT ROWID;
)sql",
                          fmt::arg("columns", kChecksColumns), fmt::arg("key", kChecksKey),
                          fmt::arg("origins", check_origins_table("check_origins", "checks"))));
  // 1 -> 2: sets verified by re-running a command (capaudit profile --minimize)
  m.push_back(R"sql(
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
)sql");
  // 2 -> 3: checks.final_verdict, security_capable's answer after every LSM
  // (an LSM's denial of a grant is another check).
  m.push_back(add_checks_key_column({}, "final_verdict"));
  // 3 -> 4: checks.arg, the syscall's request at the check as the kernel
  // side classified it (a read and a write are two checks). And
  // self-inspections: a program asking which capabilities it holds.
  m.push_back(add_checks_key_column({"final_verdict"}, "arg") + R"sql(
CREATE TABLE self_inspections(
  binary_id   INTEGER NOT NULL REFERENCES binaries(id) ON DELETE CASCADE,
  kind        INTEGER NOT NULL,
  cap         INTEGER NOT NULL,
  profiled    INTEGER NOT NULL,
  count       INTEGER NOT NULL,
  first_seen  INTEGER NOT NULL,
  last_seen   INTEGER NOT NULL,
  PRIMARY KEY(binary_id, kind, cap, profiled)
) WITHOUT ROWID;
)sql");
  // 4 -> 5: the cgroups checks ran in, named when made (issue 12).
  // IF NOT EXISTS: a database downgraded by dropping only later tables.
  m.push_back(R"sql(
CREATE TABLE IF NOT EXISTS cgroups(
  id              INTEGER PRIMARY KEY,
  path            TEXT NOT NULL,
  first_seen      INTEGER NOT NULL,
  last_seen       INTEGER NOT NULL,
  unit            TEXT NOT NULL,
  container_id    TEXT NOT NULL,
  runtime         TEXT NOT NULL,
  monitor         INTEGER NOT NULL,
  container_name  TEXT NOT NULL,
  image           TEXT NOT NULL,
  pod_uid         TEXT NOT NULL,
  pod_name        TEXT NOT NULL,
  pod_namespace   TEXT NOT NULL,
  qos             TEXT NOT NULL,
  bounding        INTEGER,
  user            INTEGER
);
CREATE INDEX IF NOT EXISTS cgroups_container ON cgroups(container_id);
)sql");
  return m;
}

}  // namespace

const std::vector<std::string>& schema_migrations() {
  static const std::vector<std::string> migrations = [] {
    std::vector<std::string> m = make_migrations();
    if (m.size() != static_cast<size_t>(kSchemaVersion)) throw std::logic_error("one migration per schema version");
    return m;
  }();
  return migrations;
}

}  // namespace capaudit
