// The store the unit tests open in a fresh directory, and what the check-key
// and migration tests put in it first.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <string>
#include <vector>

#include "store.h"
#include "test_util.h"

namespace capaudit::test {

// The binary the store tests count checks of.
inline const BinaryKey kStoredBinary{64769, 42, "/usr/bin/x", ""};
inline constexpr int64_t kStoredAt = 100;

// t.db in a fresh directory.
struct FreshStore {
  TempDir dir;
  std::unique_ptr<Store> store;

  // Call as ASSERT_NO_FATAL_FAILURE(open_store()).
  void open_store() {
    std::string err;
    store = Store::open(dir.file("t.db"), &err);
    ASSERT_TRUE(store) << err;
  }
};

// A fresh store in a transaction left open, holding kStoredBinary: each test
// adds its checks to `binary` and commits.
struct StoreWithBinary : FreshStore {
  int64_t binary = 0;

  // Call as ASSERT_NO_FATAL_FAILURE(begin_with_binary()).
  void begin_with_binary() {
    ASSERT_NO_FATAL_FAILURE(open_store());
    std::string err;
    ASSERT_TRUE(store->begin(&err)) << err;
    binary = store->upsert_binary(kStoredBinary, false, kStoredAt);
  }
};

// A database file at `path` as a migration starts from: kStoredBinary with
// one check of `f`, `count` times, and its origin (a stack of `frames`
// ending in cap_capable, `samples` samples). Call as
// ASSERT_NO_FATAL_FAILURE(store_check_with_origin(...)).
struct StoredCheck {
  int64_t binary = 0;
  int64_t check = 0;
};
inline void store_check_with_origin(const std::string& path, const CheckFields& f, uint64_t count,
                                    const std::string& origin, uint64_t samples, StoredCheck* out) {
  std::string err;
  auto s = Store::open(path, &err);
  ASSERT_TRUE(s) << err;
  ASSERT_TRUE(s->begin(&err)) << err;
  out->binary = s->upsert_binary(kStoredBinary, false, kStoredAt);
  out->check = s->add_check(out->binary, f, count, kStoredAt);
  int64_t stack = s->put_stack({"cap_capable+0x1", origin + "+0x2"}, origin);
  ASSERT_TRUE(s->add_origin(out->check, stack, samples));
  ASSERT_TRUE(s->commit(&err)) << err;
}

// Runs `sql` on the database file at `path` directly, as an older release
// left it or as a damaged one looks. Call as ASSERT_NO_FATAL_FAILURE(run_sql(...)).
inline void run_sql(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* msg = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &msg);
  std::string why = msg ? msg : "";
  sqlite3_free(msg);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << why;
}

}  // namespace capaudit::test
