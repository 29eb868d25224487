// A hang detector that a slow machine cannot trip: each input may use this
// much CPU time (ITIMER_PROF counts only what this process ran), whatever
// else the machine is doing. libFuzzer's own -timeout is wall-clock, so on a
// shared machine it cannot tell waiting for a CPU from looping on one;
// scripts/fuzz sets it far higher, for a process that stops running at all.
#pragma once

#include <sys/time.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>

namespace capaudit::fuzz {

inline constexpr int kCpuSecondsPerInput = 10;

class CpuBudget {
 public:
  CpuBudget() {
    static bool installed = [] {
      struct sigaction sa {};
      sa.sa_handler = [](int) {
        static const char msg[] = "\n==fuzz== one input used more than its CPU budget (fuzz/cpu_budget.h): a hang\n";
        (void)!write(2, msg, sizeof msg - 1);
        abort();  // libFuzzer writes the input as crash-*
      };
      sigaction(SIGPROF, &sa, nullptr);
      return true;
    }();
    (void)installed;
    arm(kCpuSecondsPerInput);
  }
  ~CpuBudget() { arm(0); }
  CpuBudget(const CpuBudget&) = delete;
  CpuBudget& operator=(const CpuBudget&) = delete;

 private:
  static void arm(int seconds) {
    itimerval t{};
    t.it_value.tv_sec = seconds;
    setitimer(ITIMER_PROF, &t, nullptr);
  }
};

}  // namespace capaudit::fuzz
