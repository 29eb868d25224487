// Real Debian programs as capaudit workloads (issue 11): each program's
// minimal set is proven here by the closed loop, then capaudit's plain and
// --minimize recommendations are scored against it.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "e2e_util.h"

namespace capaudit::e2e::real {

using CapSet = std::set<std::string>;  // libcap names: "cap_net_raw"

std::string set_text(const CapSet& s);  // "{cap_a,cap_b}", "{}"

// What the programs run against, made once per suite and removed after: a
// scratch directory, two private network namespaces joined by a veth pair,
// and a root process to signal.
class Env {
 public:
  Env();
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;
  const std::string& dir() const { return dir_.path(); }
  std::string file(const std::string& name) const { return dir_.file(name); }
  // A file owned by uid:gid with `mode` and `text`, re-made on every call.
  std::string make_file(const std::string& name, uid_t uid, gid_t gid, mode_t mode,
                        const std::string& text = "data\n") const;
  // A copy of a Debian binary without its file capabilities or setuid bit.
  std::string copy_binary(const std::string& from, const std::string& name) const;
  const std::string& netns() const { return netns_a_; }       // veth0 10.9.9.1
  std::string netns_path() const { return "/run/netns/" + netns_a_; }
  const std::string& sleeper_name() const { return sleeper_name_; }
  pid_t sleeper() const { return sleeper_; }
  // Runs argv as root inside the private network namespace.
  ProcessResult in_netns(const std::vector<std::string>& argv) const;
  bool ready(std::string* why) const;

 private:
  TempDir dir_;
  std::string saved_path_, saved_home_;
  std::string netns_a_, netns_b_, sleeper_name_;
  pid_t sleeper_ = -1;
  std::string error_;
};

struct Program {
  std::string name{};
  std::vector<std::string> argv{};  // run in Env::dir(), as nobody
  CapSet needs{};                  // S: the table's claim, proven by the closed loop
  bool in_netns = false;          // run inside Env::netns()
  std::string stdin_text{};
  std::function<void(const Env&)> prepare{};                            // as root, before each run
  std::function<bool(const Env&, std::string* why)> effect{};           // as root, after: did it happen?
  // For --minimize when the exit status lies and stdout does not tell:
  // `sh -c` text that runs the program and exits non-zero when the effect
  // is missing (the re-runs see only exit status and stdout).
  std::string minimize_script{};
  bool compare_output = false;  // --minimize --compare-output: the effect shows on stdout
  // Capabilities a plain run cannot decide from the kernel's evidence: the
  // plain set is expected to be S plus these, each kept with "unverified".
  std::map<std::string, std::string> plain_over{};  // capability -> why
  std::string stdout_has{};  // the effect, when it shows on standard output
};

// Runs the program as nobody holding exactly `caps` (setpriv: independent
// of capaudit's own code): true when it exits 0 and its effect is there.
bool works_holding(const Program& p, const Env& env, const CapSet& caps, std::string* why);

// The closed loop: works holding S, fails with any one capability removed.
bool prove_minimal(const Program& p, const Env& env, std::string* why);

// Exact: S itself. Alternative: another set the closed loop proves minimal
// (either capability opens the same door: ionice's sys_admin or sys_nice).
// Over: works but something can go. Broken: the program fails holding it.
enum class Verdict { Exact, Alternative, Over, Broken, NoReport };
const char* verdict_name(Verdict v);

struct Recommendation {
  ProcessResult run;
  nlohmann::json report;
  CapSet caps;  // union of every binary's set: what the command's tree is given
  Verdict verdict = Verdict::NoReport;
  std::string why;  // for Broken/NoReport: what failed
};

// capaudit profile --user nobody (plus --minimize ... when `minimize`),
// scored against S; a set other than S is run to tell the verdicts apart.
Recommendation recommend(const Program& p, const Env& env, bool minimize);

// A capability's granted check lines in the report all say it was kept
// without proof: "unverified", or "kept because it was granted".
bool kept_unverified(const nlohmann::json& report, const std::string& cap);

// Known wrong recommendations not yet fixed on main: a case listed here that
// fails is reported as XFAIL instead of failing; one that passes is XPASS
// (the entry can go). Each names the kind of mistake and who fixes it.
struct ExpectedFailure {
  const char* program;
  const char* mode;  // "plain" or "minimize"
  const char* kind;
  const char* owner;
};

const ExpectedFailure* find_expected_failure(const std::vector<ExpectedFailure>& list, const std::string& program,
                                             const std::string& mode);

struct Row {
  std::string program, needs, plain, minimized, verdict;
};

// Proves, scores and asserts every program; prints the table and writes it
// to `table_file`. `expected` gates the cases listed there.
void score_suite(const std::string& title, const std::vector<Program>& programs, const Env& env,
                 const std::vector<ExpectedFailure>& expected, const std::string& table_file);

std::string build_dir();  // where capaudit was built: the score tables go there

}  // namespace capaudit::e2e::real
