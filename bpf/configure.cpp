#include "configure.h"

#include "pins.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string_view>

namespace capaudit {

namespace {

std::vector<bpf_program*> all_cap_programs(capaudit_bpf* s) {
  return {s->progs.ca_fexit_cap_capable, s->progs.ca_kprobe_cap_capable,
          s->progs.ca_kretprobe_cap_capable, s->progs.ca_tp_cap_capable};
}

uint32_t page_size() { return static_cast<uint32_t>(sysconf(_SC_PAGESIZE)); }

// fentry then fexit: the entry arms the guard the exit reads.
std::vector<bpf_program*> inline_site_pair(capaudit_bpf* s, std::string_view function) {
  if (function == "cap_mmap_addr")
    return {s->progs.ca_fentry_cap_mmap_addr, s->progs.ca_fexit_cap_mmap_addr};
  if (function == "cap_vm_enough_memory")
    return {s->progs.ca_fentry_cap_vm_enough_memory, s->progs.ca_fexit_cap_vm_enough_memory};
  return {};
}

// commoncap's dac_mmap_min_addr is the sysctl's value; read once at load (a
// later change of the sysctl is not seen until the next start).
uint64_t mmap_min_addr() {
  uint64_t v = 65536;
  if (FILE* f = std::fopen("/proc/sys/vm/mmap_min_addr", "re")) {
    unsigned long long x;
    if (std::fscanf(f, "%llu", &x) == 1) v = x;
    std::fclose(f);
  }
  return v;
}

}  // namespace

uint64_t nonroot_key_limit(bool reserve_for_root, uint32_t max_checks) {
  return reserve_for_root && max_checks >= 4 ? max_checks - max_checks / 4 : 0;
}

std::vector<bpf_program*> method_programs(capaudit_bpf* s, AttachMethod m) {
  switch (m) {
    case AttachMethod::Fexit:
      return {s->progs.ca_fexit_cap_capable};
    case AttachMethod::Kprobe:
      return {s->progs.ca_kprobe_cap_capable, s->progs.ca_kretprobe_cap_capable};
    case AttachMethod::Tracepoint:
      return {s->progs.ca_tp_cap_capable};
  }
  return {};
}

std::vector<bpf_program*> inline_site_programs(capaudit_bpf* s, const ProgramSelection& sel) {
  std::vector<bpf_program*> out;
  for (const auto& f : sel.inline_sites)
    for (bpf_program* p : inline_site_pair(s, f)) out.push_back(p);
  return out;
}

std::vector<bpf_program*> final_verdict_programs(capaudit_bpf* s) {
  return {s->progs.ca_fexit_security_capable, s->progs.ca_fentry_security_capable};
}

std::vector<bpf_program*> task_programs(capaudit_bpf* s, const CollectorOptions& o,
                                        const ProgramSelection& sel) {
  if (!sel.task_programs) return {};
  if (!o.follow_tracked) return {s->progs.ca_tp_exec};
  return {s->progs.ca_tp_exec, s->progs.ca_tp_fork, s->progs.ca_tp_exit};
}

std::vector<bpf_program*> inspect_programs(capaudit_bpf* s, const ProgramSelection& sel) {
  if (!sel.task_programs) return {};
  return {s->progs.ca_tp_capget, s->progs.ca_tp_capset, s->progs.ca_tp_prctl};
}

std::vector<bpf_program*> inspect_fallback_programs(capaudit_bpf* s, const ProgramSelection& sel) {
  if (!sel.task_programs || !sel.inspect_fallback) return {};
  return {s->progs.ca_btf_sys_enter};
}

std::vector<bpf_program*> inspect_fentry_programs(capaudit_bpf* s, const ProgramSelection& sel) {
  if (!sel.task_programs || !sel.inspect_fentry) return {};
  return {s->progs.ca_fentry_capget, s->progs.ca_fentry_capset, s->progs.ca_fentry_prctl};
}

std::vector<bpf_program*> cgroup_programs(capaudit_bpf* s, const ProgramSelection& sel) {
  if (!sel.cgroup_names) return {};
  return {s->progs.ca_tp_cgroup_mkdir};
}

std::string section_names(const std::vector<bpf_program*>& progs) {
  std::string out;
  for (bpf_program* p : progs) {
    if (!out.empty()) out += "+";
    out += bpf_program__section_name(p);
  }
  return out;
}

int configure_before_load(capaudit_bpf* s, const CollectorOptions& o, const ProgramSelection& sel,
                          const PinPlan* pins) {
  // Programs: the method's, and the task programs only when asked for; a
  // program not loaded cannot fail the load.
  const auto wanted_cap = method_programs(s, sel.method);
  for (bpf_program* p : all_cap_programs(s))
    bpf_program__set_autoload(p, std::find(wanted_cap.begin(), wanted_cap.end(), p) != wanted_cap.end());
  const auto wanted_sites = inline_site_programs(s, sel);
  for (const char* f : kInlineSiteFunctions)
    for (bpf_program* p : inline_site_pair(s, f))
      bpf_program__set_autoload(p, std::find(wanted_sites.begin(), wanted_sites.end(), p) !=
                                       wanted_sites.end());
  for (bpf_program* p : final_verdict_programs(s)) bpf_program__set_autoload(p, sel.final_verdict);
  const auto wanted_tasks = task_programs(s, o, sel);
  for (bpf_program* p : {s->progs.ca_tp_exec, s->progs.ca_tp_fork, s->progs.ca_tp_exit})
    bpf_program__set_autoload(p, std::find(wanted_tasks.begin(), wanted_tasks.end(), p) !=
                                     wanted_tasks.end());
  const auto wanted_inspect = inspect_programs(s, sel);
  for (bpf_program* p : {s->progs.ca_tp_capget, s->progs.ca_tp_capset, s->progs.ca_tp_prctl})
    bpf_program__set_autoload(p, !wanted_inspect.empty());
  bpf_program__set_autoload(s->progs.ca_btf_sys_enter, !inspect_fallback_programs(s, sel).empty());
  for (bpf_program* p : {s->progs.ca_fentry_capget, s->progs.ca_fentry_capset, s->progs.ca_fentry_prctl})
    bpf_program__set_autoload(p, !inspect_fentry_programs(s, sel).empty());

  bpf_program__set_autoload(s->progs.ca_tp_cgroup_mkdir, sel.cgroup_names);

  // Settings the verifier prunes dead branches by.
  s->rodata->old_audit_arg = sel.old_audit;
  s->rodata->follow_tracked = o.follow_tracked;
  s->rodata->only_tgid = o.only_tgid;
  s->rodata->stream_checks = o.stream_checks;
  s->rodata->stream_kernel_stacks = o.stream_kernel_stacks;
  s->rodata->stream_user_stacks = o.stream_user_stacks;
  s->rodata->stack_sample_period = o.stack_sample_period;
  s->rodata->guard_sites = !wanted_sites.empty();
  s->rodata->final_verdict = sel.final_verdict;
  if (!wanted_sites.empty()) s->rodata->mmap_min_addr = mmap_min_addr();
  const uint32_t period = o.stack_sample_period;
  s->rodata->stack_sample_mask = period && !(period & (period - 1)) ? period - 1 : 0;
  s->rodata->record_exe_names = !o.follow_tracked && !o.stream_checks;

  // Map sizes: what is not used costs a page (ring buffers) or one entry.
  int err = 0;
  auto set = [&err](bpf_map* m, uint32_t n) {
    if (!err) err = bpf_map__set_max_entries(m, n);
  };
  set(s->maps.counts, o.max_checks);
  set(s->maps.counts_b, o.max_checks);
  set(s->maps.coarse, o.max_coarse);
  set(s->maps.coarse_b, o.max_coarse);
  set(s->maps.exe_names, sel.task_programs && !o.follow_tracked && !o.stream_checks ? o.max_exe_names : 1);
  set(s->maps.origins, o.max_origins);
  set(s->maps.stacks, o.max_stacks);
  set(s->maps.exec_events, sel.task_programs ? 256 * 1024 : page_size());
  set(s->maps.check_events, o.stream_checks ? 4 * 1024 * 1024 : page_size());
  set(s->maps.cgroup_events, sel.cgroup_names ? 64 * 1024 : page_size());
  if (sel.method != AttachMethod::Kprobe) set(s->maps.kprobe_args, 1);
  if (err) return err;

  // Maps an earlier run pinned replace the object's own, sizes and all.
  if (pins && (err = reuse_pinned_maps(s, *pins))) return err;
  // Of the map in use, which may be a pinned one of another size.
  s->rodata->nonroot_key_limit = nonroot_key_limit(o.reserve_for_root, bpf_map__max_entries(s->maps.counts));
  return 0;
}

}  // namespace capaudit
