#include "store_query.h"

#include <algorithm>

namespace capaudit {

Query::Query(Store& store, std::string_view sql, const char* what) : store_(store), what_(what) {
  st_ = store_.prepare(sql);
  if (!st_) {
    failed_ = true;
    store_.read_failed_ = true;
    return;
  }
  store_.start_statement();
}

Query::~Query() {
  if (!st_) return;
  sqlite3_reset(st_);
  sqlite3_clear_bindings(st_);
  store_.end_statement();
}

Query& Query::bind(int i, int64_t v) {
  if (st_) sqlite3_bind_int64(st_, i, v);
  return *this;
}

Query& Query::bind(int i, const std::string& v) {
  if (st_) sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}

Query& Query::bind(int i, const std::optional<std::string>& v) {
  if (!v) {
    if (st_) sqlite3_bind_null(st_, i);
    return *this;
  }
  return bind(i, *v);
}

Query& Query::bind(int i, const std::optional<uint64_t>& v) {
  if (!v) {
    if (st_) sqlite3_bind_null(st_, i);
    return *this;
  }
  return bind(i, *v);
}

Query& Query::bind(int i, const std::optional<uint32_t>& v) {
  if (!v) {
    if (st_) sqlite3_bind_null(st_, i);
    return *this;
  }
  return bind(i, *v);
}

Query& Query::bind_blob(int i, std::string_view v) {
  if (st_) sqlite3_bind_blob(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}

bool Query::next() {
  if (!st_ || failed_) return false;
  int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  failed_ = true;
  store_.record_step_error(what_, rc);
  return false;
}

bool Query::run() {
  if (!st_ || failed_) return false;
  int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW || rc == SQLITE_DONE) return true;
  failed_ = true;
  store_.record_step_error(what_, rc);
  return false;
}

bool Query::in_key_order(std::initializer_list<int64_t> key) {
  const size_t n = std::min(key.size(), kMaxKey);
  if (last_key_size_ &&
      !std::lexicographical_compare(last_key_.begin(), last_key_.begin() + last_key_size_, key.begin(),
                                    key.begin() + n)) {
    failed_ = true;
    store_.mark_damaged(std::string(what_) + ": rows out of key order (key " + std::to_string(*key.begin()) +
                        " after " + std::to_string(last_key_[0]) + ")");
    return false;
  }
  std::copy_n(key.begin(), n, last_key_.begin());
  last_key_size_ = n;
  return true;
}

std::string Query::text(int col) const {
  auto* p = sqlite3_column_text(st_, col);
  return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
}

std::string Query::blob(int col) const {
  const void* p = sqlite3_column_blob(st_, col);
  int n = sqlite3_column_bytes(st_, col);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

std::optional<std::string> Query::opt_text(int col) const {
  if (is_null(col)) return std::nullopt;
  return text(col);
}

std::optional<uint32_t> Query::opt_u32(int col) const {
  if (is_null(col)) return std::nullopt;
  return u32(col);
}

std::optional<uint64_t> Query::opt_u64(int col) const {
  if (is_null(col)) return std::nullopt;
  return u64(col);
}

}  // namespace capaudit
