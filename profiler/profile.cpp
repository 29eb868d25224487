// capaudit profile: run one command, count the checks of its whole process
// tree, and report the minimal set, like strace for capabilities.
#include "collector.h"
#include "commands.h"
#include "drainer.h"
#include "runas.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>

namespace capaudit {

namespace {

int pidfd_open(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

// The child waits on `go` so that its pid is marked for tracking before it
// can exec; checks made while it sets itself up are capaudit's, not CMD's,
// and are not counted (tracking starts at exec).
[[noreturn]] void child_main(int go_fd, int err_fd, const ProfileArgs& a, const std::optional<RunAs>& who,
                             const std::vector<int>& caps) {
  char byte;
  if (read(go_fd, &byte, 1) != 1) _exit(127);
  close(go_fd);
  std::string err;
  if (who && !become_user_with_ambient(*who, caps, &err)) {
    std::string msg = "capaudit profile: " + err + "\n";
    (void)!write(err_fd, msg.data(), msg.size());
    _exit(127);
  }
  std::vector<char*> argv;
  for (auto& s : a.command) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  std::string msg = "capaudit profile: cannot run '" + a.command[0] + "': " + std::strerror(errno) + "\n";
  (void)!write(err_fd, msg.data(), msg.size());
  _exit(127);
}

int exit_status_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int cmd_profile(const ProfileArgs& a) {
  std::optional<RunAs> who;
  std::string err;
  if (a.user) {
    who = lookup_user(*a.user, &err);
    if (!who) {
      std::cerr << "capaudit profile: " << err << "\n";
      return 2;
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
  collector->on_exec([&paths](const ca_exec_event& ev) {
    paths.learn_exec(ExeId{ev.exe_dev, ev.exe_ino}, std::string(ev.dpath, strnlen(ev.dpath, sizeof ev.dpath)),
                     std::string(ev.filename, strnlen(ev.filename, sizeof ev.filename)), ev.pid);
  });

  int go[2];
  if (pipe2(go, O_CLOEXEC) != 0) {
    std::cerr << "capaudit profile: pipe: " << std::strerror(errno) << "\n";
    return 1;
  }
  std::cout.flush();
  pid_t child = fork();
  if (child < 0) {
    std::cerr << "capaudit profile: fork: " << std::strerror(errno) << "\n";
    return 1;
  }
  if (child == 0) {
    close(go[1]);
    child_main(go[0], STDERR_FILENO, a, who, caps);
  }
  close(go[0]);
  bool tracked = collector->track_process(static_cast<uint32_t>(child));
  if (!tracked || write(go[1], "g", 1) != 1) {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    std::cerr << "capaudit profile: cannot track the command's process\n";
    return 1;
  }
  close(go[1]);

  // The command's own signals (Ctrl-C) reach it through the terminal; the
  // profiler outlives it to write the report.
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  int pidfd = pidfd_open(child);
  int status = 0;
  for (;;) {
    pollfd fds[2] = {{collector->events_fd(), POLLIN, 0}, {pidfd, POLLIN, 0}};
    int n = poll(fds, pidfd >= 0 ? 2 : 1, pidfd >= 0 ? -1 : 100);
    if (n < 0 && errno != EINTR) break;
    if (fds[0].revents) collector->poll_events(0);
    if (pidfd < 0 || fds[1].revents) {
      pid_t w = waitpid(child, &status, pidfd >= 0 ? 0 : WNOHANG);
      if (w == child) break;
    }
  }
  if (pidfd >= 0) close(pidfd);
  collector->poll_events(0);

  DrainOptions dopts;
  dopts.profiled = true;
  dopts.unresolved_grace_drains = 0;  // one drain: store what cannot be named too
  dopts.persist_drain_state = false;
  std::string kerr;
  std::optional<Kallsyms> syms = Kallsyms::load("/proc/kallsyms", &kerr);
  if (!syms) spdlog::warn("kernel stacks unsymbolised: {}", kerr);
  KernelSnapshot snap{collector->read_counts(), collector->read_origins(), collector->stats()};
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
  std::vector<Observation> obs = load_observations(*run_store, std::nullopt);
  Analysis analysis = analyze(obs, Rules::builtin());
  std::ostream& out = a.output ? static_cast<std::ostream&>(outfile) : std::cerr;
  if (a.json) out << to_json(analysis).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  else print_recommend_table(out, analysis);
  out.flush();
  return exit_status_of(status);
}

}  // namespace capaudit
