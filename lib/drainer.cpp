#include "drainer.h"

#include "display.h"
#include "identity.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

namespace capaudit {

namespace {

constexpr std::string_view kStatNames[CA_STAT_MAX] = {
    "checks",       "count_drops",   "origin_drops",    "stack_errors", "stack_walks",
    "exec_events",  "ringbuf_drops", "coarse_checks",   "cap_only_checks", "name_drops",
};

// drain_state keys of the generation markers (values: generation + 1).
const std::string kDrainedGen = "gdrained";
const std::string kClearedGen = "gcleared";

std::string comm_of(const ca_check_key& k) {
  return std::string(k.comm, strnlen(k.comm, sizeof k.comm));
}

bool under_prefix(const std::string& path, const std::string& prefix) {
  if (prefix.empty() || path.compare(0, prefix.size(), prefix) != 0) return false;
  return path.size() == prefix.size() || prefix.back() == '/' || path[prefix.size()] == '/';
}

}  // namespace

std::string key_bytes(char kind, const void* key, size_t size) {
  std::string out(1, kind);
  out.append(static_cast<const char*>(key), size);
  return out;
}

std::string count_state_key(const CheckCount& c) {
  char kind = (c.key.flags & CA_FLAG_CAP_ONLY) ? 'k' : (c.gen & 1) ? 'b' : 'c';
  return key_bytes(kind, &c.key, sizeof c.key);
}

CheckFields check_fields(const ca_check_key& k, bool profiled) {
  CheckFields f;
  f.cap = k.cap;
  f.ret = k.ret;
  f.audit = k.audit == CA_AUDIT_NO ? Audit::No : k.audit == CA_AUDIT_YES ? Audit::Yes : Audit::Unknown;
  f.insetid = (k.flags & CA_FLAG_INSETID) != 0;
  f.uid = k.uid;
  f.euid = k.euid;
  f.syscall = k.syscall_nr;
  f.target_ns_inum = k.target_ns_inum;
  f.target_ns_level = k.target_ns_level;
  f.cred_ns_inum = k.cred_ns_inum;
  f.cgroup_id = k.cgroup_id;
  f.cap_effective = k.cap_effective;
  f.profiled = profiled;
  if (k.flags & CA_FLAG_FINAL_KNOWN)
    f.final_verdict = (k.flags & CA_FLAG_FINAL_DENIED) ? FinalVerdict::Denied : FinalVerdict::Granted;
  f.arg = k.arg;
  if (k.flags & CA_FLAG_COARSE) {
    // What the coarse key lost is stored as no real check has it: no uid
    // (-1), no namespace (inum 0), no cgroup (0); docs/schema.md.
    f.coarse = true;
    f.uid = f.euid = UINT32_MAX;
    f.syscall = -1;
    f.target_ns_inum = f.cred_ns_inum = 0;
    f.cgroup_id = f.cap_effective = 0;
  }
  return f;
}

int Drainer::kind_index(char kind) {
  switch (kind) {
    case 'c': return kC;
    case 'b': return kB;
    case 'k': return kK;
    case 'o': return kO;
    case 'i': return kI;
    default: return -1;
  }
}

size_t Drainer::keys_tracked() const {
  size_t n = 0;
  for (const KindState& k : kinds_) n += k.written.size();
  return n;
}

int64_t Drainer::drained_generation() const {
  auto it = named_.find(kDrainedGen);
  return it == named_.end() ? -1 : static_cast<int64_t>(it->second) - 1;
}

int64_t Drainer::cleared_generation() const {
  auto it = named_.find(kClearedGen);
  return it == named_.end() ? -1 : static_cast<int64_t>(it->second) - 1;
}

bool Drainer::forget_generation(uint64_t gen, std::string* err) {
  const char kind = (gen & 1) ? 'b' : 'c';
  if (opts_.persist_drain_state) {
    if (!store_->begin(err)) return false;
    if (!store_->clear_drain_state_kind(kind) || !store_->set_drain_state(kClearedGen, gen + 1)) {
      *err = store_->last_error();
      store_->rollback();
      return false;
    }
    if (!store_->commit(err)) return false;
  }
  KindState& ks = kinds_[kind_index(kind)];
  ks.written.clear();
  ks.deferred.clear();
  named_[kClearedGen] = gen + 1;
  return true;
}

Drainer::Drainer(Store& store, ExePathResolver& paths, const Kallsyms* syms, DrainOptions opts)
    : store_(&store), paths_(paths), syms_(syms), opts_(std::move(opts)) {}

void Drainer::rebind(Store& store) {
  store_ = &store;
  if (cgroups_) cgroups_->forget_stored();
  binary_ids_.clear();
  stack_rows_.clear();
  end_drain_caches();
  persist_all_state_ = opts_.persist_drain_state;
}

void Drainer::resume(bool adopted_kernel_maps) {
  if (!opts_.persist_drain_state) return;
  for (KindState& k : kinds_) k = KindState{};
  named_.clear();
  if (adopted_kernel_maps) {
    // Streamed into the tables: the store's rows never sit in memory whole.
    store_->for_each_drain_state([this](std::string_view key, uint64_t value) {
      int ki = key.empty() ? -1 : kind_index(key[0]);
      if (ki < 0 || key.size() < 2) {
        named_[std::string(key)] = value;
        return;
      }
      kinds_[ki].written.set(key_hash(key[0], key.data() + 1, key.size() - 1), value);
    });
  } else if (!store_->clear_drain_state()) {
    spdlog::warn("could not clear old drain state in '{}': {}", store_->path(), store_->last_error());
  }
}

bool Drainer::note_written(char kind, const void* key, size_t size, uint64_t h, uint64_t value,
                           std::vector<Pending>* pending) {
  if (opts_.persist_drain_state && !store_->set_drain_state(key_bytes(kind, key, size), value)) return false;
  pending->push_back({static_cast<uint8_t>(kind_index(kind)), h, value});
  return true;
}

bool Drainer::persist_seen(char kind, const void* key, size_t size, uint64_t h) {
  if (!persist_all_state_) return true;
  const uint64_t* v = kinds_[kind_index(kind)].written.find(h);
  return !v || store_->set_drain_state(key_bytes(kind, key, size), *v);
}

bool Drainer::forget_origins(const std::vector<OriginCount>& gone, std::string* err) {
  if (gone.empty()) return true;
  if (opts_.persist_drain_state) {
    if (!store_->begin(err)) return false;
    for (const OriginCount& o : gone) {
      ca_origin_key k{};
      k.check = o.key;
      k.stack_id = o.stack_id;
      if (!store_->delete_drain_state(key_bytes('o', &k, sizeof(ca_check_key) + sizeof(int32_t)))) {
        *err = store_->last_error();
        store_->rollback();
        return false;
      }
    }
    if (!store_->commit(err)) return false;
  }
  for (const OriginCount& o : gone) {
    ca_origin_key k{};
    k.check = o.key;
    k.stack_id = o.stack_id;
    kinds_[kO].written.erase(key_hash('o', &k, sizeof(ca_check_key) + sizeof(int32_t)));
  }
  return true;
}

void Drainer::begin_parts() {
  in_parts_ = true;
  scanned_in_parts_ = false;
  end_drain_caches();
}

void Drainer::end_parts(bool ok) {
  in_parts_ = false;
  end_drain_caches();
  if (ok) persist_all_state_ = false;
}

void Drainer::forget_stacks(const std::vector<int32_t>& ids) {
  for (int32_t id : ids) stack_rows_.erase(id);
}

Drainer::Resolved Drainer::resolve(const ca_check_key& k) {
  Resolved r;
  // No executable to name these: their comm takes its place in the key.
  if (k.flags & CA_FLAG_CAP_ONLY) {
    r.ready = true;
    r.key.comm = kCapOnlyComm;
    return r;
  }
  if (k.flags & (CA_FLAG_KTHREAD | CA_FLAG_NO_EXE)) {
    r.ready = true;
    r.key.comm = comm_of(k);
    return r;
  }
  r.key.dev = kernel_dev_to_user(k.exe_dev);
  r.key.ino = k.exe_ino;
  const ExeId id{k.exe_dev, k.exe_ino};
  CachedPath& cached = lookup_path(id);
  if (!cached.path && !cached.store_asked) {
    // Not seen starting by this process (it ran while the daemon was down,
    // or before a restart): the database may know where the file is.
    cached.store_asked = true;
    for (const auto& known : store_->paths_of(r.key.dev, r.key.ino))
      if (paths_.learn_verified(id, known)) {
        cached.path = paths_.lookup(id);
        break;
      }
  }
  if (const auto& p = cached.path) {
    r.key.path = p->path;
    r.stale = p->stale;
    r.ready = true;
    for (const auto& prefix : opts_.ignore_paths)
      if (under_prefix(r.key.path, prefix)) r.ignored = true;
    return r;
  }
  return r;
}

Drainer::CachedPath& Drainer::lookup_path(const ExeId& id) {
  auto it = path_cache_.find(id);
  if (it != path_cache_.end()) return it->second;
  // Bounded like the maps' executables: a drain of more starts over.
  if (path_cache_.size() >= 65536) path_cache_.clear();
  return path_cache_.emplace(id, CachedPath{paths_.lookup(id), false}).first->second;
}

void Drainer::end_drain_caches() {
  path_cache_.clear();
  drain_check_rows_.clear();
}

int64_t Drainer::binary_row(const Resolved& r, int64_t now, std::string* err) {
  auto id_key = std::make_tuple(r.key.dev, r.key.ino, r.key.path, r.key.comm);
  auto cached = binary_ids_.find(id_key);
  if (cached != binary_ids_.end() && cached->second.stale == r.stale) return cached->second.id;
  int64_t id = store_->upsert_binary(r.key, r.stale, now);
  if (id == 0) {
    *err = store_->last_error();
    return 0;
  }
  if (opts_.record_identity && !r.key.path.empty() && !r.stale) {
    std::string why;
    if (auto ident = read_file_identity(r.key.path, &why);
        ident && ident->dev == r.key.dev && ident->ino == r.key.ino) {
      store_->set_binary_identity(id, *ident);
    } else if (!ident) {
      spdlog::debug("no identity for {}: {}", quote_for_display(r.key.path), escape_for_display(why));
    }
  }
  binary_ids_.insert_or_assign(std::move(id_key), BinaryRowId{id, r.stale});
  return id;
}

int64_t Drainer::stack_row(int32_t stack_id, const StackReader& read_stack) {
  if (auto it = stack_rows_.find(stack_id); it != stack_rows_.end()) return it->second;
  std::vector<uint64_t> addrs = read_stack(stack_id);
  if (addrs.empty()) return 0;
  std::vector<std::string> frames;
  frames.reserve(addrs.size());
  for (uint64_t a : addrs) {
    if (syms_) {
      frames.push_back(syms_->symbolize(a));
    } else {
      char buf[32];
      snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(a));
      frames.emplace_back(buf);
    }
  }
  int64_t row = store_->put_stack(frames, stack_origin(frames));
  if (row != 0) stack_rows_.emplace(stack_id, row);
  return row;
}

bool Drainer::drain_inspections(const KernelSnapshot& snap, int64_t now, std::vector<Pending>& pending,
                                std::vector<Pending>& deferred_now, DrainResult& res, std::string* err) {
  KindState& ks = kinds_[kI];
  for (const auto& c : snap.inspections) {
    const uint64_t h = key_hash('i', &c.key, sizeof c.key);
    uint64_t before = ks.written.get(h);
    uint64_t delta = c.count >= before ? c.count - before : c.count;
    if (delta == 0) continue;
    // Named like a check of the same task: the key's identity part is the same.
    ca_check_key as_check{};
    std::memcpy(as_check.comm, c.key.comm, sizeof as_check.comm);
    as_check.flags = c.key.flags;
    Resolved r = resolve(as_check);
    if (!r.ready) {
      int waited = ks.deferred.get(h) + 1;
      if (waited <= opts_.unresolved_grace_drains) {
        deferred_now.push_back({kI, h, static_cast<uint64_t>(waited)});
        continue;
      }
    }
    if (r.ignored) {
      pending.push_back({kI, h, c.count});
      continue;
    }
    int64_t bin = binary_row(r, now, err);
    if (bin == 0) {
      *err = "storing binary " + quote_for_display(r.key.path) + ": " + *err;
      return false;
    }
    SelfInspectionRow row{bin, c.key.kind, c.key.cap, opts_.profiled, delta, now, now};
    if (!store_->add_self_inspection(row) || !note_written('i', &c.key, sizeof c.key, h, c.count, &pending)) {
      *err = store_->last_error();
      return false;
    }
    res.inspections_added += delta;
  }
  return true;
}

bool Drainer::write_cgroups(const std::vector<uint64_t>& ids, int64_t now,
                            std::unordered_map<uint64_t, uint64_t>* written) {
  if (!cgroups_) return true;
  cgroups_->name_pending(now);
  cgroups_->find(ids, now);
  for (uint64_t id : ids) {
    const CgroupRow* row = cgroups_->lookup(id, now);
    if (!row) continue;
    uint64_t rev = cgroups_->revision(id);
    if (cgroups_->stored_revision(id) == rev) continue;
    CgroupRow r = *row;
    r.last_seen = now;
    if (!store_->upsert_cgroup(r)) return false;
    (*written)[id] = rev;
  }
  return true;
}

DrainResult Drainer::drain(const KernelSnapshot& snap, const StackReader& read_stack, int64_t now) {
  DrainResult res;
  std::vector<Pending> pending;  // drain state of keys, applied to memory on commit
  std::map<std::string, uint64_t> pending_named;
  std::vector<Pending> deferred_now;
  auto fail = [&](std::string why) {
    store_->rollback();
    // Row ids learned inside the failed transaction are gone with it.
    binary_ids_.clear();
    stack_rows_.clear();
    if (!in_parts_) end_drain_caches();
    res.ok = false;
    res.error = std::move(why);
    res.checks_added = 0;
    return res;
  };
  // Processes that started before the daemon, or whose exec event was
  // missed, are found in /proc: one scan per drain, only when needed.
  const int64_t retired = snap.epoch >= 1 ? static_cast<int64_t>(snap.epoch) - 1 : -1;
  // The retired generation's counts are all stored once drained final;
  // until its maps are emptied they are read again and must be passed by.
  const bool retired_stored = retired < 0 || drained_generation() >= retired;
  auto passed_by = [&](const CheckCount& c) {
    return !(c.key.flags & CA_FLAG_CAP_ONLY) && (c.gen & 1) != (snap.epoch & 1) && retired_stored;
  };
  auto count_kind = [](const CheckCount& c) -> char {
    return (c.key.flags & CA_FLAG_CAP_ONLY) ? 'k' : (c.gen & 1) ? 'b' : 'c';
  };
  auto unnamed_count = [&](const CheckCount& c) {
    if (passed_by(c)) return false;
    const char kind = count_kind(c);
    const uint64_t* w = kinds_[kind_index(kind)].written.find(key_hash(kind, &c.key, sizeof c.key));
    if (w && *w == c.count) return false;
    return !(c.key.flags & (CA_FLAG_KTHREAD | CA_FLAG_NO_EXE | CA_FLAG_CAP_ONLY)) &&
           !lookup_path(ExeId{c.key.exe_dev, c.key.exe_ino}).path;
  };
  auto unnamed_inspection = [&](const InspectCount& c) {
    const uint64_t* w = kinds_[kI].written.find(key_hash('i', &c.key, sizeof c.key));
    if (w && *w == c.count) return false;
    return !(c.key.flags & (CA_FLAG_KTHREAD | CA_FLAG_NO_EXE)) && !lookup_path(ExeId{c.key.exe_dev, c.key.exe_ino}).path;
  };
  if ((!in_parts_ || !scanned_in_parts_) &&
      (std::any_of(snap.counts.begin(), snap.counts.end(), unnamed_count) ||
       std::any_of(snap.inspections.begin(), snap.inspections.end(), unnamed_inspection))) {
    paths_.scan_proc();
    path_cache_.clear();  // what the scan learned
    scanned_in_parts_ = true;
  }
  if (!store_->begin(&res.error)) return fail(res.error);

  if (persist_all_state_) {
    // A new store after rebind(): first what the old one held of every key
    // still in the kernel (this drain's writes come after, and win).
    for (const auto& [k, v] : named_)
      if (!store_->set_drain_state(k, v)) return fail(store_->last_error());
    for (const auto& c : snap.counts) {
      const char kind = count_kind(c);
      if (!persist_seen(kind, &c.key, sizeof c.key, key_hash(kind, &c.key, sizeof c.key)))
        return fail(store_->last_error());
    }
    for (const auto& o : snap.origins)
      if (!persist_seen('o', &o, sizeof(ca_check_key) + sizeof(int32_t),
                        key_hash('o', &o, sizeof(ca_check_key) + sizeof(int32_t))))
        return fail(store_->last_error());
    for (const auto& c : snap.inspections)
      if (!persist_seen('i', &c.key, sizeof c.key, key_hash('i', &c.key, sizeof c.key)))
        return fail(store_->last_error());
  }

  // Check rows by the key's hash, so origins can find the row of their check.
  FlatMap<int64_t> check_rows;
  FlatMap<uint8_t> skipped;  // key held back or ignored: not stored
  uint64_t added = 0;
  std::vector<uint64_t> cgroup_ids;

  for (const auto& c : snap.counts) {
    if (passed_by(c)) continue;
    const char kind = count_kind(c);
    KindState& ks = kinds_[kind_index(kind)];
    const uint64_t h = key_hash(kind, &c.key, sizeof c.key);
    // Check rows by the key alone: both generations may hold it.
    const uint64_t raw = key_hash('c', &c.key, sizeof c.key);
    // The last look at a retired generation's count: nothing is held back.
    const bool final = (c.gen & 1) != (snap.epoch & 1) && !(c.key.flags & CA_FLAG_CAP_ONLY);
    uint64_t before = ks.written.get(h);
    // A smaller value means the kernel map was recreated under us.
    uint64_t delta = c.count >= before ? c.count - before : c.count;
    if (delta == 0) continue;
    Resolved r = resolve(c.key);
    if (!r.ready) {
      int waited = ks.deferred.get(h) + 1;
      if (waited <= opts_.unresolved_grace_drains && !final) {
        deferred_now.push_back({static_cast<uint8_t>(kind_index(kind)), h, static_cast<uint64_t>(waited)});
        // Its cgroup's name is wanted when it is stored: kept by trim() as used.
        if (cgroups_) cgroups_->touch(c.key.cgroup_id);
        skipped.set(raw, 1);
        res.keys_deferred++;
        continue;
      }
      r.ready = true;  // stored unresolved: path "" with its dev/ino
    }
    if (r.ignored) {
      pending.push_back({static_cast<uint8_t>(kind_index(kind)), h, c.count});
      skipped.set(raw, 1);
      res.keys_ignored++;
      continue;
    }
    std::string err;
    int64_t bin = binary_row(r, now, &err);
    if (bin == 0) return fail("storing binary " + quote_for_display(r.key.path) + ": " + err);
    int64_t row = store_->add_check(bin, check_fields(c.key, opts_.profiled), delta, now);
    if (row == 0) return fail(store_->last_error());
    if (!note_written(kind, &c.key, sizeof c.key, h, c.count, &pending)) return fail(store_->last_error());
    check_rows.set(raw, row);
    cgroup_ids.push_back(c.key.cgroup_id);
    added += delta;
    res.keys_written++;
  }
  if (snap.retired_final && !retired_stored) {
    const std::string& gk = kDrainedGen;
    if (opts_.persist_drain_state && !store_->set_drain_state(gk, static_cast<uint64_t>(retired) + 1))
      return fail(store_->last_error());
    pending_named[gk] = static_cast<uint64_t>(retired) + 1;
  }

  for (const auto& o : snap.origins) {
    const uint64_t ck = key_hash('c', &o.key, sizeof o.key);
    if (skipped.contains(ck)) continue;
    const size_t osize = sizeof(ca_check_key) + sizeof(int32_t);
    const uint64_t oh = key_hash('o', &o, osize);
    uint64_t before = kinds_[kO].written.get(oh);
    uint64_t delta = o.samples >= before ? o.samples - before : o.samples;
    if (delta == 0) continue;
    int64_t check_row = check_rows.get(ck);
    if (check_row == 0) check_row = drain_check_rows_.get(ck);
    if (check_row == 0) {
      // Sampled after its count was drained: find the row with a zero add.
      Resolved r = resolve(o.key);
      if (!r.ready || r.ignored) continue;
      std::string err;
      int64_t bin = binary_row(r, now, &err);
      if (bin == 0) return fail("storing binary " + quote_for_display(r.key.path) + ": " + err);
      check_row = store_->add_check(bin, check_fields(o.key, opts_.profiled), 0, now);
      if (check_row == 0) return fail(store_->last_error());
      check_rows.set(ck, check_row);  // the check's other origins
    }
    int64_t srow = stack_row(o.stack_id, read_stack);
    if (srow == 0) continue;  // stack evicted or unreadable: the count is still exact
    if (!store_->add_origin(check_row, srow, delta)) return fail(store_->last_error());
    if (!note_written('o', &o, osize, oh, o.samples, &pending)) return fail(store_->last_error());
  }

  if (std::string err; !drain_inspections(snap, now, pending, deferred_now, res, &err)) return fail(err);

  for (int i = 0; i < CA_STAT_MAX; i++) {
    std::string name(kStatNames[i]);
    std::string sk = "s" + name;
    uint64_t cur = snap.stats.v[i];
    uint64_t before = 0;
    if (auto it = named_.find(sk); it != named_.end()) before = it->second;
    uint64_t delta = cur >= before ? cur - before : cur;
    if (delta == 0) continue;
    if (!store_->add_stat(name, delta)) return fail(store_->last_error());
    if (opts_.persist_drain_state && !store_->set_drain_state(sk, cur)) return fail(store_->last_error());
    pending_named[sk] = cur;
  }

  std::sort(cgroup_ids.begin(), cgroup_ids.end());
  cgroup_ids.erase(std::unique(cgroup_ids.begin(), cgroup_ids.end()), cgroup_ids.end());
  std::unordered_map<uint64_t, uint64_t> cgroups_written;
  if (!write_cgroups(cgroup_ids, now, &cgroups_written)) return fail(store_->last_error());

  std::string err;
  if (!store_->commit(&err)) return fail(err);
  // In parts, every part carries the old store's state of its own keys.
  if (!in_parts_) persist_all_state_ = false;
  for (auto& [id, rev] : cgroups_written) cgroups_->set_stored(id, rev);
  for (const Pending& p : pending) {
    kinds_[p.kind].written.set(p.h, p.value);
    kinds_[p.kind].deferred.erase(p.h);
  }
  for (auto& [k, v] : pending_named) named_[k] = v;
  if (in_parts_) check_rows.for_each([this](uint64_t h, int64_t row) { drain_check_rows_.set(h, row); });
  else end_drain_caches();
  for (const Pending& p : deferred_now) kinds_[p.kind].deferred.set(p.h, static_cast<int>(p.value));
  // The retired generation, stored final, is passed by from now on: what
  // was drained of it is needed no more (the store keeps it until cleared).
  if (retired >= 0 && drained_generation() >= retired && cleared_generation() < retired) {
    KindState& old = kinds_[(retired & 1) ? kB : kC];
    old.written.clear();
    old.deferred.clear();
  }
  // Row ids are stable once committed; keep the binary cache bounded anyway.
  if (binary_ids_.size() > 16384) binary_ids_.clear();
  res.checks_added = added;
  checks_written_ += added;
  return res;
}

}  // namespace capaudit
