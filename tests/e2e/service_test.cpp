// capauditd as a systemd service: the units, and the notify protocol.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "e2e_util.h"

namespace capaudit::e2e {
namespace {


// The units as `cmake --install` writes them, but naming the binaries of
// this build (verify insists that ExecStart= is executable).
std::string install_unit(const TempDir& dir, const std::string& name) {
  std::string text = read_file(std::string(CAPAUDIT_SOURCE_DIR) + "/systemd/" + name + ".in");
  auto subst = [&](const std::string& var, const std::string& bin) {
    std::string dirname = bin.substr(0, bin.rfind('/'));
    for (size_t p; (p = text.find(var)) != std::string::npos;) text.replace(p, var.size(), dirname);
  };
  subst("@CMAKE_INSTALL_FULL_SBINDIR@", capauditd_bin());
  subst("@CMAKE_INSTALL_FULL_BINDIR@", capaudit_bin());
  std::string path = dir.file(name);
  std::ofstream(path) << text;
  return path;
}

TEST(Service, UnitsPassSystemdAnalyzeVerify) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string daemon = install_unit(dir, "capauditd.service");
  std::string setcap = install_unit(dir, "capaudit-setcap.service");
  std::string timer = dir.file("capaudit-setcap.timer");
  std::ofstream(timer) << read_file(std::string(CAPAUDIT_SOURCE_DIR) + "/systemd/capaudit-setcap.timer");
  std::string exporter = install_unit(dir, "capaudit-export.service");
  std::string export_timer = dir.file("capaudit-export.timer");
  std::ofstream(export_timer) << read_file(std::string(CAPAUDIT_SOURCE_DIR) + "/systemd/capaudit-export.timer");
  // verify also looks up Documentation=: point man at this tree's pages.
  for (const char* page : {"man8/capaudit.8", "man8/capauditd.8", "man5/capaudit.json.5"}) {
    std::string to = dir.file(std::string("man/") + page);
    std::filesystem::create_directories(to.substr(0, to.rfind('/')));
    std::ofstream(to) << read_file(std::string(CAPAUDIT_SOURCE_DIR) + "/docs/" + (strrchr(page, '/') + 1));
  }
  auto r = run({"env", "MANPATH=" + dir.file("man"), "systemd-analyze", "verify", daemon, setcap, timer, exporter,
              export_timer});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // verify reports problems of other units too; ours must not be among them.
  EXPECT_EQ(r.err.find("capaudit"), std::string::npos) << r.err;
}

TEST(Service, DaemonExposureScoreIsAtMostTwo) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string unit = install_unit(dir, "capauditd.service");
  auto r = run({"systemd-analyze", "security", "--offline=true", "--no-pager", unit});
  std::smatch m;
  std::regex overall("Overall exposure level for capauditd.service: ([0-9.]+)");
  ASSERT_TRUE(std::regex_search(r.out, m, overall)) << r.out << r.err;
  double score = std::stod(m[1]);
  RecordProperty("exposure", m[1]);
  EXPECT_LE(score, 2.0) << r.out;
  // The bounding set is what the daemon was measured to need.
  std::string text = read_file(unit);
  EXPECT_NE(text.find("CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_SYS_PTRACE CAP_SYSLOG\n"),
            std::string::npos);
}

TEST(Service, NotifiesReadyStatusReloadingStoppingInOrder) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string conf = dir.file("capaudit.json");
  std::ofstream(conf) << "{\"drain_interval_sec\": 30}\n";
  Daemon d(dir.file("n.db"), {"--config", conf});
  std::vector<std::string> seen;
  // READY=1 and the first STATUS= come in one message.
  ASSERT_TRUE(d.notify().wait_for("READY=1", std::chrono::seconds(60), &seen)) << d.log();
  EXPECT_NE(seen.back().find("STATUS="), std::string::npos) << seen.back();
  EXPECT_NE(seen.back().find("method tracepoint"), std::string::npos) << seen.back();

  d.signal(SIGHUP);
  ASSERT_TRUE(d.notify().wait_for("RELOADING=1", std::chrono::seconds(10), &seen)) << d.log();
  EXPECT_NE(seen.back().find("MONOTONIC_USEC="), std::string::npos) << seen.back();
  ASSERT_TRUE(d.notify().wait_for("READY=1", std::chrono::seconds(10), &seen)) << d.log();

  // A broken file on reload: logged, and the daemon goes on as it was.
  std::ofstream(conf) << "{\"drain_interval_sec\": \"soon\"}\n";
  d.signal(SIGHUP);
  ASSERT_TRUE(d.notify().wait_for("READY=1", std::chrono::seconds(10), &seen)) << d.log();
  EXPECT_NE(d.log().find("reload refused, keeping the running configuration"), std::string::npos) << d.log();
  EXPECT_NE(d.log().find(conf + ":1"), std::string::npos) << d.log();
  ASSERT_EQ(run({workload("fchown_loop"), dir.file("t"), "5"}).exit_code, 0);
  ASSERT_TRUE(d.flush()) << "still serving after a bad reload\n" << d.log();

  d.signal(SIGTERM);
  ASSERT_TRUE(d.notify().wait_for("STOPPING=1", std::chrono::seconds(30), &seen)) << d.log();
  EXPECT_EQ(d.stop(), 0) << d.log();

  // Order: READY before RELOADING, RELOADING before the READY that ends it,
  // STOPPING last.
  auto index_of = [&](const std::string& needle, size_t from = 0) {
    for (size_t i = from; i < seen.size(); i++)
      if (seen[i].find(needle) != std::string::npos) return i;
    return seen.size();
  };
  size_t ready = index_of("READY=1"), reloading = index_of("RELOADING=1");
  size_t ready_again = index_of("READY=1", reloading + 1), stopping = index_of("STOPPING=1");
  EXPECT_LT(ready, reloading);
  EXPECT_LT(reloading, ready_again);
  EXPECT_LT(ready_again, stopping);
  EXPECT_EQ(stopping, seen.size() - 1);
}

TEST(Service, StartupFailureStillSaysStopping) {
  CAPAUDIT_REQUIRE_E2E();
  TempDir dir;
  std::string conf = dir.file("bad.json");
  std::ofstream(conf) << "{\"max_checks\": -1}\n";
  Daemon d(dir.file("n.db"), {"--config", conf});
  std::vector<std::string> seen;
  EXPECT_TRUE(d.notify().wait_for("STOPPING=1", std::chrono::seconds(30), &seen)) << d.log();
  for (auto& m : seen) EXPECT_EQ(m.find("READY=1"), std::string::npos) << "READY before failing";
  EXPECT_EQ(d.stop(0), 78) << "exits by itself, with EX_CONFIG";  // signal 0: only wait
}

}  // namespace
}  // namespace capaudit::e2e
