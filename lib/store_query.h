// One prepared statement of the store, from bind to step to reading columns,
// with every SQLite error recorded in the Store in one place. Internal to
// lib/store*.cpp.
#pragma once

#include "store.h"

#include <array>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace capaudit {

class Query {
 public:
  // `what` names the statement in error messages ("read checks").
  Query(Store& store, std::string_view sql, const char* what);
  ~Query();
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  // False when the statement could not be prepared (the Store has the error).
  bool ok() const { return st_ != nullptr; }

  Query& bind(int i, int64_t v);
  Query& bind(int i, uint64_t v) { return bind(i, static_cast<int64_t>(v)); }  // bit for bit
  Query& bind(int i, uint32_t v) { return bind(i, static_cast<int64_t>(v)); }
  Query& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Query& bind(int i, bool v) { return bind(i, static_cast<int64_t>(v ? 1 : 0)); }
  Query& bind(int i, const std::string& v);
  Query& bind(int i, const std::optional<std::string>& v);
  Query& bind(int i, const std::optional<uint32_t>& v);
  Query& bind(int i, const std::optional<uint64_t>& v);
  Query& bind_blob(int i, std::string_view v);

  // The next row: true while there is one; false at the end and on error
  // (then failed() is true and the Store holds the error).
  bool next();
  // Runs a statement that returns no row, or the one row of RETURNING.
  bool run();
  // For scans in key order: false (and the store marked damaged) when a
  // key does not come after the one before. A b-tree that loops never
  // ends; it cannot go on without repeating a key.
  bool in_key_order(std::initializer_list<int64_t> key);
  bool in_key_order(int64_t key) { return in_key_order({key}); }
  bool failed() const { return failed_; }

  int64_t i64(int col) const { return sqlite3_column_int64(st_, col); }
  uint64_t u64(int col) const { return static_cast<uint64_t>(i64(col)); }
  uint32_t u32(int col) const { return static_cast<uint32_t>(i64(col)); }
  int i32(int col) const { return sqlite3_column_int(st_, col); }
  std::string text(int col) const;
  std::string blob(int col) const;
  bool is_null(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }
  std::optional<std::string> opt_text(int col) const;
  std::optional<uint32_t> opt_u32(int col) const;
  std::optional<uint64_t> opt_u64(int col) const;

 private:
  Store& store_;
  sqlite3_stmt* st_ = nullptr;
  const char* what_;
  bool failed_ = false;
  static constexpr size_t kMaxKey = 16;
  std::array<int64_t, kMaxKey> last_key_{};
  size_t last_key_size_ = 0;  // 0 before the first row
};

}  // namespace capaudit
