// How long `capaudit report` and `capaudit recommend` take over a large
// database: a synthetic one of N binaries (default 10,000) written through
// the store's own API, each with a few checks and origins of the kinds a
// real host shows.
#include "engine.h"
#include "render.h"
#include "identity.h"
#include "kallsyms.h"
#include "store.h"

#include <fcntl.h>
#include <spdlog/fmt/fmt.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace capaudit;

[[noreturn]] void die(const std::string& msg) {
  fmt::print(stderr, "bench-report: {}\n", msg);
  exit(1);
}

double now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// Kernel code paths as the daemon stores them (tracepoint method: the BPF
// trampoline frames first), innermost first.
std::vector<std::string> stack(std::initializer_list<const char*> inner) {
  std::vector<std::string> f = {"bpf_trace_run5+0x85", "cap_capable+0x9d", "security_capable+0x3d"};
  for (const char* s : inner) f.emplace_back(s);
  f.emplace_back("do_syscall_64+0x82");
  f.emplace_back("entry_SYSCALL_64_after_hwframe+0x76");
  return f;
}

struct Kind {
  int cap;
  int ret;
  Audit audit;
  std::vector<std::vector<std::string>> stacks;
};

// What hosts show most: the mmap probe everywhere, then ownership, DAC,
// raw sockets, low ports, set*id.
const std::vector<Kind>& kinds() {
  static const std::vector<Kind> k = {
      {21, 0, Audit::Unknown,
       {stack({"security_vm_enough_memory_mm+0x3c", "mmap_region+0x1b2", "do_mmap+0x3e3", "vm_mmap_pgoff+0xd6",
               "ksys_mmap_pgoff+0x15c", "__x64_sys_mmap+0x33"}),
        stack({"security_vm_enough_memory_mm+0x3c", "do_brk_flags+0x17c", "__do_sys_brk+0x2a0",
               "__x64_sys_brk+0x15"})}},
      {0, 0, Audit::Unknown,
       {stack({"ns_capable_common+0x2b", "setattr_prepare+0x6e", "notify_change+0x1c3",
               "chown_common+0x2d8", "do_fchownat+0xa1", "__x64_sys_fchownat+0x1f"})}},
      {2, 0, Audit::Unknown,
       {stack({"ns_capable_common+0x2b", "capable_wrt_inode_uidgid+0x4c", "generic_permission+0x1d5",
               "inode_permission+0xd6", "link_path_walk+0x78", "path_openat+0x9e", "do_filp_open+0xb3",
               "do_sys_openat2+0x7f", "__x64_sys_openat+0x6e"})}},
      {1, 0, Audit::Unknown,
       {stack({"ns_capable_common+0x2b", "capable_wrt_inode_uidgid+0x4c", "generic_permission+0x21b",
               "inode_permission+0xd6", "may_open+0x71", "path_openat+0x6d2", "do_filp_open+0xb3",
               "do_sys_openat2+0x7f", "__x64_sys_openat+0x6e"})}},
      {13, 0, Audit::Unknown,
       {stack({"ns_capable_common+0x2b", "inet_create+0x15d", "__sock_create+0x17a", "__sys_socket+0x63",
               "__x64_sys_socket+0x16"})}},
      {13, -1, Audit::Unknown,
       {stack({"ns_capable_common+0x2b", "inet_create+0x15d", "__sock_create+0x17a", "__sys_socket+0x63",
               "__x64_sys_socket+0x16"})}},
      {10, 0, Audit::Unknown,
       {stack({"ns_capable_common+0x2b", "__inet_bind+0x1b7", "inet_bind_sk+0x3c", "__sys_bind+0xe9",
               "__x64_sys_bind+0x18"})}},
      {7, 0, Audit::Unknown,
       {stack({"ns_capable_setid+0x31", "__sys_setresuid+0x139", "__x64_sys_setresuid+0x18"})}},
      {6, 0, Audit::Unknown,
       {stack({"ns_capable_setid+0x31", "__sys_setresgid+0x131", "__x64_sys_setresgid+0x18"})}},
      {19, 0, Audit::Unknown,
       {stack({"ptrace_has_cap+0x2a", "__ptrace_may_access+0x12a", "ptrace_may_access+0x2e",
               "do_task_stat+0x91", "proc_single_show+0x51", "seq_read_iter+0x12b", "vfs_read+0x1d5",
               "ksys_read+0x6b", "__x64_sys_read+0x19"})}},
  };
  return k;
}

void generate(const std::string& path, int n_binaries) {
  std::string err;
  auto s = Store::open(path, &err);
  if (!s) die(err);
  std::mt19937 rng(42);
  const int64_t t0 = 1767225600;  // 2026-01-01
  if (!s->begin(&err)) die(err);
  std::vector<std::vector<int64_t>> stack_rows(kinds().size());
  for (size_t k = 0; k < kinds().size(); k++)
    for (const auto& frames : kinds()[k].stacks) {
      int64_t row = s->put_stack(frames, stack_origin(frames));
      if (!row) die(s->last_error());
      stack_rows[k].push_back(row);
    }
  for (int i = 0; i < n_binaries; i++) {
    BinaryKey key;
    key.dev = 0x801;
    key.ino = 1000000 + static_cast<uint64_t>(i);
    key.path = fmt::format("/opt/bench/{}/bin/tool-{:05d}", i % 97, i);
    int64_t bin = s->upsert_binary(key, false, t0 + i);
    if (!bin) die(s->last_error());
    BinaryRow id;
    id.sha256 = sha256_hex(key.path);
    id.owner_uid = 0;
    id.owner_gid = 0;
    const bool setuid = i % 20 == 0, with_caps = i % 20 == 1;
    id.mode = setuid ? 0104755 : 0100755;
    id.file_caps = with_caps ? "cap_net_raw=ep" : "";
    s->set_binary_identity(bin, id);

    // Every binary maps memory; two to five more kinds of check besides.
    std::vector<size_t> picked = {0};
    int extra = 2 + static_cast<int>(rng() % 4);
    while (static_cast<int>(picked.size()) <= extra) {
      size_t k = 1 + rng() % (kinds().size() - 1);
      if (std::find(picked.begin(), picked.end(), k) == picked.end()) picked.push_back(k);
    }
    const bool non_root = setuid || with_caps || i % 3 == 0;
    for (size_t k : picked) {
      const Kind& kind = kinds()[k];
      CheckFields f;
      f.cap = kind.cap;
      f.ret = kind.ret;
      f.audit = kind.audit;
      f.uid = non_root ? 1000 : 0;
      f.euid = setuid ? 0 : f.uid;
      f.syscall = 0;
      f.target_ns_inum = 4026531837u;
      f.cred_ns_inum = 4026531837u;
      f.cgroup_id = 4000 + static_cast<uint64_t>(i % 50);
      f.cap_effective = f.euid == 0 ? 0x1ffffffffffull : (kind.ret == 0 ? (1ull << kind.cap) : 0);
      uint64_t count = 1 + rng() % (k == 0 ? 100000 : 50);
      int64_t check = s->add_check(bin, f, count, t0 + i);
      if (!check) die(s->last_error());
      for (int64_t srow : stack_rows[k])
        if (!s->add_origin(check, srow, 1 + rng() % 20)) die(s->last_error());
    }
  }
  s->add_stat("checks", 123456789);
  s->set_meta("attach_method", "tracepoint");
  s->set_meta("audit_flag", "unknown");
  if (!s->commit(&err)) die(err);
}

// Wall time of one run of argv with standard output to /dev/null.
double time_run(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  double t0 = now_ms();
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  double t = now_ms() - t0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    die(fmt::format("{} failed (status {})", fmt::format("{}", argv[0]), status));
  return t;
}

// What sqlite3 does to read the same rows out as JSON: every check with its
// binary, its origins and their stacks. report --json reads these and more
// (it also decides), so at 1.0x it costs what reading the data costs.
constexpr const char* kSameRowsSql =
    "SELECT b.path, b.comm, b.dev, b.ino, b.sha256, b.owner_uid, b.mode, b.file_caps, b.path_stale, "
    "c.cap, c.ret, c.audit, c.insetid, c.uid, c.euid, c.syscall, c.target_ns_inum, c.target_ns_level, "
    "c.cred_ns_inum, c.cgroup_id, c.cap_effective, c.profiled, c.count, c.first_seen, c.last_seen, "
    "s.origin, s.frames, o.samples "
    "FROM checks c JOIN binaries b ON b.id = c.binary_id "
    "LEFT JOIN check_origins o ON o.check_id = c.id LEFT JOIN stacks s ON s.id = o.stack_id";

// The sqlite3 command-line shell, found on PATH; "" when there is none.
std::string find_sqlite3() {
  const char* path = getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (size_t from = 0; from <= dirs.size();) {
    size_t to = dirs.find(':', from);
    if (to == std::string::npos) to = dirs.size();
    std::string exe = dirs.substr(from, to - from) + "/sqlite3";
    if (access(exe.c_str(), X_OK) == 0) return exe;
    from = to + 1;
  }
  return "";
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  int n = 10000, runs = 7;
  std::string capaudit = CAPAUDIT_BIN, keep;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--binaries" && i + 1 < argc) n = std::atoi(argv[++i]);
    else if (a == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (a == "--capaudit" && i + 1 < argc) capaudit = argv[++i];
    else if (a == "--keep" && i + 1 < argc) keep = argv[++i];
    else {
      fmt::print("usage: bench-report [--binaries N] [--runs R] [--capaudit PATH] [--keep DB]\n"
                 "Times capaudit report/recommend over a synthetic database of N binaries.\n");
      return a == "--help" ? 0 : 2;
    }
  }
  if (n <= 0 || runs <= 0) die("--binaries and --runs must be positive");
  char tmpl[] = "/tmp/capaudit-bench-report-XXXXXX";
  if (!mkdtemp(tmpl)) die(std::string("mkdtemp: ") + std::strerror(errno));
  const std::string db = keep.empty() ? std::string(tmpl) + "/bench.db" : keep;
  fs::remove(db);

  double g0 = now_ms();
  generate(db, n);
  double gen_ms = now_ms() - g0;
  uint64_t checks = 0, origins = 0;
  {
    std::string err;
    auto s = Store::open(db, &err, true);
    if (!s) die(err);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(s->handle(), "SELECT (SELECT count(*) FROM checks), (SELECT count(*) FROM check_origins)",
                       -1, &st, nullptr);
    if (st && sqlite3_step(st) == SQLITE_ROW) {
      checks = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
      origins = static_cast<uint64_t>(sqlite3_column_int64(st, 1));
    }
    sqlite3_finalize(st);
  }

  struct Cmd {
    std::string name;
    std::vector<std::string> argv;
    std::vector<double> ms;
  };
  const std::string sqlite3 = find_sqlite3();
  std::vector<Cmd> cmds = {
      {"report --json", {capaudit, "report", "--db", db, "--json"}, {}},
      {"recommend --format json", {capaudit, "recommend", "--db", db, "--format", "json"}, {}},
      {"report (table)", {capaudit, "report", "--db", db}, {}},
      {"recommend (table)", {capaudit, "recommend", "--db", db}, {}},
      {"report --binary (one)", {capaudit, "report", "--db", db, "--binary", "/opt/bench/7/bin/tool-00007"}, {}},
  };
  const size_t kReportJson = 0, kRecommendJson = 1, kBinary = 4;
  if (!sqlite3.empty()) cmds.push_back({"sqlite3 -json (same rows)", {sqlite3, "-json", "-readonly", db, kSameRowsSql}, {}});
  for (auto& c : cmds) time_run(c.argv);  // page cache warm
  // Side by side: each round runs every command once, starting one later
  // than the round before, so drift on a shared machine falls on all alike.
  for (int r = 0; r < runs; r++)
    for (size_t i = 0; i < cmds.size(); i++) {
      Cmd& c = cmds[(i + static_cast<size_t>(r)) % cmds.size()];
      c.ms.push_back(time_run(c.argv));
    }

  fmt::print("capaudit report/recommend over a synthetic database\n");
  fmt::print("{} binaries, {} checks, {} origins ({:.1f} MiB, written in {:.0f} ms); {} rounds, stdout to /dev/null\n\n",
             n, checks, origins, static_cast<double>(fs::file_size(db)) / (1024.0 * 1024.0), gen_ms, runs);
  fmt::print("{:<26} {:>12} {:>20}\n", "command", "median ms", "[min, max]");
  for (auto& c : cmds) {
    auto [lo, hi] = std::minmax_element(c.ms.begin(), c.ms.end());
    fmt::print("{:<26} {:>12.1f} {:>20}\n", c.name, median(c.ms), fmt::format("[{:.1f}, {:.1f}]", *lo, *hi));
  }
  // Where the time goes, in this process, as `report --json` does it: read
  // everything, then decide and write each binary in turn.
  std::vector<double> t_load, t_decide, t_free;
  for (int r = 0; r < runs; r++) {
    std::string err;
    double t0 = now_ms();
    auto s = Store::open(db, &err, true);
    if (!s) die(err);
    auto read = load_observations(*s, std::nullopt, &err);
    if (!read) die(err);
    auto obs = std::make_unique<std::vector<Observation>>(std::move(*read));
    double t1 = now_ms();
    {
      std::ofstream null("/dev/null");
      JsonStream json(null);
      analyze_each(*obs, Rules::builtin(), [&](BinaryDecision& b) { json.add(b); });
      json.finish();
    }
    double t2 = now_ms();
    obs.reset();
    s.reset();
    double t3 = now_ms();
    t_load.push_back(t1 - t0);
    t_decide.push_back(t2 - t1);
    t_free.push_back(t3 - t2);
  }
  fmt::print("\nreport --json in process (medians): read {:.1f} ms, decide and write JSON {:.1f} ms, free {:.1f} ms\n",
             median(t_load), median(t_decide), median(t_free));

  fmt::print("\ntargets:\n");
  if (sqlite3.empty()) {
    fmt::print("  (no sqlite3 on PATH: the ratios to reading the rows are not measured)\n");
  } else {
    // Per round, then the median: both commands of a ratio ran in the same round.
    const Cmd& base = cmds.back();
    for (size_t i : {kReportJson, kRecommendJson}) {
      std::vector<double> ratios;
      for (int r = 0; r < runs; r++) ratios.push_back(cmds[i].ms[r] / base.ms[r]);
      double ratio = median(ratios);
      fmt::print("  {:<24} <= 1.0x sqlite3 -json of the same rows: {:.1f} ms / {:.1f} ms = {:.2f}x  {}\n",
                 cmds[i].name, median(cmds[i].ms), median(base.ms), ratio, ratio <= 1.0 ? "met" : "MISSED");
    }
  }
  double one = median(cmds[kBinary].ms);
  fmt::print("  {:<24} < 10 ms: {:.1f} ms  {}\n", cmds[kBinary].name, one, one < 10 ? "met" : "MISSED");
  if (keep.empty()) fs::remove_all(tmpl);
  return 0;
}
