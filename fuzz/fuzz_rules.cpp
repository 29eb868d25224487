// libFuzzer target: a rules table (profiler/rules.json's format), parsed and
// then used: its fnmatch patterns run against real origins and frames.
#include "cpu_budget.h"
#include "rules.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  capaudit::fuzz::CpuBudget budget;
  std::string text(reinterpret_cast<const char*>(data), size);
  std::string err;
  auto rules = capaudit::Rules::parse(text, "fuzz.json", &err);
  if (!rules) {
    if (err.empty()) abort();  // a refusal always says why
    return 0;
  }
  static const std::vector<std::string> frames = {
      "bpf_trace_run5+0x85", "cap_capable+0x9d", "security_capable+0x3d", "ns_capable_common+0x2b",
      "capable_wrt_inode_uidgid+0x4c", "generic_permission+0x1d5", "inode_permission+0xd6",
      "may_open+0x71 [overlay]", "do_syscall_64+0x82"};
  for (int cap : {0, 1, 2, 12, 21, 40, 63})
    for (const char* origin : {"generic_permission", "", "cap_vm_enough_memory"}) {
      rules->match(cap, origin, frames, cap % 2 == 0);
      rules->match_all(cap, origin, frames);
    }
  return 0;
}
