// Reading the kernel's maps: counts, origins, stacks and stats, summed over
// CPUs where the map is per-CPU; and marking a process to track.
#include "collector_impl.h"

#include <bpf/bpf.h>

namespace capaudit {

namespace {

// Sums a per-CPU value buffer (each CPU's slot is 8-byte aligned).
uint64_t sum_percpu(const std::vector<uint64_t>& v) {
  uint64_t s = 0;
  for (uint64_t x : v) s += x;
  return s;
}

}  // namespace

std::vector<CheckCount> Collector::read_counts() const {
  std::vector<CheckCount> out;
  const int fd = bpf_map__fd(impl_->skel->maps.counts);
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
