#include "commands.h"

#include "capnames.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <linux/capability.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace capaudit {
namespace {


RecommendArgs recommend_args(const std::string& db, RecommendFormat format) {
  RecommendArgs a;
  a.db = db;
  a.format = format;
  return a;
}

ReportArgs report_args(const std::string& db, const std::string& binary, bool json) {
  ReportArgs a;
  a.db = db;
  a.binary = binary;
  a.json = json;
  return a;
}

TEST(QuoteForDisplay, PlainPathsStayAsTheyAre) {
  EXPECT_EQ(quote_for_display("/usr/bin/ping"), "/usr/bin/ping");
  EXPECT_EQ(quote_for_display("/opt/app-1.2/bin/x_y+z"), "/opt/app-1.2/bin/x_y+z");
}

TEST(QuoteForDisplay, HostileNamesAreQuoted) {
  EXPECT_EQ(quote_for_display("/tmp/$(rm -rf ~)"), "'/tmp/$(rm -rf ~)'");
  EXPECT_EQ(quote_for_display("/tmp/`id`"), "'/tmp/`id`'");
  EXPECT_EQ(quote_for_display("/tmp/my prog"), "'/tmp/my prog'");
  EXPECT_EQ(quote_for_display("-rf"), "'-rf'");
  EXPECT_EQ(quote_for_display("it's"), "'it'\\''s'");
  EXPECT_EQ(quote_for_display(""), "''");
  EXPECT_EQ(quote_for_display("/tmp/a;b|c&d>e"), "'/tmp/a;b|c&d>e'");
}

TEST(QuoteForDisplay, ControlCharactersAreEscaped) {
  EXPECT_EQ(quote_for_display("/tmp/a\nb"), "$'/tmp/a\\x0ab'");
  EXPECT_EQ(quote_for_display("/tmp/\x1b[31mred"), "$'/tmp/\\x1b[31mred'");
  EXPECT_EQ(quote_for_display(std::string("/tmp/a\0b", 8)), "$'/tmp/a\\x00b'");
  EXPECT_EQ(quote_for_display("/tmp/\xff\xfe"), "$'/tmp/\\xff\\xfe'");
  EXPECT_EQ(quote_for_display("a'b\\\r"), "$'a\\'b\\\\\\x0d'");
  EXPECT_EQ(quote_for_display("\x7f"), "$'\\x7f'");
}

TEST(QuoteForDisplay, NothingRawReachesTheTerminal) {
  for (int c = 0; c < 256; ++c) {
    std::string s = "/x" + std::string(1, static_cast<char>(c)) + "y";
    for (unsigned char out : quote_for_display(s)) {
      EXPECT_TRUE(out >= 0x20 && out < 0x7f) << "byte " << c;
    }
  }
}

TEST(EscapeForDisplay, EscapesWithoutQuoting) {
  EXPECT_EQ(escape_for_display("no rule for origin a\nb"), "no rule for origin a\\x0ab");
  EXPECT_EQ(escape_for_display("plain text, kept"), "plain text, kept");
}

struct Fixture {
  std::vector<Observation> obs;
  Analysis a;
};

Fixture sample(const std::string& path) {
  Fixture f;
  Observation o;
  o.binary.id = 1;
  o.binary.key.path = path;
  o.binary.last_seen = 1700000000;
  ObservedCheck raw;
  raw.row.f.cap = CAP_NET_RAW;
  raw.row.f.audit = Audit::Yes;
  raw.row.f.euid = 65534;
  raw.row.f.uid = 65534;
  raw.row.count = 3;
  raw.row.first_seen = 1700000000;
  raw.row.last_seen = 1700000100;
  raw.origins.push_back({0, 1, "inet_create", {"cap_capable+0x1", "ns_capable+0x2", "inet_create+0x3"}, 3});
  o.checks.push_back(raw);
  ObservedCheck vm;
  vm.row.f.cap = CAP_SYS_ADMIN;
  vm.row.f.euid = 65534;
  vm.row.count = 120;
  vm.origins.push_back({0, 2, "security_vm_enough_memory_mm", {"security_vm_enough_memory_mm+0x36"}, 1});
  o.checks.push_back(vm);
  f.obs.push_back(o);
  f.a = analyze(f.obs, Rules::builtin());
  return f;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(ReportTable, ColumnsAreAligned) {
  Fixture f = sample("/usr/bin/ping");
  std::ostringstream out;
  print_report_table(out, f.a);
  auto lines = lines_of(out.str());
  size_t header = 0;
  while (header < lines.size() && lines[header].find("CAPABILITY") == std::string::npos) ++header;
  ASSERT_LT(header + 2, lines.size()) << out.str();
  for (const char* col : {"VERDICT", "AUDIT", "REQUIRED", "UIDS", "ORIGINS", "REASON"}) {
    size_t at = lines[header].find(col);
    ASSERT_NE(at, std::string::npos) << col;
    // The cell under each header starts where the header does, after a gap.
    for (size_t row = header + 1; row <= header + 2; ++row) {
      EXPECT_EQ(lines[row][at - 1], ' ') << col << "\n" << out.str();
      EXPECT_NE(lines[row][at], ' ') << col << "\n" << out.str();
    }
  }
  // COUNT is right-aligned: the numbers end where the header ends.
  size_t count_end = lines[header].find("COUNT") + 4;
  EXPECT_EQ(lines[header + 1][count_end], '3');
  EXPECT_EQ(lines[header + 2][count_end], '0');
  EXPECT_NE(out.str().find("recommended: cap_net_raw  (setcap cap_net_raw+ep)"), std::string::npos) << out.str();
}

// The kernel's counts map was full: some checks were counted at the coarse
// key. The table says which detail they lost, once for the binary, as the
// JSON says it per check.
TEST(ReportTable, SaysWhichDetailCoarseChecksLost) {
  Fixture f = sample("/usr/bin/chowner");
  ObservedCheck exact;
  exact.row.f.cap = CAP_CHOWN;
  exact.row.f.uid = exact.row.f.euid = 0;
  exact.row.count = 5;
  ObservedCheck coarse = exact;
  coarse.row.f.uid = coarse.row.f.euid = UINT32_MAX;
  coarse.row.f.coarse = true;
  coarse.row.count = 7000;
  ObservedCheck coarse_only;  // a line whose every check lost its credential
  coarse_only.row.f = coarse.row.f;
  coarse_only.row.f.cap = CAP_FOWNER;
  coarse_only.row.count = 2;
  f.obs[0].checks = {exact, coarse, coarse_only};
  f.a = analyze(f.obs, Rules::builtin());
  for (bool report : {true, false}) {
    std::ostringstream out;
    if (report) print_report_table(out, f.a);
    else print_recommend_table(out, f.a);
    const std::string text = out.str();
    EXPECT_NE(text.find("\n  detail lost: the kernel's counts map was full: 7002 checks counted without their uid, "
                        "euid, cgroup, namespace, syscall, effective set (cap_chown granted 7000 of 7005, "
                        "cap_fowner granted 2 of 2)\n"),
              std::string::npos)
        << text;
    // No uid is known for cap_fowner's line: the cells say so, not blank.
    bool seen = false;
    for (const std::string& line : lines_of(text)) {
      if (line.find("cap_fowner") != 2) continue;
      seen = true;
      std::istringstream cells(line);
      std::vector<std::string> c;
      for (std::string w; cells >> w;) c.push_back(w);
      ASSERT_GE(c.size(), 7u) << line;
      EXPECT_EQ(c[5], "-") << line;  // UIDS
      EXPECT_EQ(c[6], "-") << line;  // EUIDS
    }
    EXPECT_TRUE(seen) << text;
  }
  // Without coarse checks there is no such line.
  std::ostringstream plain;
  print_report_table(plain, sample("/usr/bin/ping").a);
  EXPECT_EQ(plain.str().find("detail lost"), std::string::npos) << plain.str();
}

TEST(ReportTable, HostilePathIsQuotedInTheHeader) {
  Fixture f = sample("/tmp/evil\n\x1b]0;owned\x07 $(rm -rf ~)");
  std::ostringstream out;
  print_recommend_table(out, f.a);
  std::string text = out.str();
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_EQ(text.find('\x07'), std::string::npos);
  EXPECT_EQ(lines_of(text)[0], "$'/tmp/evil\\x0a\\x1b]0;owned\\x07 $(rm -rf ~)'");
}

TEST(ReportJson, InvalidUtf8PathDoesNotThrow) {
  Fixture f = sample("/tmp/\xff\xfe");
  std::string text;
  EXPECT_NO_THROW(text = to_json(f.a).dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  auto j = nlohmann::json::parse(text);
  const auto& b = j["binaries"][0];
  for (const char* key : {"path", "capabilities", "setcap", "checks", "warnings", "held", "file_caps", "setuid"})
    EXPECT_TRUE(b.contains(key)) << key;
  for (const char* key : {"capability", "verdict", "audit", "count", "required", "reason", "origins", "uids", "euids",
                          "first_seen", "last_seen"})
    EXPECT_TRUE(b["checks"][0].contains(key)) << key;
}

// The commands against a real (temporary) database.
class Commands : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = dir_.file("capaudit.db");
    std::string err;
    auto store = Store::open(db_, &err);
    ASSERT_TRUE(store) << err;
    ASSERT_TRUE(store->begin(&err)) << err;
    BinaryKey key{2049, 42, "/usr/bin/ping", ""};
    int64_t bin = store->upsert_binary(key, false, 1700000000);
    ASSERT_NE(bin, 0);
    CheckFields f;
    f.cap = CAP_NET_RAW;
    f.uid = f.euid = 65534;
    int64_t check = store->add_check(bin, f, 2, 1700000000);
    ASSERT_NE(check, 0);
    int64_t stack = store->put_stack({"cap_capable+0x83", "ns_capable+0x10", "inet_create+0x44"}, "inet_create");
    ASSERT_NE(stack, 0);
    ASSERT_TRUE(store->add_origin(check, stack, 1));
    ASSERT_TRUE(store->commit(&err)) << err;
  }

  int capture(const std::function<int()>& fn, std::string* out, std::string* err) {
    std::ostringstream o, e;
    auto* old_out = std::cout.rdbuf(o.rdbuf());
    auto* old_err = std::cerr.rdbuf(e.rdbuf());
    int rc = fn();
    std::cout.rdbuf(old_out);
    std::cerr.rdbuf(old_err);
    *out = o.str();
    *err = e.str();
    return rc;
  }

  test::TempDir dir_;
  std::string db_;
};

TEST_F(Commands, RecommendJson) {
  std::string out, err;
  int rc = capture([&] { return cmd_recommend(recommend_args(db_, RecommendFormat::Json)); }, &out, &err);
  ASSERT_EQ(rc, 0) << err;
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["binaries"][0]["path"], "/usr/bin/ping");
  EXPECT_EQ(j["binaries"][0]["capabilities"], nlohmann::json::array({"cap_net_raw"}));
  EXPECT_EQ(j["binaries"][0]["checks"][0]["count"], 2);
}

TEST_F(Commands, ReportTable) {
  std::string out, err;
  int rc = capture([&] { return cmd_report(report_args(db_, "/usr/bin/ping", false)); }, &out, &err);
  ASSERT_EQ(rc, 0) << err;
  EXPECT_NE(out.find("cap_net_raw"), std::string::npos) << out;
  EXPECT_NE(out.find("inet_create"), std::string::npos) << out;
}

TEST_F(Commands, UnknownBinaryIsAClearError) {
  std::string out, err;
  int rc = capture([&] { return cmd_report(report_args(db_, "/usr/bin/nothing-here", true)); }, &out, &err);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(err.find("no checks recorded for binary /usr/bin/nothing-here"), std::string::npos) << err;
}

TEST_F(Commands, MissingDatabaseNamesIt) {
  std::string out, err;
  std::string missing = dir_.file("absent.db");
  int rc = capture([&] { return cmd_recommend(recommend_args(missing, RecommendFormat::Table)); }, &out, &err);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(err.find(missing), std::string::npos) << err;
}

TEST_F(Commands, FilesListsSetidFilesWithoutFollowingSymlinks) {
  test::TempDir tree;
  auto make = [&](const std::string& name, mode_t mode) {
    std::string path = tree.file(name);
    std::ofstream(path) << "#!/bin/sh\n";
    ASSERT_EQ(chmod(path.c_str(), mode), 0) << path;
  };
  std::filesystem::create_directory(tree.path() / "sub");
  make("suid", 04755);
  make("plain", 0755);
  make("sub/sgid", 02755);
  std::filesystem::create_directory_symlink(tree.path() / "sub", tree.path() / "link-to-sub");
  std::string out, err;
  int rc = capture([&] { return cmd_files({{tree.path().string()}, true, db_}); }, &out, &err);
  ASSERT_EQ(rc, 0) << err;
  auto j = nlohmann::json::parse(out);
  std::vector<std::string> paths;
  for (const auto& f : j["files"]) paths.push_back(f["path"]);
  EXPECT_EQ(paths, (std::vector<std::string>{tree.file("sub/sgid"), tree.file("suid")}));
  EXPECT_EQ(j["files"][1]["setuid"], true);
  EXPECT_EQ(j["files"][1]["mode_text"], "-rwsr-xr-x");
  EXPECT_EQ(j["files"][0]["setgid"], true);
  // The database saw neither file.
  EXPECT_EQ(j["database"], db_);
  EXPECT_TRUE(j["files"][0]["observed"].is_null());
}

TEST_F(Commands, FilesWithMissingDirectoryFails) {
  std::string out, err;
  int rc = capture([&] { return cmd_files({{dir_.file("absent")}, false, db_}); }, &out, &err);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(err.find("absent"), std::string::npos) << err;
}

// The verification object is written and read back through one
// to_json/from_json pair (render_json.cpp), as the database keeps it.
TEST(VerificationJson, RoundTripsAndRefusesWhatItNeverWrites) {
  VerificationInfo v;
  v.runs = 3;
  v.baseline_ok = true;
  v.created = 1764600000;
  v.observed = {CAP_DAC_OVERRIDE, CAP_NET_RAW};
  v.capabilities = {{CAP_NET_RAW, Verification::ConfirmedNeeded, 1, "failed without it", std::nullopt},
                    {CAP_DAC_OVERRIDE, Verification::DroppedByRun, 2, "narrower did", CAP_DAC_READ_SEARCH}};
  nlohmann::json j = v;
  EXPECT_EQ(j["observed"], nlohmann::json::array({"cap_dac_override", "cap_net_raw"}));
  EXPECT_EQ(j["capabilities"][1]["replaced_by"], "cap_dac_read_search");
  EXPECT_TRUE(j["note"].is_null());
  VerificationInfo back = j.get<VerificationInfo>();
  EXPECT_EQ(nlohmann::json(back), j);
  EXPECT_EQ(back.capabilities[1].replaced_by, CAP_DAC_READ_SEARCH);

  std::string err;
  VerificationInfo out;
  EXPECT_FALSE(verification_from_json(nlohmann::json::array(), &out, &err, "verified set 7"));
  EXPECT_EQ(err, "verified set 7 is malformed");
  j["observed"].push_back("cap_frobnicate");
  EXPECT_FALSE(verification_from_json(j, &out, &err));
  EXPECT_EQ(err, "unknown capability \"cap_frobnicate\"");
  EXPECT_THROW(j.get<VerificationInfo>(), nlohmann::json::exception);
}

}  // namespace
}  // namespace capaudit
