// The fleet's PostgreSQL, through libpq: the schema and its migrations,
// loading exports, and the two questions (docs/fleet.md). Every value from
// an export or the command line travels as a query parameter, never as SQL.
#pragma once

#include "fleet.h"

#include <libpq-fe.h>

#include <cstddef>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace capaudit {

inline constexpr int kFleetSchemaVersion = 1;

// Owns a PGresult.
class PgResult {
 public:
  explicit PgResult(PGresult* r = nullptr) : r_(r) {}
  ~PgResult() { PQclear(r_); }
  PgResult(PgResult&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  PgResult& operator=(PgResult&& o) noexcept {
    std::swap(r_, o.r_);
    return *this;
  }
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  PGresult* get() const { return r_; }
  int rows() const { return PQntuples(r_); }
  std::string text(int row, int col) const { return PQgetvalue(r_, row, col); }
  bool null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  int64_t int64(int row, int col) const;

 private:
  PGresult* r_;
};

// Owns a PGconn. Errors never show the connection string: it may hold a
// password, and libpq's own messages may quote pieces of it.
class PgConn {
 public:
  static std::unique_ptr<PgConn> connect(const std::string& conninfo, std::string* err);
  ~PgConn() { PQfinish(c_); }
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  // A statement with parameters (nullptr: NULL); false with *err on failure.
  bool exec(const std::string& sql, const std::vector<const char*>& params, PgResult* out, std::string* err);
  bool exec(const std::string& sql, std::string* err);  // constant SQL, no parameters
  // COPY ... FROM STDIN: begin, send rows (any number of pieces), end. End
  // with `abort_why` to abandon the copy (the server then fails it).
  bool copy_begin(const std::string& sql, std::string* err);
  bool copy_send(const std::string& data, std::string* err);
  bool copy_end(const char* abort_why, std::string* err);

 private:
  PgConn(PGconn* c, std::string secret) : c_(c), secret_(std::move(secret)) {}
  std::string error(const char* what, const PGresult* r) const;
  PGconn* c_;
  std::string secret_;  // the password, to scrub from server and libpq messages
};

// Creates the schema or brings it to kFleetSchemaVersion, in one transaction
// under an advisory lock so loaders started together do not race.
bool fleet_migrate(PgConn& pg, std::string* err);
// False with *err when there is no fleet schema yet, or a newer one.
bool fleet_schema_ready(PgConn& pg, std::string* err);

// Loads one export in one transaction: all its lines or none. `name` is how
// errors call the input ("FILE:LINE: ..."). *lines gets the lines loaded.
bool fleet_load(PgConn& pg, std::istream& in, const std::string& name, size_t* lines, std::string* err);

bool fleet_recommend(PgConn& pg, const std::optional<std::string>& path, const std::optional<std::string>& sha256,
                     std::vector<FleetBinary>* out, std::string* err);
bool fleet_outliers(PgConn& pg, std::vector<FleetOutlier>* out, std::string* err);

}  // namespace capaudit
