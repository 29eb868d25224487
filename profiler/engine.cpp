#include "engine.h"

#include "capaudit.h"
#include "capnames.h"
#include "text.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

namespace capaudit {
namespace {

constexpr const char* kProfileHint = "capaudit profile --user nobody -- CMD";

uint64_t bit(int cap) { return (cap >= 0 && cap < 64) ? uint64_t{1} << cap : 0; }

std::string times(uint64_t n) { return n == 1 ? "once" : std::to_string(n) + " times"; }

// One origin of a check row, or the row itself when no stack was recorded
// (origin "" and no frames: only rules without origin or via constraints,
// or matching on the INSETID flag, can apply).
struct Site {
  std::string_view origin;  // the OriginRow's, which outlives the analysis
  const std::vector<std::string>* frames;
  int64_t stack_id = 0;  // the database's stack row; 0 when unknown
};

const std::vector<std::string> kNoFrames;

std::vector<Site> sites_of(const ObservedCheck& c) {
  std::vector<Site> out;
  for (const OriginRow& o : c.origins) out.push_back({o.origin, &o.frames.get(), o.stack_id});
  if (out.empty()) out.push_back({"", &kNoFrames, 0});
  return out;
}

// What the table says about a capability at a site depends on the site's
// stack only, not on the binary: a database holds tens of thousands of
// checks but a few hundred distinct stacks, so each pair is matched once.
class RuleMatcher {
 public:
  explicit RuleMatcher(const Rules& rules) : rules_(rules) {}

  // Valid until the next call.
  const std::vector<const Rule*>& match_all(int cap, const Site& s, bool insetid, const CallEvidence& call) {
    if (!s.stack_id) return unkeyed_ = rules_.match_all(cap, s.origin, *s.frames, insetid, call);
    auto [it, fresh] = all_.try_emplace(Key{cap, insetid, s.stack_id, s.origin, call});
    if (fresh) it->second = rules_.match_all(cap, s.origin, *s.frames, insetid, call);
    return it->second;
  }

  // The alternative whose narrow capability `cap` is, matching at s.
  const Rule* narrow_of(int cap, const Site& s) {
    if (!s.stack_id) return find_narrow_of(cap, s);
    auto [it, fresh] = narrow_.try_emplace(Key{cap, false, s.stack_id, s.origin, {}});
    if (fresh) it->second = find_narrow_of(cap, s);
    return it->second;
  }

 private:
  struct Key {
    int cap;
    bool insetid;
    int64_t stack_id;
    std::string_view origin;  // the observations', which outlive the matcher
    CallEvidence call;
    auto operator<=>(const Key&) const = default;
  };
  const Rule* find_narrow_of(int cap, const Site& s) const {
    for (const Rule& alt : rules_.all()) {
      if (alt.kind == RuleKind::Alternative && alt.narrow == cap &&
          Rules::matches(alt, alt.caps.front(), s.origin, *s.frames))
        return &alt;
    }
    return nullptr;
  }
  const Rules& rules_;
  std::vector<const Rule*> unkeyed_;
  std::map<Key, std::vector<const Rule*>> all_;
  std::map<Key, const Rule*> narrow_;
};

CallEvidence call_of(const CheckFields& f) { return {f.arg, f.syscall >= 0}; }

bool syscall_compatible(int32_t a, int32_t b) { return a < 0 || b < 0 || a == b; }

bool has_origin(const ObservedCheck& c, std::string_view origin) {
  return std::any_of(c.origins.begin(), c.origins.end(), [&](const OriginRow& o) { return o.origin == origin; });
}

// What we concluded about one check row.
struct RowState {
  const ObservedCheck* check = nullptr;
  bool init_ns = true;
  bool required = false;
  std::vector<std::string> reasons;
  std::vector<int> replaced_by;      // narrower capabilities that do this row's job
  uint64_t narrow_budget = 0;        // denied narrow row: uses not yet paired with a wide grant
  std::vector<std::string> evidence_for;  // denied narrow row: "cap_x at origin" it stands in for
  bool paired_but_wide_kept = false;      // denied narrow row paired with a wide grant that stays
  const Rule* narrow_alt = nullptr;       // granted, and at every origin the narrow side of this alternative
};

// The decision one origin of a granted row gets from the table.
struct SiteDecision {
  std::string_view origin;
  std::vector<const Rule*> alternatives;  // applicable alternatives (narrow-first ones paired)
  const Rule* rule = nullptr;             // first non-alternative rule, if any
  const Rule* narrow_of = nullptr;        // the row's cap is this alternative's narrow capability
};

class BinaryAnalyzer {
 public:
  BinaryAnalyzer(RuleMatcher& rules, std::vector<RowState>& rows) : rules_(rules), rows_(rows) {}

  void run() {
    for (RowState& r : rows_) {
      r.init_ns = r.check->row.f.target_ns_level == 0;
      if (!r.init_ns) continue;
      if (r.check->row.f.ret != 0) r.narrow_budget = r.check->row.count;
    }
    for (RowState& r : rows_) {
      if (!r.init_ns) {
        decide_other_ns(r);
      } else if (r.check->row.f.lsm_denied()) {
        decide_lsm_denied(r);
      } else if (r.check->row.f.ret == 0) {
        decide_granted(r);
      }
    }
    drop_covered_narrows();
    // Denied rows last: whether they stand in for a wide grant is known now.
    for (RowState& r : rows_) {
      if (r.init_ns && r.check->row.f.ret != 0) decide_denied(r);
    }
  }

 private:
  void decide_other_ns(RowState& r) {
    r.required = false;
    r.reasons.push_back("checked against a user namespace other than the initial one (level " +
                        std::to_string(r.check->row.f.target_ns_level) +
                        "): the process holds every capability in a namespace it created, so this never "
                        "justifies a capability on the host");
  }

  // The program went on without the capability: an LSM refused what commoncap
  // granted, so this check shows no use of it.
  void decide_lsm_denied(RowState& r) {
    r.required = false;
    r.reasons.push_back("granted by commoncap but denied by an LSM (security_capable's final verdict): the "
                        "program ran without it, so this check does not justify it");
  }

  // Denied narrow rows at `origin` the wide row could have been replaced by.
  std::vector<RowState*> paired_narrow_rows(const RowState& wide, int narrow, std::string_view origin) {
    std::vector<RowState*> out;
    if (origin.empty()) return out;
    for (RowState& n : rows_) {
      const CheckFields& f = n.check->row.f;
      if (!n.init_ns || f.ret == 0 || f.cap != narrow) continue;
      if (!syscall_compatible(f.syscall, wide.check->row.f.syscall)) continue;
      if (has_origin(*n.check, origin)) out.push_back(&n);
    }
    return out;
  }

  SiteDecision decide_site(const RowState& r, const Site& s) {
    const CheckFields& f = r.check->row.f;
    SiteDecision d{s.origin, {}, nullptr, nullptr};
    for (const Rule* rule : rules_.match_all(f.cap, s, f.insetid, call_of(f))) {
      if (rule->kind != RuleKind::Alternative) {
        d.rule = rule;
        break;
      }
      // The kernel asks the narrow capability first: a wide check that was
      // not preceded by a denied narrow one at the same place is some other
      // check of the wide capability, to which this rule does not apply.
      if (rule->narrow_first && paired_narrow_rows(r, *rule->narrow, s.origin).empty()) continue;
      d.alternatives.push_back(rule);
    }
    if (!d.rule && d.alternatives.empty()) d.narrow_of = rules_.narrow_of(f.cap, s);
    return d;
  }

  // Required or not, with the reason, for one origin decided without the
  // alternatives (or when they do not cover every use).
  std::pair<bool, std::string> decide_plain(const RowState& r, const SiteDecision& d) {
    const CheckFields& f = r.check->row.f;
    if (d.rule) {
      const Rule& rule = *d.rule;
      switch (rule.kind) {
        case RuleKind::Probe:
          return {false, "a probe (" + rule.name + "): " + rule.reason};
        case RuleKind::NoNewPrivs:
          return {false, "no_new_privs (" + rule.name + "): " + rule.reason};
        case RuleKind::Requirement:
          return {true, "needed (" + rule.name + "): " + rule.reason};
        case RuleKind::CheckedFirst:
          return {rule.keep_when_granted, (rule.keep_when_granted ? "checked first (" : "checked first, dropped (") +
                                              rule.name + "): " + rule.reason};
        case RuleKind::Alternative:
          break;  // never in d.rule
      }
    }
    if (f.audit == Audit::No)
      return {false, "the kernel did not audit it" + at(d.origin) + " and no rule claims it: a probe"};
    if (d.narrow_of) {
      return {true, "granted" + at(d.origin) + ": the narrower choice of " + cap_name(d.narrow_of->caps.front()) +
                        " (" + d.narrow_of->name + "), so needed"};
    }
    if (d.origin.empty()) {
      return {true, f.audit == Audit::Unknown
                        ? "kept because it was granted: no stack was recorded, so neither its origin nor whether "
                          "the kernel audits it is known"
                        : "kept because it was granted (no stack was recorded)"};
    }
    return {true, "no rule for origin " + std::string(d.origin) + "; kept because it was granted"};
  }

  static std::string at(std::string_view origin) {
    return origin.empty() ? std::string() : " at " + std::string(origin);
  }

  void decide_granted(RowState& r) {
    std::vector<SiteDecision> decisions;
    for (const Site& s : sites_of(*r.check)) decisions.push_back(decide_site(r, s));
    if (std::all_of(decisions.begin(), decisions.end(), [&](const SiteDecision& d) {
          return d.narrow_of && d.narrow_of == decisions.front().narrow_of;
        }))
      r.narrow_alt = decisions.front().narrow_of;

    bool any_alternative = std::any_of(decisions.begin(), decisions.end(),
                                       [](const SiteDecision& d) { return !d.alternatives.empty(); });
    std::string partial_note;
    if (any_alternative && try_replace(r, decisions, &partial_note)) return;

    std::vector<std::string> needed, not_needed, unruled;
    bool wide_kept = !partial_note.empty();
    for (const SiteDecision& d : decisions) {
      // Uses an alternative could not take over: the partial note says why they stay.
      if (!d.alternatives.empty() && !d.rule) {
        wide_kept = true;
        continue;
      }
      if (!d.rule && !d.narrow_of && !d.origin.empty() && r.check->row.f.audit != Audit::No) {
        unruled.emplace_back(d.origin);
        continue;
      }
      auto [req, why] = decide_plain(r, d);
      (req ? needed : not_needed).push_back(std::move(why));
    }
    if (!unruled.empty()) {
      needed.insert(needed.begin(), std::string(unruled.size() == 1 ? "no rule for origin " : "no rule for origins ") +
                                        join(unruled, ", ") + "; kept because it was granted");
    }
    r.required = wide_kept || !needed.empty();
    r.reasons = r.required ? needed : not_needed;
    if (!partial_note.empty()) r.reasons.insert(r.reasons.begin(), partial_note);
  }

  // Every use of the wide row done by narrower capabilities? Commits the
  // pairing (and the denied narrow rows as evidence) only when it is.
  bool try_replace(RowState& r, const std::vector<SiteDecision>& decisions, std::string* partial_note) {
    const std::string wide = cap_name(r.check->row.f.cap);
    // An origin no alternative covers must itself need nothing.
    for (const SiteDecision& d : decisions) {
      if (d.alternatives.empty() && decide_plain(r, d).first) return false;
    }
    uint64_t need = r.check->row.count;
    bool narrow_first_seen = false;
    std::map<RowState*, uint64_t> take;
    std::vector<int> narrows;
    std::vector<std::string> whys;
    for (const SiteDecision& d : decisions) {
      for (const Rule* alt : d.alternatives) {
        uint64_t taken = 0;
        if (alt->narrow_first) {
          narrow_first_seen = true;
          for (RowState* n : paired_narrow_rows(r, *alt->narrow, d.origin)) {
            uint64_t t = std::min(n->narrow_budget - take[n], need);
            take[n] += t;
            need -= t;
            taken += t;
          }
        }
        // Wide asked first: the narrow one does every such use.
        if (alt->narrow_first && taken == 0) continue;
        narrows.push_back(*alt->narrow);
        whys.push_back(alt->name + ": " + alt->reason);
      }
    }
    if (narrow_first_seen && need > 0) {
      uint64_t matched = r.check->row.count - need;
      *partial_note = matched == 0
                          ? "kept: the denied narrower checks at the same place are accounted for by other grants"
                          : "a narrower capability would do for " + std::to_string(matched) + " of " +
                                std::to_string(r.check->row.count) + " uses (" + join(whys, "; ") + "); the other " +
                                std::to_string(need) + " need " + wide + " itself";
      for (auto& [n, t] : take) {
        if (t > 0) n->paired_but_wide_kept = true;
      }
      return false;
    }
    sort_caps_by_name(narrows);
    std::vector<std::string> names = cap_names(narrows);
    for (auto& [n, t] : take) {
      if (t == 0) continue;
      n->narrow_budget -= t;
      n->evidence_for.push_back(wide + at(first_origin(r)));
    }
    r.required = false;
    r.replaced_by = narrows;
    r.reasons.push_back(join(names, ", ") + " would do (" + join(whys, "; ") + "): recommended instead");
    return true;
  }

  // A narrow capability adds nothing when its wide alternative is needed
  // anyway: the wide one passes the same check (generic_permission lets
  // cap_dac_override do what cap_dac_read_search does).
  void drop_covered_narrows() {
    std::set<int> needed_anyway;
    for (const RowState& r : rows_) {
      if (r.init_ns && r.required && r.check->row.f.ret == 0 && !r.narrow_alt) needed_anyway.insert(r.check->row.f.cap);
    }
    for (RowState& r : rows_) {
      if (!r.required || !r.narrow_alt) continue;
      int wide = r.narrow_alt->caps.front();
      if (!needed_anyway.count(wide)) continue;
      r.required = false;
      r.reasons = {"not needed: " + cap_name(wide) + ", needed for other uses anyway, passes the same check (" +
                   r.narrow_alt->name + ")"};
    }
  }

  static std::string first_origin(const RowState& r) {
    return r.check->origins.empty() ? std::string() : r.check->origins.front().origin;
  }

  void decide_denied(RowState& r) {
    const CheckFields& f = r.check->row.f;
    const std::string cap = cap_name(f.cap);
    if (!r.evidence_for.empty()) {
      std::vector<std::string> wides = r.evidence_for;
      std::sort(wides.begin(), wides.end());
      wides.erase(std::unique(wides.begin(), wides.end()), wides.end());
      r.required = true;
      r.reasons.push_back(join(wides, ", ") + " was granted right after for the same operation: " + cap +
                          " is enough there, so it is recommended instead");
      return;
    }
    r.required = false;
    if (r.paired_but_wide_kept) {
      r.reasons.push_back("not needed: the wider capability granted right after is needed for other uses anyway "
                          "and covers these");
      return;
    }
    for (const Site& s : sites_of(*r.check)) {
      // A denied wide check is no pair's second half: its alternatives say nothing here.
      const Rule* rule = nullptr;
      for (const Rule* m : rules_.match_all(f.cap, s, f.insetid, call_of(f))) {
        if (m->kind != RuleKind::Alternative) {
          rule = m;
          break;
        }
      }
      if (rule && rule->kind == RuleKind::Probe) {
        r.reasons.push_back("a probe (" + rule->name + "): " + rule->reason);
        return;
      }
      if (rule && rule->kind == RuleKind::NoNewPrivs) {
        r.reasons.push_back(rule->reason);
        return;
      }
    }
    if (f.audit == Audit::No) {
      r.reasons.push_back("the kernel did not audit it: a probe");
      return;
    }
    r.reasons.push_back("if the program failed because of it, it needs " + cap);
  }

  RuleMatcher& rules_;
  std::vector<RowState>& rows_;
};

// The PR_CAPBSET_READ calls libcap makes at start-up (its constructor finds
// the highest capability the kernel knows by binary search over 0..64):
// for each possible answer `last`, the capabilities it reads, in order.
std::vector<int> libcap_probe(int last) {
  std::vector<int> out;
  int lo = 0, hi = 64;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    out.push_back(mid);
    if (mid > last) hi = mid - 1;
    else lo = mid + 1;
  }
  return out;
}

// Times the program asked what it holds, less what libcap asks by itself:
// every program linked with libcap reads a few bounding-set bits at start-up,
// which says nothing about the program. Version-only capget calls and
// capget of another process do not count either.
uint64_t count_self_inspections(const std::vector<const Observation*>& group) {
  uint64_t n = 0;
  std::map<int, uint64_t> bset;  // capability -> reads
  for (const Observation* o : group) {
    for (const SelfInspectionRow& r : o->self_inspections) {
      if (r.kind == CA_INSPECT_CAPGET || r.kind == CA_INSPECT_AMBIENT) n += r.count;
      if (r.kind == CA_INSPECT_BSET) bset[r.cap] += r.count;
    }
  }
  // The answer whose probe explains the most reads, as many times as it ran.
  uint64_t best_reads = 0, best_k = 0;
  std::vector<int> best;
  for (int last = 0; last < 64 && !bset.empty(); last++) {
    std::vector<int> probe = libcap_probe(last);
    uint64_t k = UINT64_MAX;
    for (int c : probe) k = std::min(k, bset.count(c) ? bset[c] : 0);
    if (k * probe.size() > best_reads) {
      best_reads = k * probe.size();
      best_k = k;
      best = std::move(probe);
    }
  }
  for (int c : best) bset[c] -= best_k;
  for (const auto& [_, reads] : bset) n += reads;
  return n;
}

// What capset(2) calls of itself kept in permitted and effective while
// dropping others (CA_INSPECT_CAPSET_KEEP, counted in the kernel only for
// the initial user namespace): commoncap's cap_capset() refuses a permitted
// set that is not a subset of the old one, so each call fails without them,
// although no capability check says so.
uint64_t capset_keeps(const std::vector<const Observation*>& group) {
  uint64_t kept = 0;
  for (const Observation* o : group)
    for (const SelfInspectionRow& r : o->self_inspections)
      if (r.kind == CA_INSPECT_CAPSET_KEEP) kept |= bit(r.cap);
  return kept;
}

std::string display_name_of(const BinaryRow& b) {
  if (!b.key.path.empty()) return b.key.path;
  if (!b.key.comm.empty()) return "[" + b.key.comm + "]";
  return "(unresolved: device " + std::to_string(b.key.dev) + ", inode " + std::to_string(b.key.ino) + ")";
}

// Which program a row is: its path, else its comm (a kernel thread), else
// its file (dev, ino). Views into the row, which outlives the grouping.
using GroupKey = std::tuple<int, std::string_view, uint64_t, uint64_t>;
GroupKey group_key(const BinaryRow& b) {
  if (!b.key.path.empty()) return {0, b.key.path, 0, 0};
  if (!b.key.comm.empty()) return {1, b.key.comm, 0, 0};
  return {2, {}, b.key.dev, b.key.ino};
}

// Newest identity: the one seen last (then the newest row).
bool newer(const BinaryRow& a, const BinaryRow& b) {
  return a.last_seen != b.last_seen ? a.last_seen > b.last_seen : a.id > b.id;
}

// Sorted, each value once: what a std::set would hold.
template <class T>
void distinct(std::vector<T>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

// a's name before b's: every binary's lines are sorted by name, and
// cap_name() returns a copy, so the known ones compare by rank.
bool by_name(int a, int b) {
  constexpr int kKnown = 64;
  static const std::array<int, kKnown> rank = [] {
    std::array<int, kKnown> order{}, r{};
    for (int c = 0; c < kKnown; c++) order[static_cast<size_t>(c)] = c;
    std::sort(order.begin(), order.end(), [](int x, int y) { return cap_name(x) < cap_name(y); });
    for (int i = 0; i < kKnown; i++) r[static_cast<size_t>(order[static_cast<size_t>(i)])] = i;
    return r;
  }();
  if (a >= 0 && a < kKnown && b >= 0 && b < kKnown) return rank[static_cast<size_t>(a)] < rank[static_cast<size_t>(b)];
  return cap_name(a) < cap_name(b);
}

// "cap_a, cap_b" for a set; binaries mostly hold one of a few sets.
class SetNames {
 public:
  const std::string& joined(uint64_t set) {
    auto [it, fresh] = cache_.try_emplace(set);
    if (fresh) it->second = join(cap_set_names(set), ", ");
    return it->second;
  }

 private:
  std::unordered_map<uint64_t, std::string> cache_;
};

BinaryDecision analyze_binary(const std::vector<const Observation*>& group, RuleMatcher& rules, SetNames& names) {
  const Observation* newest = group.front();
  for (const Observation* o : group) {
    if (newer(o->binary, newest->binary)) newest = o;
  }
  BinaryDecision bd;
  bd.row = &newest->binary;
  bd.path = newest->binary.key.path;
  bd.display_name = display_name_of(newest->binary);
  const BinaryRow& b = newest->binary;
  bd.setuid_root = b.mode && (*b.mode & S_ISUID) && b.owner_uid && *b.owner_uid == 0;
  if (b.file_caps && !b.file_caps->empty()) bd.file_caps = b.file_caps;

  std::vector<RowState> rows;
  for (const Observation* o : group) {
    for (const ObservedCheck& c : o->checks) rows.emplace_back().check = &c;
  }
  BinaryAnalyzer(rules, rows).run();

  // Group rows into the contract's (capability, verdict, audit) lines.
  // Vectors, sorted and made distinct at the end: a line has one or two of
  // each, and a node per element cost more than deciding it.
  struct Acc {
    CheckDecision d;
    std::vector<std::string> needed, other;
    std::vector<std::pair<std::string_view, uint64_t>> samples;  // origins of the observations
  };
  std::map<std::tuple<int, bool, Audit, FinalVerdict>, Acc> groups;
  std::set<int> caps;
  uint64_t used = 0;
  for (const RowState& r : rows) {
    const CheckRow& row = r.check->row;
    const CheckFields& f = row.f;
    bool granted = f.ret == 0;
    bool fresh = !groups.contains({f.cap, granted, f.audit, f.final_verdict});
    Acc& acc = groups[{f.cap, granted, f.audit, f.final_verdict}];
    CheckDecision& d = acc.d;
    if (fresh) {
      d.cap = f.cap;
      d.granted = granted;
      d.audit = f.audit;
      d.final_verdict = f.final_verdict;
      d.only_other_user_ns = true;
    }
    d.count += row.count;
    d.required = d.required || r.required;
    d.only_other_user_ns = d.only_other_user_ns && !r.init_ns;
    if (row.first_seen && (!d.first_seen || row.first_seen < d.first_seen)) d.first_seen = row.first_seen;
    d.last_seen = std::max(d.last_seen, row.last_seen);
    if (!r.replaced_by.empty() && !d.replaced_by) d.replaced_by = r.replaced_by.front();
    for (const std::string& why : r.reasons) {
      auto& list = r.required ? acc.needed : acc.other;
      if (std::find(list.begin(), list.end(), why) == list.end()) list.push_back(why);
    }
    for (const OriginRow& o : r.check->origins) acc.samples.emplace_back(o.origin, o.samples);
    if (f.coarse) {
      // Its credential is not known: nothing is said about it.
      d.coarse_count += row.count;
    } else {
      d.uids.push_back(f.uid);
      d.euids.push_back(f.euid);
      d.cgroup_ids.push_back(f.cgroup_id);
      if (f.euid != 0) bd.seen_non_root_euid = true;
    }

    if (r.required) caps.insert(f.cap);
    for (int n : r.replaced_by) caps.insert(n);
    bd.held_effective |= f.cap_effective;
    if (f.profiled) bd.profiled = true;
    if (granted && !f.lsm_denied() && r.init_ns) used |= bit(f.cap);
  }

  bd.checks.reserve(groups.size());
  for (auto& [_, acc] : groups) {
    CheckDecision d = std::move(acc.d);
    // The reasons that decided first: a kept capability explains why it is kept.
    std::vector<std::string> reasons = d.required ? acc.needed : acc.other;
    for (const auto& why : d.required ? acc.other : acc.needed) reasons.push_back(why);
    d.reason = join(reasons, "; ");
    // Rows of one line differ in count, not in kind: the total is said once.
    if (!d.granted && !d.only_other_user_ns) d.reason = "denied " + times(d.count) + ": " + d.reason;
    // Each origin's samples summed, then most sampled first (equal: by name).
    auto& samples = acc.samples;
    std::sort(samples.begin(), samples.end());
    size_t n = 0;
    for (size_t i = 0; i < samples.size(); i++) {
      if (n && samples[n - 1].first == samples[i].first) samples[n - 1].second += samples[i].second;
      else samples[n++] = samples[i];
    }
    samples.resize(n);
    std::stable_sort(samples.begin(), samples.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    d.origins.reserve(samples.size());
    for (auto& [name, _n] : samples) d.origins.emplace_back(name);
    distinct(d.uids);
    distinct(d.euids);
    distinct(d.cgroup_ids);
    bd.checks.push_back(std::move(d));
  }
  std::sort(bd.checks.begin(), bd.checks.end(), [](const CheckDecision& a, const CheckDecision& b) {
    if (a.cap != b.cap) return by_name(a.cap, b.cap);
    if (a.granted != b.granted) return a.granted;
    if (a.audit != b.audit) return static_cast<int>(a.audit) < static_cast<int>(b.audit);
    return static_cast<int>(a.final_verdict) < static_cast<int>(b.final_verdict);
  });
  const uint64_t kept = capset_keeps(group);
  for (int c = 0; c < 64; c++)
    if (kept & bit(c)) caps.insert(c);
  used |= kept;
  bd.capabilities.assign(caps.begin(), caps.end());
  sort_caps_by_name(bd.capabilities);

  // Warnings: what the observation cannot show, and privilege held for nothing.
  bool kernel_thread = b.key.path.empty() && !b.key.comm.empty();
  if (!rows.empty() && !bd.seen_non_root_euid && !kernel_thread) {
    bd.warnings.push_back(std::string("seen only with euid 0: ownership checks that root skips were not seen: "
                                      "profile it as a user, e.g. ") +
                          kProfileHint);
  }
  uint64_t recommended = 0;
  for (int c : bd.capabilities) recommended |= bit(c);
  if (uint64_t unused = bd.held_effective & ~used) {
    bd.warnings.push_back("held but never used: " + names.joined(unused));
  }
  if (uint64_t spare = bd.held_effective & used & ~recommended) {
    bd.warnings.push_back("held and asked for, but not needed: " + names.joined(spare));
  }
  if (kept) {
    bd.warnings.push_back("it asked capset(2) to keep " + names.joined(kept) +
                          " (permitted and effective) while dropping others: the call fails without them, so "
                          "they are required although no capability check asks for them");
  }
  if (group.size() > 1) {
    bd.warnings.push_back("checks of " + std::to_string(group.size()) +
                          " versions of this file (it was replaced, e.g. by an upgrade) are merged; the newest "
                          "identity is shown");
  }
  bd.self_inspections = count_self_inspections(group);
  if (bd.self_inspections > 0) {
    bd.warnings.push_back("it asked the kernel which capabilities it holds (" + times(bd.self_inspections) +
                          ": capget, prctl PR_CAPBSET_READ or PR_CAP_AMBIENT_IS_SET): it may need capabilities "
                          "the kernel never checks; verify with capaudit profile --minimize");
  }
  if (b.path_stale) {
    bd.warnings.push_back("the file at this path is no longer the one that ran (deleted or replaced since)");
  }
  return bd;
}

}  // namespace

std::pair<int64_t, int64_t> seen_span(const BinaryDecision& b) {
  int64_t first = 0, last = 0;
  for (const CheckDecision& c : b.checks) {
    if (c.first_seen && (!first || c.first_seen < first)) first = c.first_seen;
    last = std::max(last, c.last_seen);
  }
  return {first, last};
}

void analyze_each(const std::vector<Observation>& obs, const Rules& rules,
                  const std::function<void(BinaryDecision&)>& each) {
  // Same path, other inode: the file was replaced; its checks are one
  // program's history. Groups keep the order the observations came in.
  std::vector<std::vector<const Observation*>> groups;
  std::map<GroupKey, size_t> index;
  for (const Observation& o : obs) {
    auto [it, fresh] = index.emplace(group_key(o.binary), groups.size());
    if (fresh) groups.emplace_back();
    groups[it->second].push_back(&o);
  }
  RuleMatcher matcher(rules);
  SetNames names;
  for (const auto& g : groups) {
    BinaryDecision b = analyze_binary(g, matcher, names);
    each(b);
  }
}

Analysis analyze(const std::vector<Observation>& obs, const Rules& rules) {
  Analysis a;
  analyze_each(obs, rules, [&](BinaryDecision& b) { a.binaries.push_back(std::move(b)); });
  return a;
}

}  // namespace capaudit
