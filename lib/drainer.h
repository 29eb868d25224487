// Turns the kernel's monotonic counters into rows: computes what is new since
// the last drain and writes it in one transaction. Kept apart from libbpf
// (it sees plain snapshots) so it can be tested without a kernel.
#pragma once

#include "cgroup_names.h"
#include "collector.h"
#include "exe_paths.h"
#include "flat_map.h"
#include "kallsyms.h"
#include "store.h"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace capaudit {

struct KernelSnapshot {
  std::vector<CheckCount> counts;
  std::vector<OriginCount> origins;
  CollectorStats stats;
  std::vector<InspectCount> inspections;
  // The generation counted into when the counts were read (Collector::epoch).
  uint64_t epoch = 0;
  // Read after a grace period following the move to `epoch`: the previous
  // generation's counts are final, and this drain stores all of them.
  bool retired_final = false;
};

using StackReader = std::function<std::vector<uint64_t>(int32_t stack_id)>;

struct DrainOptions {
  bool profiled = false;                  // rows written by `capaudit profile`
  std::vector<std::string> ignore_paths;  // path prefixes not stored
  // A key whose executable has no known path yet is held back this many
  // drains (its count stays in the kernel) before it is stored unresolved.
  int unresolved_grace_drains = 3;
  // Keep what was drained in the store's drain_state, for a daemon that may
  // restart on pinned maps. A one-shot drain (profile) must not: its keys
  // would collide with the daemon's in a shared database.
  bool persist_drain_state = true;
  // Record SHA-256, owner, mode and file capabilities of each new binary.
  bool record_identity = true;
};

struct DrainResult {
  bool ok = true;
  std::string error;         // why the transaction failed; nothing was lost
  uint64_t checks_added = 0; // sum of count deltas written
  size_t keys_written = 0;
  size_t keys_deferred = 0;  // waiting for a path
  size_t keys_ignored = 0;   // under ignore_paths
  uint64_t inspections_added = 0;  // sum of self-inspection count deltas written
};

class Drainer {
 public:
  Drainer(Store& store, ExePathResolver& paths, const Kallsyms* syms, DrainOptions opts);

  // Pinned maps adopted: resume from what the store says was already
  // written. Fresh maps: forget it (their counters start from zero).
  void resume(bool adopted_kernel_maps);
  // Drain into another store from now on (the old one was damaged and
  // moved aside): what was written there stays written, and the next drain
  // records the whole drain state in the new store, so a restart on pinned
  // maps resumes exactly from it.
  void rebind(Store& store);
  void set_options(DrainOptions opts) { opts_ = std::move(opts); }
  void set_kallsyms(const Kallsyms* syms) { syms_ = syms; }
  // Name the cgroups of the checks written (the cgroups table); null: not.
  void set_cgroups(CgroupCatalog* cgroups) { cgroups_ = cgroups; }

  DrainResult drain(const KernelSnapshot& snap, const StackReader& read_stack, int64_t now);
  // A drain in parts (the daemon: counts and origins chunk by chunk, each
  // its own transaction, then stats, inspections and the generation
  // marker): /proc is scanned once for the whole, and a rebind()'s whole
  // drain state is written by every part. Each part is exact on its own:
  // a key's rows and drain state commit together.
  void begin_parts();
  // ok: every part was written (a rebind()'s state is complete).
  void end_parts(bool ok);

  // Pruning, generation by generation (capaudit_maps.bpf.h): the newest
  // generation whose final counts are stored, and the newest whose maps were
  // emptied and drain state forgotten; -1 for none. Kept in drain_state, so
  // a restart on pinned maps goes on where the last run stopped.
  int64_t drained_generation() const;
  int64_t cleared_generation() const;
  // After the kernel emptied generation `gen`'s maps: its keys' drain state
  // goes (a key counted again starts from zero), in one transaction.
  bool forget_generation(uint64_t gen, std::string* err);
  // After the kernel deleted these origins: a sample taken again starts
  // from zero.
  bool forget_origins(const std::vector<OriginCount>& gone, std::string* err);
  // After the kernel deleted these stacks: their ids may name other stacks.
  void forget_stacks(const std::vector<int32_t>& ids);
  // Keys whose drain state is held in memory (all kinds).
  size_t keys_tracked() const;

  // Total of the counts written by this drainer since it started.
  uint64_t checks_written() const { return checks_written_; }

 private:
  struct Pending {
    uint8_t kind;
    uint64_t h;
    uint64_t value;
  };
  struct Resolved {
    bool ready = false;    // false: hold back for now
    bool ignored = false;
    BinaryKey key;
    bool stale = false;
  };
  Resolved resolve(const ca_check_key& k);
  // paths_.lookup (a stat of the file) once per executable and drain: a
  // drain of a million keys from a few binaries stats each binary once.
  // Emptied when /proc is scanned (a path may be learned) and between drains,
  // so a file replaced is seen by the next drain.
  struct CachedPath {
    std::optional<ResolvedPath> path;
    bool store_asked = false;  // the store's paths_of tried (for an unknown id)
  };
  CachedPath& lookup_path(const ExeId& id);
  std::unordered_map<ExeId, CachedPath, ExeIdHash> path_cache_;
  // Check rows by the key's hash ('c'), committed by an earlier part of
  // this drain: the origins part finds its checks' rows here instead of
  // upserting them again. Only committed rows, emptied at the end of the
  // drain and by rebind() (ids of the old store).
  FlatMap<int64_t> drain_check_rows_;
  void end_drain_caches();
  // Writes what is new of the self-inspection counts; false with *err.
  bool drain_inspections(const KernelSnapshot& snap, int64_t now, std::vector<Pending>& pending,
                         std::vector<Pending>& deferred_now, DrainResult& res, std::string* err);
  int64_t binary_row(const Resolved& r, int64_t now, std::string* err);
  int64_t stack_row(int32_t stack_id, const StackReader& read_stack);

  // What was drained of each kernel key, by kind (count_state_key): the
  // store's drain_state holds the keys, memory only their hashes (16 bytes
  // a key, whatever the key count). Named entries (stats, generation
  // markers) are few and kept by name.
  enum Kind { kC, kB, kK, kO, kI, kKinds };
  static int kind_index(char kind);
  struct KindState {
    FlatMap<uint64_t> written;
    FlatMap<int> deferred;  // drains held back
  };
  KindState kinds_[kKinds];
  std::map<std::string, uint64_t> named_;
  // Drain state of one key to write: into the store now, into memory on commit.
  bool note_written(char kind, const void* key, size_t size, uint64_t h, uint64_t value,
                    std::vector<Pending>* pending);
  // After rebind(): the new store gets the drain state of every key seen.
  bool persist_seen(char kind, const void* key, size_t size, uint64_t h);

  Store* store_;
  bool persist_all_state_ = false;  // after rebind()
  bool in_parts_ = false;
  bool scanned_in_parts_ = false;
  ExePathResolver& paths_;
  const Kallsyms* syms_;
  DrainOptions opts_;
  // Row ids of binaries written, and whether the row says its path is
  // stale: a file deleted or replaced since is written again (path_stale).
  // Forgotten on rollback: row ids may vanish with it.
  struct BinaryRowId {
    int64_t id;
    bool stale;
  };
  std::map<std::tuple<uint64_t, uint64_t, std::string, std::string>, BinaryRowId> binary_ids_;
  std::unordered_map<int32_t, int64_t> stack_rows_;
  // The cgroups' rows, and which revision of each the store holds.
  CgroupCatalog* cgroups_ = nullptr;
  bool write_cgroups(const std::vector<uint64_t>& ids, int64_t now,
                     std::unordered_map<uint64_t, uint64_t>* written);
  uint64_t checks_written_ = 0;
};

CheckFields check_fields(const ca_check_key& k, bool profiled);
// Bytes of the key, as stored in drain_state.
std::string key_bytes(char kind, const void* key, size_t size);
// The drain_state key of a count: 'c' or 'b' by the parity of its
// generation's map, 'k' for a cap_counts slot (never emptied).
std::string count_state_key(const CheckCount& c);
// Binary of the checks counted per capability only: the executable is lost.
inline constexpr const char* kCapOnlyComm = "[unknown: counts maps full]";

}  // namespace capaudit
