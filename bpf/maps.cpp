// Reading the kernel's maps: counts, origins, stacks and stats, summed over
// CPUs where the map is per-CPU; and marking a process to track.
#include "collector_impl.h"

#include "libbpf_log.h"

#include <bpf/bpf.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_set>

namespace capaudit {

namespace {

// Sums a per-CPU value buffer (each CPU's slot is 8-byte aligned).
uint64_t sum_percpu(const std::vector<uint64_t>& v) {
  uint64_t s = 0;
  for (uint64_t x : v) s += x;
  return s;
}

}  // namespace

namespace {

// Appends every entry of a per-CPU hash of check keys, tagged with gen.
void read_key_map(int fd, int ncpus, uint8_t gen, std::vector<CheckCount>* out) {
  std::vector<uint64_t> vals(static_cast<size_t>(ncpus));
  ca_check_key key{}, next{};
  const void* prev = nullptr;
  // Entries are deleted only from a retired generation, never while read.
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    if (bpf_map_lookup_elem(fd, &next, vals.data()) == 0) out->push_back({next, sum_percpu(vals), gen});
    key = next;
    prev = &key;
  }
}

size_t key_count(int fd) {
  ca_check_key key{}, next{};
  const void* prev = nullptr;
  size_t n = 0;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    n++;
    key = next;
    prev = &key;
  }
  return n;
}

// Deletes every key of a hash map nothing writes to any more.
template <typename Key>
bool empty_map(int fd, std::string* err) {
  std::vector<Key> keys;
  Key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    keys.push_back(next);
    key = next;
    prev = &key;
  }
  for (const Key& k : keys)
    if (bpf_map_delete_elem(fd, &k) != 0 && errno != ENOENT) {
      *err = "emptying a retired map: " + errno_text(errno);
      return false;
    }
  return true;
}

}  // namespace

std::vector<CheckCount> Collector::read_counts() const {
  std::vector<CheckCount> out;
  const auto& m = impl_->skel->maps;
  read_key_map(bpf_map__fd(m.counts), impl_->ncpus, 0, &out);
  read_key_map(bpf_map__fd(m.counts_b), impl_->ncpus, 1, &out);
  read_key_map(bpf_map__fd(m.coarse), impl_->ncpus, 0, &out);
  read_key_map(bpf_map__fd(m.coarse_b), impl_->ncpus, 1, &out);
  const int fd = bpf_map__fd(m.cap_counts);
  std::vector<uint64_t> vals(static_cast<size_t>(impl_->ncpus));
  for (uint32_t slot = 0; slot < CA_CAP_SLOTS; slot++) {
    if (bpf_map_lookup_elem(fd, &slot, vals.data()) != 0) continue;
    uint64_t n = sum_percpu(vals);
    if (!n) continue;
    CheckCount c{};
    c.key.flags = CA_FLAG_COARSE | CA_FLAG_CAP_ONLY;
    c.key.cap = static_cast<uint8_t>(slot >> 4);
    c.key.target_ns_level = (slot & 8) ? 1 : 0;
    c.key.ret = (slot & 4) ? -EPERM : 0;
    c.key.audit = static_cast<uint8_t>(slot & 3);
    c.count = n;
    out.push_back(c);
  }
  return out;
}

size_t Collector::active_keys() const {
  const auto& m = impl_->skel->maps;
  const bool odd = epoch() & 1;
  return key_count(bpf_map__fd(odd ? m.counts_b : m.counts)) + key_count(bpf_map__fd(odd ? m.coarse_b : m.coarse));
}

uint64_t Collector::epoch() const {
  uint32_t zero = 0;
  uint64_t e = 0;
  bpf_map_lookup_elem(bpf_map__fd(impl_->skel->maps.epoch), &zero, &e);
  return e;
}

void Collector::wait_grace() const {
  // MEMBARRIER_CMD_GLOBAL is synchronize_rcu(): every program that read the
  // old epoch (they run under rcu_read_lock) has finished. Refused under
  // nohz_full, where a pause far longer than any program run stands in.
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) != 0) usleep(200 * 1000);
}

bool Collector::advance_epoch(std::string* err) {
  uint32_t zero = 0;
  uint64_t next = epoch() + 1;
  if (bpf_map_update_elem(bpf_map__fd(impl_->skel->maps.epoch), &zero, &next, BPF_ANY) != 0) {
    *err = "moving the epoch on: " + errno_text(errno);
    return false;
  }
  wait_grace();
  return true;
}

bool Collector::clear_generation(uint64_t gen, std::string* err) {
  if (gen == epoch()) {
    *err = "refusing to empty the generation counted into";
    return false;
  }
  const auto& m = impl_->skel->maps;
  const bool odd = gen & 1;
  if (!empty_map<ca_check_key>(bpf_map__fd(odd ? m.counts_b : m.counts), err) ||
      !empty_map<ca_check_key>(bpf_map__fd(odd ? m.coarse_b : m.coarse), err))
    return false;
  // Its unprivileged keys are gone with it.
  uint32_t slot = odd ? CA_QUOTA_NONROOT_GEN1 : CA_QUOTA_NONROOT_GEN0;
  uint64_t zero = 0;
  if (bpf_map_update_elem(bpf_map__fd(m.key_quota), &slot, &zero, BPF_ANY) != 0) {
    *err = "resetting the key quota: " + errno_text(errno);
    return false;
  }
  return true;
}

std::vector<OriginCount> Collector::prune_origins() {
  const auto& m = impl_->skel->maps;
  const bool odd = epoch() & 1;
  std::unordered_set<std::string> live;
  for (int fd : {bpf_map__fd(odd ? m.counts_b : m.counts), bpf_map__fd(odd ? m.coarse_b : m.coarse)}) {
    ca_check_key key{}, next{};
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
      live.emplace(reinterpret_cast<const char*>(&next), sizeof next);
      key = next;
      prev = &key;
    }
  }
  std::vector<OriginCount> gone;
  for (const OriginCount& o : read_origins())
    if (!live.count(std::string(reinterpret_cast<const char*>(&o.key), sizeof o.key))) gone.push_back(o);
  const int fd = bpf_map__fd(m.origins);
  for (const OriginCount& o : gone) {
    ca_origin_key k{};
    k.check = o.key;
    k.stack_id = o.stack_id;
    bpf_map_delete_elem(fd, &k);
  }
  return gone;
}

std::vector<ExeName> Collector::read_exe_names() const {
  std::vector<ExeName> out;
  const int fd = bpf_map__fd(impl_->skel->maps.exe_names);
  ca_exe_id key{}, next{};
  ca_exe_name name{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    if (bpf_map_lookup_elem(fd, &next, &name) == 0)
      out.push_back({next, std::string(name.path, strnlen(name.path, sizeof name.path))});
    key = next;
    prev = &key;
  }
  return out;
}

void Collector::forget_exe_names(const std::vector<ca_exe_id>& ids) {
  const int fd = bpf_map__fd(impl_->skel->maps.exe_names);
  for (const ca_exe_id& id : ids) bpf_map_delete_elem(fd, &id);
}

std::vector<OriginCount> Collector::read_origins() const {
  std::vector<OriginCount> out;
  const int fd = bpf_map__fd(impl_->skel->maps.origins);
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

std::vector<InspectCount> Collector::read_inspections() const {
  std::vector<InspectCount> out;
  const int fd = bpf_map__fd(impl_->skel->maps.inspections);
  ca_inspect_key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    uint64_t n = 0;
    if (bpf_map_lookup_elem(fd, &next, &n) == 0) out.push_back({next, n});
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
  const int fd = bpf_map__fd(impl_->skel->maps.stats);
  std::vector<uint64_t> vals(static_cast<size_t>(impl_->ncpus));
  for (uint32_t i = 0; i < CA_STAT_MAX; i++)
    if (bpf_map_lookup_elem(fd, &i, vals.data()) == 0) s.v[i] = sum_percpu(vals);
  return s;
}

bool Collector::track_process(uint32_t tgid) {
  uint32_t state = CA_TRACK_ARMED;
  return bpf_map_update_elem(bpf_map__fd(impl_->skel->maps.tracked), &tgid, &state, BPF_ANY) == 0;
}

}  // namespace capaudit
