// libFuzzer target: capaudit.json as an administrator (or an attacker who
// can write it) might hand-edit it. Whatever the bytes, parse_config must
// answer with a config or an error naming a line, never crash.
#include "cpu_budget.h"
#include "config.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  capaudit::fuzz::CpuBudget budget;
  std::string text(reinterpret_cast<const char*>(data), size);
  capaudit::ConfigResult r = capaudit::parse_config(text, "/etc/capaudit/capaudit.json");
  // Exactly one of the two, and an error always says where.
  if (r.config.has_value() == !r.error.empty()) abort();
  if (!r.config && r.error.find("/etc/capaudit/capaudit.json") == std::string::npos) abort();
  return 0;
}
