// The fleet at scale (docs/fleet.md): H hosts (default 1,000) of B binaries
// each (default 500), every host's database written through the store's
// own API and exported by the real `capaudit export`, loaded into a private
// PostgreSQL 15 with `capaudit fleet load`, then `fleet recommend` and
// `fleet outliers` timed. The server is started like the e2e suite starts
// its own (a Unix socket in a temporary directory, no TCP) and removed at
// the end, whatever happened.
#include "fleet_pg.h"
#include "identity.h"
#include "kallsyms.h"
#include "store.h"

#include <fcntl.h>
#include <spdlog/fmt/fmt.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

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

const std::string kPgBin = "/usr/lib/postgresql/15/bin";
std::string g_dir;        // everything the benchmark made
bool g_server = false;    // the private server is running
bool g_keep = false;

double now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// Runs argv; its standard output to `out` ("" keeps ours), stderr kept.
// The exit status, or -1 when it did not exit.
int run(const std::vector<std::string>& argv, const std::string& out = "") {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    if (!out.empty()) {
      int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd < 0 || dup2(fd, 1) < 0) _exit(126);
    }
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void cleanup() {
  if (g_server)
    run({"runuser", "-u", "postgres", "--", kPgBin + "/pg_ctl", "-D", g_dir + "/pg/data", "-m", "fast", "-w", "-s",
         "stop"});
  g_server = false;
  std::error_code ec;
  if (!g_dir.empty() && !g_keep) fs::remove_all(g_dir, ec);
}

[[noreturn]] void die(const std::string& msg) {
  fmt::print(stderr, "bench-fleet: {}\n", msg);
  exit(1);  // cleanup() runs from atexit
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// Kernel code paths as the daemon stores them, innermost first.
std::vector<std::string> stack(std::initializer_list<const char*> inner) {
  std::vector<std::string> f = {"bpf_trace_run5+0x85", "cap_capable+0x9d", "security_capable+0x3d"};
  for (const char* s : inner) f.emplace_back(s);
  f.emplace_back("do_syscall_64+0x82");
  return f;
}

struct Kind {
  int cap;
  int ret;
  std::vector<std::string> stack;
};

// The mmap probe every binary makes, then what services do: ownership,
// DAC, raw and privileged sockets, set*id, /proc of others.
const std::vector<Kind>& kinds() {
  static const std::vector<Kind> k = {
      {21, 0, stack({"security_vm_enough_memory_mm+0x3c", "mmap_region+0x1b2", "do_mmap+0x3e3"})},
      {0, 0, stack({"ns_capable_common+0x2b", "setattr_prepare+0x6e", "notify_change+0x1c3", "chown_common+0x2d8"})},
      {1, 0, stack({"ns_capable_common+0x2b", "capable_wrt_inode_uidgid+0x4c", "generic_permission+0x21b",
                    "inode_permission+0xd6", "may_open+0x71"})},
      {13, 0, stack({"ns_capable_common+0x2b", "inet_create+0x15d", "__sock_create+0x17a", "__sys_socket+0x63"})},
      {13, -1, stack({"ns_capable_common+0x2b", "inet_create+0x15d", "__sock_create+0x17a", "__sys_socket+0x63"})},
      {10, 0, stack({"ns_capable_common+0x2b", "__inet_bind+0x1b7", "inet_bind_sk+0x3c", "__sys_bind+0xe9"})},
      {7, 0, stack({"ns_capable_setid+0x31", "__sys_setresuid+0x139"})},
      {19, 0, stack({"ptrace_has_cap+0x2a", "__ptrace_may_access+0x12a", "ptrace_may_access+0x2e",
                     "do_task_stat+0x91"})},
  };
  return k;
}

// The fleet: 90% of a host's binaries are the base image every host runs
// (a fifth of them in two versions, the newer on every fourth host: an
// upgrade rolling out); the rest belong to one of ten roles. What a binary
// does depends on the binary, how much on the host; now and then a host's
// copy does one thing more (the outliers).
std::string host_id(int h) { return fmt::format("host-{:04d}", h); }

void write_host(const std::string& db, int h, int n_binaries, int64_t now) {
  std::string err;
  auto s = Store::open(db, &err);
  if (!s) die(err);
  if (!s->begin(&err)) die(err);
  std::vector<int64_t> stack_rows;
  for (const Kind& k : kinds()) {
    int64_t row = s->put_stack(k.stack, stack_origin(k.stack));
    if (!row) die(s->last_error());
    stack_rows.push_back(row);
  }
  std::mt19937 counts(static_cast<uint32_t>(h) * 7919u + 1);
  const int base = n_binaries * 9 / 10;
  for (int i = 0; i < n_binaries; i++) {
    std::string path;
    int version = 1;
    if (i < base) {
      path = fmt::format("/usr/lib/fleet/{:02d}/bin/tool-{:04d}", i % 50, i);
      if (i % 5 == 0 && h % 4 == 0) version = 2;
    } else {
      path = fmt::format("/opt/role-{}/bin/svc-{:04d}", h % 10, i - base);
    }
    BinaryKey key{0x801, 1000000 + static_cast<uint64_t>(i), path, ""};
    int64_t bin = s->upsert_binary(key, false, now - 86400);
    if (!bin) die(s->last_error());
    BinaryRow id;
    id.sha256 = sha256_hex(fmt::format("{}#v{}", path, version));
    id.owner_uid = 0;
    id.owner_gid = 0;
    id.mode = i % 20 == 0 ? 0104755 : 0100755;
    id.file_caps = i % 20 == 1 ? "cap_net_raw=ep" : "";
    if (!s->set_binary_identity(bin, id)) die(s->last_error());

    // The binary's own behaviour: the same on every host that runs it.
    std::mt19937 what(static_cast<uint32_t>(std::hash<std::string>{}(*id.sha256)));
    std::vector<size_t> picked = {0};
    const int extra = 1 + static_cast<int>(what() % 3);
    while (static_cast<int>(picked.size()) <= extra) {
      size_t k = 1 + what() % (kinds().size() - 1);
      if (std::find(picked.begin(), picked.end(), k) == picked.end()) picked.push_back(k);
    }
    if ((h * 31 + i) % 997 == 7) {
      size_t k = 1 + (static_cast<size_t>(h) + static_cast<size_t>(i)) % (kinds().size() - 1);
      if (std::find(picked.begin(), picked.end(), k) == picked.end()) picked.push_back(k);
    }
    const bool non_root = i % 20 < 2 || what() % 3 == 0;
    for (size_t k : picked) {
      CheckFields f;
      f.cap = kinds()[k].cap;
      f.ret = kinds()[k].ret;
      f.audit = Audit::Yes;
      f.uid = non_root ? 1000 : 0;
      f.euid = i % 20 == 0 ? 0 : f.uid;
      f.target_ns_inum = 4026531837u;
      f.cred_ns_inum = 4026531837u;
      f.cap_effective = f.euid == 0 ? 0x1ffffffffffull : (f.ret == 0 ? (1ull << f.cap) : 0);
      uint64_t count = 1 + counts() % (k == 0 ? 100000 : 500);
      int64_t check = s->add_check(bin, f, count, now - static_cast<int64_t>(counts() % 86400));
      if (!check) die(s->last_error());
      if (!s->add_origin(check, stack_rows[k], 1 + counts() % 20)) die(s->last_error());
    }
  }
  if (!s->commit(&err)) die(err);
}

// Runs the commands two at a time (this machine's CPUs), failing on any.
void run_all(const std::vector<std::vector<std::string>>& cmds, int jobs) {
  size_t next = 0;
  int running = 0;
  while (next < cmds.size() || running > 0) {
    while (running < jobs && next < cmds.size()) {
      std::vector<char*> args;
      for (auto& a : cmds[next]) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      pid_t pid = fork();
      if (pid == 0) {
        execv(args[0], args.data());
        _exit(127);
      }
      if (pid < 0) die(std::string("fork: ") + std::strerror(errno));
      running++;
      next++;
    }
    int status = 0;
    if (wait(&status) < 0) die(std::string("wait: ") + std::strerror(errno));
    running--;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die("capaudit export failed");
  }
}

int64_t scalar(PgConn& pg, const std::string& sql) {
  PgResult r;
  std::string err;
  if (!pg.exec(sql, {}, &r, &err) || r.rows() != 1) die(sql + ": " + err);
  return r.int64(0, 0);
}

size_t count_lines(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n++;
  return n;
}

// Times argv `runs` times after one warm-up, standard output to `out`.
std::vector<double> timed(const std::vector<std::string>& argv, int runs, const std::string& out) {
  if (run(argv, out) != 0) die(argv[1] + " " + argv[2] + " failed");
  std::vector<double> ms;
  for (int r = 0; r < runs; r++) {
    double t0 = now_ms();
    if (run(argv, out) != 0) die(argv[1] + " " + argv[2] + " failed");
    ms.push_back(now_ms() - t0);
  }
  return ms;
}

std::string spread(const std::vector<double>& v) {
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return fmt::format("{:.0f} ms [{:.0f}, {:.0f}]", median(v), *lo, *hi);
}

}  // namespace

int main(int argc, char** argv) {
  int hosts = 1000, binaries = 500, runs = 3, jobs = 2;
  std::string capaudit = CAPAUDIT_BIN;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--hosts" && i + 1 < argc) hosts = std::atoi(argv[++i]);
    else if (a == "--binaries" && i + 1 < argc) binaries = std::atoi(argv[++i]);
    else if (a == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (a == "--jobs" && i + 1 < argc) jobs = std::atoi(argv[++i]);
    else if (a == "--capaudit" && i + 1 < argc) capaudit = argv[++i];
    else if (a == "--keep") g_keep = true;
    else {
      fmt::print("usage: bench-fleet [--hosts N] [--binaries B] [--runs R] [--jobs J] [--capaudit PATH] [--keep]\n"
                 "Times capaudit fleet load/recommend/outliers over N exported hosts of B binaries each\n"
                 "on a private PostgreSQL 15 (as root; the server and files are removed at the end\n"
                 "unless --keep).\n");
      return a == "--help" ? 0 : 2;
    }
  }
  if (hosts <= 0 || binaries < 10 || runs <= 0 || jobs <= 0) die("--hosts, --runs, --jobs > 0, --binaries >= 10");
  if (geteuid() != 0 || access((kPgBin + "/initdb").c_str(), X_OK) != 0) {
    fmt::print("bench-fleet: needs root and PostgreSQL 15 ({}): skipped\n", kPgBin);
    return 77;
  }
  char tmpl[] = "/tmp/capaudit-bench-fleet-XXXXXX";
  if (!mkdtemp(tmpl)) die(std::string("mkdtemp: ") + std::strerror(errno));
  g_dir = tmpl;
  atexit(cleanup);
  const std::string pg_dir = g_dir + "/pg", host_dir = g_dir + "/hosts", out_dir = g_dir + "/exports";
  fs::create_directories(host_dir);
  fs::create_directories(out_dir);
  fs::create_directories(pg_dir);
  chmod(g_dir.c_str(), 0755);
  if (run({"chown", "postgres:", pg_dir}) != 0 ||
      run({"runuser", "-u", "postgres", "--", kPgBin + "/initdb", "-D", pg_dir + "/data", "-U", "capaudit", "-A",
           "trust", "--no-sync"},
          "/dev/null") != 0)
    die("initdb failed");
  // Durable as shipped (fsync on): one commit per host file is part of the cost.
  if (run({"runuser", "-u", "postgres", "--", kPgBin + "/pg_ctl", "-D", pg_dir + "/data", "-l", pg_dir + "/log", "-w",
           "-s", "-o", "-c listen_addresses='' -k " + pg_dir, "start"}) != 0)
    die("pg_ctl start failed; see " + pg_dir + "/log");
  g_server = true;
  const std::string conninfo = "host=" + pg_dir + " dbname=postgres user=capaudit";

  // Each host: its database through the store, then the nightly export.
  const int64_t now = 1767225600;
  double t_write = 0;
  std::vector<std::string> files;
  std::vector<std::vector<std::string>> exports;
  for (int h = 0; h < hosts; h++) {
    const std::string db = fmt::format("{}/{}.db", host_dir, host_id(h));
    double t0 = now_ms();
    write_host(db, h, binaries, now);
    t_write += now_ms() - t0;
    files.push_back(fmt::format("{}/{}.ndjson", out_dir, host_id(h)));
    exports.push_back({capaudit, "export", "--db", db, "--host-id", host_id(h), "--output", files.back()});
  }
  double t0 = now_ms();
  run_all(exports, jobs);
  const double t_export = now_ms() - t0;
  fs::remove_all(host_dir);
  size_t lines = 0;
  uintmax_t bytes = 0;
  for (const std::string& f : files) {
    lines += count_lines(f);
    bytes += fs::file_size(f);
  }

  // Each figure as soon as it is measured: a long run shows its progress.
  fmt::print("capaudit fleet on PostgreSQL 15 (private server, Unix socket, fsync on)\n");
  fmt::print("{} hosts x {} binaries: {} lines, {:.0f} MiB of exports\n", hosts, binaries, lines,
             static_cast<double>(bytes) / (1024.0 * 1024.0));
  fmt::print("host databases written through the store: {:.1f} ms per host\n", t_write / hosts);
  fmt::print("capaudit export ({} at a time): {:.1f} ms per host ({:.1f} s for all)\n\n", jobs,
             t_export * jobs / hosts, t_export / 1e3);
  fflush(stdout);

  std::vector<std::string> load{capaudit, "fleet", "load", "--postgres", conninfo};
  load.insert(load.end(), files.begin(), files.end());
  t0 = now_ms();
  if (run(load) != 0) die("fleet load failed");
  const double t_load = now_ms() - t0;

  std::string err;
  auto pg = PgConn::connect(conninfo, &err);
  if (!pg) die(err);
  const int64_t rows = scalar(*pg, "SELECT count(*) FROM capaudit_fleet_checks");
  const int64_t loaded_hosts = scalar(*pg, "SELECT count(*) FROM capaudit_fleet_hosts");
  const int64_t total = scalar(*pg, "SELECT sum(count) FROM capaudit_fleet_checks");
  const int64_t size = scalar(*pg, "SELECT pg_total_relation_size('capaudit_fleet_checks')");
  if (rows != static_cast<int64_t>(lines) || loaded_hosts != hosts)
    die(fmt::format("loaded {} rows of {} lines, {} hosts of {}", rows, lines, loaded_hosts, hosts));
  fmt::print("{:<42} {:>10.1f} s {:>10.1f} ms per host  ({:.0f} lines/s; table {:.0f} MiB)\n",
             "fleet load (all files, first time)", t_load / 1e3, t_load / hosts,
             static_cast<double>(lines) / (t_load / 1e3), static_cast<double>(size) / (1024.0 * 1024.0));
  fflush(stdout);

  // Everything again: the nightly reload of files already seen counts nothing.
  t0 = now_ms();
  if (run(load) != 0) die("second fleet load failed");
  const double t_reload = now_ms() - t0;
  if (scalar(*pg, "SELECT count(*) FROM capaudit_fleet_checks") != rows ||
      scalar(*pg, "SELECT sum(count) FROM capaudit_fleet_checks") != total)
    die("loading the same exports twice changed the fleet");
  fmt::print("{:<42} {:>10.1f} s {:>10.1f} ms per host  (nothing changed)\n\n", "fleet load (the same files again)",
             t_reload / 1e3, t_reload / hosts);
  run({"psql", "-q", conninfo, "-c", "VACUUM ANALYZE"});

  const std::string answer = g_dir + "/answer.json";
  fmt::print("{:<42} {:>24}   (median [min, max] of {} after a warm-up)\n", "query", "wall", runs);
  std::vector<double> rec = timed({capaudit, "fleet", "recommend", "--postgres", conninfo, "--json"}, runs, answer);
  nlohmann::json j = nlohmann::json::parse(std::ifstream(answer), nullptr, false);
  const size_t versions = j.is_object() ? j["binaries"].size() : 0;
  if (versions == 0) die("fleet recommend found no binary");
  fmt::print("{:<42} {:>24}   {} versions\n", "fleet recommend --json", spread(rec), versions);
  fflush(stdout);
  std::vector<double> out = timed({capaudit, "fleet", "outliers", "--postgres", conninfo, "--json"}, runs, answer);
  j = nlohmann::json::parse(std::ifstream(answer), nullptr, false);
  const size_t outliers = j.is_object() ? j["outliers"].size() : 0;
  fmt::print("{:<42} {:>24}   {} outliers\n", "fleet outliers --json", spread(out), outliers);
  fflush(stdout);
  std::vector<double> one = timed({capaudit, "fleet", "recommend", "--postgres", conninfo, "--binary",
                                   "/usr/lib/fleet/00/bin/tool-0000", "--json"},
                                  runs, "/dev/null");
  fmt::print("{:<42} {:>24}\n", "fleet recommend --binary P --json", spread(one));
  std::vector<double> table = timed({capaudit, "fleet", "recommend", "--postgres", conninfo}, runs, "/dev/null");
  fmt::print("{:<42} {:>24}\n", "fleet recommend (table)", spread(table));
  if (g_keep) {
    fmt::print("\nkept: {} (the server runs on: pg_ctl -D {}/data stop)\n", g_dir, pg_dir);
    g_server = false;
  }
  return 0;
}
