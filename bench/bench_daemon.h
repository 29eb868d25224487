// capauditd as systemd would run it (Type=notify), for the benchmarks:
// started on a notify socket, drained on SIGUSR1, its CPU and peak RSS read.
// The socket is read all the time, as systemd reads it: sd_notify() blocks
// once a datagram socket's queue is full (net.unix.max_dgram_qlen, 10 here),
// and a daemon blocked there drains nothing (bench-soak once measured that
// stall: 17 s without a drain, the keys made meanwhile counted coarse).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/fmt/fmt.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace bench {

[[noreturn]] inline void die(const std::string& msg) {
  fmt::print(stderr, "bench: {}\n", msg);
  exit(1);
}

inline std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class Capauditd {
 public:
  Capauditd(const std::string& capauditd, const std::string& dir, const std::string& name,
            const std::string& config_json)
      : db_(dir + "/" + name + ".db"), log_(dir + "/" + name + ".log") {
    std::string config = dir + "/" + name + ".json";
    std::ofstream(config) << config_json;
    sock_path_ = dir + "/" + name + ".notify";
    sock_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock_path_.c_str());
    if (bind(sock_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      die("bind " + sock_path_ + ": " + std::strerror(errno));
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(fd, 1);
      dup2(fd, 2);
      setenv("NOTIFY_SOCKET", sock_path_.c_str(), 1);
      execl(capauditd.c_str(), capauditd.c_str(), "--config", config.c_str(), "--db", db_.c_str(),
            "--pin-dir", "", static_cast<char*>(nullptr));
      _exit(127);
    }
    reader_ = std::thread([this] { read_messages(); });
    if (!wait_for("READY=1", 0, 60000)) die("capauditd did not start:\n" + slurp(log_));
  }
  ~Capauditd() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    stop_reading_ = true;
    reader_.join();
    close(sock_);
    unlink(sock_path_.c_str());
  }
  const std::string& db() const { return db_; }
  pid_t pid() const { return pid_; }

  // Drains now and waits until it is done.
  // The STATUS= line counts the SIGUSR1s served: a timer drain that ends
  // meanwhile is not taken for the answer.
  void flush() {
    kill(pid_, SIGUSR1);
    const std::string answer = fmt::format(" {} flush requests served", ++flushes_);
    if (!wait_for(answer, 0, 60000)) die("capauditd did not answer SIGUSR1:\n" + slurp(log_));
  }
  // utime + stime so far, from /proc/PID/stat.
  double cpu_ms() const {
    std::string stat = slurp("/proc/" + std::to_string(pid_) + "/stat");
    size_t close_paren = stat.rfind(')');
    std::istringstream in(stat.substr(close_paren + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; in >> field; i++) {
      if (i == 14) utime = std::stoull(field);
      if (i == 15) {
        stime = std::stoull(field);
        break;
      }
    }
    return static_cast<double>(utime + stime) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  // VmHWM: the peak resident set so far.
  double peak_rss_mib() const {
    std::istringstream in(slurp("/proc/" + std::to_string(pid_) + "/status"));
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
    return 0;
  }
  struct Exit {
    int code = -1;
    double cpu_ms = 0;
    double peak_rss_mib = 0;
  };
  // SIGTERM (final drain) and the whole life's resource use.
  Exit stop() {
    kill(pid_, SIGTERM);
    int status = 0;
    rusage ru{};
    wait4(pid_, &status, 0, &ru);
    pid_ = -1;
    Exit e;
    e.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    e.cpu_ms = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    e.peak_rss_mib = static_cast<double>(ru.ru_maxrss) / 1024.0;
    if (e.code != 0) die("capauditd exited with " + std::to_string(e.code) + ":\n" + slurp(log_));
    return e;
  }

 private:
  void read_messages() {
    char buf[4096];
    while (!stop_reading_) {
      pollfd p{sock_, POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) continue;
      ssize_t n = recv(sock_, buf, sizeof buf, 0);
      if (n <= 0) continue;
      std::lock_guard<std::mutex> lock(mu_);
      messages_.emplace_back(buf, static_cast<size_t>(n));
      arrived_.notify_all();
    }
  }
  // A message from index `from` on containing needle; false on timeout or
  // if the daemon exited.
  bool wait_for(const std::string& needle, size_t from, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    std::unique_lock<std::mutex> lock(mu_);
    while (std::chrono::steady_clock::now() < deadline) {
      for (; from < messages_.size(); from++)
        if (messages_[from].find(needle) != std::string::npos) return true;
      arrived_.wait_for(lock, std::chrono::milliseconds(200));
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
    }
    return false;
  }

  std::string db_, log_, sock_path_;
  int sock_ = -1;
  pid_t pid_ = -1;
  unsigned flushes_ = 0;
  std::thread reader_;
  std::atomic<bool> stop_reading_{false};
  std::mutex mu_;
  std::condition_variable arrived_;
  std::vector<std::string> messages_;
};

}  // namespace bench
