#include "child.h"

#include "display.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace capaudit {

std::string resolve_command(const std::string& name) {
  char buf[PATH_MAX];
  if (name.find('/') != std::string::npos) return realpath(name.c_str(), buf) ? buf : name;
  const char* path = getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0 && realpath(candidate.c_str(), buf)) return buf;
    start = end + 1;
  }
  return name;
}

namespace {

// The interpreter a "#!" line names, as the kernel reads it; nullopt when
// the file is no script (or cannot be read: the kernel then runs it as a
// binary or not at all).
std::optional<std::string> script_interpreter(int fd) {
  // Through the descriptor, not the path: the file read is the one opened.
  Fd rfd(open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!rfd) return std::nullopt;
  char buf[256];  // BINPRM_BUF_SIZE: the kernel reads no more of the line
  ssize_t n = pread(rfd.get(), buf, sizeof buf, 0);
  if (n < 2 || buf[0] != '#' || buf[1] != '!') return std::nullopt;
  std::string line(buf + 2, static_cast<size_t>(n - 2));
  size_t b = line.find_first_not_of(" \t");
  if (b == std::string::npos) return std::string();
  size_t e = line.find_first_of(" \t\n", b);
  return line.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

// The child's last step: exec argv[0] by name (execvp), or `exe` when
// given. Returns only on failure, with errno set.
void exec_command(const OpenedExecutable* exe, const std::string& resolved, char* const argv[]) {
  if (!exe) {
    if (!resolved.empty() && resolved.find('/') != std::string::npos) execv(resolved.c_str(), argv);
    else execvp(argv[0], argv);
    return;
  }
  const int fd = exe->fd.get();
  // The interpreter of a script opens /dev/fd/N itself: N must outlive the exec.
  if (exe->script) fcntl(fd, F_SETFD, 0);
  fexecve(fd, argv, environ);
  if (errno != ENOEXEC) return;
  // As execvp does with a file the kernel cannot run: the shell reads it.
  fcntl(fd, F_SETFD, 0);
  std::string self = "/dev/fd/" + std::to_string(fd);
  std::vector<char*> sh = {const_cast<char*>("/bin/sh"), self.data()};
  for (size_t i = 1; argv[0] && argv[i]; i++) sh.push_back(argv[i]);
  sh.push_back(nullptr);
  execv(sh[0], sh.data());
}

int pidfd_open(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

// Dispositions capaudit changed for itself go back to the defaults the
// command would get from a shell.
void reset_signals() {
  for (int sig : {SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGHUP}) signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

// In the child. Whatever stops it from running the command goes to err_fd
// (the parent reports it); nothing is written to the command's streams.
[[noreturn]] void child_main(const ChildOptions& o, int go_fd, int err_fd, int out_fd, int null_fd) {
  auto fail = [err_fd](const std::string& msg) {
    (void)!write(err_fd, msg.data(), msg.size());
    _exit(127);
  };
  // Held here until the tracer knows this pid: checks made while the child
  // sets itself up are capaudit's, not the command's (tracking starts at exec).
  char byte;
  if (o.start_stopped && read(go_fd, &byte, 1) != 1) _exit(127);
  if (o.own_process_group) setpgid(0, 0);
  if (o.default_signals) reset_signals();
  using S = ChildOptions::Stream;
  if ((o.in == S::Null && dup2(null_fd, STDIN_FILENO) < 0) ||
      (o.out != S::Inherit && dup2(o.out == S::Capture ? out_fd : null_fd, STDOUT_FILENO) < 0) ||
      (o.err == S::Null && dup2(null_fd, STDERR_FILENO) < 0))
    fail(std::string("cannot set up standard streams: ") + std::strerror(errno));
  std::string err;
  // Looked up on the caller's PATH while still the caller: the command runs
  // with the user's login PATH, which need not hold it.
  std::string resolved = o.who && !o.exe && !o.argv.empty() ? resolve_command(o.argv[0]) : std::string();
  if (o.who && !become_user_with_ambient(*o.who, o.caps, &err)) fail(err);
  if (o.who) apply_login_environment(*o.who);
  if (o.call) _exit(o.call());
  std::vector<char*> argv;
  for (const auto& s : o.argv) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  exec_command(o.exe, resolved, argv.data());
  fail("cannot run '" + o.argv[0] + "': " + std::strerror(errno));
  _exit(127);
}

// Reads what is waiting and throws it away; false at end of file.
bool discard(int fd) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
}

// What `who`, holding no capability, cannot do (bits below), or -1 when
// that cannot be found out. access() checks as the real uid and, for a uid
// other than root, without any capability; through /proc/self/fd the file
// itself is checked, without the walk to it.
constexpr int kPathUnreachable = 1, kNotExecutable = 2, kInterpreterUnreachable = 4;
int unreachable_for(const RunAs& who, const std::string& path, int fd, const std::string& interp) {
  ChildOptions o;
  o.who = who;
  o.call = [&] {
    int r = access(path.c_str(), X_OK) == 0 ? 0 : kPathUnreachable;
    if (access(("/proc/self/fd/" + std::to_string(fd)).c_str(), X_OK) != 0) r |= kNotExecutable;
    if (!interp.empty() && access(interp.c_str(), X_OK) != 0) r |= kInterpreterUnreachable;
    return r;
  };
  std::string err;
  std::unique_ptr<ChildProc> probe = ChildProc::start(o, &err);
  if (!probe) return -1;
  ChildExit e = probe->wait({});
  if (!e.setup_error.empty() || !WIFEXITED(e.wstatus) || WEXITSTATUS(e.wstatus) > 7) return -1;
  return WEXITSTATUS(e.wstatus);
}

}  // namespace

std::optional<OpenedExecutable> open_unreachable_executable(const std::string& command0, const RunAs& who,
                                                            std::string* err) {
  err->clear();
  OpenedExecutable exe;
  exe.path = resolve_command(command0);
  exe.fd = Fd(open(exe.path.c_str(), O_PATH | O_CLOEXEC));
  struct stat st {};
  if (!exe.fd || fstat(exe.fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  std::optional<std::string> interp = script_interpreter(exe.fd.get());
  int cannot = unreachable_for(who, exe.path, exe.fd.get(), interp.value_or(""));
  if (cannot <= 0) return std::nullopt;
  const std::string head = "--minimize cannot re-run " + quote_for_display(exe.path) + " as " + who.name + ": ";
  // The traced run gets past these holding every capability, before its
  // checks are counted; the re-runs would stop there.
  if (cannot & kNotExecutable) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    *err = head + "the file's mode (" + mode + ") does not let " + who.name +
           " execute it without capabilities, so runs holding only candidate sets could not start it";
    return std::nullopt;
  }
  if (!(cannot & kPathUnreachable)) return std::nullopt;
  exe.script = interp.has_value();
  if (exe.script && (cannot & kInterpreterUnreachable)) {
    *err = head + who.name +
           " cannot reach it without capabilities, which capaudit works around by executing the file through a "
           "descriptor it opened, but it is a script and the kernel looks its interpreter " +
           quote_for_display(*interp) + " up by path, which " + who.name + " cannot reach either";
    return std::nullopt;
  }
  return exe;
}

int exit_status(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return 1;
}

std::unique_ptr<ChildProc> ChildProc::start(const ChildOptions& o, std::string* err) {
  using S = ChildOptions::Stream;
  std::unique_ptr<ChildProc> c(new ChildProc());
  auto make_pipe = [err](Fd& read_end, Fd& write_end) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
      *err = std::string("pipe: ") + std::strerror(errno);
      return false;
    }
    read_end = Fd(p[0]);
    write_end = Fd(p[1]);
    // Only capaudit's end: the command's stays blocking.
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    return true;
  };
  Fd go_read, err_write, out_write, null_fd;
  if (o.in == S::Null || o.out == S::Null || o.err == S::Null) {
    null_fd = Fd(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!null_fd) {
      *err = std::string("/dev/null: ") + std::strerror(errno);
      return nullptr;
    }
  }
  if ((o.start_stopped && !make_pipe(go_read, c->go_)) || !make_pipe(c->err_, err_write) ||
      (o.out == S::Capture && !make_pipe(c->out_, out_write)))
    return nullptr;
  if (o.start_stopped) fcntl(go_read.get(), F_SETFL, fcntl(go_read.get(), F_GETFL) & ~O_NONBLOCK);
  pid_t pid = fork();
  if (pid < 0) {
    *err = std::string("fork: ") + std::strerror(errno);
    return nullptr;
  }
  if (pid == 0) {
    // Else a parent that goes away would leave it waiting for ever.
    c->go_.reset();
    child_main(o, go_read.get(), err_write.get(), out_write.get(), null_fd.get());
  }
  c->pid_ = pid;
  c->own_group_ = o.own_process_group;
  if (o.own_process_group) setpgid(pid, pid);  // either side may win; both ask for the same
  c->pidfd_ = Fd(pidfd_open(pid));
  return c;
}

ChildProc::~ChildProc() {
  if (pid_ <= 0 || reaped_) return;
  kill(own_group_ ? -pid_ : pid_, SIGKILL);
  while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

bool ChildProc::resume() {
  if (!go_) return false;
  bool ok = write(go_.get(), "g", 1) == 1;
  go_.reset();
  return ok;
}

ChildExit ChildProc::wait(const WaitOptions& w) {
  ChildExit r;
  if (reaped_) return r;
  auto output = [&w](int fd) { return w.on_output ? w.on_output(fd) : discard(fd); };
  const auto deadline = std::chrono::steady_clock::now() + w.timeout.value_or(std::chrono::milliseconds(0));
  bool exited = false;
  for (;;) {
    if (w.interrupted && *w.interrupted) {
      r.interrupted = true;
      break;
    }
    // Without a pidfd (older kernels), look for the exit every 50 ms.
    int wait_ms = pidfd_ ? -1 : 50;
    if (w.timeout) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        r.timed_out = true;
        break;
      }
      wait_ms = static_cast<int>(std::min<int64_t>(left.count(), pidfd_ ? 1000 : 50));
    } else if (w.interrupted && pidfd_) {
      wait_ms = 1000;
    }
    // poll skips negative descriptors: no pidfd, no output, nothing watched.
    pollfd fds[3] = {{pidfd_.get(), POLLIN, 0}, {out_.get(), POLLIN, 0}, {w.watch_fd, POLLIN, 0}};
    int n = poll(fds, 3, wait_ms);
    if (n < 0 && errno != EINTR) break;
    if (fds[2].revents && w.on_watch) w.on_watch();
    if (out_ && fds[1].revents && !output(out_.get())) out_.reset();
    if (!pidfd_ || fds[0].revents) {
      if (waitpid(pid_, &r.wstatus, WNOHANG) == pid_) {
        exited = true;
        break;
      }
    }
  }
  // Whatever it left running in its group goes too, so that the next run
  // starts without it.
  if (own_group_) kill(-pid_, SIGKILL);
  else if (!exited && (r.timed_out || r.interrupted)) kill(pid_, SIGKILL);
  if (!exited) {
    while (waitpid(pid_, &r.wstatus, 0) < 0 && errno == EINTR) {
    }
  }
  reaped_ = true;
  pidfd_.reset();
  if (out_) {
    output(out_.get());
    out_.reset();
  }
  char buf[512];
  ssize_t got;
  while ((got = read(err_.get(), buf, sizeof buf)) > 0) r.setup_error.append(buf, static_cast<size_t>(got));
  err_.reset();
  return r;
}

}  // namespace capaudit
