#include "e2e_util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>

#include <fmt/format.h>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace capaudit::e2e {

bool required() {
  const char* v = getenv("CAPAUDIT_REQUIRE_E2E");
  return v && std::string(v) == "1";
}

bool can_run(std::string* why) {
  if (geteuid() != 0) {
    *why = "end-to-end tests need root (BPF, setpriv, setcap)";
    return false;
  }
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    *why = "no kernel BTF (/sys/kernel/btf/vmlinux)";
    return false;
  }
  return true;
}

TempDir::TempDir() {
  std::string tmpl = "/tmp/capaudit-e2e-XXXXXX";
  path_ = mkdtemp(tmpl.data());
  chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

NotifyListener::NotifyListener() {
  std::string tmpl = "/tmp/capaudit-notify-XXXXXX";
  dir_ = mkdtemp(tmpl.data());
  path_ = dir_ + "/notify.sock";
  fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
  if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    ADD_FAILURE() << "bind " << path_ << ": " << std::strerror(errno);
}

NotifyListener::~NotifyListener() {
  close(fd_);
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::optional<std::string> NotifyListener::next(std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
  char buf[4096];
  ssize_t n = recv(fd_, buf, sizeof buf, 0);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

bool NotifyListener::wait_for(const std::string& needle, std::chrono::milliseconds timeout,
                              std::vector<std::string>* seen) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    auto msg = next(left);
    if (!msg) return false;
    if (seen) seen->push_back(*msg);
    if (msg->find(needle) != std::string::npos) return true;
  }
}

namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

ProcessResult run(const std::vector<std::string>& argv, const std::string& stdin_text,
                  const std::string& cwd) {
  ProcessResult r;
  char out_tmpl[] = "/tmp/capaudit-out-XXXXXX";
  char err_tmpl[] = "/tmp/capaudit-err-XXXXXX";
  char in_tmpl[] = "/tmp/capaudit-in-XXXXXX";
  int out = mkstemp(out_tmpl), err = mkstemp(err_tmpl), in = mkstemp(in_tmpl);
  if (write(in, stdin_text.data(), stdin_text.size()) < 0) ADD_FAILURE() << "write stdin";
  lseek(in, 0, SEEK_SET);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    auto args = c_argv(argv);
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.out = slurp(out_tmpl);
  r.err = slurp(err_tmpl);
  close(out), close(err), close(in);
  unlink(out_tmpl), unlink(err_tmpl), unlink(in_tmpl);
  return r;
}

Daemon::Daemon(const std::string& db, std::vector<std::string> extra) {
  log_path_ = db + ".log";
  std::vector<std::string> argv = {capauditd_bin(), "--db", db, "--config", db + ".no-config.json",
                                   "--pin-dir", "", "--log-level", "debug"};
  // Later options win, so a test may turn pinning back on.
  argv.insert(argv.end(), extra.begin(), extra.end());
  pid_ = fork();
  if (pid_ == 0) {
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    dup2(fd, 2);
    dup2(fd, 1);
    setenv("NOTIFY_SOCKET", notify_.path().c_str(), 1);
    auto args = c_argv(argv);
    execv(args[0], args.data());
    _exit(127);
  }
}

Daemon::~Daemon() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

bool Daemon::wait_ready(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (notify_.wait_for("READY=1", std::chrono::milliseconds(200))) return true;
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
  }
  return false;
}

bool Daemon::flush(std::string* status) {
  // Discard what was said before, so the STATUS awaited is the drain's.
  while (notify_.next(std::chrono::milliseconds(0))) {
  }
  kill(pid_, SIGUSR1);
  // The answer to this SIGUSR1 names it; a timer drain's STATUS= does not.
  std::string answer = fmt::format(", {} flush requests served", ++flushes_sent_);
  std::vector<std::string> seen;
  if (!notify_.wait_for(answer, std::chrono::seconds(30), &seen)) return false;
  if (status) *status = seen.back();
  return true;
}

void Daemon::signal(int sig) { kill(pid_, sig); }

int Daemon::stop(int sig) {
  if (pid_ <= 0) return -1;
  kill(pid_, sig);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

std::string Daemon::log() const { return slurp(log_path_); }

std::string workload(const std::string& name) { return std::string(WORKLOAD_DIR) + "/" + name; }
std::string read_file(const std::string& path) { return slurp(path); }

std::string real_path(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) ? buf : path;
}

ProfileRun profile_as_nobody(const TempDir& dir, const std::vector<std::string>& command,
                             const std::vector<std::string>& extra) {
  std::string out = dir.file("profile.json");
  std::vector<std::string> argv = {capaudit_bin(), "profile", "--user", "nobody", "--json", "--output", out};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back("--");
  argv.insert(argv.end(), command.begin(), command.end());
  ProfileRun p;
  p.run = run(argv);
  p.report = nlohmann::json::parse(slurp(out), nullptr, false);
  return p;
}

const nlohmann::json* find_binary(const nlohmann::json& report, const std::string& path) {
  if (!report.is_object() || !report.contains("binaries")) return nullptr;
  for (auto& b : report["binaries"])
    if (b.value("path", "") == path) return &b;
  return nullptr;
}

std::vector<std::string> caps_of(const nlohmann::json& binary) {
  return binary["capabilities"].get<std::vector<std::string>>();
}
std::string capaudit_bin() { return CAPAUDIT_BIN; }
std::string capauditd_bin() { return CAPAUDITD_BIN; }

}  // namespace capaudit::e2e
