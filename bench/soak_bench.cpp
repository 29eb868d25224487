// Bounded for months (issue 14, item 3): a million distinct check keys made
// over time against a running capauditd with its default maps, then: was
// every check stored, did any count go uncounted in the kernel, and what was
// the daemon's peak RSS. Each key is one euid: setresuid away from root (a
// CAP_SETUID check as root), setgid to its own gid with that euid's
// credential (a CAP_SETGID check, denied, allowed by the gid) and back, so
// the keys are distinct and the checks exact: two per key.
#include "bench_daemon.h"

#include <sched.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <string>

namespace {

using bench::Capauditd;
using bench::die;

constexpr int kCapSetgid = 6, kCapSetuid = 7;

struct Options {
  long keys = 1000000;
  double seconds = 60;
  uint32_t max_checks = 65536;
  std::string capauditd = CAPAUDITD_BIN;
};

double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// The key maker: `keys` euids, paced evenly over `seconds`.
void make_keys(long keys, double seconds) {
  const double t0 = now_s();
  for (long i = 0; i < keys; i++) {
    uid_t u = static_cast<uid_t>(100000 + i);
    if (setresuid(static_cast<uid_t>(-1), u, static_cast<uid_t>(-1)) != 0 || setgid(getgid()) != 0 ||
        setresuid(static_cast<uid_t>(-1), 0, static_cast<uid_t>(-1)) != 0)
      _exit(3);
    if (i % 1000 == 999) {
      double due = t0 + seconds * static_cast<double>(i + 1) / static_cast<double>(keys);
      double wait = due - now_s();
      if (wait > 0) usleep(static_cast<useconds_t>(wait * 1e6));
    }
  }
}

std::string self_exe() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n < 0) die("readlink /proc/self/exe");
  return std::string(buf, static_cast<size_t>(n));
}

struct Stored {
  uint64_t checks = 0, rows = 0, coarse_rows = 0;
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
      " FROM checks WHERE cap IN (" + std::to_string(kCapSetgid) + ", " + std::to_string(kCapSetuid) + ") AND binary_id IN (SELECT id FROM binaries WHERE path = ?1)";
  Stored s;
  s.checks = one_number(db, "SELECT coalesce(sum(count), 0)" + mine, exe);
  s.rows = one_number(db, "SELECT count(*)" + mine, exe);
  s.coarse_rows = one_number(db, "SELECT count(*)" + mine + " AND target_ns_inum = 0", exe);
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
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--keys") o.keys = std::stol(next());
    else if (a == "--seconds") o.seconds = std::stod(next());
    else if (a == "--max-checks") o.max_checks = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--capauditd") o.capauditd = next();
    else if (a == "--quick") {
      o.keys = 100000;
      o.seconds = 10;
    } else {
      fmt::print("usage: bench-soak [--keys N] [--seconds S] [--max-checks M] [--quick]\n"
                 "Makes N distinct check keys over S seconds against capauditd (max_checks M, a\n"
                 "drain a second) and checks that every check was stored. Root only.\n");
      return a == "--help" ? 0 : 2;
    }
  }
  if (geteuid() != 0) {
    fmt::print(stderr, "bench-soak: run as root\n");
    return 77;
  }
  char tmpl[] = "/tmp/capaudit-soak-XXXXXX";
  if (!mkdtemp(tmpl)) die("mkdtemp");
  const std::string dir = tmpl, exe = self_exe();
  const std::string config = fmt::format(R"({{"drain_interval_sec": 1, "max_checks": {}, "log_level": "debug"}})",
                                         o.max_checks) + "\n";
  Capauditd::Exit ex;
  double made_s = 0;
  std::string db, log;
  {
    Capauditd d(o.capauditd, dir, "soak", config);
    db = d.db();
    const double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0) {
      make_keys(o.keys, o.seconds);
      _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die("the key maker failed");
    made_s = now_s() - t0;
    d.flush();
    ex = d.stop();
    log = bench::slurp(dir + "/soak.log");
  }
  Stored s = stored(db, exe);
  const uint64_t expected = 2 * static_cast<uint64_t>(o.keys);
  const size_t prunes = count_lines(log, "pruning: ");
  fmt::print("capaudit soak: {} distinct keys (one euid each) in {:.1f} s, capauditd max_checks {}, "
             "a drain every second\n",
             o.keys, made_s, o.max_checks);
  fmt::print("stored {} of {} CAP_SETUID/CAP_SETGID checks in {} rows ({} coarse); kernel: {} dropped, {} counted coarse, "
             "{} per capability only; {} prunings\n",
             s.checks, expected, s.rows, s.coarse_rows, s.count_drops, s.coarse_checks, s.cap_only, prunes);
  fmt::print("capauditd: CPU {:.0f} ms ({:.1f} ms per million checks), peak RSS {:.1f} MiB\n", ex.cpu_ms,
             ex.cpu_ms / static_cast<double>(expected) * 1e6, ex.peak_rss_mib);
  const bool exact = s.checks == expected && s.count_drops == 0;
  fmt::print("\ntargets:\n");
  fmt::print("  every check stored:         {}  {}\n", exact ? "all" : "LOST", exact ? "met" : "MISSED");
  fmt::print("  maps within their limits:   {} dropped  {}\n", s.count_drops, s.count_drops == 0 ? "met" : "MISSED");
  fmt::print("  daemon peak RSS <= 32 MiB:  {:.1f} MiB  {}\n", ex.peak_rss_mib, ex.peak_rss_mib <= 32 ? "met" : "MISSED");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return exact ? 0 : 1;
}
