// capaudit profile: run one command, count the checks of its whole process
// tree, and report the minimal set, like strace for capabilities.
#include "capnames.h"
#include "child.h"
#include "collector.h"
#include "commands.h"
#include "drainer.h"
#include "identity.h"
#include "minimize.h"
#include "runas.h"

#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>

namespace capaudit {

namespace {

volatile sig_atomic_t g_interrupted = 0;
extern "C" void on_interrupt(int) { g_interrupted = 1; }

// CMD's own executable: the first exec of the tracked process, else
// command[0] resolved like execvp does.
const BinaryDecision* command_binary(const Analysis& analysis, const std::optional<ExeId>& first_exec,
                               const std::vector<std::string>& command) {
  if (first_exec) {
    uint64_t dev = kernel_dev_to_user(first_exec->kdev);
    for (const BinaryDecision& b : analysis.binaries)
      if (b.row && b.row->key.dev == dev && b.row->key.ino == first_exec->ino) return &b;
  }
  std::string path = resolve_command(command[0]);
  for (const BinaryDecision& b : analysis.binaries)
    if (!b.path.empty() && b.path == path) return &b;
  return nullptr;
}

// --minimize: re-run CMD holding candidate sets (docs/minimize.md) and
// rewrite every binary of its tree in the analysis with what the runs
// showed for it. `held`: what the traced run held. False after printing the
// error when a verified set cannot be stored.
bool verify_by_runs(const ProfileArgs& a, const RunAs& who, const OpenedExecutable* exe, Analysis& analysis,
                    const Behaviour& reference, std::chrono::milliseconds traced_for,
                    const std::optional<ExeId>& first_exec, const std::vector<int>& held, Store* db) {
  if (analysis.binaries.empty()) {
    std::cerr << "capaudit profile: --minimize: no check of the command's process tree was recorded ("
              << quote_for_display(a.command[0]) << " did not run?); nothing verified\n";
    return true;
  }
  const BinaryDecision* command = command_binary(analysis, first_exec, a.command);
  // The runs hold one set for the whole process tree (ambient capabilities
  // pass through exec), starting from every capability it was granted.
  SearchPlan plan = plan_search(analysis, held);
  RerunOptions ro;
  ro.command = a.command;
  ro.who = who;
  ro.exe = exe;
  ro.capture_stdout = a.compare_output;
  // A run that hangs without a capability must not hang capaudit.
  ro.timeout = std::max<std::chrono::milliseconds>(std::chrono::seconds(30), 4 * traced_for);
  ro.interrupted = &g_interrupted;
  // Ctrl-C now stops the runs (the report says what was left unverified)
  // instead of being ignored as it was while the traced command ran.
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::cerr << "capaudit profile: verifying "
            << (command ? quote_for_display(command->display_name) : quote_for_display(a.command[0]))
            << (analysis.binaries.size() > 1
                    ? " and the " + std::to_string(analysis.binaries.size() - 1) + " other binaries of its tree"
                    : std::string())
            << " by re-running the command as " << quote_for_display(who.name) << " (up to " << a.max_runs
            << " runs, starting from " << cap_list_text(plan.start) << "; the rules' set: "
            << cap_list_text(plan.kept) << ")\n";
  if (!plan.note.empty()) std::cerr << "capaudit profile: " << escape_for_display(plan.note) << "\n";
  MinimizeOptions mo;
  mo.max_runs = a.max_runs;
  mo.compare_output = a.compare_output;
  VerificationInfo v = minimize(plan, reference, [&ro](const std::vector<int>& caps) { return rerun(ro, caps); },
                                Rules::builtin(), mo);
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_DFL);
  if (!v.baseline_ok) {
    std::cerr << "capaudit profile: WARNING: nothing verified: " << escape_for_display(v.note) << "\n";
  } else {
    std::string summary;
    for (const CapabilityVerdict& cv : v.capabilities)
      summary += (summary.empty() ? "" : ", ") + cap_name(cv.cap) + " " + verification_name(cv.verified);
    std::cerr << "capaudit profile: verified by " << v.runs << " runs: "
              << (summary.empty() ? std::string("no capability to try") : summary) << "\n";
  }
  apply_tree_verification(analysis, v, command);
  bool stored = true;
  for (const BinaryDecision& b : analysis.binaries) {
    if (!b.verified_set()) continue;
    std::cerr << "capaudit profile: verified set of " << quote_for_display(b.display_name) << ": "
              << cap_list_text(b.capabilities) << "\n";
    if (!db || b.path.empty()) continue;
    std::optional<std::string> sha = b.row ? b.row->sha256 : std::nullopt;
    if (!sha) {
      std::string err;
      if (auto ident = read_file_identity(b.path, &err)) sha = ident->sha256;
    }
    if (!sha) {
      std::cerr << "capaudit profile: cannot store the verified set of " << quote_for_display(b.path)
                << ": the executable's contents are unknown\n";
      continue;
    }
    if (db->add_verified_set(verified_set_row(b.path, *sha, b)) == 0) {
      std::cerr << "capaudit profile: cannot store the verified set in '" << db->path() << "': " << db->last_error()
                << "\n";
      stored = false;
    }
  }
  return stored;
}

}  // namespace

int cmd_profile(const ProfileArgs& a) {
  // Re-runs as root would hold every capability whatever the set says.
  if (a.minimize && !a.user) {
    std::cerr << "capaudit profile: --minimize needs --user: the verifying runs hold the candidate set as that "
                 "user's ambient capabilities\n";
    return 2;
  }
  std::optional<RunAs> who;
  std::string err;
  if (a.user) {
    who = lookup_user(*a.user, &err);
    if (!who) {
      std::cerr << "capaudit profile: " << err << "\n";
      return 2;
    }
    if (a.minimize && who->uid == 0) {
      std::cerr << "capaudit profile: --minimize needs a --user other than root: uid 0 regains every capability "
                   "at exec, whatever set the runs hold\n";
      return 2;
    }
  }
  // Every run of a --minimize session execs COMMAND the same way: by name,
  // or, where USER cannot reach it without capabilities, through this.
  std::optional<OpenedExecutable> exe;
  if (a.minimize) {
    exe = open_unreachable_executable(a.command[0], *who, &err);
    if (!exe && !err.empty()) {
      std::cerr << "capaudit profile: " << err << "\n";
      return 1;
    }
    if (exe) {
      std::cerr << "capaudit profile: " << quote_for_display(who->name) << " cannot reach "
                << quote_for_display(exe->path)
                << " without capabilities: every run executes it through a descriptor capaudit opened"
                << (exe->script ? " (the script is given /dev/fd/" + std::to_string(exe->fd.get()) + " as its path)"
                                : std::string())
                << "\n";
    }
  }
  std::vector<int> caps = bounding_set();

  // Open the output before running anything, so a bad --output path fails
  // before CMD has had side effects.
  std::ofstream outfile;
  if (a.output) {
    outfile.open(*a.output, std::ios::trunc);
    if (!outfile) {
      std::cerr << "capaudit profile: cannot write --output '" << *a.output << "': " << std::strerror(errno)
                << "\n";
      return 1;
    }
  }
  // The report comes from this run alone; --db also keeps it, beside
  // whatever that database already holds.
  std::unique_ptr<Store> run_store = Store::open(":memory:", &err);
  std::unique_ptr<Store> db_store;
  if (run_store && a.db) db_store = Store::open(*a.db, &err);
  if (!run_store || (a.db && !db_store)) {
    std::cerr << "capaudit profile: " << err << "\n";
    return 1;
  }

  CollectorOptions co;
  co.follow_tracked = true;
  co.stack_sample_period = 64;  // one command: more origins are worth more walks
  std::unique_ptr<Collector> collector;
  try {
    collector = Collector::start(co);
  } catch (const CollectorError& e) {
    std::cerr << "capaudit profile: " << e.what() << "\n";
    return 1;
  }
  ExePathResolver paths;
  uint32_t child_tgid = 0;
  std::optional<ExeId> first_exec;  // CMD's own executable, for --minimize
  collector->on_exec([&](const ca_exec_event& ev) {
    paths.learn_exec(ev);
    if (!first_exec && child_tgid && ev.tgid == child_tgid) first_exec = ExeId{ev.exe_dev, ev.exe_ino};
  });

  ChildOptions run;
  run.argv = a.command;
  run.exe = exe ? &*exe : nullptr;
  run.who = who;
  run.caps = caps;
  // --compare-output: the traced run's output is compared with the re-runs'
  // too, so it goes through capaudit, which passes it on.
  if (a.compare_output) run.out = ChildOptions::Stream::Capture;
  // Held until its pid is marked for tracking, so that it cannot exec before.
  run.start_stopped = true;
  std::cout.flush();
  auto started = std::chrono::steady_clock::now();
  std::unique_ptr<ChildProc> child = ChildProc::start(run, &err);
  if (!child) {
    std::cerr << "capaudit profile: " << err << "\n";
    return 1;
  }
  child_tgid = static_cast<uint32_t>(child->pid());
  if (!collector->track_process(static_cast<uint32_t>(child->pid())) || !child->resume()) {
    child.reset();  // killed and reaped
    std::cerr << "capaudit profile: cannot track the command's process\n";
    return 1;
  }

  // The command's own signals (Ctrl-C) reach it through the terminal; the
  // profiler outlives it to write the report.
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  // A reader of the copied output that goes away must not kill capaudit.
  if (a.compare_output) signal(SIGPIPE, SIG_IGN);
  OutputDigest traced_output(STDOUT_FILENO);
  ChildProc::WaitOptions wo;
  wo.on_output = [&traced_output](int fd) { return traced_output.pump(fd); };
  wo.watch_fd = collector->events_fd();
  wo.on_watch = [&collector] { collector->poll_events(0); };
  ChildExit ended = child->wait(wo);
  auto traced_for = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  if (!ended.setup_error.empty()) std::cerr << "capaudit profile: " << ended.setup_error << "\n";
  const int status = ended.wstatus;
  collector->poll_events(0);

  DrainOptions dopts;
  dopts.profiled = true;
  dopts.unresolved_grace_drains = 0;  // one drain: store what cannot be named too
  dopts.persist_drain_state = false;
  std::string kerr;
  std::optional<Kallsyms> syms = Kallsyms::load("/proc/kallsyms", &kerr);
  if (!syms) spdlog::warn("kernel stacks unsymbolised: {}", kerr);
  KernelSnapshot snap{collector->read_counts(), collector->read_origins(), collector->stats(),
                      collector->read_inspections()};
  auto read_stack = [&](int32_t id) { return collector->read_stack(id); };
  for (Store* store : {run_store.get(), db_store.get()}) {
    if (!store) continue;
    Drainer drainer(*store, paths, syms ? &*syms : nullptr, dopts);
    drainer.resume(false);
    DrainResult r = drainer.drain(snap, read_stack, time(nullptr));
    if (!r.ok) {
      std::cerr << "capaudit profile: cannot store the run in '" << store->path() << "': " << r.error << "\n";
      return 1;
    }
  }
  std::optional<std::vector<Observation>> loaded = load_observations(*run_store, std::nullopt, &err);
  if (!loaded) {
    std::cerr << "capaudit profile: " << err << "\n";
    return 1;
  }
  const std::vector<Observation>& obs = *loaded;
  Analysis analysis = analyze(obs, Rules::builtin());
  if (a.minimize) {
    collector.reset();  // the re-runs are not traced
    Behaviour reference;
    reference.exit_status = exit_status(status);
    if (WIFSIGNALED(status)) reference.signal = WTERMSIG(status);
    if (a.compare_output) {
      reference.stdout_bytes = traced_output.bytes();
      reference.stdout_sha256 = traced_output.finish();
    }
    if (!verify_by_runs(a, *who, exe ? &*exe : nullptr, analysis, reference, traced_for, first_exec, caps,
                        db_store.get()))
      return 1;
  }
  std::ostream& out = a.output ? static_cast<std::ostream&>(outfile) : std::cerr;
  if (a.json) out << to_json(analysis).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  else print_recommend_table(out, analysis);
  out.flush();
  return exit_status(status);
}

}  // namespace capaudit
