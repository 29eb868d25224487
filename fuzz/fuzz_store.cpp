// libFuzzer target: a database file as capaudit report would meet it, damaged
// or hostile. The bytes become a file; the store opens it read-only and the
// whole report path runs over what it reads: SQLite must refuse what it
// cannot read, and nothing stored (paths, frames JSON, counts) may crash the
// engine or the JSON writer.
#include "cpu_budget.h"
#include "engine.h"
#include "render.h"
#include "store.h"

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

namespace {

std::string db_path() {
  const char* dir = getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/capaudit-fuzz-" + std::to_string(getpid()) + ".db";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  capaudit::fuzz::CpuBudget budget;
  static const std::string path = db_path();
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) unlink((path + suffix).c_str());
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) abort();
  if (size && std::fwrite(data, 1, size, f) != size) abort();
  std::fclose(f);

  capaudit::Store::identify(path);
  std::string err;
  capaudit::Store::OpenFailure why;
  auto store = capaudit::Store::open(path, &err, /*readonly=*/true, &why);
  if (!store) {
    if (err.empty() || why == capaudit::Store::OpenFailure::None) abort();
    return 0;
  }
  std::string problems;
  store->check_integrity(&problems);
  auto observations = capaudit::load_observations(*store, std::nullopt, &err);
  // A damaged file is refused whole, with a message naming it.
  if (!observations) {
    if (err.find(path) == std::string::npos) abort();
    return 0;
  }
  for (const auto& b : store->binaries())
    for (const auto& c : store->checks(b.id)) store->origins(c.id);
  store->stats();
  store->meta("attach_method");
  store->load_drain_state();
  capaudit::Analysis analysis = capaudit::analyze(*observations, capaudit::Rules::builtin());
  std::ostringstream out;
  capaudit::write_json(out, analysis);
  return 0;
}
