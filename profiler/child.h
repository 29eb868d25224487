// The one way capaudit profile runs a child process: the traced run, each
// --minimize re-run and the check of what USER can reach. Like bpftrace's
// ChildProc: built from argv and options (run as a user holding ambient
// capabilities, standard streams, held stopped until the tracer is ready,
// a process group of its own), waited for with a pidfd and a timeout.
#pragma once

#include "fd.h"
#include "runas.h"

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace capaudit {

// command[0] as execvp finds it, resolved: the path the kernel reports.
// The name itself when nothing is found.
std::string resolve_command(const std::string& name);

// The command's executable opened by capaudit while it is root, for runs
// as a user who cannot reach its path without capabilities (a directory
// only root may enter). Those runs hold only candidate sets; the traced run
// reached the file holding every capability, and the path walk of an exec
// is made before tracking starts, so the trace never asks for what the walk
// needs. Executing this descriptor gives every run the file itself.
struct OpenedExecutable {
  Fd fd;                // O_PATH, close-on-exec
  std::string path;     // resolved
  bool script = false;  // "#!": the interpreter is given /dev/fd/N as the script's path
};

// For --minimize: nullopt with *err empty when `who`, holding no
// capability, can reach command[0] (runs exec it by name, as without
// --minimize) or capaudit cannot open it either (the run says why).
// nullopt with *err when no run as `who` could start it (a file `who` may
// not execute, a script whose interpreter is out of reach too).
std::optional<OpenedExecutable> open_unreachable_executable(const std::string& command0, const RunAs& who,
                                                            std::string* err);

struct ChildOptions {
  std::vector<std::string> argv;          // argv[0] is looked up like execvp does...
  const OpenedExecutable* exe = nullptr;  // ...unless this is given: exec'd instead
  // Instead of an exec: run this in the child (after it became `who`) and
  // exit with what it returns.
  std::function<int()> call;
  std::optional<RunAs> who;  // become this user, holding exactly `caps` as ambient capabilities
  std::vector<int> caps;
  enum class Stream { Inherit, Null, Capture };  // Capture: standard output only, see stdout_fd()
  Stream in = Stream::Inherit, out = Stream::Inherit, err = Stream::Inherit;
  bool start_stopped = false;      // nothing happens in the child before resume()
  bool own_process_group = false;  // killed whole (SIGKILL) once the child has exited
  bool default_signals = false;    // dispositions and mask capaudit changed back to the defaults
};

struct ChildExit {
  bool exited = false;  // reaped: wstatus holds what waitpid gave
  int wstatus = 0;
  bool timed_out = false;    // killed at the timeout
  bool interrupted = false;  // killed because *interrupted was set
  // Why the child never got to run the command (exec failed, the user could
  // not be become); empty when it did.
  std::string setup_error;
};

// Like the shell's $?: the exit status, or 128+N when killed by signal N.
int exit_status(int wstatus);

class ChildProc {
 public:
  // Forks; nullptr with *err when it cannot.
  static std::unique_ptr<ChildProc> start(const ChildOptions& o, std::string* err);
  ~ChildProc();  // a child still running is killed and reaped
  ChildProc(const ChildProc&) = delete;
  ChildProc& operator=(const ChildProc&) = delete;

  pid_t pid() const { return pid_; }
  // start_stopped: lets the child go on to exec. False when it cannot.
  bool resume();
  // The read end of captured standard output (non-blocking), -1 otherwise.
  int stdout_fd() const { return out_.get(); }

  struct WaitOptions {
    std::optional<std::chrono::milliseconds> timeout;    // then SIGKILL
    const volatile sig_atomic_t* interrupted = nullptr;  // set by a signal handler: kill now
    // Captured output is readable: read it; false at end of file.
    std::function<bool(int fd)> on_output;
    // Other work while waiting, e.g. the collector's events.
    int watch_fd = -1;
    std::function<void()> on_watch;
  };
  // Until the child exits (or the timeout, or *interrupted); once.
  ChildExit wait(const WaitOptions& w);

 private:
  ChildProc() = default;
  pid_t pid_ = -1;
  bool reaped_ = false;
  bool own_group_ = false;
  Fd go_, err_, out_, pidfd_;
};

}  // namespace capaudit
