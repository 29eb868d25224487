#include "kernel_features.h"

#include "owners.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

namespace capaudit {

namespace {

bool path_exists(const char* p) { return access(p, F_OK) == 0; }

// Strips typedefs and modifiers, as a parameter's "int" may be spelt through any.
const btf_type* resolve(const btf* b, uint32_t id) {
  const btf_type* t = btf__type_by_id(b, id);
  while (t && (btf_is_typedef(t) || btf_is_mod(t))) t = btf__type_by_id(b, t->type);
  return t;
}

size_t index_of(AttachMethod m) { return static_cast<size_t>(m) & 3; }

}  // namespace

KernelFeatures& KernelFeatures::get() {
  static KernelFeatures f;
  return f;
}

KernelFeatures::KernelFeatures() { reload_environment(); }

void KernelFeatures::reload_environment() {
  std::lock_guard lk(mu_);
  for (auto& d : disabled_by_env_) d = false;
  const char* env = std::getenv("CAPAUDIT_DISABLE_METHODS");
  if (!env) return;
  std::string_view rest(env);
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view name = rest.substr(0, comma);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (auto m = parse_method(name))
      disabled_by_env_[index_of(*m)] = true;
    else if (!name.empty())
      spdlog::warn("CAPAUDIT_DISABLE_METHODS: unknown method '{}' ignored", name);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
}

void KernelFeatures::disable_method(AttachMethod m, bool off) {
  std::lock_guard lk(mu_);
  disabled_[index_of(m)] = off;
}

std::optional<std::string> KernelFeatures::disabled_reason(AttachMethod m) {
  std::lock_guard lk(mu_);
  if (disabled_by_env_[index_of(m)]) return "disabled by CAPAUDIT_DISABLE_METHODS";
  if (disabled_[index_of(m)]) return "disabled for this process (KernelFeatures::disable_method)";
  return std::nullopt;
}

void KernelFeatures::probe_btf_locked() {
  if (btf_probed_) return;
  btf_probed_ = true;
  BtfPtr b(btf__load_vmlinux_btf());
  if (!b) {
    spdlog::debug("features: no vmlinux BTF: {}", std::strerror(errno));
    return;
  }
  vmlinux_btf_ = true;
  cap_capable_tp_ = btf__find_by_name_kind(b.get(), "btf_trace_cap_capable", BTF_KIND_TYPEDEF) > 0;
  sched_exec_tp_ =
      btf__find_by_name_kind(b.get(), "btf_trace_sched_process_exec", BTF_KIND_TYPEDEF) > 0;

  int fid = btf__find_by_name_kind(b.get(), "cap_capable", BTF_KIND_FUNC);
  cap_capable_func_ = fid > 0;
  if (!cap_capable_func_) return;
  const btf_type* proto = btf__type_by_id(b.get(), btf__type_by_id(b.get(), fid)->type);
  if (!proto || !btf_is_func_proto(proto) || btf_vlen(proto) < 4) return;
  const btf_param* p4 = btf_params(proto) + 3;
  std::string_view name = btf__name_by_offset(b.get(), p4->name_off);
  if (name == "audit") {
    old_audit_ = true;
  } else if (name != "opts") {
    // Unknown spelling: the old argument was a signed int, opts unsigned.
    const btf_type* t = resolve(b.get(), p4->type);
    old_audit_ = t && btf_is_int(t) && (btf_int_encoding(t) & BTF_INT_SIGNED);
  }
  spdlog::debug("features: cap_capable 4th parameter '{}' -> {}", name,
                old_audit_ ? "int audit (pre-5.1)" : "unsigned int opts");
}

bool KernelFeatures::has_vmlinux_btf() {
  std::lock_guard lk(mu_);
  probe_btf_locked();
  return vmlinux_btf_;
}

bool KernelFeatures::has_cap_capable_func() {
  std::lock_guard lk(mu_);
  probe_btf_locked();
  return cap_capable_func_;
}

bool KernelFeatures::has_cap_capable_tracepoint() {
  std::lock_guard lk(mu_);
  probe_btf_locked();
  return cap_capable_tp_;
}

bool KernelFeatures::has_sched_exec_tracepoint() {
  std::lock_guard lk(mu_);
  probe_btf_locked();
  return sched_exec_tp_;
}

bool KernelFeatures::cap_capable_old_audit() {
  std::lock_guard lk(mu_);
  probe_btf_locked();
  return old_audit_;
}

bool KernelFeatures::has_btf_func(const char* name) {
  std::lock_guard lk(mu_);
  if (auto it = btf_funcs_.find(name); it != btf_funcs_.end()) return it->second;
  BtfPtr b(btf__load_vmlinux_btf());
  const bool found = b && btf__find_by_name_kind(b.get(), name, BTF_KIND_FUNC) > 0;
  btf_funcs_.emplace(name, found);
  return found;
}

bool KernelFeatures::has_kprobes() {
  std::lock_guard lk(mu_);
  if (!kprobes_)
    kprobes_ = path_exists("/sys/bus/event_source/devices/kprobe/type") ||
               path_exists("/sys/kernel/tracing/kprobe_events") ||
               path_exists("/sys/kernel/debug/tracing/kprobe_events");
  return *kprobes_;
}

std::optional<std::string> KernelFeatures::unsupported_reason(AttachMethod m) {
  switch (m) {
    case AttachMethod::Fexit:
      if (!has_vmlinux_btf()) return "no kernel BTF (/sys/kernel/btf/vmlinux): fexit needs it";
      if (!has_cap_capable_func()) return "cap_capable is not a function in kernel BTF";
      return std::nullopt;
    case AttachMethod::Kprobe:
      if (!has_kprobes())
        return "no kprobe PMU (/sys/bus/event_source/devices/kprobe) nor kprobe_events "
               "(CONFIG_KPROBES off?)";
      return std::nullopt;
    case AttachMethod::Tracepoint:
      if (!has_vmlinux_btf()) return "no kernel BTF (/sys/kernel/btf/vmlinux): tp_btf needs it";
      if (!has_cap_capable_tracepoint())
        return "kernel BTF has no btf_trace_cap_capable (tracepoint needs Linux 6.14+)";
      return std::nullopt;
  }
  return "unknown method";
}

}  // namespace capaudit
