#include "minimize.h"

#include "capnames.h"
#include "identity.h"
#include "render.h"  // the verification object's JSON
#include "text.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <set>

namespace capaudit {

namespace {

bool contains(const std::vector<int>& v, int cap) { return std::find(v.begin(), v.end(), cap) != v.end(); }

std::vector<int> without(std::vector<int> caps, int cap) {
  caps.erase(std::remove(caps.begin(), caps.end(), cap), caps.end());
  return caps;
}

std::vector<int> with(std::vector<int> caps, int cap) {
  caps.push_back(cap);
  sort_caps_by_name(caps);
  return caps;
}

// The narrower capabilities the rules table says may do a wide one's job.
std::vector<int> narrower_alternatives(int wide, const Rules& rules) {
  std::vector<int> out;
  for (const Rule& r : rules.all()) {
    if (r.kind == RuleKind::Alternative && r.narrow && *r.narrow != wide && contains(r.caps, wide))
      out.push_back(*r.narrow);
  }
  sort_caps_by_name(out);
  return out;
}

std::string status_text(const Behaviour& b) {
  if (b.timed_out) return "did not finish in time";
  if (b.signal) return "was killed by signal " + std::to_string(b.signal);
  return "exited with status " + std::to_string(b.exit_status);
}

std::string bytes_text(uint64_t n) { return n == 1 ? "1 byte" : std::to_string(n) + " bytes"; }

// How a run that does not behave like the reference differs from it.
std::string difference(const Behaviour& reference, const Behaviour& run, bool compare_output) {
  if (run.timed_out) return "did not finish in time";
  if (run.exit_status != reference.exit_status || run.signal != reference.signal)
    return status_text(run) + " (the traced run " + status_text(reference) + ")";
  if (compare_output && run.stdout_sha256 != reference.stdout_sha256)
    return "wrote different output (" + bytes_text(run.stdout_bytes) + "; the traced run wrote " +
           bytes_text(reference.stdout_bytes) + ")";
  return "behaved differently";
}

std::string names(const std::vector<int>& caps) { return cap_list_text(caps, ", "); }

}  // namespace

std::string describe(const Behaviour& b, bool with_output) {
  std::string s = status_text(b);
  if (with_output && !b.timed_out) s += " and wrote " + bytes_text(b.stdout_bytes);
  return s;
}

bool same_behaviour(const Behaviour& reference, const Behaviour& run, bool compare_output) {
  if (reference.timed_out || run.timed_out) return false;
  if (reference.exit_status != run.exit_status || reference.signal != run.signal) return false;
  return !compare_output || (run.stdout_sha256 && run.stdout_sha256 == reference.stdout_sha256);
}

namespace {

std::vector<int> minus(std::vector<int> caps, const std::vector<int>& gone) {
  caps.erase(std::remove_if(caps.begin(), caps.end(), [&](int c) { return contains(gone, c); }), caps.end());
  return caps;
}

// One search (minimize() below): the runs made so far, the set the last
// accepted run held, and a verdict per capability tried.
class Search {
 public:
  Search(const Behaviour& reference, const Runner& run, const Rules& rules, const MinimizeOptions& opts)
      : ref_(reference), run_(run), rules_(rules), opts_(opts),
        budget_("--max-runs " + std::to_string(opts.max_runs) + " was reached before a run without it") {}

  VerificationInfo go(const SearchPlan& plan) {
    v_.compare_output = opts_.compare_output;
    v_.created = time(nullptr);
    v_.observed = plan.start;
    sort_caps_by_name(v_.observed);
    for (int c : v_.observed) at(c);
    if (opts_.max_runs < 1) {
      v_.note = "no run was allowed (--max-runs " + std::to_string(opts_.max_runs) + ")";
      return finish(v_.note, plan.note);
    }
    std::vector<int> kept = plan.kept;  // in the plan's order
    std::vector<int> rules_set = kept;
    sort_caps_by_name(rules_set);
    std::vector<int> others = minus(v_.observed, kept);  // what the rules drop: settled first
    std::optional<std::string> rules_failed;
    if (!others.empty()) {
      // The likeliest answer first: when the rules are right, one run
      // drops everything they drop.
      std::optional<RunResult> r = attempt(rules_set);
      if (!r) return finish(v_.note = stopped_, plan.note);
      if (same(r->behaviour)) {
        v_.baseline_ok = true;
        current_ = rules_set;
        for (int c : others) {
          at(c).verified = Verification::DroppedByRun;
          at(c).runs = 1;
          at(c).reason = "a run holding only the rules' set (" + names(rules_set) + ") " + describe(r->behaviour) +
                         ", like the traced run";
        }
      } else {
        rules_failed = difference(ref_, r->behaviour, opts_.compare_output);
      }
    }
    if (!v_.baseline_ok) {
      const std::string first = rules_failed ? "; a run holding only the rules' set (" + names(rules_set) + ") " +
                                                   *rules_failed
                                             : "";
      if (v_.runs >= opts_.max_runs) {
        v_.note = "--max-runs " + std::to_string(opts_.max_runs) + " left no run holding the whole start set (" +
                  names(v_.observed) + ")" + first + ", so nothing could be verified";
        return finish(v_.note, plan.note);
      }
      std::optional<RunResult> base = attempt(v_.observed);
      if (!base) return finish(v_.note = stopped_, plan.note);
      if (!same(base->behaviour)) {
        v_.note = "a run holding the whole start set (" + names(v_.observed) + ") " +
                  difference(ref_, base->behaviour, opts_.compare_output) + first +
                  ": the command does not behave the same on every run, or needs something this observation did "
                  "not show, so nothing could be verified";
        return finish(v_.note, plan.note);
      }
      v_.baseline_ok = true;
      current_ = v_.observed;
      // The run without all of them was the rules' set, which failed.
      settle(others, rules_failed);
    }
    for (int c : kept) single(c, std::nullopt);
    return finish(budget_, plan.note);
  }

 private:
  CapabilityVerdict& at(int cap) {
    auto [it, fresh] = verdicts_.try_emplace(cap);
    if (fresh) it->second.cap = cap;
    return it->second;
  }

  bool same(const Behaviour& b) const { return same_behaviour(ref_, b, opts_.compare_output); }
  std::string describe(const Behaviour& b) const { return capaudit::describe(b, opts_.compare_output); }

  // Why no run can be made now, or "".
  std::string blocked() const {
    if (!stopped_.empty()) return stopped_;
    if (v_.runs >= opts_.max_runs) return budget_;
    return "";
  }

  // One run; nullopt (and every later attempt refused) when capaudit could not make it.
  std::optional<RunResult> attempt(const std::vector<int>& caps) {
    RunResult r = run_(caps);
    v_.runs++;
    if (r.ran) return r;
    stopped_ = "capaudit could not re-run the command: " + r.error;
    return std::nullopt;
  }

  // A group of capabilities the rules drop, all held now: one run without
  // them all; when that changed something, each half on its own. `failed`:
  // the run without the whole group was made already and changed this.
  void settle(const std::vector<int>& group, std::optional<std::string> failed) {
    if (group.empty()) return;
    if (group.size() == 1) return single(group.front(), failed);
    if (!failed) {
      if (std::string why = blocked(); !why.empty()) {
        for (int c : group) at(c).reason = why;
        return;
      }
      std::vector<int> trial = minus(current_, group);
      std::optional<RunResult> r = attempt(trial);
      for (int c : group) at(c).runs++;
      if (!r) {
        for (int c : group) at(c).reason = stopped_;
        return;
      }
      if (same(r->behaviour)) {
        for (int c : group) {
          at(c).verified = Verification::DroppedByRun;
          at(c).reason = "a run without it and " + std::to_string(group.size() - 1) + " more (" + names(group) + ") " +
                         describe(r->behaviour) + ", like the traced run";
        }
        current_ = std::move(trial);
        return;
      }
      failed = difference(ref_, r->behaviour, opts_.compare_output);
    }
    const auto half = group.begin() + static_cast<std::ptrdiff_t>(group.size() / 2);
    const std::vector<int> a(group.begin(), half), b(half, group.end());
    settle(a, std::nullopt);
    // With all of the first half gone, a run without the second is the one
    // that failed already.
    const bool a_gone = std::all_of(a.begin(), a.end(), [this](int c) { return !contains(current_, c); });
    settle(b, a_gone ? failed : std::nullopt);
  }

  // One capability, held now. `failed`: the run without it was made already
  // and changed this.
  void single(int c, std::optional<std::string> failed) {
    if (!failed) {
      if (std::string why = blocked(); !why.empty()) {
        at(c).reason = why;
        return;
      }
      std::vector<int> trial = without(current_, c);
      std::optional<RunResult> r = attempt(trial);
      at(c).runs++;
      if (!r) {
        at(c).reason = stopped_;
        return;
      }
      if (same(r->behaviour)) {
        at(c).verified = Verification::DroppedByRun;
        at(c).reason = "a run without it " + describe(r->behaviour) + ", like the traced run";
        current_ = std::move(trial);
        return;
      }
      failed = difference(ref_, r->behaviour, opts_.compare_output);
    }
    const std::vector<int> trial = without(current_, c);
    // The observation may lack a narrower capability the program falls
    // back on only when the wide one is missing: try each in its place.
    std::vector<std::string> untried;
    for (int n : narrower_alternatives(c, rules_)) {
      if (contains(current_, n)) continue;  // the run without c held it already
      if (!blocked().empty()) {
        untried.push_back(cap_name(n));
        continue;
      }
      std::vector<int> swapped = with(trial, n);
      std::optional<RunResult> r2 = attempt(swapped);
      at(c).runs++;
      if (!r2) {
        untried.push_back(cap_name(n));
        continue;
      }
      if (!same(r2->behaviour)) continue;
      at(c).verified = Verification::DroppedByRun;
      at(c).replaced_by = n;
      at(c).reason = "a run without it " + *failed + "; with " + cap_name(n) + " in its place it behaved like the traced run";
      CapabilityVerdict& nv = at(n);
      nv.verified = Verification::ConfirmedNeeded;
      nv.reason = "a run holding it in place of " + cap_name(c) + " behaved like the traced run; without either it " + *failed;
      current_ = std::move(swapped);
      return;
    }
    at(c).verified = Verification::ConfirmedNeeded;
    at(c).reason = "a run without it " + *failed;
    if (!untried.empty()) at(c).reason += "; not tried in its place (no runs left): " + join(untried, ", ");
  }

  VerificationInfo finish(std::string why, const std::string& plan_note) {
    for (auto& [cap, cv] : verdicts_) {
      if (cv.verified == Verification::Unverified && cv.reason.empty()) cv.reason = why;
      v_.capabilities.push_back(cv);
    }
    std::sort(v_.capabilities.begin(), v_.capabilities.end(),
              [](const CapabilityVerdict& a, const CapabilityVerdict& b) { return cap_name(a.cap) < cap_name(b.cap); });
    if (!plan_note.empty()) v_.note = v_.note.empty() ? plan_note : v_.note + "; " + plan_note;
    return std::move(v_);
  }

  const Behaviour& ref_;
  const Runner& run_;
  const Rules& rules_;
  const MinimizeOptions& opts_;
  const std::string budget_;
  VerificationInfo v_;
  std::map<int, CapabilityVerdict> verdicts_;
  std::vector<int> current_;  // what the last accepted run held
  std::string stopped_;       // why no more runs are made, once that happens
};

}  // namespace

VerificationInfo minimize(const SearchPlan& plan, const Behaviour& reference, const Runner& run, const Rules& rules,
                          const MinimizeOptions& opts) {
  return Search(reference, run, rules, opts).go(plan);
}

VerificationInfo minimize(const std::vector<int>& observed, const Behaviour& reference, const Runner& run,
                          const Rules& rules, const MinimizeOptions& opts) {
  SearchPlan plan;
  plan.start = observed;
  sort_caps_by_name(plan.start);
  plan.kept = plan.start;
  return minimize(plan, reference, run, rules, opts);
}

std::vector<int> verified_caps(const VerificationInfo& v) {
  std::vector<int> out;
  if (!v.baseline_ok) return v.observed;
  for (const CapabilityVerdict& cv : v.capabilities)
    if (cv.verified != Verification::DroppedByRun) out.push_back(cv.cap);
  sort_caps_by_name(out);
  return out;
}

void apply_verification(BinaryDecision& b, VerificationInfo v) {
  if (!v.baseline_ok) {
    b.warnings.push_back("not verified: " + v.note);
    b.verification = std::move(v);
    return;
  }
  // The verdicts are this binary's own (binary_share): a capability with no
  // verdict here is one the runs did not decide for it.
  std::map<int, const CapabilityVerdict*> verdict;
  for (const CapabilityVerdict& cv : v.capabilities) verdict[cv.cap] = &cv;
  const std::set<int> in_runs(v.observed.begin(), v.observed.end());
  std::vector<int> final_set = verified_caps(v), unseen;
  for (int c : b.capabilities) {
    if (!verdict.contains(c)) {
      final_set.push_back(c);
      unseen.push_back(c);
    }
  }
  sort_caps_by_name(final_set);
  const std::set<int> kept(final_set.begin(), final_set.end());

  for (CheckDecision& d : b.checks) {
    auto it = verdict.find(d.cap);
    if (it != verdict.end()) {
      const CapabilityVerdict& cv = *it->second;
      d.verified = cv.verified;
      if (cv.verified == Verification::DroppedByRun) {
        if (cv.replaced_by && !d.replaced_by) d.replaced_by = cv.replaced_by;
        d.reason = "dropped by a run: " + cv.reason + "; observed: " + d.reason;
        d.required = false;
      } else if (d.required) {
        d.reason = (cv.verified == Verification::ConfirmedNeeded ? "confirmed needed by a run: " : "kept unverified: ") +
                   cv.reason + "; observed: " + d.reason;
      }
    } else if (!in_runs.contains(d.cap) && !kept.contains(d.cap)) {
      d.verified = Verification::DroppedByRun;
      d.reason += "; the verifying runs did not hold it and behaved like the traced run";
    }
  }
  // A capability the runs kept that the rules did not (a narrower one brought
  // in, or one the rules wrongly dropped) may have no required line yet.
  for (int c : final_set) {
    auto it = verdict.find(c);
    if (it == verdict.end()) continue;
    bool any = std::any_of(b.checks.begin(), b.checks.end(),
                           [c](const CheckDecision& d) { return d.cap == c && d.required; });
    if (any) continue;
    const bool needed = it->second->verified == Verification::ConfirmedNeeded;
    for (CheckDecision& d : b.checks) {
      if (d.cap != c || !d.granted || d.only_other_user_ns) continue;
      d.required = true;
      d.reason = std::string(needed ? "confirmed needed by a run: " : "kept unverified: ") + it->second->reason +
                 "; observed: " + d.reason;
    }
  }
  if (!unseen.empty()) {
    b.warnings.push_back("kept as observed, not verified: " + names(unseen) +
                         " (required by uses the verifying runs did not include)");
  }
  b.capabilities = std::move(final_set);
  b.verification = std::move(v);
}

VerifiedSetRow verified_set_row(const std::string& path, const std::string& sha256, const BinaryDecision& b) {
  VerifiedSetRow r;
  r.path = path;
  r.sha256 = sha256;
  r.caps = nlohmann::json(cap_names(b.capabilities)).dump();
  if (b.verification) {
    r.verification = verification_to_json(*b.verification).dump();
    r.runs = b.verification->runs;
    r.compare_output = b.verification->compare_output;
    r.created = b.verification->created;
  }
  return r;
}

std::optional<VerificationInfo> verification_from_row(const VerifiedSetRow& row, std::string* err) {
  VerificationInfo v;
  if (!verification_from_json(nlohmann::json::parse(row.verification, nullptr, false), &v, err,
                              "verified set " + std::to_string(row.id)))
    return std::nullopt;
  return v;
}

void StoredVerifications::apply(BinaryDecision& b) const {
  if (b.path.empty()) return;
  auto found = by_path_.find(b.path);
  if (found == by_path_.end()) return;
  const std::vector<VerifiedSetRow>& rows = found->second;
  std::string err;
  std::optional<FileIdentity> now = read_file_identity(b.path, &err);
  if (!now) {
    b.warnings.push_back("a verified set exists, but the file cannot be read to check it is the one verified (" +
                         err + "): the observed set is used");
    return;
  }
  auto row = std::find_if(rows.begin(), rows.end(), [&](const VerifiedSetRow& r) { return r.sha256 == now->sha256; });
  if (row == rows.end()) {
    b.warnings.push_back("verified sets exist only for other contents of this file (SHA-256 differs): the observed "
                         "set is used; verify again with capaudit profile --minimize");
    return;
  }
  std::optional<VerificationInfo> v = verification_from_row(*row, &err);
  if (!v) {
    b.warnings.push_back("the verified set cannot be read (" + err + "): the observed set is used");
    return;
  }
  apply_verification(b, std::move(*v));
}

void apply_stored_verifications(Analysis& a, Store& store) {
  StoredVerifications verified(store);
  for (BinaryDecision& b : a.binaries) verified.apply(b);
}

RunResult rerun(const RerunOptions& o, const std::vector<int>& caps) {
  using S = ChildOptions::Stream;
  RunResult r;
  ChildOptions c;
  c.argv = o.command;
  c.exe = o.exe;
  c.who = o.who;
  c.caps = caps;
  c.in = S::Null;
  c.out = o.capture_stdout ? S::Capture : S::Null;
  c.err = S::Null;
  c.own_process_group = true;
  c.default_signals = true;
  std::unique_ptr<ChildProc> child = ChildProc::start(c, &r.error);
  if (!child) {
    r.error = "cannot set up a run: " + r.error;
    return r;
  }
  OutputDigest digest;
  ChildProc::WaitOptions w;
  w.timeout = o.timeout;
  w.interrupted = o.interrupted;
  w.on_output = [&digest](int fd) { return digest.pump(fd); };
  ChildExit e = child->wait(w);
  if (e.interrupted) {
    r.error = "interrupted";
    return r;
  }
  if (!e.setup_error.empty()) {
    r.error = e.setup_error;
    return r;
  }
  r.ran = true;
  r.behaviour.timed_out = e.timed_out;
  if (WIFEXITED(e.wstatus)) r.behaviour.exit_status = WEXITSTATUS(e.wstatus);
  if (WIFSIGNALED(e.wstatus) && !e.timed_out) {
    r.behaviour.signal = WTERMSIG(e.wstatus);
    r.behaviour.exit_status = 128 + r.behaviour.signal;
  }
  if (o.capture_stdout) {
    r.behaviour.stdout_bytes = digest.bytes();
    r.behaviour.stdout_sha256 = digest.finish();
  }
  return r;
}

bool OutputDigest::pump(int fd) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    bytes_ += static_cast<uint64_t>(n);
    digest_.update(buf, static_cast<size_t>(n));
    // The user still gets the traced run's output; a reader that went away
    // (EPIPE) stops the copy, not the comparison.
    for (ssize_t off = 0; tee_fd_ >= 0 && off < n;) {
      ssize_t w = write(tee_fd_, buf + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        tee_fd_ = -1;
        break;
      }
      off += w;
    }
  }
}

}  // namespace capaudit
