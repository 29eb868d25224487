// Reading the kernel's maps: counts, origins, stacks and stats, summed over
// CPUs where the map is per-CPU; and marking a process to track.
#include "collector_impl.h"

#include "flat_map.h"
#include "libbpf_log.h"

#include <bpf/bpf.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>

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

// Hands every entry of a hash map of Key to sink(key, value summed over the
// CPUs of a per-CPU map), in the map's bucket order. Read in batches of
// kBatch keys into fixed buffers (one syscall a batch, no per-key
// allocation); a kernel without batch lookups is walked key by key, and a
// batch that fails goes on key by key after the last key handed over.
constexpr uint32_t kBatch = 1024;

template <typename Key, typename Sink>
void read_map(int fd, size_t ncpus, Sink&& sink) {
  std::vector<Key> keys(kBatch);
  std::vector<uint64_t> vals(kBatch * ncpus);
  uint64_t in_token = 0, out_token = 0;
  bool first = true, any = false;
  Key last{};
  for (;;) {
    uint32_t count = kBatch;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int rc = bpf_map_lookup_batch(fd, first ? nullptr : &in_token, &out_token, keys.data(), vals.data(),
                                  &count, &opts);
    const int e = rc != 0 ? errno : 0;
    if (rc != 0 && e != ENOENT) break;
    for (uint32_t i = 0; i < count; i++) {
      uint64_t sum = 0;
      for (size_t c = 0; c < ncpus; c++) sum += vals[i * ncpus + c];
      sink(keys[i], sum);
      last = keys[i];
      any = true;
    }
    if (e == ENOENT) return;
    in_token = out_token;
    first = false;
  }
  std::vector<uint64_t> one(ncpus);
  Key key = last, next{};
  const void* prev = any ? &key : nullptr;
  // Entries are deleted only from a retired generation, never while read.
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    if (bpf_map_lookup_elem(fd, &next, one.data()) == 0) sink(next, sum_percpu(one));
    key = next;
    prev = &key;
  }
}

void read_key_map(int fd, int ncpus, uint8_t gen, std::vector<CheckCount>* out) {
  read_map<ca_check_key>(fd, static_cast<size_t>(ncpus),
                         [&](const ca_check_key& k, uint64_t n) { out->push_back({k, n, gen}); });
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

static_assert(sizeof(ca_hot) % 8 == 0, "per-CPU values are read at an 8-byte stride");

// The counts the hot entries (ca_hot) hold, to be added to their keys'
// counts-map values. Read before the counts maps: an entry's key was in its
// generation's counts map before the entry was taken, and the entries below
// `used` (read first, written last) are complete.
class HotCounts {
 public:
  HotCounts(int fd, int ncpus) {
    std::vector<ca_hot> vals(static_cast<size_t>(ncpus));
    for (uint32_t gen = 0; gen < 2; gen++) {
      if (bpf_map_lookup_elem(fd, &gen, vals.data()) != 0) continue;
      for (const ca_hot& h : vals)
        for (uint32_t i = 0; i < std::min<uint32_t>(h.used, CA_HOT_ENTRIES); i++)
          if (h.e[i].count)
            v_.push_back({key_hash('c', &h.e[i].key, sizeof h.e[i].key), static_cast<uint8_t>(gen), h.e[i].key,
                          h.e[i].count});
    }
    std::sort(v_.begin(), v_.end(), [](const Entry& a, const Entry& b) { return a.h < b.h; });
  }

  // The count of key in generation gen's counts map, with its hot entries.
  uint64_t with_hot(const ca_check_key& k, uint8_t gen, uint64_t n) {
    if (v_.empty()) return n;
    const uint64_t h = key_hash('c', &k, sizeof k);
    auto it = std::lower_bound(v_.begin(), v_.end(), h, [](const Entry& e, uint64_t x) { return e.h < x; });
    for (; it != v_.end() && it->h == h; ++it)
      if (!it->added && it->gen == gen && std::memcmp(&it->key, &k, sizeof k) == 0) {
        n += it->count;
        it->added = true;
      }
    return n;
  }

  // Entries whose key the counts maps did not hold (none, by the order of
  // writes above; kept so that no count could go unread).
  template <typename Sink>
  void rest(Sink&& sink) const {
    for (const Entry& e : v_)
      if (!e.added) sink(CheckCount{e.key, e.count, e.gen});
  }

 private:
  struct Entry {
    uint64_t h;
    uint8_t gen;
    ca_check_key key;
    uint64_t count;
    bool added = false;
  };
  std::vector<Entry> v_;
};

}  // namespace

std::vector<CheckCount> Collector::read_counts() const {
  std::vector<CheckCount> out;
  const auto& m = impl_->skel->maps;
  HotCounts hot(bpf_map__fd(m.hot_keys), impl_->ncpus);
  for (auto [map, gen] : {std::pair{m.counts, uint8_t{0}}, std::pair{m.counts_b, uint8_t{1}}})
    read_map<ca_check_key>(bpf_map__fd(map), static_cast<size_t>(impl_->ncpus),
                           [&, gen = gen](const ca_check_key& k, uint64_t n) {
                             out.push_back({k, hot.with_hot(k, gen, n), gen});
                           });
  hot.rest([&](const CheckCount& c) { out.push_back(c); });
  read_key_map(bpf_map__fd(m.coarse), impl_->ncpus, 0, &out);
  read_key_map(bpf_map__fd(m.coarse_b), impl_->ncpus, 1, &out);
  read_cap_slots(&out);
  return out;
}

void Collector::read_cap_slots(std::vector<CheckCount>* out) const {
  const int fd = bpf_map__fd(impl_->skel->maps.cap_counts);
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
    out->push_back(c);
  }
}

bool Collector::read_counts(size_t chunk, const std::function<bool(std::vector<CheckCount>&)>& f) const {
  std::vector<CheckCount> out;
  out.reserve(chunk);
  bool ok = true;
  auto flush = [&] {
    if (ok && !out.empty()) ok = f(out);
    out.clear();
  };
  const auto& m = impl_->skel->maps;
  HotCounts hot(bpf_map__fd(m.hot_keys), impl_->ncpus);
  auto add = [&](const CheckCount& c) {
    if (!ok) return;
    out.push_back(c);
    if (out.size() >= chunk) flush();
  };
  const std::pair<bpf_map*, uint8_t> maps[] = {{m.counts, 0}, {m.counts_b, 1}, {m.coarse, 0}, {m.coarse_b, 1}};
  for (auto [map, gen] : maps) {
    const bool exact = map == m.counts || map == m.counts_b;
    read_map<ca_check_key>(bpf_map__fd(map), static_cast<size_t>(impl_->ncpus),
                           [&, gen = gen](const ca_check_key& k, uint64_t n) {
                             add({k, exact ? hot.with_hot(k, gen, n) : n, gen});
                           });
    if (map == m.counts_b) hot.rest(add);
  }
  if (!ok) return false;
  // The cap_counts slots (CA_CAP_SLOTS at most) come with the last chunk.
  std::vector<CheckCount> slots;
  read_cap_slots(&slots);
  for (const CheckCount& c : slots) {
    out.push_back(c);
    if (out.size() >= chunk) flush();
  }
  flush();
  return ok;
}

bool Collector::read_origins(size_t chunk, const std::function<bool(std::vector<OriginCount>&)>& f) const {
  std::vector<OriginCount> out;
  out.reserve(chunk);
  bool ok = true;
  read_map<ca_origin_key>(bpf_map__fd(impl_->skel->maps.origins), 1, [&](const ca_origin_key& k, uint64_t n) {
    if (!ok) return;
    out.push_back({k.check, k.stack_id, n});
    if (out.size() >= chunk) {
      ok = f(out);
      out.clear();
    }
  });
  if (ok && !out.empty()) ok = f(out);
  return ok;
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
  // And its hot entries, on every CPU.
  const uint32_t parity = odd ? 1 : 0;
  std::vector<ca_hot> none(static_cast<size_t>(impl_->ncpus));
  if (bpf_map_update_elem(bpf_map__fd(m.hot_keys), &parity, none.data(), BPF_ANY) != 0) {
    *err = "emptying a retired generation's hot keys: " + errno_text(errno);
    return false;
  }
  // Its unprivileged keys are gone with it.
  uint32_t slot = odd ? CA_QUOTA_NONROOT_GEN1 : CA_QUOTA_NONROOT_GEN0;
  uint64_t zero = 0;
  if (bpf_map_update_elem(bpf_map__fd(m.key_quota), &slot, &zero, BPF_ANY) != 0) {
    *err = "resetting the key quota: " + errno_text(errno);
    return false;
  }
  return true;
}

namespace {

// Hashes of the keys in the generation counted into, sorted: a hash shared
// by a gone key only keeps its origin a generation longer.
std::vector<uint64_t> live_key_hashes(const Collector::Impl& impl, bool odd) {
  const auto& m = impl.skel->maps;
  std::vector<uint64_t> live;
  for (int fd : {bpf_map__fd(odd ? m.counts_b : m.counts), bpf_map__fd(odd ? m.coarse_b : m.coarse)}) {
    ca_check_key key{}, next{};
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
      live.push_back(key_hash('c', &next, sizeof next));
      key = next;
      prev = &key;
    }
  }
  std::sort(live.begin(), live.end());
  return live;
}

}  // namespace

std::vector<OriginCount> Collector::prune_origins() {
  const std::vector<uint64_t> live = live_key_hashes(*impl_, epoch() & 1);
  std::vector<OriginCount> gone;
  const int fd = bpf_map__fd(impl_->skel->maps.origins);
  ca_origin_key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    uint64_t samples = 0;
    if (!std::binary_search(live.begin(), live.end(), key_hash('c', &next.check, sizeof next.check)) &&
        bpf_map_lookup_elem(fd, &next, &samples) == 0)
      gone.push_back({next.check, next.stack_id, samples});
    key = next;
    prev = &key;
  }
  for (const OriginCount& o : gone) {
    ca_origin_key k{};
    k.check = o.key;
    k.stack_id = o.stack_id;
    bpf_map_delete_elem(fd, &k);
  }
  return gone;
}

std::vector<int32_t> Collector::prune_stacks(size_t min_used) {
  const int sfd = bpf_map__fd(impl_->skel->maps.stacks);
  std::vector<uint32_t> ids;
  uint32_t key = 0, next = 0;
  const void* prev = nullptr;
  while (bpf_map_get_next_key(sfd, prev, &next) == 0) {
    ids.push_back(next);
    key = next;
    prev = &key;
  }
  if (ids.empty() || ids.size() < min_used) return {};
  // A program that walked one of these stacks before the list was read has
  // stored its origin by the end of the grace period.
  wait_grace();
  std::vector<uint32_t> used;
  const int ofd = bpf_map__fd(impl_->skel->maps.origins);
  ca_origin_key okey{}, onext{};
  const void* oprev = nullptr;
  while (bpf_map_get_next_key(ofd, oprev, &onext) == 0) {
    if (onext.stack_id >= 0) used.push_back(static_cast<uint32_t>(onext.stack_id));
    okey = onext;
    oprev = &okey;
  }
  std::sort(used.begin(), used.end());
  std::vector<int32_t> deleted;
  for (uint32_t id : ids)
    if (!std::binary_search(used.begin(), used.end(), id) && bpf_map_delete_elem(sfd, &id) == 0)
      deleted.push_back(static_cast<int32_t>(id));
  return deleted;
}

uint32_t Collector::max_stacks() const { return bpf_map__max_entries(impl_->skel->maps.stacks); }

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
