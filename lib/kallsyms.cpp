#include "kallsyms.h"

#include "fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace capaudit {
namespace {

// The last symbol of a region (the kernel image, or one module) has no
// successor to bound it. Kernel functions are far smaller than this, so an
// address further away lies outside any function we know of (module data,
// an unlisted BPF image, vmalloc) and naming it "sym+0x3fe000" would mislead.
constexpr uint64_t kMaxTailOffset = 64 * 1024;

// Text symbols only: stack frames are return addresses in code, and keeping
// data symbols (present with CONFIG_KALLSYMS_ALL) would just be noise.
bool is_text_type(char type) {
  return type == 't' || type == 'T' || type == 'w' || type == 'W';
}

bool is_blank(char c) { return c == ' ' || c == '\t'; }

// Hand-rolled rather than find_first_of: a 120k-line file makes the per-call
// overhead of the generic searches the dominant cost of loading.
std::string_view next_field(const char*& p, const char* end) {
  while (p < end && is_blank(*p)) ++p;
  const char* start = p;
  while (p < end && !is_blank(*p)) ++p;
  return {start, static_cast<size_t>(p - start)};
}

std::string hex_addr(uint64_t addr) {
  std::array<char, 24> buf{};
  buf[0] = '0';
  buf[1] = 'x';
  auto res = std::to_chars(buf.data() + 2, buf.data() + buf.size(), addr, 16);
  return std::string(buf.data(), res.ptr);
}

bool starts_with_hex16(std::string_view s) {
  if (s.size() < 16) return false;
  return std::all_of(s.begin(), s.begin() + 16, [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

}  // namespace

// Parses lines into a Kallsyms, a chunk at a time, so the multi-megabyte
// file never has to be in memory whole.
class Kallsyms::Builder {
 public:
  // /proc/kallsyms: room reserved for more symbols than a kernel has, so
  // the tables never grow by copying (a copy is the old and the new block
  // resident at once: the daemon's peak RSS). Pages never written are
  // never resident, so the room costs address space only.
  void reserve_for_proc() {
    k_.syms_.reserve(size_t{1} << 19);
    k_.names_.reserve(size_t{24} << 20);
  }
  // Every complete line of text; returns how much of it was consumed.
  size_t feed(std::string_view text) {
    const char* p = text.data();
    const char* const text_end = p + text.size();
    while (p < text_end) {
      const char* eol = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(text_end - p)));
      if (!eol) break;
      line(p, eol);
      p = eol + 1;
    }
    return static_cast<size_t>(p - text.data());
  }
  // The last line when the text does not end with a newline.
  void finish(std::string_view rest) {
    if (!rest.empty()) line(rest.data(), rest.data() + rest.size());
  }
  Kallsyms take() {
    // The kernel lists in address order, so the sort is usually skipped; it
    // is stable so that among aliases at one address the first listed wins.
    auto by_addr = [](const Sym& a, const Sym& b) { return a.addr < b.addr; };
    if (!std::is_sorted(k_.syms_.begin(), k_.syms_.end(), by_addr))
      std::stable_sort(k_.syms_.begin(), k_.syms_.end(), by_addr);
    // No shrink_to_fit: a copy, and the room left over is not resident.
    return std::move(k_);
  }

 private:
  void line(const char* p, const char* eol) {
    std::string_view addr_s = next_field(p, eol);
    std::string_view type_s = next_field(p, eol);
    std::string_view name = next_field(p, eol);
    std::string_view module = next_field(p, eol);
    if (addr_s.empty() || type_s.size() != 1 || name.empty()) return;
    if (!is_text_type(type_s[0])) return;
    uint64_t addr = 0;
    auto res = std::from_chars(addr_s.data(), addr_s.data() + addr_s.size(), addr, 16);
    if (res.ec != std::errc() || res.ptr != addr_s.data() + addr_s.size()) return;
    // kptr_restrict shows every address as zero: nothing can be located.
    if (addr == 0) return;
    if (module.size() >= 2 && module.front() == '[' && module.back() == ']') {
      module = module.substr(1, module.size() - 2);
    } else {
      module = {};
    }
    if (name.size() > UINT16_MAX || k_.names_.size() + name.size() > UINT32_MAX) return;
    Sym sym{addr, static_cast<uint32_t>(k_.names_.size()), static_cast<uint16_t>(name.size()), module_index(module)};
    k_.names_.append(name);
    k_.syms_.push_back(sym);
  }
  uint16_t module_index(std::string_view module) {
    // Modules are listed together: the last one asked is nearly always it.
    if (k_.modules_[last_module_] == module) return last_module_;
    for (size_t i = 0; i < k_.modules_.size(); i++)
      if (k_.modules_[i] == module) return last_module_ = static_cast<uint16_t>(i);
    if (k_.modules_.size() > UINT16_MAX) return 0;
    k_.modules_.emplace_back(module);
    return last_module_ = static_cast<uint16_t>(k_.modules_.size() - 1);
  }

  Kallsyms k_ = [] {
    Kallsyms k;
    k.modules_.emplace_back();
    return k;
  }();
  uint16_t last_module_ = 0;
};

Kallsyms Kallsyms::from_text(std::string_view text) {
  Builder b;
  size_t used = b.feed(text);
  b.finish(text.substr(used));
  return b.take();
}

std::optional<Kallsyms> Kallsyms::load(const std::string& path, std::string* err) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (err) *err = path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  // /proc files report size 0: read until EOF, a chunk at a time.
  Builder b;
  b.reserve_for_proc();
  std::string buf(256 * 1024, '\0');
  size_t have = 0;
  for (;;) {
    if (have == buf.size()) buf.resize(buf.size() * 2);  // a line longer than the buffer
    ssize_t n = ::read(fd.get(), buf.data() + have, buf.size() - have);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (err) *err = path + ": " + std::strerror(errno);
      return std::nullopt;
    }
    if (n == 0) break;
    have += static_cast<size_t>(n);
    size_t used = b.feed(std::string_view(buf.data(), have));
    std::memmove(buf.data(), buf.data() + used, have - used);
    have -= used;
  }
  fd.reset();
  b.finish(std::string_view(buf.data(), have));
  Kallsyms k = b.take();
  if (k.syms_.empty()) {
    if (err) {
      *err = path + ": no symbol with a non-zero address (kptr_restrict hides them "
                    "from this process, or the file is not in kallsyms format)";
    }
    return std::nullopt;
  }
  return k;
}

const Kallsyms::Sym* Kallsyms::find(uint64_t addr, uint64_t* offset) const {
  auto it = std::upper_bound(syms_.begin(), syms_.end(), addr,
                             [](uint64_t a, const Sym& s) { return a < s.addr; });
  if (it == syms_.begin()) return nullptr;
  auto next = it;
  --it;
  // Aliases share an address; report the first listed.
  while (it != syms_.begin() && std::prev(it)->addr == it->addr) --it;
  uint64_t off = addr - it->addr;
  bool region_tail = next == syms_.end() || next->module != it->module;
  if (region_tail && off > kMaxTailOffset) return nullptr;
  *offset = off;
  return &*it;
}

std::string Kallsyms::symbolize(uint64_t addr) const {
  uint64_t off = 0;
  const Sym* sym = find(addr, &off);
  if (!sym) return hex_addr(addr);
  std::string out(name(*sym));
  out += '+';
  out += hex_addr(off);
  if (sym->module != 0) {
    out += " [";
    out += modules_[sym->module];
    out += ']';
  }
  return out;
}

std::string Kallsyms::function(uint64_t addr) const {
  uint64_t off = 0;
  const Sym* sym = find(addr, &off);
  if (!sym) return {};
  return std::string(bare_function_name(name(*sym)));
}

std::string_view bare_function_name(std::string_view symbol) {
  // C identifiers never contain '.', so everything from the first one is a
  // compiler-made clone suffix (.isra.0, .constprop.0, .part.0, .cold, .llvm.N).
  return symbol.substr(0, symbol.find('.'));
}

std::string frame_function(std::string_view frame) {
  size_t start = frame.find_first_not_of(" \t");
  if (start == std::string_view::npos) return {};
  frame.remove_prefix(start);
  std::string_view name = frame.substr(0, frame.find_first_of("+ \t"));
  return std::string(bare_function_name(name));
}

bool is_check_machinery(std::string_view function) {
  function = bare_function_name(function);
  // The check itself. Deliberately absent: perfmon_capable, bpf_capable,
  // checkpoint_restore_ns_capable and bpf_token_capable, whose names tell the
  // profiler which narrow capability the caller accepts as an alternative.
  static constexpr std::string_view kCheck[] = {
      "cap_capable",
      "cap_capable_helper",
      "security_capable",
      "security_capable_noaudit",
      "ns_capable",
      "ns_capable_noaudit",
      "ns_capable_setid",
      "ns_capable_common",
      "capable",
      "file_ns_capable",
      "has_capability",
      "has_capability_noaudit",
      "has_ns_capability",
      "has_ns_capability_noaudit",
      "capable_wrt_inode_uidgid",
      "privileged_wrt_inode_uidgid",
      "sk_ns_capable",
      "sk_capable",
      "sk_net_capable",
      "netlink_ns_capable",
      "netlink_capable",
      "netlink_net_capable",
  };
  for (std::string_view name : kCheck) {
    if (function == name) return true;
  }
  // Tracing glue between the check and our program. Syscall entry points are
  // not listed: when nothing else precedes them they are the honest origin.
  static constexpr std::string_view kGluePrefixes[] = {
      "bpf_trace_run", "__bpf_trace_", "__traceiter_",  "bpf_trampoline_",
      "__bpf_prog_",   "kprobe_",      "ftrace_",       "perf_trace_",
      "trace_event_raw_event_",        "__probestub",   "bpf_get_stack",
      "__bpf_get_stack",
  };
  for (std::string_view prefix : kGluePrefixes) {
    if (function.starts_with(prefix)) return true;
  }
  // JIT-ed programs are "bpf_prog_<16 hex tag>[_name]"; a bare "bpf_prog_"
  // prefix would also swallow bpf_prog_load, a genuine origin.
  constexpr std::string_view kProg = "bpf_prog_";
  return function.starts_with(kProg) && starts_with_hex16(function.substr(kProg.size()));
}

std::string stack_origin(const std::vector<std::string>& frames) {
  for (const std::string& frame : frames) {
    std::string function = frame_function(frame);
    if (function.empty()) continue;
    if (!is_check_machinery(function)) return function;
  }
  return {};
}

}  // namespace capaudit
