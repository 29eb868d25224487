// The nightly setcap script against hostile input: it may only narrow
// privilege, and no path in the database may ever run as a command.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "e2e_util.h"
#include "identity.h"
#include "store.h"

namespace capaudit::e2e {
namespace {

namespace fs = std::filesystem;

constexpr int kNetRaw = 13;
constexpr int kNetAdmin = 12;
constexpr int kSysAdmin = 21;

// File capabilities are honoured only where every directory is root's, so
// the tests' binaries live under /var/lib, not /tmp (world-writable).
class RootDir {
 public:
  RootDir() {
    std::string tmpl = "/var/lib/capaudit-test-XXXXXX";
    path_ = mkdtemp(tmpl.data());
    chmod(path_.c_str(), 0755);
  }
  ~RootDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};


void install_copy(const std::string& from, const std::string& to, const std::string& caps) {
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
  chmod(to.c_str(), 0755);
  if (!caps.empty()) {
    ASSERT_EQ(run({"setcap", caps, to}).exit_code, 0) << "setcap " << caps << " " << to;
  }
}

// Records, as the daemon would, that `path` made these checks.
void observe(Store& s, const std::string& path, uint32_t euid, const std::vector<int>& granted_caps,
             const std::string& origin = "inet_create") {
  std::string err;
  auto id = read_file_identity(path, &err);
  ASSERT_TRUE(id) << err;
  ASSERT_TRUE(s.begin(&err)) << err;
  int64_t bin = s.upsert_binary({id->dev, id->ino, path, ""}, false, 1000);
  ASSERT_TRUE(s.set_binary_identity(bin, *id));
  int64_t stack = s.put_stack({"cap_capable+0x83", origin + "+0x10"}, origin);
  for (int cap : granted_caps) {
    CheckFields f;
    f.cap = cap;
    f.uid = f.euid = euid;
    f.audit = Audit::Unknown;
    int64_t chk = s.add_check(bin, f, 1, 1000);
    ASSERT_TRUE(s.add_origin(chk, stack, 1));
  }
  ASSERT_TRUE(s.commit(&err)) << err;
}

std::vector<int> caps_now(const std::string& path) {
  auto id = read_file_identity(path);
  return id ? id->file_caps : std::vector<int>{};
}

std::string generate(const std::string& db, const std::string& script) {
  auto r = run({capaudit_bin(), "recommend", "--db", db, "--format", "script", "--output", script});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  struct stat st {};
  EXPECT_EQ(stat(script.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  return read_file(script);
}

TEST(SetcapScript, HostileNamesAreQuotedAndNothingExecutes) {
  CAPAUDIT_REQUIRE_E2E();
  RootDir dir;
  TempDir work;
  std::string db = work.file("s.db");
  std::string err;
  auto store = Store::open(db, &err);
  ASSERT_TRUE(store) << err;
  const std::vector<std::string> hostile = {
      "it's", "with space", "$(touch PWNED)", "`touch PWNED`", "-rf", "a;touch PWNED", "x\nsetcap cap_sys_admin+ep y",
      "dq\"uote", "back\\slash", "*", "$HOME",
  };
  for (const auto& name : hostile) {
    install_copy(workload("raw_socket"), dir.file(name), "cap_net_raw,cap_net_admin+ep");
    observe(*store, dir.file(name), 65534, {kNetRaw});
  }
  store.reset();
  std::string script_path = work.file("setcap.sh");
  std::string text = generate(db, script_path);
  EXPECT_EQ(run({"sh", "-n", script_path}).exit_code, 0) << text;

  auto r = run({"sh", "-c", "cd \"$1\" && sh \"$2\"", "sh", dir.path(), script_path});
  EXPECT_EQ(r.exit_code, 0) << r.err << "\n" << text;
  for (const auto& place : {dir.path(), work.path(), std::string("/")})
    EXPECT_FALSE(fs::exists(place + "/PWNED")) << "a path ran as a command in " << place << "\n" << text;
  for (const auto& name : hostile) {
    std::string path = dir.file(name);
    if (name.find('\n') != std::string::npos) {
      // Control characters: never an active line, left as it was.
      EXPECT_EQ(caps_now(path), (std::vector<int>{kNetAdmin, kNetRaw})) << text;
    } else {
      EXPECT_EQ(caps_now(path), std::vector<int>{kNetRaw}) << "'" << name << "' not narrowed\n" << text;
    }
  }
  EXPECT_FALSE(fs::exists(dir.file("y")));
}

TEST(SetcapScript, OnlyNarrowsAndExplainsEverythingElse) {
  CAPAUDIT_REQUIRE_E2E();
  RootDir dir;
  TempDir work;
  std::string db = work.file("s.db");
  std::string err;
  auto store = Store::open(db, &err);
  ASSERT_TRUE(store) << err;

  // A program only root ran, with no privilege of its own: never given any.
  std::string plain = dir.file("plain");
  install_copy(workload("raw_socket"), plain, "");
  observe(*store, plain, 0, {kNetRaw});
  // Setuid-root, seen only with euid 0: a comment saying how to profile it.
  std::string suid = dir.file("suid");
  install_copy(workload("raw_socket"), suid, "");
  chmod(suid.c_str(), 04755);
  observe(*store, suid, 0, {kNetRaw});
  // Setuid-root seen as a user: loses the setuid bit, gets just its caps.
  std::string suid_user = dir.file("suid-user");
  install_copy(workload("raw_socket"), suid_user, "");
  chmod(suid_user.c_str(), 04755);
  observe(*store, suid_user, 65534, {kNetRaw});
  // Changed after it was observed: left alone.
  std::string changed = dir.file("changed");
  install_copy(workload("raw_socket"), changed, "");
  { std::ofstream(changed, std::ios::app) << "x"; }
  observe(*store, changed, 65534, {kNetRaw});
  { std::ofstream(changed, std::ios::app) << "y"; }  // after observation; write drops caps anyway
  ASSERT_EQ(run({"setcap", "cap_net_raw,cap_sys_admin+ep", changed}).exit_code, 0);
  // Needs a capability it does not hold: narrow-only, not touched.
  std::string lacking = dir.file("lacking");
  install_copy(workload("raw_socket"), lacking, "cap_net_admin+ep");
  observe(*store, lacking, 65534, {kNetRaw});
  // In a directory another user can write to: skipped when the script runs.
  std::string open_dir = dir.file("open");
  fs::create_directory(open_dir);
  ASSERT_EQ(chown(open_dir.c_str(), 65534, 65534), 0);
  std::string in_open = open_dir + "/prog";
  install_copy(workload("raw_socket"), in_open, "cap_net_raw,cap_sys_admin+ep");
  observe(*store, in_open, 65534, {kNetRaw});
  store.reset();

  std::string script_path = work.file("setcap.sh");
  std::string text = generate(db, script_path);
  auto r = run({"sh", script_path});
  EXPECT_EQ(r.exit_code, 0) << r.err;

  EXPECT_TRUE(caps_now(plain).empty()) << text;
  EXPECT_NE(text.find("plain: neither setuid-root nor file capabilities"), std::string::npos) << text;
  struct stat st {};
  ASSERT_EQ(stat(suid.c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_ISUID) << text;
  EXPECT_NE(text.find("seen only with euid 0"), std::string::npos) << text;
  ASSERT_EQ(stat(suid_user.c_str(), &st), 0);
  EXPECT_FALSE(st.st_mode & S_ISUID) << text;
  EXPECT_EQ(caps_now(suid_user), std::vector<int>{kNetRaw}) << text;
  EXPECT_EQ(caps_now(changed), (std::vector<int>{kNetRaw, kSysAdmin})) << text;
  EXPECT_NE(text.find("changed since it was observed"), std::string::npos) << text;
  EXPECT_EQ(caps_now(lacking), std::vector<int>{kNetAdmin}) << text;
  EXPECT_EQ(caps_now(in_open), (std::vector<int>{kNetRaw, kSysAdmin})) << text;
  EXPECT_NE(r.err.find("writable by someone other than root"), std::string::npos) << r.err;
}

TEST(SetcapScript, ClosedLoopDaemonScriptAndNobody) {
  CAPAUDIT_REQUIRE_E2E();
  RootDir dir;
  TempDir work;
  std::string prog = dir.file("raw-socket");
  install_copy(workload("raw_socket"), prog, "cap_net_raw,cap_net_admin,cap_sys_admin,cap_dac_override+ep");
  std::string db = work.file("d.db");
  {
    Daemon d(db);
    ASSERT_TRUE(d.wait_ready()) << d.log();
    auto r = run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", prog});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(d.stop(), 0) << d.log();
  }
  std::string script_path = work.file("setcap.sh");
  std::string text = generate(db, script_path);
  auto r = run({"sh", script_path});
  ASSERT_EQ(r.exit_code, 0) << r.err << text;
  EXPECT_EQ(caps_now(prog), std::vector<int>{kNetRaw}) << text;
  auto id = read_file_identity(prog);
  ASSERT_TRUE(id);
  EXPECT_TRUE(id->file_caps_effective);
  EXPECT_EQ(run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", prog}).exit_code, 0)
      << "no longer works as nobody";
}

}  // namespace
}  // namespace capaudit::e2e
