// Per-unit advice under a real systemd (issue 12): units installed as a user
// installs them (a file in /etc/systemd/system, daemon-reload, start) in the
// nspawn-booted systemd, counted by capauditd installed from this build;
// `recommend --by unit --format systemd` gives the drop-in, which is applied
// as `systemctl edit` would (a drop-in file, daemon-reload, restart). The
// closed loop: the unit still works holding exactly the recommended set, and
// fails with any one of it removed.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <regex>
#include <sstream>
#include <thread>

#include "e2e_util.h"
#include "nspawn.h"

namespace capaudit::e2e {
namespace {

using namespace std::chrono_literals;
using Props = UnitProps;

constexpr const char* kDaemon = "capauditd.service";
constexpr const char* kMore = "capaudit-e2e-more.service";  // holds seven, uses two
constexpr const char* kNone = "capaudit-e2e-none.service";  // holds two, uses none
constexpr const char* kCapaudit = "/usr/local/bin/capaudit";
constexpr const char* kSecret = "/opt/capaudit-e2e/secret";
constexpr uint64_t kChownBit = uint64_t{1} << 0, kNetRawBit = uint64_t{1} << 13;

std::string more_unit() {
  const std::string held = "CAP_NET_RAW CAP_CHOWN CAP_SETUID CAP_DAC_OVERRIDE CAP_NET_BIND_SERVICE CAP_SYS_TIME CAP_KILL";
  return "[Unit]\nDescription=capaudit e2e: holds seven capabilities, uses two\n\n"
         "[Service]\nType=exec\nUser=nobody\nRuntimeDirectory=capaudit-e2e-more\n"
         "CapabilityBoundingSet=" + held + "\nAmbientCapabilities=" + held + "\n"
         // a raw ICMP socket (CAP_NET_RAW, as ping) and three fchowns of its own file to uid 1 (CAP_CHOWN)
         "ExecStartPre=" + workload("raw_socket") + "\n"
         "ExecStartPre=" + workload("fchown_loop") + " /run/capaudit-e2e-more/owned 3\n"
         "ExecStart=/bin/sleep infinity\n";
}

std::string none_unit() {
  return "[Unit]\nDescription=capaudit e2e: holds two capabilities, uses none\n\n"
         "[Service]\nType=exec\nUser=nobody\n"
         "CapabilityBoundingSet=CAP_NET_RAW CAP_KILL\nAmbientCapabilities=CAP_NET_RAW CAP_KILL\n"
         // tries a root-only file and does without it: denied DAC checks, none needed
         "ExecStartPre=" + workload("read_if_possible") + " " + kSecret + "\n"
         "ExecStart=/bin/sleep infinity\n";
}

// The drop-in with `cap` taken out of every list that names it.
std::string without(const std::string& dropin, const std::string& cap) {
  std::istringstream in(dropin);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("CapabilityBoundingSet=", 0) == 0 || line.rfind("AmbientCapabilities=", 0) == 0) {
      const size_t eq = line.find('=');
      std::istringstream words(line.substr(eq + 1));
      std::string kept;
      for (std::string w; words >> w;)
        if (w != cap) kept += (kept.empty() ? "" : " ") + w;
      line = line.substr(0, eq + 1) + kept;
    }
    out += line + "\n";
  }
  return out;
}

bool has(const nlohmann::json& list, const std::string& s) {
  return list.is_array() && std::find(list.begin(), list.end(), s) != list.end();
}

// Whether a setting line (not a comment) of the drop-in names cap.
bool lists(const std::string& dropin, const std::string& cap) {
  std::istringstream in(dropin);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#' && std::regex_search(line, std::regex("[= ]" + cap + "( |$)"))) return true;
  return false;
}

class Units : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!can_run(&setup_error_) || !(setup_error_ = nspawn_missing()).empty()) return;
    stage_ = std::make_unique<TempDir>();
    if (!stage_install(stage_->file("stage"), &setup_error_)) return;
    const std::string stage = stage_->file("stage");
    c_ = std::make_unique<Container>();
    ContainerOptions o;
    o.name = "capaudit-units";
    o.bind_ro = {stage + "/usr/local:/usr/local", std::string(WORKLOAD_DIR)};
    if (!c_->boot(o, &setup_error_)) {
      c_.reset();
      return;
    }
    Props p;
    if (!c_->wait_for(kDaemon, "ActiveState,SubState", unit_running, 60s, &p)) {
      setup_error_ = "capauditd.service never ran: " + c_->exec({"journalctl", "--no-pager", "-u", kDaemon}).out;
      c_.reset();
      return;
    }
    // The units as a user installs them, started after the daemon, so it
    // sees their cgroups made.
    if (!c_->write_file(kSecret, "only root reads this\n", 0600) ||
        !c_->write_file(std::string("/etc/systemd/system/") + kMore, more_unit()) ||
        !c_->write_file(std::string("/etc/systemd/system/") + kNone, none_unit())) {
      setup_error_ = "cannot write the units";
      c_.reset();
      return;
    }
    c_->systemctl({"daemon-reload"});
    for (const char* u : {kMore, kNone}) {
      auto r = c_->systemctl({"start", u});
      if (r.exit_code != 0) {
        setup_error_ = std::string(u) + " does not start as written: " + r.err +
                       c_->exec({"journalctl", "--no-pager", "-u", u}).out;
        c_.reset();
        return;
      }
    }
  }
  static void TearDownTestSuite() {
    c_.reset();  // halts the container: the units, the daemon, its pins and cgroups go with it
    stage_.reset();
  }
  void SetUp() override {
    CAPAUDIT_REQUIRE_E2E();
    if (!c_) {
      if (required()) FAIL() << "systemd unit tests required but: " << setup_error_;
      GTEST_SKIP() << setup_error_;
    }
  }

  static ProcessResult capaudit(std::vector<std::string> args) {
    args.insert(args.begin(), kCapaudit);
    return c_->exec(args);
  }
  // recommend --by unit --unit UNIT --format json, drained until `done`
  // holds for its entry (or 30 s): the entry last read.
  static nlohmann::json wait_unit(const std::string& unit, const std::function<bool(const nlohmann::json&)>& done) {
    nlohmann::json entry;
    for (auto deadline = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < deadline;) {
      c_->systemctl({"kill", "-s", "USR1", kDaemon});
      auto r = capaudit({"recommend", "--by", "unit", "--unit", unit, "--format", "json"});
      auto j = nlohmann::json::parse(r.out, nullptr, false);
      if (j.is_object() && j["units"].is_array() && j["units"].size() == 1) {
        entry = j["units"][0];
        if (done(entry)) break;
      }
      std::this_thread::sleep_for(200ms);
    }
    return entry;
  }
  static std::string dropin_path(const std::string& unit) { return "/etc/systemd/system/" + unit + ".d/capaudit.conf"; }
  // The drop-in in place, as `systemctl edit` leaves it, then a restart:
  // its exit status (0: started, so every ExecStartPre succeeded).
  static int apply(const std::string& unit, const std::string& dropin) {
    EXPECT_TRUE(c_->write_file(dropin_path(unit), dropin));
    EXPECT_EQ(c_->systemctl({"daemon-reload"}).exit_code, 0);
    int rc = c_->systemctl({"restart", unit}).exit_code;
    if (rc != 0) c_->systemctl({"reset-failed", unit});
    return rc;
  }
  // Bounding and ambient sets of the unit's main process.
  static std::pair<uint64_t, uint64_t> held(const std::string& unit, std::string* status) {
    const std::string pid = c_->show(unit, "MainPID")["MainPID"];
    *status = c_->exec({"cat", "/proc/" + pid + "/status"}).out;
    auto field = [&](const std::string& name) {
      std::smatch m;
      return std::regex_search(*status, m, std::regex(name + ":\\s*([0-9a-f]+)")) ? std::stoull(m[1], nullptr, 16)
                                                                               : ~0ull;
    };
    return {field("CapBnd"), field("CapAmb")};
  }

  static std::unique_ptr<TempDir> stage_;
  static std::unique_ptr<Container> c_;
  static std::string setup_error_;
};
std::unique_ptr<TempDir> Units::stage_;
std::unique_ptr<Container> Units::c_;
std::string Units::setup_error_;

TEST_F(Units, NobodyServiceGetsItsDropInAndWorksWithExactlyIt) {
  nlohmann::json e = wait_unit(kMore, [](const nlohmann::json& u) {
    return u["capabilities"] == nlohmann::json::array({"cap_chown", "cap_net_raw"});
  });
  ASSERT_EQ(e["capabilities"], nlohmann::json::array({"cap_chown", "cap_net_raw"})) << e.dump(2);
  // The user is the unit's own User=, as systemd has it, not a guess.
  EXPECT_EQ(e["user"], "nobody") << e.dump(2);
  EXPECT_EQ(e["user_source"], "unit") << e.dump(2);
  EXPECT_EQ(e["systemd"]["CapabilityBoundingSet"], "CAP_CHOWN CAP_NET_RAW");
  EXPECT_EQ(e["systemd"]["AmbientCapabilities"], "CAP_CHOWN CAP_NET_RAW");
  EXPECT_EQ(e["drops"], "drops 5 of 7 in its bounding set") << e.dump(2);
  // (and /usr/bin/sleep, whose exec asks the vm_enough_memory probe)
  EXPECT_TRUE(has(e["binaries"], workload("fchown_loop")) && has(e["binaries"], workload("raw_socket"))) << e.dump(2);

  auto r = capaudit({"recommend", "--by", "unit", "--unit", kMore, "--format", "systemd"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string dropin = r.out;
  std::cout << "$ capaudit recommend --by unit --unit " << kMore << " --format systemd\n" << dropin << std::flush;
  EXPECT_EQ(dropin.rfind(std::string("# ") + dropin_path(kMore) + "\n", 0), 0u) << dropin;
  EXPECT_NE(dropin.find("(User=nobody): needs cap_chown, cap_net_raw; drops 5 of 7 in its bounding set\n"),
            std::string::npos)
      << dropin;
  EXPECT_NE(dropin.find("[Service]\nCapabilityBoundingSet=\nCapabilityBoundingSet=CAP_CHOWN CAP_NET_RAW\n"
                        "AmbientCapabilities=\nAmbientCapabilities=CAP_CHOWN CAP_NET_RAW\n"),
            std::string::npos)
      << dropin;

  ASSERT_EQ(apply(kMore, dropin), 0) << c_->exec({"journalctl", "--no-pager", "-n", "30", "-u", kMore}).out;
  Props p = c_->show(kMore, "ActiveState,SubState");
  EXPECT_TRUE(unit_running(p)) << p["ActiveState"] << "/" << p["SubState"];
  std::string status;
  auto [bnd, amb] = held(kMore, &status);
  EXPECT_EQ(bnd, kChownBit | kNetRawBit) << status;
  EXPECT_EQ(amb, kChownBit | kNetRawBit) << status;
  // The user was read from systemd now, and systemd agrees with itself.
  e = wait_unit(kMore, [](const nlohmann::json&) { return true; });
  EXPECT_EQ(e["unit_settings"]["CapabilityBoundingSet"], nlohmann::json::array({"cap_chown", "cap_net_raw"}));
  EXPECT_EQ(e["drops"], "drops 0 of 2 in its bounding set") << e.dump(2);

  // Each one is needed: without it the unit does not start.
  for (const std::string cap : {"CAP_CHOWN", "CAP_NET_RAW"}) {
    const std::string less = without(dropin, cap);
    ASSERT_FALSE(lists(less, cap)) << less;
    ASSERT_TRUE(lists(dropin, cap)) << dropin;
    EXPECT_NE(apply(kMore, less), 0) << "started without " << cap << ":\n" << less;
    EXPECT_NE(c_->show(kMore, "ActiveState")["ActiveState"], "active") << cap;
  }
  // And back: the recommended drop-in still works after the failures.
  ASSERT_EQ(apply(kMore, dropin), 0);
  EXPECT_TRUE(unit_running(c_->show(kMore, "ActiveState,SubState")));

  // ps: the live process with its unit and what the unit was seen using.
  auto ps = capaudit({"ps"});
  ASSERT_EQ(ps.exit_code, 0) << ps.err;
  std::cout << "$ capaudit ps\n" << ps.out << std::flush;
  const std::string pid = c_->show(kMore, "MainPID")["MainPID"];
  std::istringstream lines(ps.out);
  std::string line_of_pid;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream w(line);
    std::string first;
    if (w >> first && first == pid) line_of_pid = line;
  }
  ASSERT_FALSE(line_of_pid.empty()) << ps.out;
  EXPECT_NE(line_of_pid.find(kMore), std::string::npos) << line_of_pid;
  EXPECT_NE(line_of_pid.find("nobody"), std::string::npos) << line_of_pid;
  auto psj = capaudit({"ps", "--json", "-p", pid});
  ASSERT_EQ(psj.exit_code, 0) << psj.err;
  auto pj = nlohmann::json::parse(psj.out, nullptr, false);
  ASSERT_TRUE(pj.is_array() && pj.size() == 1) << psj.out;
  const auto both = nlohmann::json::array({"cap_chown", "cap_net_raw"});
  EXPECT_EQ(pj[0]["unit"], kMore) << psj.out;
  EXPECT_EQ(pj[0]["user"], "nobody") << psj.out;
  EXPECT_EQ(pj[0]["ambient"], both) << psj.out;
  EXPECT_EQ(pj[0]["bounding"], both) << psj.out;
  EXPECT_EQ(pj[0]["used"]["unit"], both) << psj.out;
}

TEST_F(Units, ServiceUsingNoneGetsAnEmptyBoundingSet) {
  nlohmann::json e = wait_unit(kNone, [](const nlohmann::json& u) {
    return has(u["binaries"], workload("read_if_possible"));
  });
  EXPECT_EQ(e["capabilities"], nlohmann::json::array()) << e.dump(2);
  EXPECT_TRUE(has(e["binaries"], workload("read_if_possible"))) << e.dump(2);
  EXPECT_EQ(e["user_source"], "unit") << e.dump(2);
  EXPECT_EQ(e["drops"], "drops 2 of 2 in its bounding set") << e.dump(2);

  auto r = capaudit({"recommend", "--by", "unit", "--unit", kNone, "--format", "systemd"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::cout << "$ capaudit recommend --by unit --unit " << kNone << " --format systemd\n" << r.out << std::flush;
  EXPECT_NE(r.out.find("(User=nobody): needs none; drops 2 of 2 in its bounding set\n"), std::string::npos) << r.out;
  // The reset lines only: nothing is left.
  EXPECT_NE(r.out.find("[Service]\nCapabilityBoundingSet=\nAmbientCapabilities=\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("CAP_"), std::string::npos) << r.out;

  ASSERT_EQ(apply(kNone, r.out), 0) << c_->exec({"journalctl", "--no-pager", "-n", "30", "-u", kNone}).out;
  EXPECT_TRUE(unit_running(c_->show(kNone, "ActiveState,SubState")));
  std::string status;
  auto [bnd, amb] = held(kNone, &status);
  EXPECT_EQ(bnd, 0u) << status;
  EXPECT_EQ(amb, 0u) << status;
}

// Every unit at once, as the note shows it; the daemon's own unit
// among them, and systemd's set-up of each unit's processes not counted.
TEST_F(Units, AllUnitsAsDropIns) {
  wait_unit(kMore, [](const nlohmann::json& u) { return !u["capabilities"].empty(); });
  auto r = capaudit({"recommend", "--by", "unit", "--format", "systemd"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::cout << "$ capaudit recommend --by unit --format systemd\n" << r.out << std::flush;
  EXPECT_NE(r.out.find(std::string("# ") + dropin_path(kMore)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(std::string("# ") + dropin_path(kNone)), std::string::npos) << r.out;
  // A scope takes no drop-in: shown, commented.
  EXPECT_EQ(r.out.find("# /etc/systemd/system/init.scope.d/capaudit.conf\n[Service]"), std::string::npos) << r.out;
  auto j = nlohmann::json::parse(capaudit({"recommend", "--by", "unit", "--format", "json"}).out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  for (auto& u : j["units"]) {
    // (PID 1 itself is init.scope's own.)
    const std::string name = u["unit"];
    for (auto& b : u["binaries"]) {
      if (name.size() > 8 && name.substr(name.size() - 8) == ".service") {
        EXPECT_NE(b.get<std::string>(), "/usr/lib/systemd/systemd") << u.dump(2);
      }
    }
    if (u["unit"] == kMore || u["unit"] == kNone) {
      EXPECT_FALSE(u["systemd_setup"]["binaries"].empty()) << "systemd's set-up seen apart:\n" << u.dump(2);
    }
  }
}

}  // namespace
}  // namespace capaudit::e2e
