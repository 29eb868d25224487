// Seeds for the fuzzers: a small real database (512-byte pages, so that
// mutations reach its b-trees rather than spending themselves on padding).
// usage: make_seeds DIR   (writes DIR/store/seed.db)
#include "store.h"

#include <sqlite3.h>

#include <cstdio>
#include <filesystem>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  namespace fs = std::filesystem;
  fs::create_directories(fs::path(argv[1]) / "store");
  const std::string db = (fs::path(argv[1]) / "store" / "seed.db").string();
  fs::remove(db);
  sqlite3* h = nullptr;
  if (sqlite3_open(db.c_str(), &h) != SQLITE_OK ||
      sqlite3_exec(h, "PRAGMA page_size=512; VACUUM;", nullptr, nullptr, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "%s: %s\n", db.c_str(), sqlite3_errmsg(h));
    return 1;
  }
  sqlite3_close(h);
  std::string err;
  {
    auto s = capaudit::Store::open(db, &err);
    if (!s) {
      std::fprintf(stderr, "%s\n", err.c_str());
      return 1;
    }
    s->begin(&err);
    int64_t stack = s->put_stack({"cap_capable+0x9d", "ns_capable_common+0x2b", "inet_create+0x15d"}, "inet_create");
    int64_t stack2 = s->put_stack({"cap_capable+0x9d", "security_vm_enough_memory_mm+0x3c"},
                                  "security_vm_enough_memory_mm");
    for (int i = 0; i < 3; i++) {
      capaudit::BinaryKey key{0x801, 100u + i, "/usr/bin/tool" + std::to_string(i), ""};
      int64_t bin = s->upsert_binary(key, false, 1767225600);
      capaudit::CheckFields f;
      f.cap = 13;
      f.uid = 1000;
      f.euid = 1000;
      f.cap_effective = 1u << 13;
      int64_t check = s->add_check(bin, f, 5, 1767225600);
      s->add_origin(check, stack, 2);
      f.cap = 21;
      f.ret = -1;
      check = s->add_check(bin, f, 7, 1767225600);
      s->add_origin(check, stack2, 1);
    }
    s->add_stat("checks", 42);
    s->set_drain_state("c0123", 5);
    s->commit(&err);
  }
  // One file, no WAL beside it: what the fuzzer mutates is all there is.
  if (sqlite3_open(db.c_str(), &h) != SQLITE_OK ||
      sqlite3_exec(h, "PRAGMA journal_mode=DELETE; VACUUM;", nullptr, nullptr, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "%s: %s\n", db.c_str(), sqlite3_errmsg(h));
    return 1;
  }
  sqlite3_close(h);
  return 0;
}
