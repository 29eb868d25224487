// The collector: loads capaudit.bpf.c with the best attach method this kernel
// accepts, optionally pins its state, and reads counts, origins, stacks and
// events back. The only code in capaudit that touches libbpf.
#include "collector.h"

#include "capaudit.skel.h"
#include "kernel_features.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <regex>
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

// ---- RAII owners -----------------------------------------------------------

struct SkelDeleter {
  void operator()(capaudit_bpf* s) const { capaudit_bpf__destroy(s); }
};
using SkelPtr = std::unique_ptr<capaudit_bpf, SkelDeleter>;

struct LinkDeleter {
  void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

struct RingBufferDeleter {
  void operator()(ring_buffer* r) const { ring_buffer__free(r); }
};
using RingBufferPtr = std::unique_ptr<ring_buffer, RingBufferDeleter>;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  void reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_;
};

// ---- libbpf's messages -----------------------------------------------------

// libbpf reports on stderr by default; here it goes to spdlog. While probing
// methods its (expected) failures are logged at debug level only, and
// captured so the failing program can be named.
thread_local bool t_probing = false;
thread_local std::vector<std::string>* t_capture = nullptr;

int libbpf_to_spdlog(enum libbpf_print_level level, const char* fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = std::vsnprintf(nullptr, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return 0;
  std::string msg(static_cast<size_t>(n) + 1, '\0');
  std::vsnprintf(msg.data(), msg.size(), fmt, ap);
  msg.resize(static_cast<size_t>(n));
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (t_capture && level != LIBBPF_DEBUG) t_capture->push_back(msg);
  if (level == LIBBPF_DEBUG)
    spdlog::trace("{}", msg);
  else if (t_probing || level == LIBBPF_INFO)
    spdlog::debug("{}", msg);
  else
    spdlog::warn("{}", msg);
  return 0;
}

void install_libbpf_logging() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(libbpf_to_spdlog); });
}

// Marks one probing attempt: libbpf quiet, its warnings collected.
class ProbeScope {
 public:
  ProbeScope() : prev_probing_(t_probing), prev_capture_(t_capture) {
    t_probing = true;
    t_capture = &messages;
  }
  ~ProbeScope() {
    t_probing = prev_probing_;
    t_capture = prev_capture_;
  }
  std::vector<std::string> messages;

 private:
  bool prev_probing_;
  std::vector<std::string>* prev_capture_;
};

std::string errno_text(int err) {
  if (err < 0) err = -err;
  // ENOTSUPP is kernel-internal (524), unknown to libc.
  if (err == 524) return "Operation not supported (ENOTSUPP)";
  std::string s = std::strerror(err);
  if (const char* name = strerrorname_np(err)) s += fmt::format(" ({})", name);
  return s;
}

// ---- programs of each method -------------------------------------------------

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

std::vector<bpf_program*> all_cap_programs(capaudit_bpf* s) {
  return {s->progs.ca_fexit_cap_capable, s->progs.ca_kprobe_cap_capable,
          s->progs.ca_kretprobe_cap_capable, s->progs.ca_tp_cap_capable};
}

std::vector<bpf_program*> task_programs(capaudit_bpf* s) {
  return {s->progs.ca_tp_exec, s->progs.ca_tp_fork, s->progs.ca_tp_exit};
}

// Name of the program libbpf complained about, as its section ("fexit/cap_capable").
std::string failed_program(const std::vector<std::string>& messages, capaudit_bpf* s) {
  static const std::regex re("prog '([A-Za-z0-9_]+)'");
  for (const auto& m : messages) {
    std::smatch match;
    if (!std::regex_search(m, match, re)) continue;
    if (bpf_program* p = bpf_object__find_program_by_name(s->obj, match[1].str().c_str()))
      return bpf_program__section_name(p);
  }
  return {};
}

std::string method_sections(capaudit_bpf* s, AttachMethod m) {
  std::string out;
  for (bpf_program* p : method_programs(s, m)) {
    if (!out.empty()) out += "+";
    out += bpf_program__section_name(p);
  }
  return out;
}

// ---- pinning -------------------------------------------------------------------

// Maps whose contents must survive the daemon; the pinned programs write
// into them, so a restart reads on where the last run stopped. exec_events
// too: execs made while the daemon is down wait there to name their
// binaries (as many as its 256 KiB hold).
struct PinnedMap {
  const char* name;
  bpf_map* of(capaudit_bpf* s) const { return bpf_object__find_map_by_name(s->obj, name); }
};
constexpr PinnedMap kPinnedMaps[] = {{"counts"}, {"origins"}, {"stacks"},      {"stats"},
                                     {"tracked"}, {"meta"},   {"exec_events"}};
// The link of the exec program (tp_btf/sched_process_exec).
constexpr const char* kExecLinkPin = "link_exec";

std::vector<std::string> link_pin_names(AttachMethod m) {
  switch (m) {
    case AttachMethod::Fexit:
      return {"link_fexit"};
    case AttachMethod::Kprobe:
      return {"link_kprobe", "link_kretprobe"};
    case AttachMethod::Tracepoint:
      return {"link_tracepoint"};
  }
  return {};
}

std::vector<std::string> all_pin_names() {
  std::vector<std::string> v;
  for (const auto& pm : kPinnedMaps) v.emplace_back(pm.name);
  for (AttachMethod m : kMethodPreference)
    for (auto& n : link_pin_names(m)) v.push_back(n);
  v.emplace_back(kExecLinkPin);
  return v;
}

bool path_exists(const std::string& p) { return access(p.c_str(), F_OK) == 0; }

bool on_bpffs(const std::string& p) {
  struct statfs st {};
  return statfs(p.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

std::string nearest_existing(std::filesystem::path p) {
  while (!p.empty() && !path_exists(p.string())) p = p.parent_path();
  return p.empty() ? "/" : p.string();
}

void ensure_bpffs(const std::string& dir) {
  if (on_bpffs(nearest_existing(dir))) return;
  const std::string root = "/sys/fs/bpf";
  if (dir.rfind(root + "/", 0) == 0 && !on_bpffs(root)) {
    if (mount("bpf", root.c_str(), "bpf", 0, "mode=0700") != 0)
      throw CollectorError(fmt::format("pinning under {}: mounting bpffs on {} failed: {}", dir,
                                       root, errno_text(errno)));
    spdlog::info("collector: mounted bpffs on {} to pin under {}", root, dir);
  }
  if (!on_bpffs(nearest_existing(dir)))
    throw CollectorError(fmt::format(
        "pin directory {} is not on a bpf filesystem (mount -t bpf bpf /sys/fs/bpf)", dir));
}

void remove_pins(const std::string& dir) {
  for (const auto& n : all_pin_names()) {
    std::string p = dir + "/" + n;
    if (unlink(p.c_str()) != 0 && errno != ENOENT)
      spdlog::warn("collector: removing pin {}: {}", p, errno_text(errno));
  }
}

struct PinPlan {
  std::string dir;  // empty: no pinning
  bool reuse = false;
  std::optional<ca_pin_meta> meta;
  std::vector<std::pair<const PinnedMap*, Fd>> maps;  // when reuse
};

// Why the pinned map at `path` cannot serve as `expect`; empty if it can.
std::string pinned_map_mismatch(const std::string& path, bpf_map* expect, Fd* out) {
  Fd fd(bpf_obj_get(path.c_str()));
  if (!fd) return fmt::format("{}: {}", path, errno_text(errno));
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0)
    return fmt::format("{}: not a map ({})", path, errno_text(errno));
  if (info.type != bpf_map__type(expect) || info.key_size != bpf_map__key_size(expect) ||
      info.value_size != bpf_map__value_size(expect))
    return fmt::format("{}: type/key/value {}/{}/{} where {}/{}/{} is expected", path, info.type,
                       info.key_size, info.value_size, static_cast<int>(bpf_map__type(expect)),
                       bpf_map__key_size(expect), bpf_map__value_size(expect));
  *out = std::move(fd);
  return {};
}

PinPlan prepare_pins(const std::string& dir) {
  PinPlan plan;
  plan.dir = dir;
  ensure_bpffs(dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    throw CollectorError(fmt::format(
        "creating pin directory {}: {}{}", dir, ec.message(),
        dir.find('.') != std::string::npos ? " (bpffs refuses names containing '.')" : ""));

  bool any = false;
  for (const auto& n : all_pin_names()) any = any || path_exists(dir + "/" + n);
  if (!any) return plan;

  // A throwaway open (no load) tells the sizes this build expects.
  SkelPtr ref(capaudit_bpf__open());
  if (!ref) throw CollectorError("opening the BPF object failed: " + errno_text(errno));

  std::string why;
  for (const auto& pm : kPinnedMaps) {
    Fd fd;
    why = pinned_map_mismatch(dir + "/" + pm.name, pm.of(ref.get()), &fd);
    if (!why.empty()) break;
    plan.maps.emplace_back(&pm, std::move(fd));
  }
  if (why.empty()) {
    int meta_fd = -1;
    for (auto& [pm, fd] : plan.maps)
      if (std::strcmp(pm->name, "meta") == 0) meta_fd = fd.get();
    ca_pin_meta m{};
    uint32_t key = 0;
    if (bpf_map_lookup_elem(meta_fd, &key, &m) != 0)
      why = "meta unreadable: " + errno_text(errno);
    else if (m.layout != CA_LAYOUT_VERSION)
      why = fmt::format("layout version {:#x}, this build uses {:#x}", m.layout,
                        static_cast<uint32_t>(CA_LAYOUT_VERSION));
    else
      plan.meta = m;
  }
  if (!why.empty()) {
    spdlog::warn("collector: pins in {} were left by an incompatible capaudit ({}): this version cannot "
                 "read the counts they hold since that run's last drain; removing them, counting starts "
                 "afresh",
                 dir, why);
    plan.maps.clear();
    plan.meta.reset();
    remove_pins(dir);
    return plan;
  }
  plan.reuse = true;
  return plan;
}

uint64_t config_hash(const CollectorOptions& o, AttachMethod m, bool old_audit) {
  // FNV-1a over everything baked into the cap_capable program at load.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; i++) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  mix(static_cast<uint64_t>(m));
  mix(old_audit);
  mix(o.follow_tracked);
  mix(o.only_tgid);
  mix(o.stream_checks);
  mix(o.stream_kernel_stacks);
  mix(o.stream_user_stacks);
  mix(o.stack_sample_period);
  return h;
}

// ---- one attempt -------------------------------------------------------------

struct LoadPlan {
  AttachMethod method;
  bool old_audit;
  bool task_programs;  // exec (and in profile mode fork/exit) tp_btf programs
  PinPlan* pins;
};

uint32_t page_size() { return static_cast<uint32_t>(sysconf(_SC_PAGESIZE)); }

// The one step between open and load where settings reach the BPF object:
// which programs load, the rodata the verifier prunes by, map sizes, and
// pinned maps to reuse.
int configure_before_load(capaudit_bpf* s, const CollectorOptions& o, const LoadPlan& lp) {
  const auto wanted = method_programs(s, lp.method);
  for (bpf_program* p : all_cap_programs(s))
    bpf_program__set_autoload(p, std::find(wanted.begin(), wanted.end(), p) != wanted.end());
  bpf_program__set_autoload(s->progs.ca_tp_exec, lp.task_programs);
  bpf_program__set_autoload(s->progs.ca_tp_fork, lp.task_programs && o.follow_tracked);
  bpf_program__set_autoload(s->progs.ca_tp_exit, lp.task_programs && o.follow_tracked);

  s->rodata->old_audit_arg = lp.old_audit;
  s->rodata->follow_tracked = o.follow_tracked;
  s->rodata->only_tgid = o.only_tgid;
  s->rodata->stream_checks = o.stream_checks;
  s->rodata->stream_kernel_stacks = o.stream_kernel_stacks;
  s->rodata->stream_user_stacks = o.stream_user_stacks;
  s->rodata->stack_sample_period = o.stack_sample_period;
  const uint32_t period = o.stack_sample_period;
  s->rodata->stack_sample_mask = period && !(period & (period - 1)) ? period - 1 : 0;

  int err = 0;
  auto set = [&err](bpf_map* m, uint32_t n) {
    if (!err) err = bpf_map__set_max_entries(m, n);
  };
  set(s->maps.counts, o.max_checks);
  set(s->maps.origins, o.max_origins);
  set(s->maps.stacks, o.max_stacks);
  set(s->maps.exec_events, lp.task_programs ? 256 * 1024 : page_size());
  set(s->maps.check_events, o.stream_checks ? 4 * 1024 * 1024 : page_size());
  if (lp.method != AttachMethod::Kprobe) set(s->maps.kprobe_args, 1);
  if (err) return err;

  if (lp.pins && lp.pins->reuse) {
    for (auto& [pm, fd] : lp.pins->maps) {
      if ((err = bpf_map__reuse_fd(pm->of(s), fd.get())) != 0) return err;
    }
  }
  return 0;
}

struct Loaded {
  SkelPtr skel;
  std::vector<LinkPtr> cap_links;
  std::vector<LinkPtr> task_links;
  bool exec_events = false;
  bool adopted = false;
  bool exec_adopted = false;
};

struct Attempt {
  std::unique_ptr<Loaded> loaded;
  std::string error;
};

// Opens the link pins an earlier run left for this method, if their program
// was loaded with these very settings.
std::vector<LinkPtr> adopt_links(const PinPlan& pins, AttachMethod m, uint64_t config) {
  std::vector<LinkPtr> links;
  if (!pins.reuse || !pins.meta) return links;
  if (pins.meta->method != static_cast<uint32_t>(m) || pins.meta->config != config) {
    spdlog::info("collector: pinned link in {} was made with other settings; replacing it",
                 pins.dir);
    return links;
  }
  for (const auto& n : link_pin_names(m)) {
    std::string p = pins.dir + "/" + n;
    LinkPtr l(bpf_link__open(p.c_str()));
    if (!l) {
      spdlog::info("collector: cannot adopt pinned link {}: {}", p, errno_text(errno));
      return {};
    }
    links.push_back(std::move(l));
  }
  return links;
}

Attempt try_method(const CollectorOptions& o, LoadPlan lp) {
  const bool want_tasks = lp.task_programs;
  std::string task_failure;
  for (int round = 0; round < 2; round++) {
    ProbeScope scope;
    SkelPtr s(capaudit_bpf__open());
    if (!s) return {nullptr, "opening the BPF object failed: " + errno_text(errno)};
    if (int err = configure_before_load(s.get(), o, lp))
      return {nullptr, "configuring the BPF object failed: " + errno_text(err)};
    if (int err = capaudit_bpf__load(s.get())) {
      std::string prog = failed_program(scope.messages, s.get());
      auto tasks = task_programs(s.get());
      bool task_prog = false;
      for (bpf_program* p : tasks) task_prog = task_prog || prog == bpf_program__section_name(p);
      if (lp.task_programs && (prog.empty() || task_prog)) {
        // Exec events are a bonus: try the method alone.
        task_failure = fmt::format("{} failed to load: {}",
                                   prog.empty() ? "tp_btf/sched_process_*" : prog, errno_text(err));
        lp.task_programs = false;
        continue;
      }
      return {nullptr, fmt::format("{} failed to load: {}",
                                   prog.empty() ? method_sections(s.get(), lp.method) : prog,
                                   errno_text(err))};
    }

    auto out = std::make_unique<Loaded>();
    const uint64_t config = config_hash(o, lp.method, lp.old_audit);
    // A streaming program writes to its own run's ring buffer, which is not
    // pinned: never adopt one.
    if (lp.pins && !o.stream_checks) out->cap_links = adopt_links(*lp.pins, lp.method, config);
    out->adopted = !out->cap_links.empty();
    if (!out->adopted) {
      for (bpf_program* p : method_programs(s.get(), lp.method)) {
        LinkPtr l(bpf_program__attach(p));
        if (!l)
          return {nullptr, fmt::format("{} failed to attach: {}", bpf_program__section_name(p),
                                       errno_text(errno))};
        out->cap_links.push_back(std::move(l));
      }
    }
    if (lp.task_programs && out->adopted && !o.follow_tracked) {
      // The exec program pinned with the adopted link was loaded with the
      // same settings and writes into the pinned ring buffer: keeping it
      // keeps the execs queued while the daemon was down, in order.
      std::string p = lp.pins->dir + "/" + kExecLinkPin;
      if (path_exists(p)) {
        if (LinkPtr l(bpf_link__open(p.c_str())); l) {
          out->task_links.push_back(std::move(l));
          out->exec_adopted = out->exec_events = true;
        } else {
          spdlog::info("collector: cannot adopt pinned link {}: {}", p, errno_text(errno));
        }
      }
    }
    if (lp.task_programs && !out->exec_adopted) {
      for (bpf_program* p : task_programs(s.get())) {
        if (!bpf_program__autoload(p)) continue;
        LinkPtr l(bpf_program__attach(p));
        if (!l) {
          task_failure =
              fmt::format("{} failed to attach: {}", bpf_program__section_name(p), errno_text(errno));
          out->task_links.clear();
          break;
        }
        out->task_links.push_back(std::move(l));
      }
      out->exec_events = !out->task_links.empty();
    }
    if (want_tasks && !out->exec_events)
      spdlog::warn("collector: exec events unavailable ({}); executables are named from /proc only",
                   task_failure);
    out->skel = std::move(s);
    return {std::move(out), {}};
  }
  return {nullptr, task_failure};
}

// Sums a per-CPU value buffer (each CPU's slot is 8-byte aligned).
uint64_t sum_percpu(const std::vector<uint64_t>& v) {
  uint64_t s = 0;
  for (uint64_t x : v) s += x;
  return s;
}

}  // namespace

// ---- Collector -----------------------------------------------------------------

struct Collector::Impl {
  // Declaration order is teardown order reversed: ring buffer, then links,
  // then the object they belong to.
  SkelPtr skel;
  std::vector<LinkPtr> cap_links;
  std::vector<LinkPtr> task_links;
  RingBufferPtr rb;

  CollectorOptions opts;
  AttachMethod method = AttachMethod::Tracepoint;
  std::vector<MethodAttempt> passed_over;
  bool old_audit = false;
  bool adopted = false;
  bool exec_adopted = false;
  bool pinned = false;
  int ncpus = 1;
  std::function<void(const ca_exec_event&)> exec_cb;
  std::function<void(const ca_check_event&)> check_cb;

  int fd(bpf_map* m) const { return bpf_map__fd(m); }
  void pin_state(const PinPlan& plan);
  void setup_events(bool exec_events);

  static int on_exec_sample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<Impl*>(ctx);
    if (size < sizeof(ca_exec_event) || !self->exec_cb) return 0;
    ca_exec_event e;
    std::memcpy(&e, data, sizeof(e));
    self->exec_cb(e);
    return 0;
  }
  static int on_check_sample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<Impl*>(ctx);
    if (size < sizeof(ca_check_event) || !self->check_cb) return 0;
    ca_check_event e;
    std::memcpy(&e, data, sizeof(e));
    self->check_cb(e);
    return 0;
  }
};

void Collector::Impl::pin_state(const PinPlan& plan) {
  const std::string& dir = plan.dir;
  if (plan.reuse) {
    const std::pair<bpf_map*, uint32_t> sized[] = {{skel->maps.counts, opts.max_checks},
                                                   {skel->maps.origins, opts.max_origins},
                                                   {skel->maps.stacks, opts.max_stacks}};
    for (auto [m, asked] : sized)
      if (bpf_map__max_entries(m) != asked)
        spdlog::info("collector: pinned map {} keeps its {} entries ({} asked for); unpin to resize",
                     bpf_map__name(m), bpf_map__max_entries(m), asked);
  } else {
    for (const auto& pm : kPinnedMaps) {
      std::string p = dir + "/" + pm.name;
      if (int err = bpf_map__pin(pm.of(skel.get()), p.c_str()))
        throw CollectorError(fmt::format("pinning map {}: {}", p, errno_text(err)));
    }
  }
  if (!adopted) {
    // Attach first, then drop the old link: checks are briefly counted
    // twice rather than missed.
    for (AttachMethod m : kMethodPreference)
      for (const auto& n : link_pin_names(m)) unlink((dir + "/" + n).c_str());
    auto names = link_pin_names(method);
    for (size_t i = 0; i < cap_links.size() && i < names.size(); i++) {
      std::string p = dir + "/" + names[i];
      // Kernels before 5.15 make kprobe attachments perf events, not
      // links: counting then stops with the daemon.
      if (int err = bpf_link__pin(cap_links[i].get(), p.c_str()))
        spdlog::warn("collector: pinning link {} failed ({}); counting will stop with this process",
                     p, errno_text(err));
    }
  }
  if (!exec_adopted && !opts.follow_tracked) {
    // Likewise: an exec is briefly reported twice rather than missed.
    std::string p = dir + "/" + kExecLinkPin;
    unlink(p.c_str());
    if (!task_links.empty()) {
      if (int err = bpf_link__pin(task_links.front().get(), p.c_str()))
        spdlog::warn("collector: pinning link {} failed ({}); execs made while the daemon is down will "
                     "not name their binaries",
                     p, errno_text(err));
    }
  }
  ca_pin_meta m{};
  m.layout = CA_LAYOUT_VERSION;
  m.method = static_cast<uint32_t>(method);
  m.config = config_hash(opts, method, old_audit);
  uint32_t key = 0;
  if (bpf_map_update_elem(fd(skel->maps.meta), &key, &m, BPF_ANY) != 0)
    throw CollectorError("writing pin meta: " + errno_text(errno));
  pinned = true;
}

void Collector::Impl::setup_events(bool exec_events) {
  auto add = [this](bpf_map* map, ring_buffer_sample_fn fn) {
    if (!rb) {
      rb.reset(ring_buffer__new(fd(map), fn, this, nullptr));
      if (!rb) throw CollectorError("creating the ring buffer reader: " + errno_text(errno));
    } else if (int err = ring_buffer__add(rb.get(), fd(map), fn, this)) {
      throw CollectorError("adding a ring buffer: " + errno_text(err));
    }
  };
  if (exec_events) add(skel->maps.exec_events, &Impl::on_exec_sample);
  if (opts.stream_checks) add(skel->maps.check_events, &Impl::on_check_sample);
}

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
    auto hint = features.unsupported_reason(m);
    if (hint && !opts.forced_method) {
      passed.push_back({m, *hint});
      continue;
    }
    LoadPlan lp{m, old_audit, tasks, pins ? &*pins : nullptr};
    Attempt a = try_method(opts, lp);
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
  impl->opts = opts;
  impl->method = chosen;
  impl->passed_over = std::move(passed);
  impl->old_audit = old_audit;
  impl->adopted = loaded->adopted;
  impl->exec_adopted = loaded->exec_adopted;
  int ncpus = libbpf_num_possible_cpus();
  impl->ncpus = ncpus > 0 ? ncpus : 1;

  spdlog::info("collector: counting cap_capable via {}{}{}", method_name(chosen),
               opts.forced_method ? " (forced)"
               : impl->passed_over.empty() ? " (preferred method)"
                                           : " (first method the kernel accepted)",
               impl->adopted ? fmt::format(", adopted pinned link from {}", opts.pin_dir) : "");
  if (pins) impl->pin_state(*pins);
  impl->setup_events(loaded->exec_events);
  return std::unique_ptr<Collector>(new Collector(std::move(impl)));
}

Collector::Collector(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Collector::~Collector() = default;

AttachMethod Collector::method() const { return impl_->method; }
const std::vector<MethodAttempt>& Collector::passed_over() const { return impl_->passed_over; }
bool Collector::old_audit_argument() const { return impl_->old_audit; }
bool Collector::adopted_pins() const { return impl_->adopted; }

int Collector::events_fd() const { return impl_->rb ? ring_buffer__epoll_fd(impl_->rb.get()) : -1; }
void Collector::on_exec(std::function<void(const ca_exec_event&)> cb) { impl_->exec_cb = std::move(cb); }
void Collector::on_check(std::function<void(const ca_check_event&)> cb) {
  impl_->check_cb = std::move(cb);
}

int Collector::poll_events(int timeout_ms) {
  if (!impl_->rb) return -ENOENT;
  int n = ring_buffer__poll(impl_->rb.get(), timeout_ms);
  return n == -EINTR ? 0 : n;
}

std::vector<CheckCount> Collector::read_counts() const {
  std::vector<CheckCount> out;
  const int fd = impl_->fd(impl_->skel->maps.counts);
  std::vector<uint64_t> vals(static_cast<size_t>(impl_->ncpus));
  ca_check_key key{}, next{};
  const void* prev = nullptr;
  // Entries are never deleted, so iteration does not restart under us.
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    if (bpf_map_lookup_elem(fd, &next, vals.data()) == 0) out.push_back({next, sum_percpu(vals)});
    key = next;
    prev = &key;
  }
  return out;
}

std::vector<OriginCount> Collector::read_origins() const {
  std::vector<OriginCount> out;
  const int fd = impl_->fd(impl_->skel->maps.origins);
  ca_origin_key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    uint64_t samples = 0;
    if (bpf_map_lookup_elem(fd, &next, &samples) == 0)
      out.push_back({next.check, next.stack_id, samples});
    key = next;
    prev = &key;
  }
  return out;
}

std::vector<uint64_t> Collector::read_stack(int32_t stack_id) const {
  if (stack_id < 0) return {};
  bpf_map* m = impl_->skel->maps.stacks;
  std::vector<uint64_t> frames(bpf_map__value_size(m) / sizeof(uint64_t));
  uint32_t id = static_cast<uint32_t>(stack_id);
  if (bpf_map_lookup_elem(bpf_map__fd(m), &id, frames.data()) != 0) return {};
  size_t n = 0;
  while (n < frames.size() && frames[n]) n++;
  frames.resize(n);
  return frames;
}

CollectorStats Collector::stats() const {
  CollectorStats s;
  const int fd = impl_->fd(impl_->skel->maps.stats);
  std::vector<uint64_t> vals(static_cast<size_t>(impl_->ncpus));
  for (uint32_t i = 0; i < CA_STAT_MAX; i++)
    if (bpf_map_lookup_elem(fd, &i, vals.data()) == 0) s.v[i] = sum_percpu(vals);
  return s;
}

bool Collector::track_process(uint32_t tgid) {
  uint32_t state = CA_TRACK_ARMED;
  return bpf_map_update_elem(impl_->fd(impl_->skel->maps.tracked), &tgid, &state, BPF_ANY) == 0;
}

void Collector::unpin() {
  // Closing the last reference to a link detaches it; the pin was one.
  impl_->cap_links.clear();
  impl_->task_links.clear();
  if (!impl_->pinned) return;
  const std::string& dir = impl_->opts.pin_dir;
  remove_pins(dir);
  if (rmdir(dir.c_str()) != 0 && errno != ENOENT)
    spdlog::warn("collector: removing pin directory {}: {}", dir, errno_text(errno));
  impl_->pinned = false;
  spdlog::info("collector: detached and removed pins under {}", dir);
}

}  // namespace capaudit
