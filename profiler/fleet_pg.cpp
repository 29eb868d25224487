// The fleet on PostgreSQL. A host's lines are snapshots of its cumulative
// counters, so a row is replaced only by a newer snapshot of itself: the
// same export loaded twice, or an older one after a newer, changes nothing,
// and nothing is ever added to a count (docs/fleet.md, "Counting once").
#include "fleet_pg.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <tuple>

#include <nlohmann/json.hpp>

namespace capaudit {
namespace {

// Each migration runs once, in order, inside the transaction of fleet_migrate.
// Constant SQL: nothing from an export is ever part of it.
const char* const kMigrations[] = {
    // 1: hosts and their checks. sha256 is '' for a file the host could not
    // hash (a key column cannot be NULL); such a version is known by its path.
    R"sql(
CREATE TABLE capaudit_fleet_hosts (
  host_id     text PRIMARY KEY,
  last_export bigint NOT NULL,
  loaded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE capaudit_fleet_checks (
  host_id     text NOT NULL,
  sha256      text NOT NULL,
  path        text NOT NULL,
  capability  text NOT NULL,
  verdict     text NOT NULL CHECK (verdict IN ('granted', 'denied')),
  audit       text NOT NULL CHECK (audit IN ('yes', 'no', 'unknown')),
  count       bigint NOT NULL CHECK (count >= 0),
  first_seen  bigint NOT NULL,
  last_seen   bigint NOT NULL,
  required    boolean NOT NULL,
  replaced_by text NOT NULL,
  reason      text NOT NULL,
  no_sha256   text NOT NULL,
  exported_at bigint NOT NULL,
  PRIMARY KEY (host_id, sha256, path, capability, verdict, audit)
);
CREATE INDEX capaudit_fleet_checks_version ON capaudit_fleet_checks (sha256, path);
)sql",
};
constexpr int kMigrationCount = sizeof(kMigrations) / sizeof(kMigrations[0]);
static_assert(kMigrationCount == kFleetSchemaVersion);

// A file's lines go into a staging table by COPY (one round trip for the
// whole file, not one per line), then into the checks in one statement.
// `line` keeps the file's order for the tie below.
constexpr const char* kStage = R"sql(
CREATE TEMP TABLE IF NOT EXISTS capaudit_fleet_stage (LIKE capaudit_fleet_checks, line bigint NOT NULL)
ON COMMIT DELETE ROWS
)sql";
constexpr const char* kCopy = R"sql(
COPY capaudit_fleet_stage (host_id, sha256, path, capability, verdict, audit, count, first_seen, last_seen, required,
                           replaced_by, reason, no_sha256, exported_at, line) FROM STDIN
)sql";

// The row is replaced only by a newer snapshot of the same counter: seen
// later, or seen as late but counted further, or the same counts exported
// later (a newer capaudit's decision). Never by a sum. Where one input holds
// a key twice (exports concatenated by a shipper), its newest snapshot is
// the one compared, the first of equal ones: what loading the lines one by
// one would leave.
constexpr const char* kMerge = R"sql(
INSERT INTO capaudit_fleet_checks AS c
  (host_id, sha256, path, capability, verdict, audit, count, first_seen, last_seen, required, replaced_by, reason,
   no_sha256, exported_at)
SELECT DISTINCT ON (host_id, sha256, path, capability, verdict, audit)
  host_id, sha256, path, capability, verdict, audit, count, first_seen, last_seen, required, replaced_by, reason,
  no_sha256, exported_at
FROM capaudit_fleet_stage
ORDER BY host_id, sha256, path, capability, verdict, audit, last_seen DESC, count DESC, exported_at DESC, line
ON CONFLICT (host_id, sha256, path, capability, verdict, audit) DO UPDATE SET
  count = EXCLUDED.count, first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen,
  required = EXCLUDED.required, replaced_by = EXCLUDED.replaced_by, reason = EXCLUDED.reason,
  no_sha256 = EXCLUDED.no_sha256, exported_at = EXCLUDED.exported_at
WHERE (EXCLUDED.last_seen, EXCLUDED.count, EXCLUDED.exported_at) > (c.last_seen, c.count, c.exported_at)
)sql";

constexpr const char* kUpsertHost = R"sql(
INSERT INTO capaudit_fleet_hosts AS h (host_id, last_export) VALUES ($1, $2::bigint)
ON CONFLICT (host_id) DO UPDATE SET last_export = GREATEST(h.last_export, EXCLUDED.last_export), loaded_at = now()
)sql";

// Rows of the versions asked for; a version is a SHA-256, or for files no
// host could hash, a path (upath).
constexpr const char* kVersionRows = R"sql(
WITH v AS (
  SELECT *, CASE WHEN sha256 = '' THEN path ELSE '' END AS upath FROM capaudit_fleet_checks
  WHERE ($1::text IS NULL OR path = $1) AND ($2::text IS NULL OR sha256 = $2)
)
)sql";

// The host's set: its required lines plus the narrower capabilities it keeps
// instead, in one scan of v (a CTE read twice is written out whole first).
constexpr const char* kHostSets = R"sql(
, s AS (
  SELECT sha256, upath, capability, host_id FROM (
    SELECT sha256, upath, host_id,
           unnest(ARRAY[CASE WHEN required THEN capability END, NULLIF(replaced_by, '')]) AS capability
    FROM v) x
  WHERE capability IS NOT NULL
)
)sql";

// The answers aggregate every row of the fleet: sorts and hashes in memory
// rather than spilled to disk (PostgreSQL's default work_mem is 4MB), and no
// JIT compilation, which costs seconds here and gains nothing measured
// (bench/fleet_bench.cpp).
constexpr const char* kQuerySettings = "SET work_mem = '128MB'; SET jit = off";

std::string audit_text(Audit a) { return a == Audit::Yes ? "yes" : a == Audit::No ? "no" : "unknown"; }
Audit audit_from(const std::string& s) { return s == "yes" ? Audit::Yes : s == "no" ? Audit::No : Audit::Unknown; }

const char* param(const std::optional<std::string>& s) { return s ? s->c_str() : nullptr; }

// A value in COPY's text format: data, never SQL. NUL cannot occur (the
// parser refuses it); the separators and the escape character are escaped.
void copy_field(std::string& row, const std::string& value, char end) {
  for (char ch : value) {
    switch (ch) {
      case '\\': row += "\\\\"; break;
      case '\t': row += "\\t"; break;
      case '\n': row += "\\n"; break;
      case '\r': row += "\\r"; break;
      default: row += ch;
    }
  }
  row += end;
}

void copy_row(std::string& buf, const FleetLine& l, size_t line) {
  copy_field(buf, l.host_id, '\t');
  copy_field(buf, l.sha256.value_or(""), '\t');
  copy_field(buf, l.path, '\t');
  copy_field(buf, l.capability, '\t');
  buf += l.granted ? "granted\t" : "denied\t";
  buf += audit_text(l.audit) + '\t';
  buf += std::to_string(l.count) + '\t';
  buf += std::to_string(l.first_seen) + '\t';
  buf += std::to_string(l.last_seen) + '\t';
  buf += l.required ? "t\t" : "f\t";
  copy_field(buf, l.replaced_by, '\t');
  copy_field(buf, l.reason, '\t');
  copy_field(buf, l.no_sha256, '\t');
  buf += std::to_string(l.exported_at) + '\t';
  buf += std::to_string(line) + '\n';
}

// One line, without the password: libpq's messages come in several lines.
void scrub(std::string& text, const std::string& secret) {
  for (char& c : text)
    if (c == '\n' || c == '\t') c = ' ';
  while (!text.empty() && text.back() == ' ') text.pop_back();
  if (secret.empty()) return;
  for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) text.replace(at, secret.size(), "***");
}

// A version key: (sha256, upath).
using VersionKey = std::pair<std::string, std::string>;

struct Version {
  int64_t hosts = 0;
  std::map<std::string, int64_t> paths;  // path -> hosts
};

bool load_versions(PgConn& pg, const std::vector<const char*>& filter, std::map<VersionKey, Version>* out,
                   std::string* err) {
  PgResult r;
  // hp: each (version, path, host) once, narrow: read twice below.
  std::string sql = std::string(kVersionRows) +
                    ", hp AS (SELECT DISTINCT sha256, upath, path, host_id FROM v) "
                    "SELECT sha256, upath, path, count(*), NULL FROM hp GROUP BY 1, 2, 3 "
                    "UNION ALL SELECT sha256, upath, NULL, count(DISTINCT host_id), 1 FROM hp GROUP BY 1, 2";
  if (!pg.exec(sql, filter, &r, err)) return false;
  for (int i = 0; i < r.rows(); i++) {
    Version& v = (*out)[{r.text(i, 0), r.text(i, 1)}];
    if (r.null(i, 2)) v.hosts = r.int64(i, 3);
    else v.paths[r.text(i, 2)] = r.int64(i, 3);
  }
  return true;
}

// The path most hosts ran the version from (then the first by name).
std::string main_path(const Version& v) {
  std::string best;
  int64_t most = -1;
  for (const auto& [path, hosts] : v.paths)
    if (hosts > most) best = path, most = hosts;
  return best;
}

}  // namespace

int64_t PgResult::int64(int row, int col) const { return std::strtoll(PQgetvalue(r_, row, col), nullptr, 10); }

std::unique_ptr<PgConn> PgConn::connect(const std::string& conninfo, std::string* err) {
  char* parse_error = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &parse_error);
  if (!opts) {
    // libpq's message quotes the text around the mistake, which may be the password.
    PQfreemem(parse_error);
    *err = "the --postgres connection string is malformed (not shown: it may hold a password)";
    return nullptr;
  }
  std::string secret;
  for (PQconninfoOption* o = opts; o->keyword; o++)
    if (std::string_view(o->keyword) == "password" && o->val) secret = o->val;
  PQconninfoFree(opts);
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (!c || PQstatus(c) != CONNECTION_OK) {
    std::string why = c ? PQerrorMessage(c) : "out of memory";
    PQfinish(c);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    scrub(why, secret);
    *err = "cannot connect to PostgreSQL: " + why;
    return nullptr;
  }
  // Exports are UTF-8 JSON; the server's own encoding is the server's business.
  PQsetClientEncoding(c, "UTF8");
  // The server's NOTICEs ("already exists, skipping") are for psql users.
  PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<PgConn>(new PgConn(c, std::move(secret)));
}

std::string PgConn::error(const char* what, const PGresult* r) const {
  std::string why = r ? PQresultErrorMessage(r) : PQerrorMessage(c_);
  if (why.empty()) why = PQerrorMessage(c_);
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
  scrub(why, secret_);
  return std::string(what) + ": " + why;
}

bool PgConn::exec(const std::string& sql, const std::vector<const char*>& params, PgResult* out, std::string* err) {
  PgResult r(PQexecParams(c_, sql.c_str(), static_cast<int>(params.size()), nullptr, params.data(), nullptr,
                          nullptr, 0));
  ExecStatusType st = PQresultStatus(r.get());
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    *err = error("PostgreSQL", r.get());
    return false;
  }
  if (out) *out = std::move(r);
  return true;
}

bool PgConn::exec(const std::string& sql, std::string* err) {
  PgResult r(PQexec(c_, sql.c_str()));
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK && PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    *err = error("PostgreSQL", r.get());
    return false;
  }
  return true;
}

bool PgConn::copy_begin(const std::string& sql, std::string* err) {
  PgResult r(PQexec(c_, sql.c_str()));
  if (PQresultStatus(r.get()) != PGRES_COPY_IN) {
    *err = error("PostgreSQL", r.get());
    return false;
  }
  return true;
}

bool PgConn::copy_send(const std::string& data, std::string* err) {
  if (PQputCopyData(c_, data.data(), static_cast<int>(data.size())) != 1) {
    *err = error("PostgreSQL", nullptr);
    return false;
  }
  return true;
}

bool PgConn::copy_end(const char* abort_why, std::string* err) {
  bool ok = PQputCopyEnd(c_, abort_why) == 1;
  // The COPY's own result, then none: the connection is ready again.
  for (PGresult* r; (r = PQgetResult(c_));) {
    PgResult owned(r);
    if (ok && PQresultStatus(r) != PGRES_COMMAND_OK) {
      *err = error("PostgreSQL", r);
      ok = false;
    }
  }
  if (!ok && err->empty()) *err = error("PostgreSQL", nullptr);
  return ok && !abort_why;
}

bool fleet_migrate(PgConn& pg, std::string* err) {
  if (!pg.exec("BEGIN", err)) return false;
  auto fail = [&] {
    std::string ignored;
    pg.exec("ROLLBACK", &ignored);
    return false;
  };
  PgResult r;
  if (!pg.exec("SELECT pg_advisory_xact_lock(hashtext('capaudit_fleet_schema'))", err) ||
      !pg.exec("CREATE TABLE IF NOT EXISTS capaudit_fleet_schema (version integer NOT NULL)", err) ||
      !pg.exec("SELECT coalesce(max(version), 0) FROM capaudit_fleet_schema", {}, &r, err))
    return fail();
  int version = static_cast<int>(r.int64(0, 0));
  if (version > kFleetSchemaVersion) {
    *err = "the fleet schema is version " + std::to_string(version) + ", newer than this capaudit (" +
           std::to_string(kFleetSchemaVersion) + "): upgrade capaudit";
    return fail();
  }
  for (int v = version; v < kMigrationCount; v++) {
    if (!pg.exec(kMigrations[v], err)) {
      *err = "migrating the fleet schema to version " + std::to_string(v + 1) + ": " + *err;
      return fail();
    }
  }
  std::string v = std::to_string(kFleetSchemaVersion);
  if (version != kFleetSchemaVersion &&
      (!pg.exec("DELETE FROM capaudit_fleet_schema", err) ||
       !pg.exec("INSERT INTO capaudit_fleet_schema (version) VALUES ($1::integer)", {v.c_str()}, nullptr, err)))
    return fail();
  return pg.exec("COMMIT", err);
}

bool fleet_schema_ready(PgConn& pg, std::string* err) {
  PgResult r;
  if (!pg.exec("SELECT to_regclass('capaudit_fleet_schema') IS NOT NULL", {}, &r, err)) return false;
  if (r.text(0, 0) != "t") {
    *err = "no fleet data in this database yet: load exports with capaudit fleet load";
    return false;
  }
  if (!pg.exec("SELECT coalesce(max(version), 0) FROM capaudit_fleet_schema", {}, &r, err)) return false;
  int64_t version = r.int64(0, 0);
  if (version != kFleetSchemaVersion) {
    *err = version > kFleetSchemaVersion ? "the fleet schema is newer than this capaudit: upgrade capaudit"
                                         : "the fleet schema is older than this capaudit: run capaudit fleet load";
    return false;
  }
  return true;
}

bool fleet_load(PgConn& pg, std::istream& in, const std::string& name, size_t* lines, std::string* err) {
  *lines = 0;
  if (!pg.exec("BEGIN", err)) return false;
  bool copying = false;
  // Ends the copy and the transaction: nothing of this input stays.
  auto refuse = [&](const std::string& where, const std::string& what) {
    std::string ignored;
    if (copying) pg.copy_end("capaudit: the input was refused", &ignored);
    pg.exec("ROLLBACK", &ignored);
    *err = where + ": " + what + "; nothing of " + name + " was loaded";
    return false;
  };
  std::string why;
  if (!pg.exec(kStage, &why) || !pg.copy_begin(kCopy, &why)) return refuse(name, why);
  copying = true;
  std::map<std::string, int64_t> hosts;  // host id -> newest export
  std::string text, buf;
  size_t number = 0;
  while (std::getline(in, text)) {
    number++;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;  // a blank line says nothing
    // Checked here, before the server sees it, so a bad line is named.
    FleetLine l;
    if (!parse_fleet_line(text, &l, &why)) return refuse(name + ":" + std::to_string(number), why);
    copy_row(buf, l, number);
    if (buf.size() >= (1u << 20)) {
      if (!pg.copy_send(buf, &why)) return refuse(name, why);
      buf.clear();
    }
    int64_t& newest = hosts[l.host_id];
    newest = std::max(newest, l.exported_at);
    (*lines)++;
  }
  if (in.bad()) return refuse(name + ":" + std::to_string(number + 1), "read error");
  if (!buf.empty() && !pg.copy_send(buf, &why)) return refuse(name, why);
  copying = false;
  if (!pg.copy_end(nullptr, &why) || !pg.exec(kMerge, &why)) return refuse(name, why);
  for (const auto& [host, at] : hosts) {
    std::string when = std::to_string(at);
    if (!pg.exec(kUpsertHost, {host.c_str(), when.c_str()}, nullptr, &why)) return refuse(name, why);
  }
  if (!pg.exec("COMMIT", &why)) return refuse(name, why);
  return true;
}

bool fleet_recommend(PgConn& pg, const std::optional<std::string>& path, const std::optional<std::string>& sha256,
                     std::vector<FleetBinary>* out, std::string* err) {
  std::vector<const char*> filter{param(path), param(sha256)};
  std::map<VersionKey, Version> versions;
  if (!pg.exec(kQuerySettings, err) || !load_versions(pg, filter, &versions, err)) return false;

  std::map<VersionKey, FleetBinary> binaries;
  for (const auto& [key, v] : versions) {
    FleetBinary& b = binaries[key];
    b.path = main_path(v);
    for (const auto& [p, _] : v.paths) b.paths.push_back(p);
    if (!key.first.empty()) b.sha256 = key.first;
    b.hosts = v.hosts;
  }
  PgResult r;
  std::string checks = std::string(kVersionRows) +
                       "SELECT sha256, upath, capability, verdict, audit, sum(count)::text, count(DISTINCT host_id), "
                       "count(DISTINCT host_id) FILTER (WHERE required), "
                       "coalesce(min(first_seen) FILTER (WHERE first_seen > 0), 0), max(last_seen), "
                       // The first by (required first, host id): as an aggregate that hashes.
                       "(min(ARRAY[(NOT required)::text, host_id, reason]))[3] "
                       "FROM v GROUP BY 1, 2, 3, 4, 5";
  if (!pg.exec(checks, filter, &r, err)) return false;
  for (int i = 0; i < r.rows(); i++) {
    FleetCheck c;
    c.capability = r.text(i, 2);
    c.granted = r.text(i, 3) == "granted";
    c.audit = audit_from(r.text(i, 4));
    // A sum of bigints past 2^64 is no fleet's: it saturates.
    c.count = std::strtoull(r.text(i, 5).c_str(), nullptr, 10);
    c.hosts = r.int64(i, 6);
    c.required_hosts = r.int64(i, 7);
    c.first_seen = r.int64(i, 8);
    c.last_seen = r.int64(i, 9);
    c.reason = r.text(i, 10);
    if (c.required_hosts > 0 && c.required_hosts < c.hosts)
      c.reason = "required on " + std::to_string(c.required_hosts) + " of " + std::to_string(c.hosts) +
                 " hosts: " + c.reason;
    binaries[{r.text(i, 0), r.text(i, 1)}].checks.push_back(std::move(c));
  }
  std::string sets = std::string(kVersionRows) + kHostSets + "SELECT DISTINCT sha256, upath, capability FROM s";
  if (!pg.exec(sets, filter, &r, err)) return false;
  for (int i = 0; i < r.rows(); i++) binaries[{r.text(i, 0), r.text(i, 1)}].capabilities.push_back(r.text(i, 2));

  out->clear();
  for (auto& [_, b] : binaries) {
    std::sort(b.capabilities.begin(), b.capabilities.end());
    std::sort(b.checks.begin(), b.checks.end(), [](const FleetCheck& x, const FleetCheck& y) {
      return std::tuple(x.capability, !x.granted, static_cast<int>(x.audit)) <
             std::tuple(y.capability, !y.granted, static_cast<int>(y.audit));
    });
    out->push_back(std::move(b));
  }
  std::sort(out->begin(), out->end(),
            [](const FleetBinary& x, const FleetBinary& y) { return std::tie(x.path, x.sha256) < std::tie(y.path, y.sha256); });
  return true;
}

bool fleet_outliers(PgConn& pg, std::vector<FleetOutlier>* out, std::string* err) {
  std::vector<const char*> filter{nullptr, nullptr};
  std::map<VersionKey, Version> versions;
  if (!pg.exec(kQuerySettings, err) || !load_versions(pg, filter, &versions, err)) return false;
  PgResult r;
  std::string sql = std::string(kVersionRows) + kHostSets +
                    "SELECT sha256, upath, capability, json_agg(DISTINCT host_id ORDER BY host_id)::text, "
                    "count(DISTINCT host_id) FROM s GROUP BY 1, 2, 3";
  if (!pg.exec(sql, filter, &r, err)) return false;
  out->clear();
  for (int i = 0; i < r.rows(); i++) {
    const Version& v = versions[{r.text(i, 0), r.text(i, 1)}];
    // Fewer than half: 2 of 5 is an outlier, 2 of 4 is not.
    if (2 * r.int64(i, 4) >= v.hosts) continue;
    FleetOutlier o;
    o.path = main_path(v);
    if (!r.text(i, 0).empty()) o.sha256 = r.text(i, 0);
    o.capability = r.text(i, 2);
    o.hosts = nlohmann::json::parse(r.text(i, 3)).get<std::vector<std::string>>();
    o.of_hosts = v.hosts;
    out->push_back(std::move(o));
  }
  std::sort(out->begin(), out->end(), [](const FleetOutlier& x, const FleetOutlier& y) {
    return std::tie(x.path, x.sha256, x.capability) < std::tie(y.path, y.sha256, y.capability);
  });
  return true;
}

}  // namespace capaudit
