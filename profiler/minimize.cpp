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

VerificationInfo minimize(const std::vector<int>& observed, const Behaviour& reference, const Runner& run,
                          const Rules& rules, const MinimizeOptions& opts) {
  VerificationInfo v;
  v.compare_output = opts.compare_output;
  v.created = time(nullptr);
  v.observed = observed;
  sort_caps_by_name(v.observed);
  // Indices, not references: narrower capabilities are appended as they are tried.
  auto at = [&v](int cap) -> CapabilityVerdict& {
    for (CapabilityVerdict& cv : v.capabilities)
      if (cv.cap == cap) return cv;
    v.capabilities.push_back(CapabilityVerdict{cap, Verification::Unverified, 0, "", std::nullopt});
    return v.capabilities.back();
  };
  for (int c : v.observed) at(c);
  auto finish = [&v](const std::string& why) {
    for (CapabilityVerdict& cv : v.capabilities)
      if (cv.verified == Verification::Unverified && cv.reason.empty()) cv.reason = why;
    std::sort(v.capabilities.begin(), v.capabilities.end(),
              [](const CapabilityVerdict& a, const CapabilityVerdict& b) { return cap_name(a.cap) < cap_name(b.cap); });
    return v;
  };
  const std::string budget = "--max-runs " + std::to_string(opts.max_runs) + " was reached before a run without it";
  if (opts.max_runs < 1) {
    v.note = "no run was allowed (--max-runs " + std::to_string(opts.max_runs) + ")";
    return finish(v.note);
  }

  RunResult base = run(v.observed);
  v.runs = 1;
  if (!base.ran) {
    v.note = "capaudit could not re-run the command: " + base.error;
    return finish(v.note);
  }
  if (!same_behaviour(reference, base.behaviour, opts.compare_output)) {
    v.note = "a run holding the whole observed set (" + names(v.observed) + ") " +
             difference(reference, base.behaviour, opts.compare_output) +
             ": the command does not behave the same on every run, or needs something this observation did not "
             "show, so nothing could be verified";
    return finish(v.note);
  }
  v.baseline_ok = true;

  std::vector<int> current = v.observed;
  std::string stopped;  // why no more runs are made, once that happens
  for (int c : v.observed) {
    if (!stopped.empty()) {
      at(c).reason = stopped;
      continue;
    }
    if (v.runs >= opts.max_runs) {
      at(c).reason = budget;
      continue;
    }
    std::vector<int> trial = without(current, c);
    RunResult r = run(trial);
    v.runs++;
    at(c).runs++;
    if (!r.ran) {
      stopped = "capaudit could not re-run the command: " + r.error;
      at(c).reason = stopped;
      continue;
    }
    if (same_behaviour(reference, r.behaviour, opts.compare_output)) {
      at(c).verified = Verification::DroppedByRun;
      at(c).reason = "a run without it " + describe(r.behaviour, opts.compare_output) + ", like the traced run";
      current = std::move(trial);
      continue;
    }
    const std::string failed = difference(reference, r.behaviour, opts.compare_output);
    // The observation may lack a narrower capability the program falls
    // back on only when the wide one is missing: try each in its place.
    std::vector<std::string> untried;
    bool replaced = false;
    for (int n : narrower_alternatives(c, rules)) {
      if (contains(current, n)) continue;  // the run without c held it already
      if (!stopped.empty() || v.runs >= opts.max_runs) {
        untried.push_back(cap_name(n));
        continue;
      }
      std::vector<int> swapped = with(trial, n);
      RunResult r2 = run(swapped);
      v.runs++;
      at(c).runs++;
      if (!r2.ran) {
        stopped = "capaudit could not re-run the command: " + r2.error;
        untried.push_back(cap_name(n));
        continue;
      }
      if (!same_behaviour(reference, r2.behaviour, opts.compare_output)) continue;
      at(c).verified = Verification::DroppedByRun;
      at(c).replaced_by = n;
      at(c).reason = "a run without it " + failed + "; with " + cap_name(n) + " in its place it behaved like the traced run";
      CapabilityVerdict& nv = at(n);
      nv.verified = Verification::ConfirmedNeeded;
      nv.reason = "a run holding it in place of " + cap_name(c) + " behaved like the traced run; without either it " + failed;
      current = std::move(swapped);
      replaced = true;
      break;
    }
    if (replaced) continue;
    at(c).verified = Verification::ConfirmedNeeded;
    at(c).reason = "a run without it " + failed;
    if (!untried.empty()) at(c).reason += "; not tried in its place (no runs left): " + join(untried, ", ");
  }
  return finish(budget);
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
  std::map<int, const CapabilityVerdict*> verdict;
  for (const CapabilityVerdict& cv : v.capabilities) verdict[cv.cap] = &cv;
  const std::set<int> observed(b.capabilities.begin(), b.capabilities.end());
  const std::set<int> in_runs(v.observed.begin(), v.observed.end());
  // The runs held one set for the whole process tree: a verdict speaks for
  // this binary only about capabilities it asked for itself (or their
  // narrower replacements).
  std::set<int> mine = observed;
  for (const CapabilityVerdict& cv : v.capabilities)
    if (cv.replaced_by && observed.contains(cv.cap)) mine.insert(*cv.replaced_by);
  std::vector<int> final_set, unseen;
  for (int c : verified_caps(v))
    if (mine.contains(c)) final_set.push_back(c);
  for (int c : observed) {
    if (!in_runs.contains(c) && !verdict.contains(c)) {
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
      if (cv.verified != Verification::DroppedByRun && !mine.contains(d.cap)) continue;
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
  // A narrower capability brought in by a run may have no required line yet.
  for (int c : final_set) {
    auto it = verdict.find(c);
    if (it == verdict.end() || it->second->verified != Verification::ConfirmedNeeded) continue;
    bool any = std::any_of(b.checks.begin(), b.checks.end(),
                           [c](const CheckDecision& d) { return d.cap == c && d.required; });
    if (any) continue;
    for (CheckDecision& d : b.checks) {
      if (d.cap != c || !d.granted) continue;
      d.required = true;
      d.verified = Verification::ConfirmedNeeded;
      d.reason = "confirmed needed by a run: " + it->second->reason + "; observed: " + d.reason;
    }
  }
  if (!unseen.empty()) {
    b.warnings.push_back("kept as observed, not verified: " + names(unseen) +
                         " (required by uses the verifying runs did not include)");
  }
  if (std::any_of(v.observed.begin(), v.observed.end(), [&](int c) { return !mine.contains(c); })) {
    b.warnings.push_back("the verifying runs held one set for the whole process tree (" + names(v.observed) +
                         "); verdicts on capabilities other binaries of the tree asked for are not this binary's");
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

void apply_stored_verifications(Analysis& a, Store& store) {
  for (BinaryDecision& b : a.binaries) {
    if (b.path.empty()) continue;
    std::vector<VerifiedSetRow> rows = store.verified_sets(b.path);
    if (rows.empty()) continue;
    std::string err;
    std::optional<FileIdentity> now = read_file_identity(b.path, &err);
    if (!now) {
      b.warnings.push_back("a verified set exists, but the file cannot be read to check it is the one verified (" +
                           err + "): the observed set is used");
      continue;
    }
    auto row = std::find_if(rows.begin(), rows.end(), [&](const VerifiedSetRow& r) { return r.sha256 == now->sha256; });
    if (row == rows.end()) {
      b.warnings.push_back("verified sets exist only for other contents of this file (SHA-256 differs): the observed "
                           "set is used; verify again with capaudit profile --minimize");
      continue;
    }
    std::optional<VerificationInfo> v = verification_from_row(*row, &err);
    if (!v) {
      b.warnings.push_back("the verified set cannot be read (" + err + "): the observed set is used");
      continue;
    }
    apply_verification(b, std::move(*v));
  }
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
