// profile --minimize over a process tree: where the runs start, and which
// binary of the tree each capability the runs kept belongs to. The runs hold
// one set for the whole tree (ambient capabilities pass through exec), so
// they cannot tell by themselves; docs/minimize.md ("Process trees") states
// the rule applied here.
#include "capnames.h"
#include "minimize.h"
#include "text.h"

#include <algorithm>
#include <optional>
#include <set>

namespace capaudit {

namespace {

bool contains(const std::vector<int>& v, int cap) { return std::find(v.begin(), v.end(), cap) != v.end(); }

std::string names(const std::vector<int>& caps) { return cap_list_text(caps, ", "); }

// What one binary's observation says about one capability.
struct Use {
  bool kept = false;     // in the rules' set for it
  bool lines = false;    // any check line
  bool granted = false;  // a granted check in the initial user namespace
  uint64_t count = 0;    // of those
  std::set<std::string> origins;
};

Use use_of(const BinaryDecision& b, int cap) {
  Use u;
  u.kept = contains(b.capabilities, cap);
  for (const CheckDecision& d : b.checks) {
    if (d.cap != cap) continue;
    u.lines = true;
    if (!d.granted || d.only_other_user_ns) continue;
    u.granted = true;
    u.count += d.count;
    u.origins.insert(d.origins.begin(), d.origins.end());
  }
  return u;
}

uint64_t granted_checks(const BinaryDecision& b) {
  uint64_t n = 0;
  for (const CheckDecision& d : b.checks)
    if (d.granted && !d.only_other_user_ns) n += d.count;
  return n;
}

// A capability the rules keep only because the kernel asked it first
// (checked_first): the likeliest of the kept ones to go.
bool only_checked_first(const Analysis& tree, int cap) {
  bool any = false;
  for (const BinaryDecision& b : tree.binaries) {
    for (const CheckDecision& d : b.checks) {
      if (d.cap != cap || !d.required) continue;
      if (d.reason.find("checked first (") == std::string::npos) return false;
      any = true;
    }
  }
  return any;
}

// Who gets a capability the runs kept, and why (empty: it is their own
// requirement, nothing to explain).
struct Credit {
  std::vector<size_t> to;
  std::string why;
};

Credit credit(const Analysis& tree, const VerificationInfo& v, const BinaryDecision* command, int cap) {
  // A narrower capability the runs put in place of a wide one belongs where the wide one did.
  std::vector<int> as{cap};
  for (const CapabilityVerdict& cv : v.capabilities)
    if (cv.replaced_by == cap) as.push_back(cv.cap);
  const size_t n = tree.binaries.size();
  std::vector<std::vector<Use>> uses(n);
  for (size_t i = 0; i < n; i++)
    for (int c : as) uses[i].push_back(use_of(tree.binaries[i], c));
  auto any = [&](size_t i, bool Use::*field) {
    return std::any_of(uses[i].begin(), uses[i].end(), [field](const Use& u) { return u.*field; });
  };
  Credit out;
  for (size_t i = 0; i < n; i++)
    if (any(i, &Use::kept)) out.to.push_back(i);
  if (!out.to.empty()) return out;

  // The rules dropped it everywhere, and the runs showed the tree needs it:
  // the binaries whose granted checks used it, narrowed to those whose
  // checks came from kernel code the others' did not (every program makes
  // the same memory-accounting checks; the one that needs the capability
  // makes another).
  std::vector<size_t> granted;
  for (size_t i = 0; i < n; i++)
    if (any(i, &Use::granted)) granted.push_back(i);
  if (!granted.empty()) {
    std::vector<size_t> distinct;
    for (size_t i : granted) {
      std::set<std::string> others;
      for (size_t j : granted)
        if (j != i)
          for (const Use& u : uses[j]) others.insert(u.origins.begin(), u.origins.end());
      bool own = false;
      for (const Use& u : uses[i])
        for (const std::string& o : u.origins) own = own || !others.contains(o);
      if (own) distinct.push_back(i);
    }
    if (!distinct.empty() && distinct.size() < granted.size()) {
      out.to = distinct;
      out.why = "the rules drop its checks here, but the tree needed it, and this binary's checks of it came from "
                "kernel code the other binaries' did not";
    } else {
      out.to = granted;
      out.why = "the rules drop its checks here, but the tree needed it, and this binary's granted checks used it";
    }
    return out;
  }
  // No binary's check used it: a program that looked at its own capabilities wants it.
  for (size_t i = 0; i < n; i++)
    if (tree.binaries[i].self_inspections > 0) out.to.push_back(i);
  if (!out.to.empty()) {
    out.why = "no check of any binary of the tree used it, and this binary inspected its own capabilities";
    return out;
  }
  // Else the program a wrapper runs: the binary with the most checks other
  // than COMMAND's own executable.
  std::optional<size_t> best;
  for (size_t i = 0; i < n; i++) {
    if (n > 1 && &tree.binaries[i] == command) continue;
    if (!best || granted_checks(tree.binaries[i]) > granted_checks(tree.binaries[*best])) best = i;
  }
  if (best) {
    out.to.push_back(*best);
    out.why = "no check of any binary of the tree used it; credited to the binary with the most checks" +
              std::string(n > 1 ? " other than the command's own executable" : "");
  }
  return out;
}

std::string who(const Analysis& tree, const std::vector<size_t>& idx) {
  std::vector<std::string> out;
  for (size_t i : idx) out.push_back(tree.binaries[i].display_name);
  return out.empty() ? "no binary" : join(out, ", ");
}

}  // namespace

SearchPlan plan_search(const Analysis& tree, const std::vector<int>& held) {
  SearchPlan p;
  uint64_t inspections = 0;
  std::vector<std::string> inspectors;
  for (const BinaryDecision& b : tree.binaries) {
    for (int c : b.capabilities)
      if (!contains(p.kept, c)) p.kept.push_back(c);
    for (const CheckDecision& d : b.checks)
      if (d.granted && !d.only_other_user_ns && !contains(p.start, d.cap)) p.start.push_back(d.cap);
    if (b.self_inspections > 0) {
      inspections += b.self_inspections;
      inspectors.push_back(b.display_name);
    }
  }
  const size_t granted = p.start.size();
  for (int c : p.kept)
    if (!contains(p.start, c)) p.start.push_back(c);
  if (inspections > 0) {
    for (int c : held)
      if (!contains(p.start, c)) p.start.push_back(c);
    p.note = join(inspectors, ", ") + " asked the kernel what capabilities it holds (" + std::to_string(inspections) +
             (inspections == 1 ? " time" : " times") +
             "): it may refuse to run without one the kernel never checks, so the runs started from every capability "
             "the traced run held (" +
             std::to_string(p.start.size()) + "), not only the " + std::to_string(granted) +
             " granted, and removed each only where a run without it behaved like the traced run";
  }
  sort_caps_by_name(p.start);
  // The kept ones only checked first go first; then by name.
  sort_caps_by_name(p.kept);
  std::stable_partition(p.kept.begin(), p.kept.end(), [&tree](int c) { return only_checked_first(tree, c); });
  return p;
}

VerificationInfo binary_share(const Analysis& tree, const VerificationInfo& v, const BinaryDecision* command,
                              const BinaryDecision& b) {
  VerificationInfo out = v;
  out.capabilities.clear();
  if (!v.baseline_ok) {
    out.capabilities = v.capabilities;
    return out;
  }
  const size_t self = static_cast<size_t>(&b - tree.binaries.data());
  for (const CapabilityVerdict& cv : v.capabilities) {
    const Use u = use_of(b, cv.cap);
    if (cv.verified == Verification::DroppedByRun) {
      if (u.lines || u.kept) out.capabilities.push_back(cv);
      continue;
    }
    const Credit c = credit(tree, v, command, cv.cap);
    if (std::find(c.to.begin(), c.to.end(), self) != c.to.end()) {
      CapabilityVerdict mine = cv;
      if (!c.why.empty()) mine.reason += "; credited here: " + c.why;
      out.capabilities.push_back(std::move(mine));
    } else if (cv.verified == Verification::ConfirmedNeeded && u.lines) {
      CapabilityVerdict other = cv;
      other.verified = Verification::DroppedByRun;
      other.replaced_by.reset();
      other.reason = "the tree needed it (" + cv.reason + "), but it is credited to " + who(tree, c.to) +
                     ", not to this binary's checks";
      out.capabilities.push_back(std::move(other));
    }
  }
  return out;
}

void apply_tree_verification(Analysis& tree, const VerificationInfo& v, const BinaryDecision* command) {
  // Each share reads the whole tree as observed: compute them all first.
  std::vector<VerificationInfo> shares;
  for (const BinaryDecision& b : tree.binaries) shares.push_back(binary_share(tree, v, command, b));
  for (size_t i = 0; i < tree.binaries.size(); i++) {
    BinaryDecision& b = tree.binaries[i];
    apply_verification(b, std::move(shares[i]));
    if (!v.baseline_ok) continue;
    if (tree.binaries.size() > 1) {
      b.warnings.push_back("verified as one of a process tree of " + std::to_string(tree.binaries.size()) +
                           " binaries: the runs held one set for all of them (" + names(v.observed) +
                           "); what they needed is credited to the binaries whose checks used it");
    }
    std::vector<int> unchecked;
    for (int c : b.capabilities)
      if (!use_of(b, c).lines) unchecked.push_back(c);
    if (!unchecked.empty()) {
      b.warnings.push_back("no check of " + names(unchecked) +
                           " was seen in this binary: the runs showed the tree needs it, and it is credited here");
    }
    if (!v.note.empty()) b.warnings.push_back(v.note);
  }
}

}  // namespace capaudit
