// Bounded for months (issue 14, item 3): a million distinct check keys made
// over time against a running capauditd with its default maps, then: was
// every check stored, did any count go uncounted in the kernel, and what was
// the daemon's peak RSS. The keys come from many binaries (copies of this
// one, each its own inode), many cgroups (cgroup2 directories the workers
// move through) and many uids: each key is one euid, setresuid away from
// root (a CAP_SETUID check as root), setgid to its own gid with that euid's
// credential (a CAP_SETGID check, denied, allowed by the gid) and back, so
// the keys are distinct and the checks exact: two per key.
#include "bench_daemon.h"

#include <sched.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

using bench::Capauditd;
using bench::die;

constexpr int kCapSetgid = 6, kCapSetuid = 7;

struct Options {
  long keys = 1000000;
  double seconds = 150;
  int binaries = 20;
  int cgroups = 50;
  uint32_t max_checks = 65536;
  std::string capauditd = CAPAUDITD_BIN;
};

constexpr const char* kCgroup2 = "/sys/fs/cgroup/unified";

double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// A worker (one binary copy): keys [first, first + n), paced evenly over
// `seconds`, moving to the next of the cgroup directories every
// n / cgroups keys (none when cgroup_dir is empty).
int worker(long first, long n, double seconds, const std::string& cgroup_dir, int cgroups) {
  const double t0 = now_s();
  const long per_cgroup = cgroups > 0 ? std::max(1L, n / cgroups) : n + 1;
  for (long i = 0; i < n; i++) {
    if (cgroups > 0 && i % per_cgroup == 0) {
      std::string procs = cgroup_dir + "/c" + std::to_string((i / per_cgroup) % cgroups) + "/cgroup.procs";
      std::ofstream(procs) << "0\n";
    }
    uid_t u = static_cast<uid_t>(100000 + first + i);
    if (setresuid(static_cast<uid_t>(-1), u, static_cast<uid_t>(-1)) != 0 || setgid(getgid()) != 0 ||
        setresuid(static_cast<uid_t>(-1), 0, static_cast<uid_t>(-1)) != 0)
      return 3;
    if (i % 1000 == 999) {
      double due = t0 + seconds * static_cast<double>(i + 1) / static_cast<double>(n);
      double wait = due - now_s();
      if (wait > 0) usleep(static_cast<useconds_t>(wait * 1e6));
    }
  }
  return 0;
}

std::string self_exe() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n < 0) die("readlink /proc/self/exe");
  return std::string(buf, static_cast<size_t>(n));
}

struct Stored {
  uint64_t checks = 0, rows = 0, coarse_rows = 0, binaries = 0, cgroups = 0;
  uint64_t count_drops = 0, coarse_checks = 0, cap_only = 0;
};

uint64_t one_number(sqlite3* db, const std::string& sql, const std::string& bind = {}) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) die(sqlite3_errmsg(db));
  if (!bind.empty()) sqlite3_bind_text(st, 1, bind.c_str(), -1, SQLITE_TRANSIENT);
  uint64_t v = sqlite3_step(st) == SQLITE_ROW ? static_cast<uint64_t>(sqlite3_column_int64(st, 0)) : 0;
  sqlite3_finalize(st);
  return v;
}

Stored stored(const std::string& path, const std::string& exe) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) die("open " + path);
  const std::string mine =
      " FROM checks WHERE cap IN (" + std::to_string(kCapSetgid) + ", " + std::to_string(kCapSetuid) +
      ") AND binary_id IN (SELECT id FROM binaries WHERE substr(path, 1, length(?1)) = ?1)";
  Stored s;
  s.checks = one_number(db, "SELECT coalesce(sum(count), 0)" + mine, exe);
  s.rows = one_number(db, "SELECT count(*)" + mine, exe);
  s.coarse_rows = one_number(db, "SELECT count(*)" + mine + " AND target_ns_inum = 0", exe);
  s.binaries = one_number(db, "SELECT count(DISTINCT binary_id)" + mine, exe);
  s.cgroups = one_number(db, "SELECT count(DISTINCT cgroup_id)" + mine + " AND cgroup_id != 0", exe);
  auto stat = [&](const char* name) {
    return one_number(db, std::string("SELECT coalesce(sum(value), 0) FROM collector_stats WHERE name = '") + name + "'");
  };
  s.count_drops = stat("count_drops");
  s.coarse_checks = stat("coarse_checks");
  s.cap_only = stat("cap_only_checks");
  sqlite3_close(db);
  return s;
}

size_t count_lines(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) n++;
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 7 && std::string(argv[1]) == "--worker")
    return worker(std::stol(argv[2]), std::stol(argv[3]), std::stod(argv[4]), argv[5], std::stoi(argv[6]));
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--keys") o.keys = std::stol(next());
    else if (a == "--seconds") o.seconds = std::stod(next());
    else if (a == "--binaries") o.binaries = std::max(1, std::stoi(next()));
    else if (a == "--cgroups") o.cgroups = std::max(0, std::stoi(next()));
    else if (a == "--max-checks") o.max_checks = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--capauditd") o.capauditd = next();
    else if (a == "--quick") {
      o.keys = 100000;
      o.seconds = 10;
      o.binaries = 4;
      o.cgroups = 8;
    } else {
      fmt::print("usage: bench-soak [--keys N] [--seconds S] [--binaries B] [--cgroups C] [--max-checks M] [--quick]\n"
                 "Makes N distinct check keys over S seconds against capauditd (max_checks M, a\n"
                 "drain a second) from B copies of itself at once, each moving through C cgroups,\n"
                 "and checks that every check was stored. Root only.\n");
      return a == "--help" ? 0 : 2;
    }
  }
  if (geteuid() != 0) {
    fmt::print(stderr, "bench-soak: run as root\n");
    return 77;
  }
  char tmpl[] = "/tmp/capaudit-soak-XXXXXX";
  if (!mkdtemp(tmpl)) die("mkdtemp");
  const std::string dir = tmpl, bin_prefix = dir + "/soak-bin-";
  std::vector<std::string> bins;
  for (int b = 0; b < o.binaries; b++) {
    bins.push_back(bin_prefix + std::to_string(b));
    std::error_code ec;
    std::filesystem::copy_file(self_exe(), bins.back(), ec);
    if (ec || chmod(bins.back().c_str(), 0755) != 0) die("copying " + self_exe() + ": " + ec.message());
  }
  std::string cgroup_dir;
  if (o.cgroups > 0) {
    cgroup_dir = std::string(kCgroup2) + "/capaudit-soak-" + std::to_string(getpid());
    bool made = mkdir(cgroup_dir.c_str(), 0755) == 0;
    for (int c = 0; made && c < o.cgroups; c++) made = mkdir((cgroup_dir + "/c" + std::to_string(c)).c_str(), 0755) == 0;
    if (!made) {
      fmt::print(stderr, "bench-soak: no cgroup2 directories under {} ({}): one cgroup\n", kCgroup2, std::strerror(errno));
      for (int c = 0; c < o.cgroups; c++) rmdir((cgroup_dir + "/c" + std::to_string(c)).c_str());
      rmdir(cgroup_dir.c_str());
      cgroup_dir.clear();
      o.cgroups = 0;
    }
  }
  const std::string config = fmt::format(R"({{"drain_interval_sec": 1, "max_checks": {}, "log_level": "debug"}})",
                                         o.max_checks) + "\n";
  Capauditd::Exit ex;
  double made_s = 0;
  std::string db, log;
  {
    Capauditd d(o.capauditd, dir, "soak", config);
    db = d.db();
    const double t0 = now_s();
    // Two lanes of binaries, one after another in each: the key makers
    // must not take every CPU from the daemon they measure.
    constexpr int kLanes = 2;
    const long per = o.keys / o.binaries;
    const int lanes = std::min(kLanes, o.binaries);
    const double worker_s = o.seconds * lanes / o.binaries;
    auto start = [&](int b) {
      const long first = per * b, n = b + 1 == o.binaries ? o.keys - first : per;
      pid_t pid = fork();
      if (pid == 0) {
        std::string a1 = std::to_string(first), a2 = std::to_string(n), a3 = std::to_string(worker_s),
                    a5 = std::to_string(o.cgroups);
        execl(bins[static_cast<size_t>(b)].c_str(), bins[static_cast<size_t>(b)].c_str(), "--worker", a1.c_str(),
              a2.c_str(), a3.c_str(), cgroup_dir.empty() ? "" : cgroup_dir.c_str(), a5.c_str(),
              static_cast<char*>(nullptr));
        _exit(127);
      }
      return pid;
    };
    int next = 0, running = 0;
    for (; next < lanes; next++, running++) start(next);
    while (running > 0) {
      int status = 0;
      if (wait(&status) < 0) die("wait");
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die("a key maker failed");
      running--;
      if (next < o.binaries) {
        start(next++);
        running++;
      }
    }
    made_s = now_s() - t0;
    d.flush();
    ex = d.stop();
    log = bench::slurp(dir + "/soak.log");
  }
  for (int c = 0; c < o.cgroups; c++) rmdir((cgroup_dir + "/c" + std::to_string(c)).c_str());
  if (!cgroup_dir.empty()) rmdir(cgroup_dir.c_str());
  Stored s = stored(db, bin_prefix);
  const uint64_t expected = 2 * static_cast<uint64_t>(o.keys);
  const size_t prunes = count_lines(log, "pruning: ") - count_lines(log, "stacks no origin refers to");
  fmt::print("capaudit soak: {} distinct keys ({} binaries x {} cgroups x one euid each) in {:.1f} s, "
             "capauditd max_checks {}, a drain every second\n",
             o.keys, o.binaries, std::max(o.cgroups, 1), made_s, o.max_checks);
  fmt::print("stored {} of {} CAP_SETUID/CAP_SETGID checks in {} rows ({} coarse) of {} binaries, {} cgroups; "
             "kernel: {} dropped, {} counted coarse, {} per capability only; {} prunings\n",
             s.checks, expected, s.rows, s.coarse_rows, s.binaries, s.cgroups, s.count_drops, s.coarse_checks,
             s.cap_only, prunes);
  fmt::print("capauditd: CPU {:.0f} ms ({:.1f} ms per million checks), peak RSS {:.1f} MiB\n", ex.cpu_ms,
             ex.cpu_ms / static_cast<double>(expected) * 1e6, ex.peak_rss_mib);
  const bool exact = s.checks == expected && s.count_drops == 0;
  fmt::print("\ntargets:\n");
  fmt::print("  every check stored:         {}  {}\n", exact ? "all" : "LOST", exact ? "met" : "MISSED");
  fmt::print("  maps within their limits:   {} dropped  {}\n", s.count_drops, s.count_drops == 0 ? "met" : "MISSED");
  fmt::print("  daemon peak RSS <= 32 MiB:  {:.1f} MiB  {}\n", ex.peak_rss_mib, ex.peak_rss_mib <= 32 ? "met" : "MISSED");
  if (getenv("CAPAUDIT_SOAK_KEEP")) {
    fmt::print("kept {} (CAPAUDIT_SOAK_KEEP)\n", dir);
  } else {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return exact ? 0 : 1;
}
