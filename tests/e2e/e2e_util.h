// Harness for end-to-end tests: real capauditd/capaudit processes, real
// kernel, real SQLite. Synchronisation uses the daemon's sd_notify messages
// and waitpid, never sleeps.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <vector>

namespace capaudit::e2e {

// True when end-to-end tests can run here; otherwise *why says what is
// missing. With CAPAUDIT_REQUIRE_E2E=1 a missing prerequisite is a failure.
bool can_run(std::string* why);

#define CAPAUDIT_REQUIRE_E2E()                                                     \
  do {                                                                             \
    std::string why_;                                                              \
    if (!::capaudit::e2e::can_run(&why_)) {                                        \
      if (::capaudit::e2e::required()) FAIL() << "e2e required but: " << why_;     \
      GTEST_SKIP() << why_;                                                        \
    }                                                                              \
  } while (0)

bool required();

// A temporary directory, readable by every user (workloads run as nobody).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A datagram socket the daemon sends its sd_notify messages to.
class NotifyListener {
 public:
  NotifyListener();
  ~NotifyListener();
  const std::string& path() const { return path_; }
  // Next message, or nullopt on timeout.
  std::optional<std::string> next(std::chrono::milliseconds timeout);
  // Waits for a message containing `needle`; every message seen is appended
  // to *seen when given.
  bool wait_for(const std::string& needle, std::chrono::milliseconds timeout,
                std::vector<std::string>* seen = nullptr);

 private:
  int fd_ = -1;
  std::string dir_, path_;
};

struct ProcessResult {
  int exit_code = -1;  // -1: killed by a signal
  int signal = 0;
  std::string out, err;
};

// Runs argv to completion, capturing its output; in `cwd` when given.
ProcessResult run(const std::vector<std::string>& argv, const std::string& stdin_text = "",
                  const std::string& cwd = "");

class Daemon {
 public:
  // Starts capauditd with the given database and extra arguments, pinning
  // off by default so that tests do not meet each other's pins.
  explicit Daemon(const std::string& db, std::vector<std::string> extra = {});
  ~Daemon();
  // Waits for READY=1. False (with the log in *log) if the daemon exited.
  bool wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Asks for a drain (SIGUSR1) and waits until the daemon says it is done;
  // *status gets that STATUS= message.
  bool flush(std::string* status = nullptr);
  // Sends `sig` (SIGTERM: a clean stop) and waits: the exit code, or minus
  // the signal that ended it.
  int stop(int sig = SIGTERM);
  void signal(int sig);
  pid_t pid() const { return pid_; }
  std::string log() const;
  NotifyListener& notify() { return notify_; }

 private:
  NotifyListener notify_;
  pid_t pid_ = -1;
  uint64_t flushes_sent_ = 0;  // SIGUSR1s this object sent, as the daemon counts them
  std::string log_path_;
};

std::string workload(const std::string& name);  // path of a test workload
std::string read_file(const std::string& path);   // "" when unreadable
std::string real_path(const std::string& path);   // realpath, or path itself

// `capaudit profile --user nobody --json --output F [extra...] -- command`,
// with the report F parsed (null JSON when it was not written).
struct ProfileRun {
  ProcessResult run;
  nlohmann::json report;
};
ProfileRun profile_as_nobody(const TempDir& dir, const std::vector<std::string>& command,
                             const std::vector<std::string>& extra = {});
// The report's entry for `path`, or nullptr.
const nlohmann::json* find_binary(const nlohmann::json& report, const std::string& path);
std::vector<std::string> caps_of(const nlohmann::json& binary);
std::string capaudit_bin();
std::string capauditd_bin();

}  // namespace capaudit::e2e
