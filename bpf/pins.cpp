#include "pins.h"

#include "collector_impl.h"
#include "configure.h"
#include "libbpf_log.h"

#include <bpf/bpf.h>
#include <linux/magic.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace capaudit {

namespace {

bool path_exists(const std::string& p) { return access(p.c_str(), F_OK) == 0; }

bool on_bpffs(const std::string& p) {
  struct statfs st {};
  return statfs(p.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

std::string nearest_existing(std::filesystem::path p) {
  while (!p.empty() && !path_exists(p.string())) p = p.parent_path();
  return p.empty() ? "/" : p.string();
}

bpf_map* map_named(capaudit_bpf* s, const char* name) {
  return bpf_object__find_map_by_name(s->obj, name);
}

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

// Why the pinned maps cannot be reused; empty (and plan filled) if they can.
std::string check_pinned_maps(PinPlan& plan) {
  // A throwaway open (no load) tells the sizes this build expects.
  SkelPtr ref(capaudit_bpf__open());
  if (!ref) throw CollectorError("opening the BPF object failed: " + errno_text(errno));

  for (const char* name : kPinnedMaps) {
    Fd fd;
    std::string why = pinned_map_mismatch(plan.dir + "/" + name, map_named(ref.get(), name), &fd);
    if (!why.empty()) return why;
    plan.maps.emplace_back(name, std::move(fd));
  }
  int meta_fd = -1;
  for (auto& [name, fd] : plan.maps)
    if (std::strcmp(name, "meta") == 0) meta_fd = fd.get();
  ca_pin_meta m{};
  uint32_t key = 0;
  if (bpf_map_lookup_elem(meta_fd, &key, &m) != 0) return "meta unreadable: " + errno_text(errno);
  if (m.layout != CA_LAYOUT_VERSION)
    return fmt::format("layout version {:#x}, this build uses {:#x}", m.layout,
                       static_cast<uint32_t>(CA_LAYOUT_VERSION));
  plan.meta = m;
  return {};
}

}  // namespace

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

std::vector<std::string> site_link_pin_names(const std::vector<std::string>& sites) {
  std::vector<std::string> v;
  for (const auto& s : sites) {
    v.push_back("link_site_" + s + "_fentry");
    v.push_back("link_site_" + s + "_fexit");
  }
  return v;
}

std::vector<std::string> all_pin_names() {
  std::vector<std::string> v(std::begin(kPinnedMaps), std::end(kPinnedMaps));
  for (AttachMethod m : kMethodPreference)
    for (auto& n : link_pin_names(m)) v.push_back(n);
  v.emplace_back(kExecLinkPin);
  for (auto& n : site_link_pin_names({std::begin(kInlineSiteFunctions), std::end(kInlineSiteFunctions)}))
    v.push_back(n);
  for (const char* n : kFinalLinkPins) v.emplace_back(n);
  return v;
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

  if (std::string why = check_pinned_maps(plan); !why.empty()) {
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

int reuse_pinned_maps(capaudit_bpf* s, const PinPlan& plan) {
  if (!plan.reuse) return 0;
  for (const auto& [name, fd] : plan.maps)
    if (int err = bpf_map__reuse_fd(map_named(s, name), fd.get())) return err;
  return 0;
}

namespace {

constexpr uint64_t kFnvOffsetBasis = 1469598103934665603ull;

// FNV-1a over n bytes, on from h.
uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// Of the embedded BPF object, computed once (about 1 ms for its 1.1 MB).
uint64_t program_revision() {
  static const uint64_t rev = [] {
    size_t n = 0;
    const void* object = capaudit_bpf__elf_bytes(&n);
    return fnv1a(kFnvOffsetBasis, object, n);
  }();
  return rev;
}

}  // namespace

uint64_t config_hash(const CollectorOptions& o, AttachMethod m, bool old_audit, bool guard_sites,
                     bool final_verdict) {
  uint64_t h = kFnvOffsetBasis;
  auto mix = [&h](uint64_t v) { h = fnv1a(h, &v, sizeof v); };
  mix(static_cast<uint64_t>(m));
  mix(old_audit);
  mix(o.follow_tracked);
  mix(o.only_tgid);
  mix(o.stream_checks);
  mix(o.stream_kernel_stacks);
  mix(o.stream_user_stacks);
  mix(o.stack_sample_period);
  if (guard_sites) mix(0x5173);
  if (final_verdict) mix(0xf1a1);
  // Pins of layout revision 1 are never adopted, so older hashes need not
  // match. The limit itself follows the size of the (pinned) map.
  mix(o.reserve_for_root);
  mix(program_revision());
  return h;
}

AdoptedLinks adopt_links(const PinPlan& plan, AttachMethod m, uint64_t config,
                         const std::vector<std::string>& sites, bool final_verdict) {
  if (!plan.reuse || !plan.meta) return {};
  if (plan.meta->method != static_cast<uint32_t>(m) || plan.meta->config != config) {
    spdlog::info("collector: pinned link in {} was made with other settings; replacing it", plan.dir);
    return {};
  }
  AdoptedLinks out;
  auto open_all = [&plan](const std::vector<std::string>& names, std::vector<LinkPtr>* links) {
    for (const auto& n : names) {
      std::string p = plan.dir + "/" + n;
      LinkPtr l(bpf_link__open(p.c_str()));
      if (!l) {
        spdlog::info("collector: cannot adopt pinned link {}: {}", p, errno_text(errno));
        return false;
      }
      links->push_back(std::move(l));
    }
    return true;
  };
  const std::vector<std::string> finals =
      final_verdict ? std::vector<std::string>(std::begin(kFinalLinkPins), std::end(kFinalLinkPins))
                    : std::vector<std::string>{};
  // All or none: a new site or final program beside an adopted cap_capable
  // one would not share its guard and slot.
  if (!open_all(link_pin_names(m), &out.cap) || !open_all(site_link_pin_names(sites), &out.site) ||
      !open_all(finals, &out.final))
    return {};
  return out;
}

LinkPtr adopt_exec_link(const PinPlan& plan) {
  std::string p = plan.dir + "/" + kExecLinkPin;
  if (!path_exists(p)) return nullptr;
  LinkPtr l(bpf_link__open(p.c_str()));
  if (!l) spdlog::info("collector: cannot adopt pinned link {}: {}", p, errno_text(errno));
  return l;
}

void Collector::Impl::pin_state(const PinPlan& plan) {
  const std::string& dir = plan.dir;
  if (plan.reuse) {
    const std::pair<bpf_map*, uint32_t> sized[] = {{skel->maps.counts, opts.max_checks},
                                                   {skel->maps.coarse, opts.max_coarse},
                                                   {skel->maps.origins, opts.max_origins},
                                                   {skel->maps.stacks, opts.max_stacks}};
    for (auto [m, asked] : sized)
      if (bpf_map__max_entries(m) != asked)
        spdlog::info("collector: pinned map {} keeps its {} entries ({} asked for); unpin to resize",
                     bpf_map__name(m), bpf_map__max_entries(m), asked);
  } else {
    for (const char* name : kPinnedMaps) {
      std::string p = dir + "/" + name;
      if (int err = bpf_map__pin(map_named(skel.get(), name), p.c_str()))
        throw CollectorError(fmt::format("pinning map {}: {}", p, errno_text(err)));
    }
  }
  if (!adopted) {
    // Attach first, then drop the old link: checks are briefly counted
    // twice rather than missed.
    for (AttachMethod m : kMethodPreference)
      for (const auto& n : link_pin_names(m)) unlink((dir + "/" + n).c_str());
    for (const auto& n : site_link_pin_names({std::begin(kInlineSiteFunctions), std::end(kInlineSiteFunctions)}))
      unlink((dir + "/" + n).c_str());
    for (const char* n : kFinalLinkPins) unlink((dir + "/" + n).c_str());
    auto pin_links = [&dir](const std::vector<LinkPtr>& links, const std::vector<std::string>& names,
                            const char* stops) {
      for (size_t i = 0; i < links.size() && i < names.size(); i++) {
        std::string p = dir + "/" + names[i];
        // Kernels before 5.15 make kprobe attachments perf events, not
        // links: counting then stops with the daemon.
        if (int err = bpf_link__pin(links[i].get(), p.c_str()))
          spdlog::warn("collector: pinning link {} failed ({}); {} will stop with this process", p,
                       errno_text(err), stops);
      }
    };
    pin_links(cap_links, link_pin_names(method), "counting");
    pin_links(site_links, site_link_pin_names(sites), "counting the inline sites");
    pin_links(final_links, {std::begin(kFinalLinkPins), std::end(kFinalLinkPins)}, "the final verdict");
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
  m.config = config_hash(opts, method, old_audit, guard_sites, !final_links.empty());
  uint32_t key = 0;
  if (bpf_map_update_elem(bpf_map__fd(skel->maps.meta), &key, &m, BPF_ANY) != 0)
    throw CollectorError("writing pin meta: " + errno_text(errno));
  pinned = true;
}

void Collector::Impl::remove_pinned_state() {
  if (!pinned) return;
  const std::string& dir = opts.pin_dir;
  remove_pins(dir);
  if (rmdir(dir.c_str()) != 0 && errno != ENOENT)
    spdlog::warn("collector: removing pin directory {}: {}", dir, errno_text(errno));
  pinned = false;
  spdlog::info("collector: detached and removed pins under {}", dir);
}

}  // namespace capaudit
