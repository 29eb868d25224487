// End-to-end tests of the collector against the real kernel: load, count the
// fchown_loop workload's checks exactly, origins and stacks, exec events,
// forced methods, profile tracking, streaming and pinning.
//
// Root and a working attach method are needed: without them the tests skip
// with the reason, or fail when CAPAUDIT_REQUIRE_E2E=1. Synchronisation is
// waitpid and a pipe gate; the only polling is a bounded loop draining the
// exec ring buffer.
#include "collector.h"
#include "kernel_features.h"
#include "libbpf_log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace capaudit {
namespace {

namespace fs = std::filesystem;

bool e2e_required() {
  const char* v = std::getenv("CAPAUDIT_REQUIRE_E2E");
  return v && std::string(v) == "1";
}

#define SKIP_OR_FAIL(why)                                      \
  do {                                                         \
    if (e2e_required()) FAIL() << "e2e required but: " << why; \
    GTEST_SKIP() << why;                                       \
  } while (0)

// Starts a collector, or skips (fails under CAPAUDIT_REQUIRE_E2E=1) with the
// reason BPF is unusable here.
#define START_OR_SKIP(var, opts)                                                  \
  std::unique_ptr<Collector> var;                                                 \
  do {                                                                            \
    if (geteuid() != 0) SKIP_OR_FAIL("the collector tests need root (BPF)");     \
    try {                                                                         \
      var = Collector::start(opts);                                               \
    } catch (const CollectorError& e) {                                           \
      SKIP_OR_FAIL(std::string("BPF unusable here: ") + e.what());                \
    }                                                                             \
  } while (0)

// A private copy of the workload: its own inode, so checks made by anyone
// else running fchown_loop on this machine meanwhile are not counted.
class Workload {
 public:
  Workload() {
    std::string tmpl = std::string(WORKLOAD_DIR) + "/collector_test.XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    exe_ = dir_ + "/fchown_loop";
    fs::copy_file(std::string(WORKLOAD_DIR) + "/fchown_loop", exe_);
    chmod(exe_.c_str(), 0755);
    struct stat st {};
    if (stat(exe_.c_str(), &st) != 0) throw std::runtime_error("stat " + exe_);
    // The kernel's encoding of a dev_t, as in super_block->s_dev.
    dev_ = (static_cast<uint64_t>(major(st.st_dev)) << 20) | minor(st.st_dev);
    ino_ = st.st_ino;
    char real[PATH_MAX];
    realpath_ = realpath(exe_.c_str(), real) ? real : exe_;
  }
  ~Workload() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  const std::string& exe() const { return exe_; }
  std::string target() const { return dir_ + "/target"; }
  uint64_t dev() const { return dev_; }
  uint64_t ino() const { return ino_; }
  const std::string& real_path() const { return realpath_; }
  bool is(const ca_check_key& k) const { return k.exe_dev == dev_ && k.exe_ino == ino_; }

 private:
  std::string dir_, exe_, realpath_;
  uint64_t dev_ = 0, ino_ = 0;
};

// A child that execs argv only when released, so its pid is known (for
// track_process or only_tgid) before it makes any check.
class GatedChild {
 public:
  explicit GatedChild(std::vector<std::string> argv) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      close(p[1]);
      char c;
      if (read(p[0], &c, 1) != 1) _exit(126);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(p[0]);
    gate_ = p[1];
  }
  ~GatedChild() {
    if (gate_ >= 0) close(gate_);
    if (pid_ > 0 && !reaped_) waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }
  void release() {
    char c = 1;
    (void)!write(gate_, &c, 1);
    close(gate_);
    gate_ = -1;
  }
  // Exit status, or -1 when killed.
  int wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int gate_ = -1;
  bool reaped_ = false;
};

// Kernel text symbols from /proc/kallsyms, enough to name a stack frame.
class KernelText {
 public:
  KernelText() {
    std::ifstream in("/proc/kallsyms");
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream is(line);
      std::string addr, type, name;
      if (!(is >> addr >> type >> name) || (type != "t" && type != "T")) continue;
      uint64_t a = std::stoull(addr, nullptr, 16);
      if (!a) continue;
      syms_.emplace(a, name);
      if (name == "_stext") stext_ = a;
      if (name == "_etext") etext_ = a;
    }
  }
  bool usable() const { return stext_ && etext_ > stext_; }
  // The function holding addr, when addr is in the kernel image's text.
  std::string function(uint64_t addr) const {
    if (addr < stext_ || addr >= etext_) return {};
    auto it = syms_.upper_bound(addr);
    return it == syms_.begin() ? std::string() : std::prev(it)->second;
  }

 private:
  std::map<uint64_t, std::string> syms_;
  uint64_t stext_ = 0, etext_ = 0;
};

int run_to_end(std::vector<std::string> argv) {
  GatedChild c(std::move(argv));
  c.release();
  return c.wait();
}

std::vector<std::string> fchown_argv(const Workload& w, long n) {
  return {w.exe(), w.target(), std::to_string(n)};
}

uint64_t count_for(const Collector& c, const Workload& w, int cap) {
  uint64_t n = 0;
  for (const auto& cc : c.read_counts())
    if (w.is(cc.key) && cc.key.cap == cap) n += cc.count;
  return n;
}

// Drains exec events until `done` holds or the deadline passes.
template <typename Pred>
bool poll_until(Collector& c, Pred done, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (c.poll_events(100) < 0 && !done()) return false;
  }
  return true;
}

TEST(CollectorE2E, CountsEveryCheckOfTheWorkload) {
  CollectorOptions opts;
  START_OR_SKIP(c, opts);
  Workload w;
  std::vector<ca_exec_event> execs;
  c->on_exec([&](const ca_exec_event& e) {
    if (e.exe_dev == w.dev() && e.exe_ino == w.ino()) execs.push_back(e);
  });

  GatedChild child(fchown_argv(w, 1000));
  child.release();
  ASSERT_EQ(child.wait(), 0);

  uint64_t total = 0;
  int keys = 0;
  for (const auto& cc : c->read_counts()) {
    if (!w.is(cc.key) || cc.key.cap != 0) continue;
    keys++;
    total += cc.count;
    EXPECT_EQ(cc.key.ret, 0);
    EXPECT_EQ(cc.key.uid, 0u);
    EXPECT_EQ(cc.key.euid, 0u);
    EXPECT_EQ(cc.key.target_ns_level, 0);
    EXPECT_EQ(cc.key.flags, 0);
    EXPECT_NE(cc.key.cgroup_id, 0u);
    EXPECT_TRUE(cc.key.cap_effective & 1) << "root holds CAP_CHOWN";
    EXPECT_EQ(cc.key.target_ns_inum, cc.key.cred_ns_inum);
    if (c->method() == AttachMethod::Tracepoint)
      EXPECT_EQ(cc.key.audit, CA_AUDIT_UNKNOWN);
    else
      EXPECT_EQ(cc.key.audit, CA_AUDIT_YES);
#if defined(__x86_64__)
    if (cc.key.syscall_nr != -1) {
      EXPECT_EQ(cc.key.syscall_nr, 93) << "fchown";
    }
#endif
  }
  EXPECT_EQ(total, 1000u) << "CAP_CHOWN checks counted for " << w.exe() << " in " << keys
                          << " key(s)";

  // Origins: sampled stacks that symbolise into the kernel's chown path,
  // with nothing of the BPF program itself in front.
  KernelText text;
  bool stack_seen = false, chown_seen = false;
  int origins = 0;
  for (const auto& o : c->read_origins()) {
    if (!w.is(o.key) || o.key.cap != 0) continue;
    origins++;
    EXPECT_GT(o.samples, 0u);
    auto frames = c->read_stack(o.stack_id);
    if (frames.empty()) continue;
    stack_seen = true;
    if (!text.usable()) continue;  // kptr_restrict hides addresses
    EXPECT_FALSE(text.function(frames.front()).empty())
        << std::hex << frames.front() << ": innermost frame outside kernel text (BPF JIT?)";
    for (uint64_t a : frames)
      chown_seen = chown_seen || text.function(a).find("chown") != std::string::npos;
  }
  EXPECT_GT(origins, 0) << "no sampled origin for the workload";
  EXPECT_TRUE(stack_seen) << "no origin stack could be read back";
  if (text.usable()) {
    EXPECT_TRUE(chown_seen) << "no origin stack passes through a *chown* function";
  }

  if (c->events_fd() < 0) {
    GTEST_SKIP() << "exec events unavailable on this kernel (tp_btf sched_process_exec)";
  }
  ASSERT_TRUE(poll_until(*c, [&] { return !execs.empty(); })) << "no exec event for " << w.exe();
  const ca_exec_event& e = execs.front();
  EXPECT_EQ(e.tgid, static_cast<uint32_t>(child.pid()));
  EXPECT_EQ(e.pid, e.tgid);
  EXPECT_EQ(e.uid, 0u);
  EXPECT_STREQ(e.filename, w.exe().c_str());
  EXPECT_STREQ(e.comm, "fchown_loop");
  if (e.dpath[0])
    EXPECT_STREQ(e.dpath, w.real_path().c_str());
  else
    EXPECT_STREQ(e.filename, w.exe().c_str()) << "dpath empty and filename wrong";
}

TEST(CollectorE2E, StatsCountChecksWithoutDrops) {
  CollectorOptions opts;
  START_OR_SKIP(c, opts);
  Workload w;
  ASSERT_EQ(run_to_end(fchown_argv(w, 1000)), 0);
  // Counts first: every check counted by then was seen by then, whatever
  // the rest of the machine does meanwhile.
  uint64_t counted = 0;
  for (const auto& cc : c->read_counts()) counted += cc.count;
  CollectorStats s = c->stats();
  EXPECT_GE(s[CA_STAT_CHECKS], 1000u);
  EXPECT_GE(s[CA_STAT_CHECKS], counted);
  EXPECT_EQ(s[CA_STAT_COUNT_DROPS], 0u);
  EXPECT_EQ(s[CA_STAT_ORIGIN_DROPS], 0u);
  EXPECT_GT(s[CA_STAT_STACK_WALKS], 0u);

  // Sampling: 1000 checks of one key walk the stack about a dozen times per
  // CPU (new key, then powers of two up to the period), not once a check.
  uint64_t samples = 0;
  for (const auto& o : c->read_origins())
    if (w.is(o.key)) samples += o.samples;
  EXPECT_GT(samples, 0u);
  EXPECT_LT(samples, 100u);
  EXPECT_GE(s[CA_STAT_STACK_WALKS], samples);
}

TEST(CollectorE2E, ProbingRecordsPassedOverMethods) {
  CollectorOptions opts;
  START_OR_SKIP(c, opts);
  size_t chosen = 0;
  while (kMethodPreference[chosen] != c->method()) chosen++;
  ASSERT_EQ(c->passed_over().size(), chosen) << "every better method is accounted for";
  for (size_t i = 0; i < chosen; i++) {
    EXPECT_EQ(c->passed_over()[i].method, kMethodPreference[i]);
    EXPECT_FALSE(c->passed_over()[i].why.empty());
  }
}

// On this kernel fexit is refused (EPERM) and there are no kprobes; where a
// method works the test says so and moves on.
TEST(CollectorE2E, ForcedMethodFailureNamesTheMethod) {
  if (geteuid() != 0) SKIP_OR_FAIL("the collector tests need root (BPF)");
  int refused = 0;
  for (AttachMethod m : {AttachMethod::Fexit, AttachMethod::Kprobe}) {
    CollectorOptions opts;
    opts.forced_method = m;
    try {
      auto c = Collector::start(opts);
      EXPECT_EQ(c->method(), m);
      EXPECT_TRUE(c->passed_over().empty());
    } catch (const CollectorError& e) {
      refused++;
      std::string what = e.what();
      EXPECT_NE(what.find("'" + std::string(method_name(m)) + "'"), std::string::npos) << what;
      // The kernel's (or libbpf's) answer, not just "failed".
      EXPECT_NE(what.find(m == AttachMethod::Fexit ? "fexit/cap_capable" : "kprobe/cap_capable"),
                std::string::npos)
          << what;
      EXPECT_NE(what.find("("), std::string::npos) << "errno name expected: " << what;
    }
  }
  if (!refused) GTEST_SKIP() << "fexit and kprobe both work on this kernel";
}

// Which program the kernel refused is known from what was loaded, not from
// libbpf's wording: with libbpf silent, refusals still name the program, and
// the exec program is not dropped for the method's fault.
TEST(CollectorE2E, RefusalsAreNamedWithLibbpfSilent) {
  if (geteuid() != 0) SKIP_OR_FAIL("the collector tests need root (BPF)");
  install_libbpf_logging();
  libbpf_print_fn_t prev = libbpf_set_print(nullptr);
  struct Restore {
    libbpf_print_fn_t fn;
    ~Restore() { libbpf_set_print(fn); }
  } restore{prev};

  START_OR_SKIP(c, CollectorOptions{});
  for (const auto& p : c->passed_over()) {
    if (p.why.find("failed to load") == std::string::npos) continue;
    const std::string section = p.method == AttachMethod::Fexit    ? "fexit/cap_capable"
                                : p.method == AttachMethod::Kprobe ? "kprobe/cap_capable"
                                                                   : "tp_btf/cap_capable";
    EXPECT_NE(p.why.find(section), std::string::npos) << p.why;
  }
  if (KernelFeatures::get().has_sched_exec_tracepoint()) {
    EXPECT_GE(c->events_fd(), 0) << "exec events lost for a refused method";
  }
  c.reset();

  CollectorOptions forced;
  forced.forced_method = AttachMethod::Fexit;
  try {
    Collector::start(forced);
    GTEST_SKIP() << "fexit works on this kernel";
  } catch (const CollectorError& e) {
    EXPECT_NE(std::string(e.what()).find("'fexit' refused by the kernel: fexit/cap_capable"),
              std::string::npos)
        << e.what();
  }
}

TEST(CollectorE2E, NoUsableMethodThrowsListingEach) {
  if (geteuid() != 0) SKIP_OR_FAIL("the collector tests need root (BPF)");
  auto& f = KernelFeatures::get();
  for (AttachMethod m : kMethodPreference) f.disable_method(m);
  std::string what;
  try {
    Collector::start(CollectorOptions{});
  } catch (const CollectorError& e) {
    what = e.what();
  }
  for (AttachMethod m : kMethodPreference) f.disable_method(m, false);
  ASSERT_FALSE(what.empty()) << "start succeeded with every method disabled";
  for (AttachMethod m : kMethodPreference)
    EXPECT_NE(what.find(std::string(method_name(m)) + ":"), std::string::npos) << what;
}

TEST(CollectorE2E, ProfileCountsOnlyTrackedProcessesAndChildren) {
  CollectorOptions opts;
  opts.follow_tracked = true;
  START_OR_SKIP(c, opts);
  if (c->events_fd() < 0) GTEST_SKIP() << "tracking needs the tp_btf exec/fork programs";
  Workload w;

  // Untracked: not counted.
  ASSERT_EQ(run_to_end(fchown_argv(w, 100)), 0);
  // Tracked shell: counted from its exec on, and its forked children too.
  std::string cmd = w.exe() + " " + w.target() + " 300; " + w.exe() + " " + w.target() + " 200";
  GatedChild sh({"/bin/sh", "-c", cmd});
  ASSERT_TRUE(c->track_process(sh.pid()));
  sh.release();
  ASSERT_EQ(sh.wait(), 0);
  EXPECT_EQ(count_for(*c, w, 0), 500u);
}

TEST(CollectorE2E, TraceStreamsOneEventPerCheck) {
  CollectorOptions opts;
  opts.stream_checks = true;
  opts.stream_kernel_stacks = true;
  if (geteuid() != 0) SKIP_OR_FAIL("the collector tests need root (BPF)");
  Workload w;
  GatedChild child(fchown_argv(w, 1000));
  opts.only_tgid = child.pid();
  START_OR_SKIP(c, opts);
  uint64_t events = 0, with_stack = 0, others = 0;
  c->on_check([&](const ca_check_event& e) {
    if (e.tgid != static_cast<uint32_t>(child.pid())) {
      others++;
      return;
    }
    if (w.is(e.key) && e.key.cap == 0) events++;
    if (e.kstack_len > 0) with_stack++;
  });
  child.release();
  ASSERT_EQ(child.wait(), 0);
  ASSERT_TRUE(poll_until(*c, [&] { return events >= 1000; })) << events << " events";
  while (c->poll_events(0) > 0) {
  }
  EXPECT_EQ(events, 1000u);
  EXPECT_EQ(others, 0u) << "only_tgid filters other processes";
  EXPECT_GE(with_stack, 1000u);
  EXPECT_EQ(c->stats()[CA_STAT_RINGBUF_DROPS], 0u);
}

// What a kill -9 of the daemon leaves: the pinned link keeps counting into
// the pinned maps, and the next start adopts them.
// A pin directory of the test's own under /sys/fs/bpf, removed however the
// test ends (an assertion may end it early): removing the pins detaches.
struct PinDir {
  explicit PinDir(const std::string& name) : path("/sys/fs/bpf/" + name + "_" + std::to_string(getpid())) {}
  ~PinDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  const std::string path;
};

TEST(CollectorE2E, PinnedStateSurvivesTheCollector) {
  if (geteuid() != 0) SKIP_OR_FAIL("the collector tests need root (BPF)");
  const PinDir pins("capaudit_collector_test");
  const std::string& dir = pins.path;
  Workload w;
  CollectorOptions opts;
  opts.pin_dir = dir;
  {
    START_OR_SKIP(c, opts);
    EXPECT_FALSE(c->adopted_maps());
    ASSERT_EQ(run_to_end(fchown_argv(w, 100)), 0);
    EXPECT_EQ(count_for(*c, w, 0), 100u);
  }  // gone without unpin(), as if killed
  ASSERT_EQ(run_to_end(fchown_argv(w, 200)), 0);

  auto c = Collector::start(opts);
  EXPECT_TRUE(c->adopted_maps());
  EXPECT_TRUE(c->adopted_link()) << "same build, same settings: the pinned program is kept";
  EXPECT_EQ(count_for(*c, w, 0), 300u) << "checks made while no collector ran were counted";
  ASSERT_EQ(run_to_end(fchown_argv(w, 50)), 0);
  EXPECT_EQ(count_for(*c, w, 0), 350u) << "the adopted link counts once, not twice";

  c->unpin();
  EXPECT_FALSE(fs::exists(dir));
  // The kernel releases a link from a workqueue after its last reference
  // goes, with nothing to wait on: give it a bounded number of tries.
  bool detached = false;
  uint64_t last = count_for(*c, w, 0);
  for (int tries = 0; tries < 200 && !detached; tries++) {
    ASSERT_EQ(run_to_end(fchown_argv(w, 10)), 0);
    uint64_t now = count_for(*c, w, 0);
    detached = now == last;
    last = now;
    if (!detached) usleep(10000);
  }
  EXPECT_TRUE(detached) << "unpin() detaches";
}

// The daemon's read: in chunks (small here, so a chunk ends inside each map).
uint64_t count_chunked(const Collector& c, const Workload& w, int cap) {
  uint64_t n = 0;
  EXPECT_TRUE(c.read_counts(7, [&](std::vector<CheckCount>& part) {
    for (const auto& cc : part)
      if (w.is(cc.key) && cc.key.cap == cap) n += cc.count;
    return true;
  }));
  return n;
}

// Thousands of checks of one key: past CA_HOT_AFTER on a CPU the key is
// counted in a hot entry (ca_hot) instead of the counts map. Every check
// must still be read once, through both reads, a collector gone as if
// killed, and a generation retired, emptied and counted into again.
TEST(CollectorE2E, HotKeysCountExactlyAcrossGenerations) {
  if (geteuid() != 0) SKIP_OR_FAIL("the collector tests need root (BPF)");
  const PinDir pins("capaudit_hot_test");
  Workload w;
  CollectorOptions opts;
  opts.pin_dir = pins.path;
  std::string err;
  {
    START_OR_SKIP(c, opts);
    ASSERT_EQ(c->epoch(), 0u);
    ASSERT_EQ(run_to_end(fchown_argv(w, 5000)), 0);
    EXPECT_EQ(count_for(*c, w, 0), 5000u);
    EXPECT_EQ(count_chunked(*c, w, 0), 5000u);
    ASSERT_TRUE(c->advance_epoch(&err)) << err;
    ASSERT_EQ(run_to_end(fchown_argv(w, 5000)), 0);
    EXPECT_EQ(count_for(*c, w, 0), 10000u) << "generation 0's final counts and generation 1's";
  }  // gone without unpin(), as if killed
  ASSERT_EQ(run_to_end(fchown_argv(w, 3000)), 0);

  auto c = Collector::start(opts);
  ASSERT_TRUE(c->adopted_maps());
  EXPECT_EQ(count_for(*c, w, 0), 13000u);
  EXPECT_EQ(count_chunked(*c, w, 0), 13000u);
  ASSERT_TRUE(c->clear_generation(0, &err)) << err;
  EXPECT_EQ(count_for(*c, w, 0), 8000u) << "generation 0 emptied, its hot entries with it";
  ASSERT_TRUE(c->advance_epoch(&err)) << err;
  ASSERT_EQ(run_to_end(fchown_argv(w, 4000)), 0);
  EXPECT_EQ(count_for(*c, w, 0), 12000u) << "generation 2 counts from zero in generation 0's maps";
  EXPECT_EQ(count_chunked(*c, w, 0), 12000u);
  c->unpin();
}

}  // namespace
}  // namespace capaudit
