// capauditd.service under a real systemd: the units as `cmake --install`
// lays them out, booted in systemd-nspawn, driven with systemctl and read
// back through systemd's own view (systemctl show, the journal).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <thread>

#include "e2e_util.h"
#include "nspawn.h"
#include "private_postgres.h"

namespace capaudit::e2e {
namespace {

using namespace std::chrono_literals;
using Props = UnitProps;

constexpr const char* kUnit = "capauditd.service";
constexpr const char* kProps = "ActiveState,SubState,StatusText,NRestarts,MainPID,Result";
constexpr const char* kDb = "/var/lib/capaudit/capaudit.db";

std::string dump(const Props& p) {
  std::string s;
  for (auto& [k, v] : p) s += k + "=" + v + "\n";
  return s;
}

class Systemd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!can_run(&setup_error_) || !(setup_error_ = nspawn_missing()).empty()) return;
    stage_ = std::make_unique<TempDir>();
    if (!stage_install(stage_->file("stage"), &setup_error_)) return;
    const std::string stage = stage_->file("stage");
    // Read-write, so a test can change the configuration from outside.
    chmod((stage + "/etc/capaudit").c_str(), 0755);
    c_ = std::make_unique<Container>();
    ContainerOptions o;
    o.name = "capaudit-svc";
    o.bind_ro = {stage + "/usr/local:/usr/local", std::string(WORKLOAD_DIR)};
    o.bind = {stage + "/etc/capaudit:/etc/capaudit"};
    if (!c_->boot(o, &setup_error_)) c_.reset();
  }
  static void TearDownTestSuite() {
    c_.reset();
    stage_.reset();
  }
  void SetUp() override {
    CAPAUDIT_REQUIRE_E2E();
    if (!c_) {
      if (required()) FAIL() << "systemd tests required but: " << setup_error_;
      GTEST_SKIP() << setup_error_;
    }
  }

  static Props props() { return c_->show(kUnit, kProps); }
  // Waits until the unit is active/running; *p gets the last view.
  static bool wait_running(Props* p, std::chrono::milliseconds t = 60s) {
    return c_->wait_for(kUnit, kProps, unit_running, t, p);
  }
  static std::string config_path() { return stage_->file("stage") + "/etc/capaudit/capaudit.json"; }
  static void drop_in(const std::string& name, const std::string& text) {
    const std::string path = "/etc/systemd/system/capauditd.service.d/" + name;
    if (text.empty())
      unlink(c_->host_path(path).c_str());
    else
      ASSERT_TRUE(c_->write_file(path, text));
    ASSERT_EQ(c_->systemctl({"daemon-reload"}).exit_code, 0);
  }
  // The restart that applies a drop-in, back to active/running.
  static void restart() {
    auto r = c_->systemctl({"restart", kUnit});
    Props p;
    ASSERT_EQ(r.exit_code, 0) << r.err << c_->systemctl({"status", kUnit}).out;
    ASSERT_TRUE(wait_running(&p)) << dump(p);
  }

  // CAP_CHOWN checks stored for the fchown_loop workload.
  static uint64_t chown_checks() {
    auto r = c_->exec({"/usr/local/bin/capaudit", "report", "--db", kDb, "--binary", workload("fchown_loop"),
                       "--json"});
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    uint64_t n = 0;
    if (const nlohmann::json* b = find_binary(j, workload("fchown_loop")))
      for (auto& c : (*b)["checks"])
        if (c.value("capability", "") == "cap_chown") n += c.value("count", uint64_t{0});
    return n;
  }
  // Asks for drains (SIGUSR1) until `want` checks are stored or it is
  // clear they will not be: the count read at the end.
  static uint64_t wait_chown_checks(uint64_t want) {
    uint64_t n = 0;
    for (auto deadline = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < deadline;) {
      c_->systemctl({"kill", "-s", "USR1", kUnit});
      if ((n = chown_checks()) >= want) break;
      std::this_thread::sleep_for(200ms);
    }
    return n;
  }
  static void chown_loop(int n) {
    auto r = c_->exec({workload("fchown_loop"), "/tmp/capaudit-chown", std::to_string(n)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static std::vector<nlohmann::json> journal_with(const std::string& field) {
    std::vector<nlohmann::json> out;
    for (auto& e : c_->journal(kUnit))
      if (e.contains(field)) out.push_back(e);
    return out;
  }

  static std::unique_ptr<TempDir> stage_;
  static std::unique_ptr<Container> c_;
  static std::string setup_error_;
};
std::unique_ptr<TempDir> Systemd::stage_;
std::unique_ptr<Container> Systemd::c_;
std::string Systemd::setup_error_;

// Boot presets enable the units with an [Install] section: a fleet host
// that installs and boots runs the daemon and the timer without being asked.
TEST_F(Systemd, StartsAtBootAndReachesRunning) {
  Props p;
  ASSERT_TRUE(wait_running(&p)) << dump(p) << c_->systemctl({"status", kUnit}).out
                                << c_->exec({"journalctl", "--no-pager", "-u", kUnit}).out;
  EXPECT_EQ(p["NRestarts"], "0");
  EXPECT_EQ(c_->systemctl({"is-active", "capaudit-setcap.timer"}).out, "active\n");
  EXPECT_EQ(c_->systemctl({"is-enabled", kUnit}).out, "enabled\n");
}

// Type=notify: `systemctl start` returns once READY=1 came, and the daemon
// says READY only after attaching, so the attach is logged before systemd
// logs the start as done, and STATUS= already names the method.
TEST_F(Systemd, ReadyOnlyOnceAttachedAndStatusNamesTheMethod) {
  ASSERT_EQ(c_->systemctl({"stop", kUnit}).exit_code, 0);
  auto r = c_->systemctl({"start", kUnit});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Props p = props();
  EXPECT_TRUE(unit_running(p)) << dump(p);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(p["StatusText"], m, std::regex("method (fexit|kprobe|tracepoint)"))) << dump(p);
  const std::string method = m[1];

  // The last start: the daemon's attach entry (structured: the method in a
  // field of its own) precedes PID 1's "Started" entry for the unit.
  uint64_t attached_at = 0, started_at = 0;
  for (auto& e : c_->journal(kUnit)) {
    uint64_t t = std::stoull(e.value("__MONOTONIC_TIMESTAMP", "0"));
    std::string msg = e.value("MESSAGE", "");
    if (e.value("CAPAUDIT_ATTACH_METHOD", "") == method &&
        msg.find("attach method '" + method + "' in use") != std::string::npos)
      attached_at = t;
    if (e.value("_PID", "") == "1" && msg.rfind("Started ", 0) == 0) started_at = t;
  }
  ASSERT_NE(started_at, 0u);
  ASSERT_NE(attached_at, 0u) << "no journal entry with CAPAUDIT_ATTACH_METHOD=" << method;
  EXPECT_LT(attached_at, started_at);
}

TEST_F(Systemd, WatchdogIsFedAndAStoppedDaemonIsRestarted) {
  drop_in("watchdog.conf", "[Service]\nWatchdogSec=2s\n");
  restart();
  Props before = props();
  // Three watchdog periods while healthy: no restart.
  std::this_thread::sleep_for(6s);
  Props p = props();
  EXPECT_TRUE(unit_running(p)) << dump(p);
  EXPECT_EQ(p["NRestarts"], before["NRestarts"]);
  EXPECT_EQ(p["MainPID"], before["MainPID"]);

  ASSERT_EQ(c_->systemctl({"kill", "-s", "STOP", kUnit}).exit_code, 0);
  bool restarted = c_->wait_for(
      kUnit, kProps,
      [&](const Props& q) { return unit_running(q) && q.at("NRestarts") != before["NRestarts"] && q.at("MainPID") != before["MainPID"]; },
      60s, &p);
  EXPECT_TRUE(restarted) << dump(p);
  EXPECT_EQ(std::stoi(p["NRestarts"]), std::stoi(before["NRestarts"]) + 1) << dump(p);
  std::string log = c_->exec({"journalctl", "--no-pager", "-u", kUnit}).out;
  EXPECT_NE(log.find("Watchdog timeout"), std::string::npos) << log;
  drop_in("watchdog.conf", "");
  restart();
}

// SIGKILL leaves no chance to flush: the pinned maps keep counting while the
// daemon is down, and the restarted daemon adopts them. Nothing is lost or
// counted twice.
TEST_F(Systemd, KilledDaemonIsRestartedAndCountsAddUpExactly) {
  // A window while it is down, to count in.
  drop_in("restart.conf", "[Service]\nRestartSec=3s\n");
  restart();
  const uint64_t base = wait_chown_checks(0);
  chown_loop(100);
  ASSERT_EQ(wait_chown_checks(base + 100), base + 100);

  Props before = props();
  ASSERT_EQ(c_->systemctl({"kill", "-s", "KILL", kUnit}).exit_code, 0);
  Props down;
  ASSERT_TRUE(c_->wait_for(kUnit, kProps, [](const Props& q) { return q.at("SubState") == "auto-restart"; }, 10s,
                           &down))
      << dump(down);
  chown_loop(200);  // while no daemon runs
  Props p;
  ASSERT_TRUE(c_->wait_for(kUnit, kProps, [&](const Props& q) { return unit_running(q) && q.at("MainPID") != before["MainPID"]; },
                           30s, &p))
      << dump(p);
  EXPECT_EQ(std::stoi(p["NRestarts"]), std::stoi(before["NRestarts"]) + 1);
  chown_loop(300);
  EXPECT_EQ(wait_chown_checks(base + 600), base + 600);
  // And not more, however often it drains.
  c_->systemctl({"kill", "-s", "USR1", kUnit});
  EXPECT_EQ(wait_chown_checks(base + 601), base + 600);
  drop_in("restart.conf", "");
  restart();
}

TEST_F(Systemd, ReloadRereadsTheConfiguration) {
  const std::string original = read_file(config_path());
  ASSERT_FALSE(original.empty());
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (auto& e : c_->journal(kUnit))
      if (e.value("MESSAGE", "").find(needle) != std::string::npos) n++;
    return n;
  };
  const std::string reloaded = "configuration reloaded from '/etc/capaudit/capaudit.json'";
  const size_t reloads = count(reloaded), timer_drains = count("drain (timer)");
  auto j = nlohmann::json::parse(original);
  j["drain_interval_sec"] = 1;
  j["log_level"] = "debug";
  std::ofstream(config_path()) << j.dump(2) << "\n";
  auto r = c_->systemctl({"reload", kUnit});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (count(reloaded) == reloads && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(200ms);
  EXPECT_EQ(count(reloaded), reloads + 1);
  // Now in force: a drain a second, logged at debug level.
  while (count("drain (timer)") < timer_drains + 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(200ms);
  EXPECT_GE(count("drain (timer)"), timer_drains + 2);

  // A broken file: refused, named, and the daemon goes on.
  std::ofstream(config_path()) << "{\"drain_interval_sec\": \"soon\"}\n";
  ASSERT_EQ(c_->systemctl({"reload", kUnit}).exit_code, 0);
  while (count("reload refused") == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(200ms);
  EXPECT_EQ(count("reload refused"), 1u);
  EXPECT_TRUE(unit_running(props()));

  std::ofstream(config_path()) << original;
  ASSERT_EQ(c_->systemctl({"reload", kUnit}).exit_code, 0);
}

TEST_F(Systemd, StoredOriginsAreFunctionNames) {
  chown_loop(10);
  wait_chown_checks(1);
  auto r = c_->exec({"/usr/local/bin/capaudit", "report", "--db", kDb, "--binary", workload("fchown_loop"), "--json"});
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  const nlohmann::json* b = find_binary(j, workload("fchown_loop"));
  ASSERT_NE(b, nullptr) << r.out << r.err;
  size_t origins = 0;
  for (auto& c : (*b)["checks"])
    for (auto& o : c.value("origins", nlohmann::json::array())) {
      origins++;
      std::string name = o.get<std::string>();
      EXPECT_FALSE(std::regex_match(name, std::regex("(0x)?[0-9a-f]+"))) << "unsymbolised origin " << name;
      EXPECT_TRUE(std::regex_match(name, std::regex("[A-Za-z_][A-Za-z0-9_.]*"))) << name;
    }
  EXPECT_GT(origins, 0u) << r.out;
  std::string log = c_->exec({"journalctl", "--no-pager", "-u", kUnit}).out;
  EXPECT_EQ(log.find("unsymbolised"), std::string::npos) << log;
}

// The daemon holds exactly what the unit's bounding set names, no more:
// CAP_SYS_PTRACE (19), CAP_SYSLOG (34), CAP_PERFMON (38), CAP_BPF (39).
TEST_F(Systemd, DaemonHoldsOnlyTheCapabilitiesItNeeds) {
  Props p = props();
  ASSERT_TRUE(unit_running(p)) << dump(p);
  std::string status = c_->exec({"cat", "/proc/" + p["MainPID"] + "/status"}).out;
  auto field = [&](const std::string& name) {
    std::smatch m;
    return std::regex_search(status, m, std::regex(name + ":\\s*([0-9a-f]+)")) ? std::stoull(m[1], nullptr, 16)
                                                                             : ~0ull;
  };
  const uint64_t want = (1ull << 19) | (1ull << 34) | (1ull << 38) | (1ull << 39);
  RecordProperty("CapPrm", std::to_string(field("CapPrm")));
  EXPECT_EQ(field("CapPrm"), want) << status;
  EXPECT_EQ(field("CapEff"), want) << status;
  EXPECT_EQ(field("CapBnd"), want) << status;
  EXPECT_EQ(field("CapAmb"), 0u) << status;
  EXPECT_EQ(field("CapInh"), 0u) << status;
  EXPECT_NE(status.find("NoNewPrivs:\t1"), std::string::npos) << status;
}

TEST_F(Systemd, LiveExposureScoreIsAtMostTwo) {
  auto r = c_->exec({"systemd-analyze", "security", "--no-pager", kUnit});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("Overall exposure level for capauditd.service: ([0-9.]+)")))
      << r.out << r.err;
  RecordProperty("exposure", m[1]);
  EXPECT_LE(std::stod(m[1]), 2.0) << r.out;
}

TEST_F(Systemd, SetcapServiceWritesItsScriptMode0600) {
  unlink(c_->host_path("/var/lib/capaudit/setcap.sh").c_str());
  auto r = c_->systemctl({"start", "capaudit-setcap.service"});
  ASSERT_EQ(r.exit_code, 0) << r.err << c_->exec({"journalctl", "--no-pager", "-u", "capaudit-setcap.service"}).out;
  Props p = c_->show("capaudit-setcap.service", "Result,ExecMainStatus");
  EXPECT_EQ(p["Result"], "success");
  struct stat st {};
  ASSERT_EQ(stat(c_->host_path("/var/lib/capaudit/setcap.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_NE(read_file(c_->host_path("/var/lib/capaudit/setcap.sh")).find("#!/bin/sh"), std::string::npos);
}

// The nightly fleet export as shipped: capaudit-export.service writes one
// file named after the host, root's and 0600 in a 0700 directory, every
// line capaudit.v1 naming the host by its machine-id, and `fleet load`
// takes it. Then the drop-in docs/fleet.md gives for a shipper running as
// a group of its own: the same file 0640, that group's, in a directory the
// group can enter, the database's directory untouched.
TEST_F(Systemd, ExportServiceWritesTheNightlyFileFleetLoadTakes) {
  const uint64_t before = chown_checks();
  chown_loop(40);
  ASSERT_GE(wait_chown_checks(before + 40), before + 40);
  std::string host = c_->exec({"hostname"}).out, machine = read_file(c_->host_path("/etc/machine-id"));
  while (!host.empty() && host.back() == '\n') host.pop_back();
  while (!machine.empty() && machine.back() == '\n') machine.pop_back();
  ASSERT_FALSE(host.empty());
  const std::string file = "/var/lib/capaudit/export/capaudit-" + host + ".ndjson";
  auto r = c_->systemctl({"start", "capaudit-export.service"});
  ASSERT_EQ(r.exit_code, 0) << r.err << c_->exec({"journalctl", "--no-pager", "-u", "capaudit-export.service"}).out;
  EXPECT_EQ(c_->show("capaudit-export.service", "Result")["Result"], "success");
  EXPECT_EQ(c_->show("capaudit-export.timer", "LoadState")["LoadState"], "loaded");
  struct stat st {};
  ASSERT_EQ(stat(c_->host_path(file).c_str(), &st), 0) << file;
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, 0u);
  ASSERT_EQ(stat(c_->host_path("/var/lib/capaudit/export").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);

  std::istringstream lines(read_file(c_->host_path(file)));
  uint64_t exported_chown = 0;
  size_t n = 0;
  for (std::string line; std::getline(lines, line); n++) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    EXPECT_EQ(j["schema"], "capaudit.v1") << line;
    EXPECT_EQ(j["host_id"], machine) << line;
    if (j["path"] == workload("fchown_loop") && j["capability"] == "cap_chown") exported_chown += j["count"].get<uint64_t>();
  }
  EXPECT_GT(n, 0u);
  EXPECT_GE(exported_chown, before + 40);

  // Loaded the way the fleet's loader does, on a real PostgreSQL.
  PrivatePostgres pg;
  ASSERT_TRUE(pg.started()) << pg.why();
  std::string err, db = pg.create_database("nightly", &err);
  ASSERT_FALSE(db.empty()) << err;
  auto load = run({capaudit_bin(), "fleet", "load", "--postgres", db, c_->host_path(file)});
  ASSERT_EQ(load.exit_code, 0) << load.err;
  auto rec = run({capaudit_bin(), "fleet", "recommend", "--postgres", db, "--binary", workload("fchown_loop"), "--json"});
  ASSERT_EQ(rec.exit_code, 0) << rec.err;
  auto j = nlohmann::json::parse(rec.out, nullptr, false);
  ASSERT_TRUE(j.is_object() && j["binaries"].size() == 1) << rec.out;
  EXPECT_EQ(j["binaries"][0]["hosts"], 1);
  uint64_t loaded_chown = 0;
  for (auto& c : j["binaries"][0]["checks"])
    if (c["capability"] == "cap_chown") loaded_chown += c["count"].get<uint64_t>();
  EXPECT_EQ(loaded_chown, exported_chown);

  const std::string dropin = "/etc/systemd/system/capaudit-export.service.d/shipper.conf";
  ASSERT_TRUE(c_->write_file(dropin, read_file(std::string(CAPAUDIT_SOURCE_DIR) + "/docs/examples/export-shipper.conf")));
  // The example names the shipper's group "vector"; here it is one every system has.
  ASSERT_EQ(c_->exec({"sed", "-i", "s/^Group=vector$/Group=adm/", dropin}).exit_code, 0);
  ASSERT_EQ(c_->systemctl({"daemon-reload"}).exit_code, 0);
  r = c_->systemctl({"start", "capaudit-export.service"});
  const std::string shipped = "/var/lib/capaudit-export/capaudit-" + host + ".ndjson";
  unlink(c_->host_path(dropin).c_str());
  c_->systemctl({"daemon-reload"});
  ASSERT_EQ(r.exit_code, 0) << r.err << c_->exec({"journalctl", "--no-pager", "-u", "capaudit-export.service"}).out;
  std::string adm = c_->exec({"getent", "group", "adm"}).out;
  ASSERT_EQ(std::count(adm.begin(), adm.end(), ':'), 3) << adm;
  const gid_t adm_gid = static_cast<gid_t>(std::stoul(adm.substr(adm.find(':', adm.find(':') + 1) + 1)));
  ASSERT_EQ(stat(c_->host_path(shipped).c_str(), &st), 0) << shipped;
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, adm_gid);
  ASSERT_EQ(stat(c_->host_path("/var/lib/capaudit-export").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_gid, adm_gid);
  ASSERT_EQ(stat(c_->host_path("/var/lib/capaudit").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_gid, 0u);
  EXPECT_EQ(read_file(c_->host_path(shipped)).substr(0, 30), read_file(c_->host_path(file)).substr(0, 30));
}

// A configuration no restart can fix: one journal line naming the file,
// line and key, exit status 78, and no restart loop to the start limit.
TEST_F(Systemd, BadConfigStopsWithConfigStatusAndNoRestartLoop) {
  const std::string original = read_file(config_path());
  ASSERT_FALSE(original.empty());
  std::ofstream(config_path()) << "{\n  \"max_checks\": \"lots\"\n}\n";
  const std::string restarts = props()["NRestarts"];
  c_->systemctl({"restart", kUnit});  // fails: the daemon exits 78
  Props p;
  bool failed = c_->wait_for(kUnit, "ActiveState,Result,ExecMainStatus,NRestarts",
                             [](const Props& q) { return q.count("ActiveState") && q.at("ActiveState") == "failed"; },
                             60s, &p);
  std::ofstream(config_path()) << original;
  EXPECT_TRUE(failed) << dump(p);
  EXPECT_EQ(p["Result"], "exit-code") << dump(p);
  EXPECT_EQ(p["ExecMainStatus"], "78") << dump(p);
  EXPECT_EQ(p["NRestarts"], restarts) << "not restarted";
  size_t named = 0;
  for (auto& e : c_->journal(kUnit))
    if (e.value("MESSAGE", "").find("/etc/capaudit/capaudit.json:2") != std::string::npos &&
        e.value("MESSAGE", "").find("max_checks") != std::string::npos)
      named++;
  EXPECT_EQ(named, 1u);
  c_->systemctl({"reset-failed", kUnit});
  ASSERT_EQ(c_->systemctl({"start", kUnit}).exit_code, 0);
  ASSERT_TRUE(wait_running(&p)) << dump(p);
}

// A clean stop writes everything and unpins: nothing is left on bpffs.
TEST_F(Systemd, StopLeavesNoPinAndLogsWhatItWrote) {
  ASSERT_TRUE(std::filesystem::exists(c_->bpffs() + "/capaudit")) << "pins while running";
  auto r = c_->systemctl({"stop", kUnit});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Props p = c_->show(kUnit, "ActiveState,Result,ExecMainStatus");
  EXPECT_EQ(p["ActiveState"], "inactive");
  EXPECT_EQ(p["Result"], "success");
  EXPECT_EQ(p["ExecMainStatus"], "0");
  // (maps.debug and progs.debug are the kernel's, in every bpffs.)
  std::error_code ec;
  EXPECT_FALSE(std::filesystem::exists(c_->bpffs() + "/capaudit", ec));
  for (auto& e : std::filesystem::directory_iterator(c_->bpffs(), ec))
    EXPECT_TRUE(e.path().filename() == "maps.debug" || e.path().filename() == "progs.debug") << e.path();
  auto stopped = journal_with("CAPAUDIT_CHECKS_WRITTEN");
  ASSERT_FALSE(stopped.empty());
  EXPECT_GT(std::stoull(stopped.back()["CAPAUDIT_CHECKS_WRITTEN"].get<std::string>()), 0u);
  ASSERT_EQ(c_->systemctl({"start", kUnit}).exit_code, 0);
}

// The Debian package as a fleet host installs it: `dpkg -i` in a copy of
// this host (an overlay over its root, so the host's dpkg database and /etc)
// booted under systemd; the maintainer scripts enable and start the
// service, purge removes its state. CAPAUDIT_DEB names a package already
// built; otherwise scripts/package builds one (a clean build: minutes).
class Package : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!can_run(&setup_error_) || !(setup_error_ = nspawn_missing()).empty()) return;
    dist_ = std::make_unique<TempDir>();
    std::string deb;
    if (const char* given = getenv("CAPAUDIT_DEB")) {
      deb = given;
    } else {
      auto r = run({"env", "DIST=" + dist_->path(), std::string(CAPAUDIT_SOURCE_DIR) + "/scripts/package"});
      if (r.exit_code != 0) {
        setup_error_ = "scripts/package failed:\n" + r.out + r.err;
        return;
      }
      for (auto& e : std::filesystem::directory_iterator(dist_->path()))
        if (e.path().extension() == ".deb") deb = e.path();
      lintian_ = r.out;
    }
    if (access(deb.c_str(), R_OK) != 0) {
      setup_error_ = "no package at '" + deb + "'";
      return;
    }
    deb_ = "/run/capaudit-deb/" + std::filesystem::path(deb).filename().string();
    c_ = std::make_unique<Container>();
    ContainerOptions o;
    o.name = "capaudit-deb";
    o.overlay_root = true;
    o.bind_ro = {std::filesystem::path(deb).parent_path().string() + ":/run/capaudit-deb"};
    if (!c_->boot(o, &setup_error_)) c_.reset();
  }
  static void TearDownTestSuite() {
    c_.reset();
    dist_.reset();
  }
  void SetUp() override {
    CAPAUDIT_REQUIRE_E2E();
    if (!c_) {
      if (required()) FAIL() << "package tests required but: " << setup_error_;
      GTEST_SKIP() << setup_error_;
    }
  }
  static std::unique_ptr<TempDir> dist_;
  static std::unique_ptr<Container> c_;
  static std::string setup_error_, deb_, lintian_;
};
std::unique_ptr<TempDir> Package::dist_;
std::unique_ptr<Container> Package::c_;
std::string Package::setup_error_, Package::deb_, Package::lintian_;

TEST_F(Package, InstallEnablesAndStartsTheService) {
  if (!lintian_.empty()) RecordProperty("lintian", lintian_);
  // A Docker-built host image carries a policy-rc.d that forbids starting
  // services (exit 101); a fleet host has none. Removed in the copy only.
  unlink(c_->host_path("/usr/sbin/policy-rc.d").c_str());
  auto r = c_->exec({"env", "DEBIAN_FRONTEND=noninteractive", "dpkg", "-i", deb_}, 300);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  Props p;
  EXPECT_TRUE(c_->wait_for(kUnit, kProps, unit_running, 60s, &p))
      << dump(p) << c_->exec({"journalctl", "--no-pager", "-u", kUnit}).out;
  Props unit = c_->show(kUnit, "FragmentPath,UnitFileState,ExecMainStatus");
  EXPECT_EQ(unit["FragmentPath"], "/lib/systemd/system/capauditd.service");
  EXPECT_EQ(unit["UnitFileState"], "enabled");
  EXPECT_EQ(c_->systemctl({"is-active", "capaudit-setcap.timer"}).out, "active\n");
  EXPECT_EQ(c_->systemctl({"is-enabled", "capaudit-setcap.timer"}).out, "enabled\n");
  // The fleet export waits for its operator (docs/fleet.md).
  EXPECT_EQ(c_->systemctl({"is-enabled", "capaudit-export.timer"}).out, "disabled\n");
  EXPECT_NE(c_->exec({"dpkg-query", "-W", "-f=${Conffiles}", "capaudit"}).out.find("/etc/capaudit/capaudit.json"),
            std::string::npos);
  for (const char* f : {"/usr/sbin/capauditd", "/usr/bin/capaudit", "/usr/share/man/man8/capauditd.8.gz",
                        "/usr/share/man/man8/capaudit.8.gz", "/usr/share/man/man5/capaudit.json.5.gz",
                        "/lib/systemd/system/capaudit-setcap.service", "/lib/systemd/system/capaudit-setcap.timer",
                        "/lib/systemd/system/capaudit-export.service", "/lib/systemd/system/capaudit-export.timer"})
    EXPECT_EQ(access(c_->host_path(f).c_str(), F_OK), 0) << f;
  // What it counts lands where the packaged CLI reads by default.
  auto rep = c_->exec({"sh", "-c", "systemctl kill -s USR1 capauditd; sleep 1; capaudit report --json"});
  EXPECT_EQ(rep.exit_code, 0) << rep.out << rep.err;
  EXPECT_NE(rep.out.find("\"binaries\""), std::string::npos) << rep.out;
}

TEST_F(Package, PurgeStopsTheServiceAndRemovesItsState) {
  ASSERT_EQ(access(c_->host_path("/var/lib/capaudit/capaudit.db").c_str(), F_OK), 0);
  auto r = c_->exec({"env", "DEBIAN_FRONTEND=noninteractive", "dpkg", "--purge", "capaudit"}, 300);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  Props p = c_->show(kUnit, "ActiveState,LoadState");
  EXPECT_NE(p["ActiveState"], "active") << dump(p);
  EXPECT_EQ(p["LoadState"], "not-found") << dump(p);
  for (const char* gone : {"/var/lib/capaudit", "/etc/capaudit", "/usr/sbin/capauditd"})
    EXPECT_NE(access(c_->host_path(gone).c_str(), F_OK), 0) << gone << " left after purge";
  EXPECT_FALSE(std::filesystem::exists(c_->bpffs() + "/capaudit")) << "pins left after purge";
}

}  // namespace
}  // namespace capaudit::e2e
