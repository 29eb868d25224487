// The child-process runner of capaudit profile, with ordinary programs: no
// root needed, except where a test says so and skips otherwise.
#include "child.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

namespace capaudit {
namespace {

using Clock = std::chrono::steady_clock;
using S = ChildOptions::Stream;

ChildOptions command(std::vector<std::string> argv) {
  ChildOptions o;
  o.argv = std::move(argv);
  return o;
}

// Runs to the end, standard output captured into *out when given.
ChildExit run(ChildOptions o, std::string* out = nullptr, ChildProc::WaitOptions w = {}) {
  if (out) {
    o.out = S::Capture;
    w.on_output = [out](int fd) {
      char buf[4096];
      for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
          out->append(buf, static_cast<size_t>(n));
          continue;
        }
        return n < 0 && errno == EAGAIN;
      }
    };
  }
  std::string err;
  std::unique_ptr<ChildProc> c = ChildProc::start(o, &err);
  EXPECT_TRUE(c) << err;
  if (!c) return {};
  if (o.start_stopped) {
    EXPECT_TRUE(c->resume());
  }
  return c->wait(w);
}

TEST(ChildProc, ExitStatusOfTrueAndFalse) {
  ChildExit t = run(command({"true"}));
  EXPECT_TRUE(WIFEXITED(t.wstatus));
  EXPECT_EQ(exit_status(t.wstatus), 0);
  EXPECT_EQ(t.setup_error, "");
  ChildExit f = run(command({"/bin/false"}));
  EXPECT_EQ(exit_status(f.wstatus), 1);
  EXPECT_FALSE(f.timed_out);
  EXPECT_FALSE(f.interrupted);
}

TEST(ChildProc, KilledBySignalIs128PlusIt) {
  ChildExit e = run(command({"/bin/sh", "-c", "kill -TERM $$"}));
  ASSERT_TRUE(WIFSIGNALED(e.wstatus));
  EXPECT_EQ(WTERMSIG(e.wstatus), SIGTERM);
  EXPECT_EQ(exit_status(e.wstatus), 128 + SIGTERM);
}

TEST(ChildProc, CommandThatCannotRunIsASetupError) {
  ChildExit e = run(command({"/nonexistent/capaudit-no-such-command"}));
  EXPECT_EQ(e.setup_error, "cannot run '/nonexistent/capaudit-no-such-command': No such file or directory");
  EXPECT_EQ(exit_status(e.wstatus), 127);
}

TEST(ChildProc, CapturesStandardOutput) {
  std::string out;
  ChildExit e = run(command({"/bin/sh", "-c", "echo hello; echo world"}), &out);
  EXPECT_EQ(exit_status(e.wstatus), 0);
  EXPECT_EQ(out, "hello\nworld\n");
  // More than a pipe holds: the runner reads while it waits.
  out.clear();
  e = run(command({"/bin/sh", "-c", "head -c 1000000 /dev/zero"}), &out);
  EXPECT_EQ(exit_status(e.wstatus), 0);
  EXPECT_EQ(out.size(), 1000000u);
}

TEST(ChildProc, CapturedOutputNobodyReadsIsDrained) {
  ChildOptions o = command({"/bin/sh", "-c", "head -c 1000000 /dev/zero"});
  o.out = S::Capture;
  ChildExit e = run(o);
  EXPECT_EQ(exit_status(e.wstatus), 0);
}

TEST(ChildProc, NullStreams) {
  std::string out;
  ChildOptions o = command({"/bin/sh", "-c", "read line; echo \"[$line]\"; echo err >&2"});
  o.in = S::Null;
  o.err = S::Null;
  ChildExit e = run(o, &out);
  EXPECT_EQ(out, "[]\n");  // standard input at end of file at once
  EXPECT_EQ(exit_status(e.wstatus), 0);
}

TEST(ChildProc, TimeoutKillsTheChild) {
  auto t0 = Clock::now();
  ChildProc::WaitOptions w;
  w.timeout = std::chrono::milliseconds(200);
  ChildExit e = run(command({"sleep", "30"}), nullptr, w);
  EXPECT_TRUE(e.timed_out);
  ASSERT_TRUE(WIFSIGNALED(e.wstatus));
  EXPECT_EQ(WTERMSIG(e.wstatus), SIGKILL);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(10));
  // A child that ends in time is not timed out.
  e = run(command({"true"}), nullptr, w);
  EXPECT_FALSE(e.timed_out);
  EXPECT_EQ(exit_status(e.wstatus), 0);
}

TEST(ChildProc, InterruptedStopsTheWait) {
  volatile sig_atomic_t flag = 1;
  ChildProc::WaitOptions w;
  w.interrupted = &flag;
  auto t0 = Clock::now();
  ChildExit e = run(command({"sleep", "30"}), nullptr, w);
  EXPECT_TRUE(e.interrupted);
  EXPECT_FALSE(e.timed_out);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(10));
}

TEST(ChildProc, StartStoppedWaitsForResume) {
  std::string marker = testing::TempDir() + "capaudit-child-started-" + std::to_string(getpid());
  std::remove(marker.c_str());
  ChildOptions o = command({"/bin/sh", "-c", "touch " + marker});
  o.start_stopped = true;
  std::string err;
  std::unique_ptr<ChildProc> c = ChildProc::start(o, &err);
  ASSERT_TRUE(c) << err;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  struct stat st {};
  EXPECT_NE(stat(marker.c_str(), &st), 0) << "ran before resume()";
  ASSERT_TRUE(c->resume());
  ChildExit e = c->wait({});
  EXPECT_EQ(exit_status(e.wstatus), 0);
  EXPECT_EQ(stat(marker.c_str(), &st), 0);
  std::remove(marker.c_str());
}

TEST(ChildProc, DestroyingANeverResumedChildReapsIt) {
  ChildOptions o = command({"true"});
  o.start_stopped = true;
  std::string err;
  std::unique_ptr<ChildProc> c = ChildProc::start(o, &err);
  ASSERT_TRUE(c) << err;
  pid_t pid = c->pid();
  c.reset();
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), -1);  // already reaped: not our child any more
  EXPECT_EQ(errno, ECHILD);
}

// A background process of the child's group does not outlive the run.
TEST(ChildProc, OwnProcessGroupIsKilledAtTheEnd) {
  std::string out;
  ChildOptions o = command({"/bin/sh", "-c", "sleep 30 >/dev/null & echo $!"});
  o.own_process_group = true;
  ChildExit e = run(o, &out);
  EXPECT_EQ(exit_status(e.wstatus), 0);
  pid_t bg = static_cast<pid_t>(std::stol(out));
  // Killed; it may linger as a zombie until its new parent reaps it.
  bool gone = false;
  for (int i = 0; i < 100 && !gone; i++) {
    std::ifstream stat("/proc/" + std::to_string(bg) + "/stat");
    std::string line;
    gone = !std::getline(stat, line) || line.find(") Z ") != std::string::npos;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(gone) << "background process " << bg << " still runs";
}

TEST(ChildProc, WatchedDescriptorIsServedWhileWaiting) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(write(p[1], "xyz", 3), 3);
  int served = 0;
  ChildProc::WaitOptions w;
  w.watch_fd = p[0];
  w.on_watch = [&] {
    char buf[8];
    if (read(p[0], buf, sizeof buf) > 0) served++;
  };
  ChildExit e = run(command({"sleep", "0.2"}), nullptr, w);
  EXPECT_EQ(exit_status(e.wstatus), 0);
  EXPECT_EQ(served, 1);
  close(p[0]);
  close(p[1]);
}

TEST(ChildProc, CallRunsInTheChild) {
  ChildOptions o;
  o.call = [] { return getpid() == getpgrp() ? 7 : 8; };
  o.own_process_group = true;
  EXPECT_EQ(exit_status(run(o).wstatus), 7);
}

// As root only: the user and capabilities the child runs with.
TEST(ChildProc, RunsAsUserHoldingExactlyTheCaps) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  ChildOptions o = command({"/bin/sh", "-c", "id -u; grep '^CapAmb' /proc/self/status"});
  o.who = RunAs{65534, 65534, "nobody", "/nonexistent", "/usr/sbin/nologin"};
  o.caps = {13};  // cap_net_raw
  std::string out;
  ChildExit e = run(o, &out);
  EXPECT_EQ(e.setup_error, "");
  EXPECT_EQ(out, "65534\nCapAmb:\t0000000000002000\n");
}

}  // namespace
}  // namespace capaudit
