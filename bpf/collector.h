// The collector layer: the only code in capaudit that touches libbpf.
// Everything above it (daemon, profiler) sees this small API and the plain
// structs of capaudit.h.
#pragma once

#include "capaudit.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace capaudit {

enum class AttachMethod { Fexit = CA_METHOD_FEXIT, Kprobe = CA_METHOD_KPROBE, Tracepoint = CA_METHOD_TRACEPOINT };

// Best first: fexit sees arguments, opts and the return in one program;
// kprobe needs two programs and a stash; the tracepoint has no audit flag.
inline constexpr AttachMethod kMethodPreference[] = {AttachMethod::Fexit, AttachMethod::Kprobe,
                                                     AttachMethod::Tracepoint};

std::string_view method_name(AttachMethod m);              // "fexit", "kprobe", "tracepoint"
std::optional<AttachMethod> parse_method(std::string_view); // accepts the names above

// Thrown only while starting (open/load/attach); caught in main.
struct CollectorError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct CollectorOptions {
  std::optional<AttachMethod> forced_method;  // unset: probe, best first
  uint32_t max_checks = 65536;                // counts map entries
  uint32_t max_origins = 65536;               // origins map entries
  uint32_t max_stacks = 16384;                // stack trace map entries
  uint32_t max_coarse = 16384;                // coarse map entries (per generation)
  uint32_t max_exe_names = 16384;             // exe_names entries: paths awaiting user space
  // Keep a quarter of each counts map for root and kernel threads: keys of
  // other credentials beyond three quarters are counted at the coarse key.
  bool reserve_for_root = true;
  // After a key's first check, walk the stack again when its per-CPU count
  // reaches a power of two, then every stack_sample_period checks. 0: only
  // the first check of each key.
  uint32_t stack_sample_period = 1024;
  // profile: count only processes marked with track_process() and their
  // descendants (from their next exec on).
  bool follow_tracked = false;
  // trace: stream one ca_check_event per check through a ring buffer.
  bool stream_checks = false;
  bool stream_kernel_stacks = false;
  bool stream_user_stacks = false;
  uint32_t only_tgid = 0;  // trace -p: 0 means every process
  // The daemon: one ca_cgroup_event per cgroup2 directory made, so a unit or
  // container that is gone by the next drain is still named (issue 12).
  bool cgroup_events = false;
  // Directory under bpffs to pin maps and link in (empty: no pinning).
  std::string pin_dir;
};

struct CheckCount {
  ca_check_key key;
  uint64_t count;  // summed over CPUs; monotonic while the maps live
  // Parity of the generation map it was read from (cap_counts slots: 0).
  uint8_t gen = 0;
};

struct ExeName {
  ca_exe_id id;
  std::string path;
};

struct OriginCount {
  ca_check_key key;
  int32_t stack_id;
  uint64_t samples;
};

// A program asking what capabilities it holds (capget, prctl), per kind.
struct InspectCount {
  ca_inspect_key key;
  uint64_t count;  // monotonic while the maps live
};

struct CollectorStats {
  uint64_t v[CA_STAT_MAX] = {};
  uint64_t operator[](ca_stat s) const { return v[s]; }
};

struct MethodAttempt {
  AttachMethod method;
  std::string why;  // why it was passed over (kernel's answer)
};

class Collector {
 public:
  // Opens, configures, loads and attaches. Throws CollectorError naming the
  // method and the kernel's answer when a forced method fails, or listing
  // every method's failure when none works.
  static std::unique_ptr<Collector> start(const CollectorOptions& opts);
  ~Collector();
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  AttachMethod method() const;
  // Methods tried before the one in use, with the reason each was refused.
  const std::vector<MethodAttempt>& passed_over() const;
  // Whether the 4th argument of cap_capable is the old `int audit` (pre-5.1)
  // rather than `unsigned int opts`, as read from the kernel's BTF.
  bool old_audit_argument() const;
  // True when an earlier run's pinned maps are in use: their counts include
  // what that run already drained, so draining resumes from the store's
  // drain state instead of from zero.
  bool adopted_maps() const;
  // True when the earlier run's pinned link (so its program) is in use too.
  // False beside adopted maps when this build's program or its settings
  // differ: the new program counts into the old maps.
  bool adopted_link() const;

  // Epoll-able fd that becomes readable when exec or check events wait;
  // -1 when there is no event source (kernel without tp_btf exec events and
  // not streaming checks).
  int events_fd() const;
  void on_exec(std::function<void(const ca_exec_event&)> cb);
  void on_check(std::function<void(const ca_check_event&)> cb);
  void on_cgroup(std::function<void(const ca_cgroup_event&)> cb);
  // Whether cgroup events are sent (asked for, and the kernel took the program).
  bool cgroup_events() const;
  // Consumes waiting events, calling the handlers. Returns events consumed
  // or a negative errno (-ENOENT when events_fd() is -1).
  int poll_events(int timeout_ms);

  // Every count: both generations' exact and coarse maps, and the non-zero
  // cap_counts slots (as keys with CA_FLAG_COARSE | CA_FLAG_CAP_ONLY, cap,
  // ret 0 or -EPERM, audit and target_ns_level 0 or 1).
  std::vector<CheckCount> read_counts() const;
  // The same, handed to f in chunks of at most `chunk` (the daemon's memory
  // stays that of one chunk, whatever the key count); stops, false, when f
  // returns false.
  bool read_counts(size_t chunk, const std::function<bool(std::vector<CheckCount>&)>& f) const;
  bool read_origins(size_t chunk, const std::function<bool(std::vector<OriginCount>&)>& f) const;
  // Keys in the generation counted into now (exact and coarse).
  size_t active_keys() const;

  // Pruning (see capaudit_maps.bpf.h). The generation counted into:
  uint64_t epoch() const;
  // Counting moves on to epoch() + 1; returns once no program can still
  // count into the previous generation, whose maps then hold final values.
  bool advance_epoch(std::string* err);
  // Waits for programs that may still count into a retired generation.
  void wait_grace() const;
  // Empties generation `gen`'s maps (never the one counted into).
  bool clear_generation(uint64_t gen, std::string* err);

  // Deletes the origin samples of keys no longer in the generation counted
  // into (pruned with a retired one) and returns them. Samples are sampled:
  // one taken while it is deleted may be lost, a count never is.
  std::vector<OriginCount> prune_origins();
  // Deletes the stacks no origin refers to any more (call after
  // prune_origins) and returns their ids, which may name other stacks from
  // now on. An origin stored already keeps its frames in the database; a
  // sample taken of an old stack while this runs may be lost (sampled, like
  // prune_origins). Only when at least min_used stacks are held.
  std::vector<int32_t> prune_stacks(size_t min_used);
  // Entries of the stack map.
  uint32_t max_stacks() const;

  // Paths recorded at exec and not yet forgotten.
  std::vector<ExeName> read_exe_names() const;
  void forget_exe_names(const std::vector<ca_exe_id>& ids);
  std::vector<OriginCount> read_origins() const;
  std::vector<InspectCount> read_inspections() const;
  // Raw kernel addresses of one stack, innermost first; empty if unknown.
  std::vector<uint64_t> read_stack(int32_t stack_id) const;
  CollectorStats stats() const;

  // profile: mark a process (by tgid) to be counted from its next exec on.
  bool track_process(uint32_t tgid);

  // Detach and remove pins (clean stop). Without this the destructor only
  // closes fds, leaving pinned objects counting.
  void unpin();

  struct Impl;

 private:
  void read_cap_slots(std::vector<CheckCount>* out) const;
  explicit Collector(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace capaudit
