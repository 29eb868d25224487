// capaudit profile --minimize: observation cannot tell a capability the
// kernel merely asked for (setuid(getuid()) asks CAP_SETUID) from one the
// program needs, so the command is run again holding candidate sets and
// each capability is kept only where taking it away changes what the
// command does. docs/minimize.md says what this can and cannot know.
#pragma once

#include "child.h"
#include "engine.h"
#include "identity.h"
#include "rules.h"
#include "runas.h"
#include "store.h"

#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace capaudit {

// What a run did, as far as capaudit compares runs.
struct Behaviour {
  int exit_status = 0;  // like the shell's $?: 128+N when killed by signal N
  int signal = 0;       // the signal that killed it, 0 when it exited
  bool timed_out = false;
  std::optional<std::string> stdout_sha256;  // only when standard output was captured
  uint64_t stdout_bytes = 0;
};

std::string describe(const Behaviour& b, bool with_output);
// Same exit status (and output, when compared); a run that timed out is
// never the same as anything.
bool same_behaviour(const Behaviour& reference, const Behaviour& run, bool compare_output);

struct RunResult {
  bool ran = false;   // false: capaudit could not run it (error says why); nothing was learned
  std::string error;
  Behaviour behaviour;
};

// Runs the command holding exactly `caps`.
using Runner = std::function<RunResult(const std::vector<int>& caps)>;

struct MinimizeOptions {
  int max_runs = 32;  // re-runs, the baseline included
  bool compare_output = false;
};

// Where the runs start and the order they try capabilities in
// (docs/minimize.md, "What happens"): every capability granted in the traced
// run by any binary of the tree, the rules' set first.
struct SearchPlan {
  std::vector<int> start;  // the baseline holds these
  std::vector<int> kept;   // the rules' set (a subset of start), tried one at a time in this order
  std::string note;        // why the runs start wider than the grants, or ""
};
// `held`: every capability the traced run held. The start is that whole set
// when some binary of the tree inspected its own capabilities.
SearchPlan plan_search(const Analysis& tree, const std::vector<int>& held);

// First a run holding only the rules' set: behaving like `reference` (the
// traced run) drops every other capability of the start at once. Otherwise a
// run holding the whole start is the baseline, and the capabilities the rules
// drop are settled by halves (a run without a group; the group split when it
// changed something). Then the rules' set, one capability at a time: dropped
// when a run without it behaves the same, else replaced by a narrower
// alternative of the rules table when a run with that one does, else needed.
// Deterministic for a deterministic runner.
VerificationInfo minimize(const SearchPlan& plan, const Behaviour& reference, const Runner& run, const Rules& rules,
                          const MinimizeOptions& opts);
// The plan whose start is `observed`, in name order.
VerificationInfo minimize(const std::vector<int>& observed, const Behaviour& reference, const Runner& run,
                          const Rules& rules, const MinimizeOptions& opts);

// The set the runs left: every capability decided or tried but not dropped.
std::vector<int> verified_caps(const VerificationInfo& v);

// Rewrites a binary's set and check lines from its own verdicts (see
// docs/minimize.md): capabilities the runs decided take their verdict,
// capabilities this observation requires with no verdict stay, unverified.
// Without a good baseline only the note is added.
void apply_verification(BinaryDecision& b, VerificationInfo v);

// The runs held one set for the whole process tree: each capability they
// kept is credited to the binaries whose checks used it ("Process trees" in
// docs/minimize.md), each binary gets its own verdicts, and apply_verification.
// `command`: COMMAND's own executable, or null.
void apply_tree_verification(Analysis& tree, const VerificationInfo& v, const BinaryDecision* command);
// One binary's share of the tree's verdicts (what apply_tree_verification applies).
VerificationInfo binary_share(const Analysis& tree, const VerificationInfo& v, const BinaryDecision* command,
                              const BinaryDecision& b);

// Database form (Store::add_verified_set) and back.
VerifiedSetRow verified_set_row(const std::string& path, const std::string& sha256, const BinaryDecision& b);
std::optional<VerificationInfo> verification_from_row(const VerifiedSetRow& row, std::string* err);

// recommend: each binary whose file is, now, the one a verified set was
// made for (SHA-256) gets the newest such set; otherwise a warning says why
// the observation is used.
class StoredVerifications {
 public:
  // Every set the store holds, read at once: when that read fails (the
  // store's read_failed()), it fails before a command has written anything,
  // so each binary can be written as soon as it is decided.
  explicit StoredVerifications(Store& store) : by_path_(store.all_verified_sets()) {}
  bool any(const std::string& path) const { return by_path_.contains(path); }
  void apply(BinaryDecision& b) const;

 private:
  std::map<std::string, std::vector<VerifiedSetRow>> by_path_;
};
void apply_stored_verifications(Analysis& a, Store& store);

// One re-run, not traced: fork, become `who` holding exactly `caps` as
// ambient capabilities, exec `command` with standard input and error on
// /dev/null and standard output captured (or /dev/null), in a process
// group of its own that is killed when the run ends or times out.
struct RerunOptions {
  std::vector<std::string> command;
  RunAs who;
  const OpenedExecutable* exe = nullptr;  // exec this instead of command[0] by name (child.h)
  bool capture_stdout = false;
  std::chrono::milliseconds timeout{30000};
  const volatile sig_atomic_t* interrupted = nullptr;  // set by a signal handler: stop now
};
RunResult rerun(const RerunOptions& o, const std::vector<int>& caps);

// SHA-256 of a stream read from a non-blocking pipe, optionally copied on
// to another descriptor (the traced run's output still reaches the user).
class OutputDigest {
 public:
  explicit OutputDigest(int tee_fd = -1) : tee_fd_(tee_fd) {}
  // Reads what is waiting on fd; false at end of file (or a read error).
  bool pump(int fd);
  std::string finish() { return digest_.finish(); }  // hex digest; call once
  uint64_t bytes() const { return bytes_; }

 private:
  Sha256 digest_;
  int tee_fd_ = -1;
  uint64_t bytes_ = 0;
};

}  // namespace capaudit
