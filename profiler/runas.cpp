#include "runas.h"

#include "capnames.h"
#include "display.h"

#include <cap-ng.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace capaudit {

std::optional<RunAs> lookup_user(const std::string& user, std::string* err) {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  uid_t numeric = 0;
  auto [end, ec] = std::from_chars(user.data(), user.data() + user.size(), numeric);
  bool is_number = ec == std::errc() && end == user.data() + user.size();
  int rc = is_number ? getpwuid_r(numeric, &pw, buf.data(), buf.size(), &found)
                     : getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0 || !found) {
    if (err) *err = "unknown user '" + user + "'";
    return std::nullopt;
  }
  return RunAs{found->pw_uid, found->pw_gid, found->pw_name};
}

std::vector<int> bounding_set() {
  std::vector<int> caps;
  for (int cap = 0; cap <= last_cap(); cap++)
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) caps.push_back(cap);
  return caps;
}

bool become_user_with_ambient(const RunAs& who, const std::vector<int>& caps, std::string* err) {
  // Done step by step rather than with capng_change_id, which also applies
  // the bounding set and gives one opaque code for any failure.
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
    *err = std::string("PR_SET_KEEPCAPS: ") + std::strerror(errno);
    return false;
  }
  if (initgroups(who.name.c_str(), who.gid) != 0 || setresgid(who.gid, who.gid, who.gid) != 0 ||
      setresuid(who.uid, who.uid, who.uid) != 0) {
    *err = "cannot become '" + who.name + "': " + std::strerror(errno);
    return false;
  }
  // Permitted survived the uid change (keepcaps); effective did not.
  capng_clear(static_cast<capng_select_t>(CAPNG_SELECT_CAPS | CAPNG_SELECT_AMBIENT));
  for (int cap : caps) {
    if (capng_update(CAPNG_ADD,
                     static_cast<capng_type_t>(CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_INHERITABLE |
                                               CAPNG_AMBIENT),
                     static_cast<unsigned>(cap)) != 0) {
      *err = "cannot add " + cap_name(cap);
      return false;
    }
  }
  if (capng_apply(CAPNG_SELECT_CAPS) != 0) {
    *err = std::string("cannot set capabilities: ") + std::strerror(errno);
    return false;
  }
  if (capng_apply(CAPNG_SELECT_AMBIENT) != 0) {
    *err = std::string("cannot raise ambient capabilities: ") + std::strerror(errno);
    return false;
  }
  prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  return true;
}

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
  int rfd = open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (rfd < 0) return std::nullopt;
  char buf[256];  // BINPRM_BUF_SIZE: the kernel reads no more of the line
  ssize_t n = pread(rfd, buf, sizeof buf, 0);
  close(rfd);
  if (n < 2 || buf[0] != '#' || buf[1] != '!') return std::nullopt;
  std::string line(buf + 2, static_cast<size_t>(n - 2));
  size_t b = line.find_first_not_of(" \t");
  if (b == std::string::npos) return std::string();
  size_t e = line.find_first_of(" \t\n", b);
  return line.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

// What `who`, holding no capability, cannot do (kUnreachable... bits), or
// -1 when that cannot be found out. access() checks as the real uid and, for
// a uid other than root, without any capability; through /proc/self/fd the
// file itself is checked, without the walk to it.
constexpr int kPathUnreachable = 1, kNotExecutable = 2, kInterpreterUnreachable = 4;
int unreachable_for(const RunAs& who, const std::string& path, int fd, const std::string& interp) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    std::string err;
    if (!become_user_with_ambient(who, {}, &err)) _exit(64);
    int r = access(path.c_str(), X_OK) == 0 ? 0 : kPathUnreachable;
    if (access(("/proc/self/fd/" + std::to_string(fd)).c_str(), X_OK) != 0) r |= kNotExecutable;
    if (!interp.empty() && access(interp.c_str(), X_OK) != 0) r |= kInterpreterUnreachable;
    _exit(r);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) > 7) return -1;
  return WEXITSTATUS(status);
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

void exec_command(const OpenedExecutable* exe, char* const argv[]) {
  if (!exe) {
    execvp(argv[0], argv);
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

}  // namespace capaudit
