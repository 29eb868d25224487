// The BPF object's programs and the one step between open and load where
// settings reach it (as libbpf-tools' capable.c does between
// capable_bpf__open() and capable_bpf__load()).
#pragma once

#include "capaudit.skel.h"
#include "collector.h"
#include "owners.h"

#include <memory>
#include <string>
#include <vector>

namespace capaudit {

struct PinPlan;

struct SkelDeleter {
  void operator()(capaudit_bpf* s) const { capaudit_bpf__destroy(s); }
};
using SkelPtr = std::unique_ptr<capaudit_bpf, SkelDeleter>;

// The programs one load asks for; every other program's autoload is off.
struct ProgramSelection {
  AttachMethod method;
  bool old_audit;       // cap_capable's 4th argument is the pre-5.1 `int audit`
  bool task_programs;   // tp_btf exec (and, following tracked tasks, fork/exit)
  // fexit programs on the functions that decide with cap_capable() inlined
  // (inline_site_functions() present in kernel BTF); fexit and kprobe only.
  std::vector<std::string> inline_sites;
  // fentry/fexit on security_capable, the final verdict after every LSM
  // (final_verdict.bpf.h); fexit only, when kernel BTF has the function.
  bool final_verdict = false;
  bool cgroup_names = false;  // tp_btf/cgroup_mkdir (the daemon, issue 12)
  // tp_btf/sys_enter for self-inspection where the syscall tracepoints
  // cannot attach (no tracefs): following tracked tasks only, since it runs
  // on every syscall (capaudit_inspect.bpf.h).
  bool inspect_fallback = false;
  // fentry on the syscall functions (kInspectSyscallFunctions) for
  // self-inspection instead of the syscall tracepoints, which slow every
  // syscall of the machine; fexit only, when kernel BTF has all three. The
  // tracepoints stay loaded for when these do not attach.
  bool inspect_fentry = false;
};

// The functions self-inspection's fentry programs attach to: the syscall
// wrappers, which take the user's pt_regs (capaudit_inspect.bpf.h).
#if defined(__x86_64__)
#define CAPAUDIT_SYSCALL_PREFIX "__x64_sys_"
#elif defined(__aarch64__)
#define CAPAUDIT_SYSCALL_PREFIX "__arm64_sys_"
#endif
inline constexpr const char* kInspectSyscallFunctions[] = {
    CAPAUDIT_SYSCALL_PREFIX "capget", CAPAUDIT_SYSCALL_PREFIX "capset", CAPAUDIT_SYSCALL_PREFIX "prctl"};

// Functions that make a capability decision with cap_capable() inlined in
// the kernels capaudit supports, each covered by one fexit program.
inline constexpr const char* kInlineSiteFunctions[] = {"cap_mmap_addr", "cap_vm_enough_memory"};

// The programs of a selection's inline sites, in inline_sites order: for
// each, fentry (arms the guard against counting what cap_capable saw) and
// fexit (counts).
std::vector<bpf_program*> inline_site_programs(capaudit_bpf* s, const ProgramSelection& sel);

// The final-verdict programs, in attach (and link pin) order: fexit first,
// so no entry ever arms a slot that no exit reads.
std::vector<bpf_program*> final_verdict_programs(capaudit_bpf* s);

// The cap_capable programs of a method, in attach (and link pin) order.
std::vector<bpf_program*> method_programs(capaudit_bpf* s, AttachMethod m);
// The task programs a selection loads: exec, plus fork/exit in profile mode.
std::vector<bpf_program*> task_programs(capaudit_bpf* s, const CollectorOptions& o,
                                        const ProgramSelection& sel);
// The self-inspection programs (capget, prctl syscall tracepoints), loaded
// with the task programs: like exec events, a bonus the method does without.
std::vector<bpf_program*> inspect_programs(capaudit_bpf* s, const ProgramSelection& sel);
// The program that does their work without tracefs, when the selection loads it; else none.
std::vector<bpf_program*> inspect_fallback_programs(capaudit_bpf* s, const ProgramSelection& sel);
// The fentry programs that do it paid by those syscalls only, when the
// selection loads them (tried first); else none.
std::vector<bpf_program*> inspect_fentry_programs(capaudit_bpf* s, const ProgramSelection& sel);
// tp_btf/cgroup_mkdir when the selection names cgroups; else none.
std::vector<bpf_program*> cgroup_programs(capaudit_bpf* s, const ProgramSelection& sel);
// Their section names joined by '+', as the log names them ("kprobe/cap_capable+...").
std::string section_names(const std::vector<bpf_program*>& progs);

// Keys of unprivileged credentials a counts map of max_checks may hold (0: no reserve).
uint64_t nonroot_key_limit(bool reserve_for_root, uint32_t max_checks);

// Autoload, rodata the verifier prunes by, map sizes, and the pinned maps to
// reuse (pins may be null). Returns 0 or a negative errno.
int configure_before_load(capaudit_bpf* s, const CollectorOptions& o, const ProgramSelection& sel,
                          const PinPlan* pins);

}  // namespace capaudit
