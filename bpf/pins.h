// Pinning under bpffs and adopting what an earlier run pinned: the maps (so
// counts survive the daemon), the cap_capable link (so counting goes on while
// it is down) and the exec link (so execs made meanwhile name their binaries).
//
// Free of the generated skeleton, so the parts that need no BPF can be tested
// without root.
#pragma once

#include "collector.h"
#include "owners.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

struct capaudit_bpf;

namespace capaudit {

// Maps whose contents must survive the daemon; the pinned programs write
// into them, so a restart reads on where the last run stopped. exec_events
// too: execs made while the daemon is down wait there to name their
// binaries (as many as its 256 KiB hold), and exe_names keeps their paths
// beyond that.
// inspections: its counts and the drain state written from them stay in step.
inline constexpr const char* kPinnedMaps[] = {
    "counts", "counts_b",  "coarse", "coarse_b", "cap_counts",  "epoch",    "key_quota",
    "origins", "stacks", "stats",  "tracked",  "meta",       "exec_events", "exe_names",
    "inspections", "hot_keys"};
// The link of the exec program (tp_btf/sched_process_exec).
inline constexpr const char* kExecLinkPin = "link_exec";
// The final-verdict links, in final_verdict_programs() order.
inline constexpr const char* kFinalLinkPins[] = {"link_final_fexit", "link_final_fentry"};

// Pin names of the inline-site links of `sites`, in inline_site_programs()
// order (fentry, fexit per site). Pinned with the cap_capable link and
// adopted with it, all or none: the programs of one run share the site guard
// and the final-verdict slot, which are not pinned.
std::vector<std::string> site_link_pin_names(const std::vector<std::string>& sites);

// Pin names of a method's links, in method_programs() order.
std::vector<std::string> link_pin_names(AttachMethod m);
// Every name capaudit may pin in its directory.
std::vector<std::string> all_pin_names();

// What start() found in the pin directory.
struct PinPlan {
  std::string dir;
  bool reuse = false;                              // compatible maps found
  std::optional<ca_pin_meta> meta;                 // when reuse
  std::vector<std::pair<const char*, Fd>> maps;    // when reuse: name, pinned map
};

// Makes sure dir can hold pins (mounting bpffs on /sys/fs/bpf when dir is
// under it and nothing is mounted there), creates it, and checks any pins an
// earlier run left against this build's maps. Incompatible pins are removed
// with a log line saying why. Throws CollectorError.
PinPlan prepare_pins(const std::string& dir);
// Throws CollectorError unless dir is, or would be, on a bpf filesystem.
void ensure_bpffs(const std::string& dir);
// Removes every capaudit pin in dir (not dir itself).
void remove_pins(const std::string& dir);

// Part of configure_before_load(): the object's maps become the pinned ones.
// Returns 0 or a negative errno.
int reuse_pinned_maps(capaudit_bpf* s, const PinPlan& plan);

// FNV-1a over every setting baked into the cap_capable program at load: a
// pinned link is adopted only when its program was loaded with the same.
// guard_sites: the program marks the inline-site guard (configure.h); mixed
// in only when set, so hashes made before it existed still match.
// final_verdict: loaded with the security_capable programs; likewise mixed
// in only when set. The object's own bytes are mixed in too: another build's
// program (an upgrade that kept the map layout) is replaced, not run on.
uint64_t config_hash(const CollectorOptions& o, AttachMethod m, bool old_audit,
                     bool guard_sites = false, bool final_verdict = false);

// What an earlier run left attached, adopted whole.
struct AdoptedLinks {
  std::vector<LinkPtr> cap;    // method_programs() order; empty: nothing adopted
  std::vector<LinkPtr> site;   // site_link_pin_names(sites) order
  std::vector<LinkPtr> final;  // kFinalLinkPins order
};

// The pinned links of method m, with those of the inline sites and of the
// final verdict this run loads, when the maps are reused and their meta says
// they were made by m with this config; nothing otherwise (with a log line).
AdoptedLinks adopt_links(const PinPlan& plan, AttachMethod m, uint64_t config,
                         const std::vector<std::string>& sites, bool final_verdict);
// The pinned exec link, if there is one and it can be opened.
LinkPtr adopt_exec_link(const PinPlan& plan);

}  // namespace capaudit
