// (Not named features.h: bpf/ is a public include directory, and that name
// would shadow glibc's <features.h> in every translation unit.)
//
// Kernel feature probing for the collector, in one place and cached: what the
// kernel's BTF and sysfs say, asked once per process.
//
// Answers here only let the collector skip a method cheaply with a clear
// reason; loading and attaching remain the real test (a kernel can list a
// function in BTF and still refuse fexit on it, as lockdown does).
//
// Tests can force methods off, as if the kernel lacked them, with the
// environment variable
//
//   CAPAUDIT_DISABLE_METHODS=fexit,kprobe     (names as in method_name())
//
// read when the features are first asked for (reload_environment() re-reads
// it), or with disable_method().
#pragma once

#include "collector.h"

#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace capaudit {

class KernelFeatures {
 public:
  // The process-wide cache.
  static KernelFeatures& get();

  bool has_vmlinux_btf();
  // cap_capable is a FUNC in vmlinux BTF (an fexit target).
  bool has_cap_capable_func();
  // btf_trace_cap_capable: the capability:cap_capable tracepoint (6.14+).
  bool has_cap_capable_tracepoint();
  // btf_trace_sched_process_exec: tp_btf exec events.
  bool has_sched_exec_tracepoint();
  // cap_capable's 4th parameter is the pre-5.1 `int audit` rather than
  // `unsigned int opts`. False when BTF does not say (5.1+ is the norm).
  bool cap_capable_old_audit();
  // A kprobe PMU (/sys/bus/event_source/devices/kprobe) or tracefs
  // kprobe_events, either of which libbpf can attach through.
  bool has_kprobes();
  // Whether `name` is a FUNC in kernel BTF (an fexit target).
  bool has_btf_func(const char* name);

  // Why a method cannot work here, known without trying; nullopt if it may.
  std::optional<std::string> unsupported_reason(AttachMethod m);
  // Non-empty when disabled (environment or disable_method()): the reason.
  std::optional<std::string> disabled_reason(AttachMethod m);

  void disable_method(AttachMethod m, bool off = true);
  void reload_environment();

 private:
  KernelFeatures();
  void probe_btf_locked();

  std::mutex mu_;
  bool btf_probed_ = false;
  bool vmlinux_btf_ = false;
  bool cap_capable_func_ = false;
  bool cap_capable_tp_ = false;
  bool sched_exec_tp_ = false;
  bool old_audit_ = false;
  std::optional<bool> kprobes_;
  std::map<std::string, bool, std::less<>> btf_funcs_;
  bool disabled_[4] = {};  // indexed by AttachMethod value
  bool disabled_by_env_[4] = {};
};

}  // namespace capaudit
