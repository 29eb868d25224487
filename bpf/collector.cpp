// The collector's lifecycle: choose the attach method this kernel accepts,
// best first (kMethodPreference), open, configure, load and attach it, then
// pin (pins.cpp) and read back (maps.cpp, ringbuf.cpp). The only code in
// capaudit that touches libbpf, with features.cpp and those files.
//
// Which program the kernel refused is known from what was loaded, never
// from libbpf's messages: the method is loaded with the task programs, and
// when that fails, alone; if it then loads, the task programs were refused.
#include "collector.h"

#include "collector_impl.h"
#include "configure.h"
#include "kernel_features.h"
#include "libbpf_log.h"
#include "pins.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <utility>

namespace capaudit {

std::string_view method_name(AttachMethod m) {
  switch (m) {
    case AttachMethod::Fexit:
      return "fexit";
    case AttachMethod::Kprobe:
      return "kprobe";
    case AttachMethod::Tracepoint:
      return "tracepoint";
  }
  return "unknown";
}

std::optional<AttachMethod> parse_method(std::string_view s) {
  for (AttachMethod m : kMethodPreference)
    if (s == method_name(m)) return m;
  return std::nullopt;
}

namespace {

// One open, configure and load of a selection. The skeleton is kept when
// only the load failed, so the caller can name the programs it asked for.
struct Load {
  SkelPtr skel;
  int load_err = 0;     // negative errno from the load; 0 when loaded
  std::string failure;  // opening or configuring failed: nothing was loaded
};

Load open_configure_load(const CollectorOptions& o, const ProgramSelection& sel,
                         const PinPlan* pins) {
  Load l;
  l.skel.reset(capaudit_bpf__open());
  if (!l.skel) {
    l.failure = "opening the BPF object failed: " + errno_text(errno);
    return l;
  }
  if (int err = configure_before_load(l.skel.get(), o, sel, pins)) {
    l.failure = "configuring the BPF object failed: " + errno_text(err);
    return l;
  }
  l.load_err = capaudit_bpf__load(l.skel.get());
  return l;
}

struct Loaded {
  SkelPtr skel;
  std::vector<LinkPtr> cap_links;
  std::vector<LinkPtr> task_links;
  std::vector<LinkPtr> site_links;
  std::vector<LinkPtr> final_links;
  std::vector<LinkPtr> inspect_links;
  std::vector<std::string> sites_loaded;  // inline sites whose programs loaded
  bool guard_sites = false;               // cap_capable's program marks the site guard
  bool final_loaded = false;              // loaded with the final-verdict programs
  std::vector<LinkPtr> cgroup_links;
  bool cgroup_names = false;              // tp_btf/cgroup_mkdir loaded
  bool inspect_fallback = false;          // tp_btf/sys_enter loaded (self-inspection without tracefs)
  bool inspect_fentry = false;            // fentry on the syscalls loaded (self-inspection, tried first)
  bool tasks_loaded = false;  // the task programs loaded (they may still fail to attach)
  bool exec_events = false;
  bool adopted = false;
  bool exec_adopted = false;
};

struct Attempt {
  std::unique_ptr<Loaded> loaded;
  std::string error;  // why the method was refused, naming its programs
};

// Loads the method, with the self-inspection fentry, final-verdict,
// inline-site and task programs when sel asks for them. inspect_failure,
// final_failure, site_failure and task_failure say why those were left out.
Attempt load_method(const CollectorOptions& o, ProgramSelection sel, const PinPlan* pins,
                    std::string* inspect_failure, std::string* final_failure, std::string* site_failure,
                    std::string* task_failure) {
  Load l = open_configure_load(o, sel, pins);
  if (l.failure.empty() && l.load_err && sel.inspect_fentry && sel.task_programs) {
    // First to go: without them the syscall tracepoints count the same, at
    // a cost to every syscall.
    *inspect_failure = fmt::format("{} failed to load: {}",
                                   section_names(inspect_fentry_programs(l.skel.get(), sel)),
                                   errno_text(l.load_err));
    sel.inspect_fentry = false;
    l = open_configure_load(o, sel, pins);
  }
  if (l.failure.empty() && l.load_err && sel.final_verdict) {
    // commoncap's answer is still counted without it.
    const std::string progs = section_names(final_verdict_programs(l.skel.get()));
    const int with_final_err = l.load_err;
    sel.final_verdict = false;
    l = open_configure_load(o, sel, pins);
    if (l.failure.empty() && !l.load_err)
      *final_failure = fmt::format("{} failed to load: {}", progs, errno_text(with_final_err));
  }
  if (l.failure.empty() && l.load_err && !sel.inline_sites.empty()) {
    // The inline sites complete the method; without them it still counts
    // every visible cap_capable check.
    const std::string sites = section_names(inline_site_programs(l.skel.get(), sel));
    const int with_sites_err = l.load_err;
    sel.inline_sites.clear();
    l = open_configure_load(o, sel, pins);
    if (l.failure.empty() && !l.load_err)
      *site_failure = fmt::format("{} failed to load: {}", sites, errno_text(with_sites_err));
  }
  if (l.failure.empty() && l.load_err && sel.cgroup_names) {
    // Naming cgroups as they are made is a bonus too: existing ones are
    // found on the cgroup2 mount.
    const int with_cgroups_err = l.load_err;
    sel.cgroup_names = false;
    l = open_configure_load(o, sel, pins);
    if (l.failure.empty() && !l.load_err)
      spdlog::warn("collector: tp_btf/cgroup_mkdir failed to load ({}): a cgroup gone before the next "
                   "drain is not named",
                   errno_text(with_cgroups_err));
  }
  if (l.failure.empty() && l.load_err && sel.inspect_fallback && sel.task_programs) {
    // Self-inspection without tracefs is a bonus of a bonus.
    const std::string progs = section_names(inspect_fallback_programs(l.skel.get(), sel));
    const int with_fallback_err = l.load_err;
    sel.inspect_fallback = false;
    l = open_configure_load(o, sel, pins);
    if (l.failure.empty() && !l.load_err)
      spdlog::info("collector: {} failed to load ({}): self-inspection is counted only where the syscall "
                   "tracepoints attach",
                   progs, errno_text(with_fallback_err));
  }
  if (l.failure.empty() && l.load_err && sel.task_programs) {
    // Exec events are a bonus: try the method alone.
    std::vector<bpf_program*> bonus = task_programs(l.skel.get(), o, sel);
    for (bpf_program* p : inspect_programs(l.skel.get(), sel)) bonus.push_back(p);
    const std::string tasks = section_names(bonus);
    const int with_tasks_err = l.load_err;
    sel.task_programs = false;
    l = open_configure_load(o, sel, pins);
    if (l.failure.empty() && !l.load_err)
      *task_failure = fmt::format("{} failed to load: {}", tasks, errno_text(with_tasks_err));
  }
  if (!l.failure.empty()) return {nullptr, l.failure};
  if (l.load_err)
    return {nullptr, fmt::format("{} failed to load: {}",
                                 section_names(method_programs(l.skel.get(), sel.method)),
                                 errno_text(l.load_err))};
  auto out = std::make_unique<Loaded>();
  out->skel = std::move(l.skel);
  out->tasks_loaded = sel.task_programs;
  out->sites_loaded = sel.inline_sites;
  out->guard_sites = !sel.inline_sites.empty();
  out->final_loaded = sel.final_verdict;
  out->cgroup_names = sel.cgroup_names;
  out->inspect_fallback = sel.inspect_fallback && sel.task_programs;
  out->inspect_fentry = sel.inspect_fentry && sel.task_programs;
  return {std::move(out), {}};
}

// Why self-inspection cannot be counted by fentry on the syscalls here,
// known without trying; nullopt if it may be. fentry needs trampolines,
// which the fexit method's load proves.
std::optional<std::string> inspect_fentry_unavailable(AttachMethod m) {
  if (m != AttachMethod::Fexit)
    return fmt::format("fentry on the syscalls is tried with the fexit method only, not {}", method_name(m));
  for (const char* fn : kInspectSyscallFunctions)
    if (!KernelFeatures::get().has_btf_func(fn)) return fmt::format("{} is not a function in kernel BTF", fn);
  return std::nullopt;
}

// Attaches all of progs or none; false, with failure set, when one failed.
bool attach_all(const std::vector<bpf_program*>& progs, std::vector<LinkPtr>* links, std::string* failure) {
  for (bpf_program* p : progs) {
    LinkPtr l(bpf_program__attach(p));
    if (!l) {
      *failure = fmt::format("{} failed to attach: {}", bpf_program__section_name(p), errno_text(errno));
      links->clear();
      return false;
    }
    links->push_back(std::move(l));
  }
  return true;
}

// Best first, one line saying which: fentry on the syscalls when loaded
// (only they pay); the syscall tracepoints (every syscall of the machine
// takes the slow path); else (no tracefs: `ip netns exec` remounts /sys)
// the tp_btf/sys_enter program when it was loaded: it needs no tracefs.
// fentry_failure: why the fentry programs were not loaded.
void attach_inspection(capaudit_bpf* s, const ProgramSelection& sel, std::string fentry_failure,
                       std::vector<LinkPtr>* links) {
  const auto tracepoints = inspect_programs(s, sel);
  if (tracepoints.empty()) return;  // nor anything else: loaded with the task programs
  std::string failure = std::move(fentry_failure);
  if (const auto fentry = inspect_fentry_programs(s, sel); !fentry.empty()) {
    if (attach_all(fentry, links, &failure)) {
      spdlog::info("collector: self-inspection counted by {} (only these syscalls pay)", section_names(fentry));
      return;
    }
  }
  std::string tp_failure;
  if (attach_all(tracepoints, links, &tp_failure)) {
    spdlog::info("collector: self-inspection counted by {}, which slow every syscall ({})",
                 section_names(tracepoints), failure);
    return;
  }
  failure += "; " + tp_failure;
  for (bpf_program* p : inspect_fallback_programs(s, sel)) {
    LinkPtr l(bpf_program__attach(p));
    if (l) {
      spdlog::info("collector: self-inspection counted by {} ({})", bpf_program__section_name(p), failure);
      links->push_back(std::move(l));
      return;
    }
    failure += fmt::format("; {} failed to attach: {}", bpf_program__section_name(p), errno_text(errno));
  }
  spdlog::warn("collector: self-inspection not counted ({})", failure);
}

Attempt try_method(const CollectorOptions& o, const ProgramSelection& sel, const PinPlan* pins) {
  QuietLibbpf quiet;
  std::string inspect_failure, final_failure, site_failure, task_failure;
  Attempt a = load_method(o, sel, pins, &inspect_failure, &final_failure, &site_failure, &task_failure);
  if (!a.loaded) return a;
  Loaded& out = *a.loaded;
  if (!sel.inspect_fentry) inspect_failure = inspect_fentry_unavailable(sel.method).value_or("not asked for");
  capaudit_bpf* s = out.skel.get();
  const bool tasks = out.tasks_loaded;
  if (!site_failure.empty())
    spdlog::warn("collector: not covered on this kernel: {} ({}); checks these functions make "
                 "with cap_capable inlined are not counted",
                 fmt::join(sel.inline_sites, ", "), site_failure);

  if (!final_failure.empty())
    spdlog::warn("collector: final verdict unavailable ({}): recorded is commoncap's answer only",
                 final_failure);

  // A streaming program writes to its own run's ring buffer, which is not
  // pinned: never adopt one.
  if (pins && !o.stream_checks) {
    AdoptedLinks got = adopt_links(
        *pins, sel.method, config_hash(o, sel.method, sel.old_audit, out.guard_sites, out.final_loaded),
        out.sites_loaded, out.final_loaded);
    out.cap_links = std::move(got.cap);
    out.site_links = std::move(got.site);
    out.final_links = std::move(got.final);
  }
  out.adopted = !out.cap_links.empty();
  if (!out.adopted) {
    for (bpf_program* p : method_programs(s, sel.method)) {
      LinkPtr l(bpf_program__attach(p));
      if (!l)
        return {nullptr, fmt::format("{} failed to attach: {}", bpf_program__section_name(p),
                                     errno_text(errno))};
      out.cap_links.push_back(std::move(l));
    }
  }
  std::vector<std::string> attached;
  for (const auto& site : out.adopted ? std::vector<std::string>{} : out.sites_loaded) {
    // Both programs of a site or neither: an exit without its entry could
    // count a check cap_capable's program counted too.
    ProgramSelection one = sel;
    one.inline_sites = {site};
    std::vector<LinkPtr> pair;
    for (bpf_program* p : inline_site_programs(s, one)) {
      LinkPtr l(bpf_program__attach(p));
      if (!l) {
        spdlog::warn("collector: not covered on this kernel: {} ({} failed to attach: {})", site,
                     bpf_program__section_name(p), errno_text(errno));
        pair.clear();
        break;
      }
      pair.push_back(std::move(l));
    }
    if (pair.empty()) continue;
    attached.push_back(site);
    for (auto& l : pair) out.site_links.push_back(std::move(l));
  }
  if (!out.adopted) out.sites_loaded = std::move(attached);
  if (out.final_loaded && !out.adopted) {
    // fexit first: an entry without its exit would leave keys waiting.
    for (bpf_program* p : final_verdict_programs(s)) {
      LinkPtr l(bpf_program__attach(p));
      if (!l) {
        spdlog::warn("collector: final verdict unavailable ({} failed to attach: {}): recorded is "
                     "commoncap's answer only",
                     bpf_program__section_name(p), errno_text(errno));
        out.final_links.clear();
        break;
      }
      out.final_links.push_back(std::move(l));
    }
  }
  if (tasks && out.adopted && !o.follow_tracked) {
    // The exec program pinned with the adopted link was loaded with the
    // same settings and writes into the pinned ring buffer: keeping it
    // keeps the execs queued while the daemon was down, in order.
    if (LinkPtr l = adopt_exec_link(*pins)) {
      out.task_links.push_back(std::move(l));
      out.exec_adopted = out.exec_events = true;
    }
  }
  if (tasks && !out.exec_adopted) {
    for (bpf_program* p : task_programs(s, o, sel)) {
      LinkPtr l(bpf_program__attach(p));
      if (!l) {
        task_failure =
            fmt::format("{} failed to attach: {}", bpf_program__section_name(p), errno_text(errno));
        out.task_links.clear();
        break;
      }
      out.task_links.push_back(std::move(l));
    }
    out.exec_events = !out.task_links.empty();
  }
  // Self-inspection counts are not pinned with the cap_capable link: they
  // stop with the process (what a program asks while the daemon is down is
  // not seen).
  ProgramSelection inspect_sel = sel;
  inspect_sel.task_programs = tasks;
  inspect_sel.inspect_fallback = out.inspect_fallback;
  inspect_sel.inspect_fentry = out.inspect_fentry;
  attach_inspection(s, inspect_sel, std::move(inspect_failure), &out.inspect_links);
  for (bpf_program* p : out.cgroup_names ? cgroup_programs(s, sel) : std::vector<bpf_program*>{}) {
    LinkPtr l(bpf_program__attach(p));
    if (!l) {
      spdlog::warn("collector: {} failed to attach ({}): a cgroup gone before the next drain is not named",
                   bpf_program__section_name(p), errno_text(errno));
      continue;
    }
    out.cgroup_links.push_back(std::move(l));
  }
  if (sel.task_programs && !out.exec_events)
    spdlog::warn("collector: exec events unavailable ({}); executables are named from /proc only",
                 task_failure);
  return a;
}

// The inline decision sites a method is completed with. The tracepoint
// needs none: since 6.14 it fires inside every inlined copy of cap_capable.
// fexit and kprobe get fexit programs on those present in kernel BTF (with
// kprobe forced, fexit may still work there); the absent are logged.
std::vector<std::string> inline_sites_for(AttachMethod m) {
  std::vector<std::string> sites, absent;
  if (m == AttachMethod::Tracepoint) return sites;
  auto& f = KernelFeatures::get();
  for (const char* fn : kInlineSiteFunctions) (f.has_btf_func(fn) ? sites : absent).push_back(fn);
  if (!absent.empty())
    spdlog::info("collector: {} not in kernel BTF: not covered (nothing to cover if the kernel "
                 "has no such function)",
                 fmt::join(absent, ", "));
  return sites;
}

}  // namespace

std::unique_ptr<Collector> Collector::start(const CollectorOptions& opts) {
  install_libbpf_logging();
  if (!opts.max_checks || !opts.max_origins || !opts.max_stacks)
    throw CollectorError("max_checks, max_origins and max_stacks must be positive");

  auto& features = KernelFeatures::get();
  const bool old_audit = features.cap_capable_old_audit();
  const bool tasks = features.has_sched_exec_tracepoint();
  if (!tasks)
    spdlog::warn("collector: exec events unavailable: kernel BTF has no "
                 "btf_trace_sched_process_exec (tp_btf)");

  std::optional<PinPlan> pins;
  if (!opts.pin_dir.empty()) pins = prepare_pins(opts.pin_dir);

  std::vector<AttachMethod> order;
  if (opts.forced_method)
    order.push_back(*opts.forced_method);
  else
    order.assign(std::begin(kMethodPreference), std::end(kMethodPreference));

  std::vector<MethodAttempt> passed;
  std::unique_ptr<Loaded> loaded;
  AttachMethod chosen = order.front();
  for (AttachMethod m : order) {
    const std::string name(method_name(m));
    if (auto why = features.disabled_reason(m)) {
      if (opts.forced_method)
        throw CollectorError(fmt::format("attach method '{}' is {}", name, *why));
      passed.push_back({m, *why});
      continue;
    }
    // Known without trying: skip cheaply, unless forced (then the kernel's
    // own answer is the error, with this as a hint).
    auto hint = features.unsupported_reason(m);
    if (hint && !opts.forced_method) {
      passed.push_back({m, *hint});
      continue;
    }
    // security_capable's verdict needs fexit; with kprobe forced fexit may
    // work too, but the method's own answer is what the contract promises.
    const bool final_verdict = m == AttachMethod::Fexit && features.has_btf_func("security_capable");
    Attempt a = try_method(opts, ProgramSelection{m, old_audit, tasks, inline_sites_for(m), final_verdict,
                                                   opts.cgroup_events && features.has_btf_func("cgroup_mkdir"),
                                                   opts.follow_tracked, !inspect_fentry_unavailable(m)},
                           pins ? &*pins : nullptr);
    if (a.loaded) {
      loaded = std::move(a.loaded);
      chosen = m;
      break;
    }
    if (hint) a.error += "; " + *hint;
    if (opts.forced_method)
      throw CollectorError(
          fmt::format("attach method '{}' refused by the kernel: {}", name, a.error));
    passed.push_back({m, a.error});
  }
  for (const auto& p : passed)
    spdlog::info("collector: passed over {}: {}", method_name(p.method), p.why);
  if (!loaded) {
    std::string msg = "no attach method for cap_capable works on this kernel:";
    for (const auto& p : passed) msg += fmt::format(" {}: {};", method_name(p.method), p.why);
    msg.pop_back();
    throw CollectorError(msg);
  }

  auto impl = std::make_unique<Impl>();
  impl->skel = std::move(loaded->skel);
  impl->cap_links = std::move(loaded->cap_links);
  impl->task_links = std::move(loaded->task_links);
  impl->site_links = std::move(loaded->site_links);
  impl->sites = loaded->sites_loaded;
  impl->final_links = std::move(loaded->final_links);
  impl->inspect_links = std::move(loaded->inspect_links);
  impl->cgroup_links = std::move(loaded->cgroup_links);
  impl->opts = opts;
  impl->method = chosen;
  impl->passed_over = std::move(passed);
  impl->old_audit = old_audit;
  impl->guard_sites = loaded->guard_sites;
  impl->adopted = loaded->adopted;
  impl->maps_adopted = pins && pins->reuse;
  impl->exec_adopted = loaded->exec_adopted;
  int ncpus = libbpf_num_possible_cpus();
  impl->ncpus = ncpus > 0 ? ncpus : 1;

  if (!impl->site_links.empty())
    spdlog::info("collector: also counting the checks made with cap_capable inlined in {} (fexit)",
                 fmt::join(loaded->sites_loaded, ", "));
  if (!impl->final_links.empty())
    spdlog::info("collector: recording security_capable's final verdict (after every LSM) beside "
                 "commoncap's (fexit)");
  spdlog::info("collector: counting cap_capable via {}{}{}", method_name(chosen),
               opts.forced_method ? " (forced)"
               : impl->passed_over.empty() ? " (preferred method)"
                                           : " (first method the kernel accepted)",
               impl->adopted ? fmt::format(", adopted pinned link from {}", opts.pin_dir) : "");
  if (pins) impl->pin_state(*pins);
  impl->setup_events(loaded->exec_events, !impl->cgroup_links.empty());
  return std::unique_ptr<Collector>(new Collector(std::move(impl)));
}

Collector::Collector(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Collector::~Collector() = default;

AttachMethod Collector::method() const { return impl_->method; }
const std::vector<MethodAttempt>& Collector::passed_over() const { return impl_->passed_over; }
bool Collector::old_audit_argument() const { return impl_->old_audit; }
bool Collector::adopted_maps() const { return impl_->maps_adopted; }
bool Collector::adopted_link() const { return impl_->adopted; }

void Collector::unpin() {
  // Closing the last reference to a link detaches it; the pin was one.
  impl_->cap_links.clear();
  impl_->site_links.clear();
  impl_->final_links.clear();
  impl_->inspect_links.clear();
  impl_->cgroup_links.clear();
  impl_->task_links.clear();
  impl_->remove_pinned_state();
}

}  // namespace capaudit
