// Kernel stack symbolisation from /proc/kallsyms, and the stack "origin":
// the first frame that is not part of the capability-checking machinery.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace capaudit {

class Kallsyms {
 public:
  // Parses a kallsyms-format file. Returns nullopt (and sets *err naming the
  // file) when it cannot be read or holds no usable (non-zero) addresses,
  // e.g. kptr_restrict hiding them from this process.
  static std::optional<Kallsyms> load(const std::string& path = "/proc/kallsyms",
                                      std::string* err = nullptr);
  static Kallsyms from_text(std::string_view text);  // tests

  // "func+0x1f" (module symbols: "func+0x1f [mod]"); "0x..." when unknown.
  std::string symbolize(uint64_t addr) const;
  // Just the function name, without compiler clone suffixes
  // ("do_execveat_common" for do_execveat_common.isra.0); empty when unknown.
  std::string function(uint64_t addr) const;
  size_t size() const { return syms_.size(); }

 private:
  // 16 bytes a symbol, names in one arena: a kernel has 120k+ text
  // symbols, and as strings they made up half of capauditd's memory.
  struct Sym {
    uint64_t addr;
    uint32_t name_off;  // into names_
    uint16_t name_len;
    uint16_t module;    // index into modules_; 0: the kernel image
  };
  class Builder;
  // Nearest symbol at or below addr; nullptr beyond a region's last symbol
  // by more than any function could span.
  const Sym* find(uint64_t addr, uint64_t* offset) const;
  std::string_view name(const Sym& s) const { return {names_.data() + s.name_off, s.name_len}; }
  std::vector<Sym> syms_;             // sorted by addr; text symbols only
  std::string names_;
  std::vector<std::string> modules_;  // [0] is "" (the kernel image)
};

// "do_execveat_common.isra.0" -> "do_execveat_common": the clone suffixes
// the compiler appends (.isra.N, .constprop.N, .part.N, .cold) dropped.
std::string_view bare_function_name(std::string_view symbol);

// Function name from a symbolised frame: "ns_capable+0x12 [mod]" -> "ns_capable";
// clone suffixes are dropped as by bare_function_name.
std::string frame_function(std::string_view frame);

// True for frames of the check itself (cap_capable, security_capable,
// ns_capable*, capable, has_*capability*, file_ns_capable,
// capable_wrt_inode_uidgid, ...) and of the tracing glue (bpf_trace_run*,
// __bpf_trace_*, __traceiter_*, bpf trampolines, kprobe/ftrace handlers).
bool is_check_machinery(std::string_view function);

// The origin of a stack: the first frame (innermost first) whose function is
// not check machinery; empty when every frame is.
std::string stack_origin(const std::vector<std::string>& frames);

}  // namespace capaudit
