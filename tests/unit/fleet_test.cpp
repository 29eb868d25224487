// The fleet's file format without a server: what export writes (from the
// engine's decisions and from a real store), that every line reads back
// as written, and that a damaged line is refused saying what is wrong.
#include "cli.h"
#include "commands.h"
#include "fleet.h"
#include "render.h"

#include "store.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace capaudit {
namespace {

using nlohmann::json;

const std::string kShaA(64, 'a');
const std::string kShaB(64, 'b');

Observation binary(const std::string& path, std::optional<std::string> sha, int64_t id) {
  Observation o;
  o.binary.id = id;
  o.binary.key = {2049, static_cast<uint64_t>(id), path, ""};
  o.binary.first_seen = 1000;
  o.binary.last_seen = 2000;
  o.binary.sha256 = std::move(sha);
  return o;
}

void add_check(Observation& o, int cap, bool granted, uint64_t count, const std::string& origin) {
  ObservedCheck c;
  c.row.id = o.binary.id * 100 + static_cast<int64_t>(o.checks.size());
  c.row.binary_id = o.binary.id;
  c.row.f.cap = cap;
  c.row.f.ret = granted ? 0 : -1;
  c.row.f.audit = Audit::Yes;
  c.row.f.uid = c.row.f.euid = 65534;
  c.row.f.target_ns_inum = 4026531837u;
  c.row.count = count;
  c.row.first_seen = 1000;
  c.row.last_seen = 2000;
  OriginRow r;
  r.check_id = c.row.id;
  r.origin = origin;
  r.frames = {"cap_capable+0x83", "security_capable+0x40", "ns_capable+0x12", origin + "+0x2a"};
  r.samples = 1;
  c.origins.push_back(std::move(r));
  o.checks.push_back(std::move(c));
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

TEST(FleetExport, OneLinePerCheckWithTheEnginesDecision) {
  std::vector<Observation> obs;
  obs.push_back(binary("/usr/bin/ping", kShaA, 1));
  add_check(obs.back(), CAP_NET_RAW, true, 7, "inet_create");
  obs.push_back(binary("/usr/bin/gone", std::nullopt, 2));
  obs.back().binary.path_stale = true;
  add_check(obs.back(), CAP_CHOWN, false, 3, "chown_common");
  Observation kthread = binary("", std::nullopt, 3);
  kthread.binary.key.comm = "kworker/0:1";
  add_check(kthread, CAP_SYS_ADMIN, true, 1, "do_mount");
  obs.push_back(std::move(kthread));
  Analysis a = analyze(obs, Rules::builtin());

  std::vector<FleetLine> lines = export_lines(a, "host-1", 5000);
  ASSERT_EQ(lines.size(), 2u) << "kernel threads are not exported";
  // Path order: /usr/bin/gone first.
  EXPECT_EQ(lines[0].path, "/usr/bin/gone");
  EXPECT_FALSE(lines[0].sha256);
  EXPECT_NE(lines[0].no_sha256.find("deleted or replaced"), std::string::npos);
  EXPECT_FALSE(lines[0].granted);
  EXPECT_EQ(lines[1].path, "/usr/bin/ping");
  EXPECT_EQ(lines[1].sha256, kShaA);
  EXPECT_EQ(lines[1].capability, "cap_net_raw");
  EXPECT_EQ(lines[1].count, 7u);
  EXPECT_EQ(lines[1].first_seen, 1000);
  EXPECT_EQ(lines[1].last_seen, 2000);
  const BinaryDecision* ping = nullptr;
  for (const BinaryDecision& b : a.binaries)
    if (b.path == "/usr/bin/ping") ping = &b;
  ASSERT_TRUE(ping);
  EXPECT_EQ(lines[1].required, ping->checks.at(0).required);
  EXPECT_EQ(lines[1].reason, ping->checks.at(0).reason);
  EXPECT_TRUE(lines[1].required) << "a raw socket needs cap_net_raw";

  std::ostringstream out;
  write_export(out, lines);
  std::vector<std::string> text = split_lines(out.str());
  ASSERT_EQ(text.size(), 2u);
  json j = json::parse(text[1]);
  EXPECT_EQ(j["schema"], "capaudit.v1");
  EXPECT_EQ(j["host_id"], "host-1");
  EXPECT_EQ(j["sha256"], kShaA);
  EXPECT_EQ(j["path"], "/usr/bin/ping");
  EXPECT_EQ(j["capability"], "cap_net_raw");
  EXPECT_EQ(j["verdict"], "granted");
  EXPECT_EQ(j["audit"], true);
  EXPECT_EQ(j["count"], 7);
  EXPECT_EQ(j["required"], true);
  EXPECT_TRUE(j["replaced_by"].is_null());
  EXPECT_EQ(text[1].rfind("{\"schema\":\"capaudit.v1\",", 0), 0u) << "the schema comes first: " << text[1];
  EXPECT_TRUE(json::parse(text[0])["sha256"].is_null());
  EXPECT_EQ(json::parse(text[0])["verdict"], "denied");

  for (size_t i = 0; i < lines.size(); i++) {
    FleetLine back;
    std::string err;
    ASSERT_TRUE(parse_fleet_line(text[i], &back, &err)) << err << "\n" << text[i];
    EXPECT_EQ(back, lines[i]) << text[i];
  }
}

// A line as export writes it, with one key changed (or removed: null).
std::string line_with(const std::string& key, const json& value, bool remove = false) {
  json j = {{"schema", "capaudit.v1"}, {"host_id", "h1"}, {"exported_at", 5000}, {"sha256", kShaA},
            {"path", "/usr/bin/ping"}, {"capability", "cap_net_raw"}, {"verdict", "granted"},
            {"audit", nullptr}, {"count", 3}, {"first_seen", 1}, {"last_seen", 2}, {"required", true},
            {"replaced_by", nullptr}, {"reason", "raw socket"}};
  if (remove) j.erase(key);
  else if (!key.empty()) j[key] = value;
  return j.dump();
}

std::string parse_error(const std::string& text) {
  FleetLine l;
  std::string err;
  EXPECT_FALSE(parse_fleet_line(text, &l, &err)) << text;
  return err;
}

TEST(FleetParse, AcceptsWhatExportWritesAndUnknownKeys) {
  FleetLine l;
  std::string err;
  ASSERT_TRUE(parse_fleet_line(line_with("", nullptr), &l, &err)) << err;
  EXPECT_EQ(l.audit, Audit::Unknown);
  EXPECT_EQ(l.count, 3u);
  ASSERT_TRUE(parse_fleet_line(line_with("a_later_key", json::array()), &l, &err)) << err;
  ASSERT_TRUE(parse_fleet_line(line_with("replaced_by", "cap_net_admin"), &l, &err)) << err;
  EXPECT_EQ(l.replaced_by, "cap_net_admin");
}

TEST(FleetParse, RefusesWithWhatIsWrong) {
  EXPECT_EQ(parse_error("{\"schema\": "), "not JSON");
  EXPECT_EQ(parse_error("[1,2]"), "not a JSON object");
  EXPECT_NE(parse_error(line_with("schema", "capaudit.v2")).find("is not capaudit.v1"), std::string::npos);
  EXPECT_EQ(parse_error(line_with("count", nullptr, true)), "missing \"count\"");
  EXPECT_NE(parse_error(line_with("count", -1)).find("\"count\" is not a count"), std::string::npos);
  EXPECT_NE(parse_error(line_with("count", 1.5)).find("\"count\""), std::string::npos);
  EXPECT_NE(parse_error(line_with("count", uint64_t{1} << 63)).find("\"count\""), std::string::npos);
  EXPECT_NE(parse_error(line_with("sha256", "ABC")).find("\"sha256\""), std::string::npos);
  EXPECT_EQ(parse_error(line_with("sha256", nullptr)), "missing \"no_sha256\"");
  EXPECT_NE(parse_error(line_with("verdict", "maybe")).find("\"verdict\""), std::string::npos);
  EXPECT_NE(parse_error(line_with("audit", "yes")).find("\"audit\""), std::string::npos);
  EXPECT_NE(parse_error(line_with("host_id", "two words")).find("\"host_id\""), std::string::npos);
  EXPECT_NE(parse_error(line_with("path", "relative/x")).find("\"path\""), std::string::npos);
  EXPECT_NE(parse_error(line_with("capability", "'; DROP TABLE x; --")).find("\"capability\""), std::string::npos);
  EXPECT_NE(parse_error(line_with("required", "yes")).find("\"required\""), std::string::npos);
  EXPECT_NE(parse_error(line_with("last_seen", "now")).find("\"last_seen\" is not a time"), std::string::npos);
  EXPECT_NE(parse_error(line_with("reason", std::string("a\0b", 3))).find("NUL"), std::string::npos);
}

// export reads a real store: each content of a path is its own version,
// decided on its own, and the output file is written whole, never world-readable.
TEST(FleetExport, FromAStoreOneVersionPerContent) {
  test::TempDir dir;
  std::string db = dir.file("host.db"), out = dir.file("export.ndjson"), err;
  {
    auto store = Store::open(db, &err);
    ASSERT_TRUE(store) << err;
    ASSERT_TRUE(store->begin(&err)) << err;
    for (auto [ino, sha, count] : {std::tuple{10, kShaA, 5}, std::tuple{11, kShaB, 2}}) {
      int64_t id = store->upsert_binary({2049, static_cast<uint64_t>(ino), "/usr/bin/tool", ""}, false, 1000 + ino);
      ASSERT_GT(id, 0) << store->last_error();
      BinaryRow identity;
      identity.sha256 = sha;
      identity.owner_uid = 0;
      identity.owner_gid = 0;
      identity.mode = S_IFREG | 0755;
      identity.file_caps = "";
      ASSERT_TRUE(store->set_binary_identity(id, identity)) << store->last_error();
      CheckFields f;
      f.cap = CAP_NET_RAW;
      f.audit = Audit::Yes;
      f.euid = f.uid = 65534;
      f.target_ns_inum = 4026531837u;
      int64_t check = store->add_check(id, f, count, 1000 + ino);
      ASSERT_GT(check, 0) << store->last_error();
      int64_t stack = store->put_stack({"cap_capable+0x1", "ns_capable+0x2", "inet_create+0x3"}, "inet_create");
      ASSERT_TRUE(store->add_origin(check, stack, 1)) << store->last_error();
    }
    ASSERT_TRUE(store->commit(&err)) << err;
  }
  ExportArgs args;
  args.db = db;
  args.host_id = "web-01";
  args.output = out;
  // 0600 under the unit's UMask=0077; at most 0640 whatever the umask (a
  // shipper's group may read it, others never).
  struct stat st {};
  mode_t saved = umask(0);
  int status = cmd_export(args);
  umask(saved);
  ASSERT_EQ(status, 0);
  ASSERT_EQ(stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  saved = umask(0077);
  status = cmd_export(args);
  umask(saved);
  ASSERT_EQ(status, 0);
  ASSERT_EQ(stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(out);
  std::vector<FleetLine> lines;
  for (std::string text; std::getline(in, text);) {
    FleetLine l;
    ASSERT_TRUE(parse_fleet_line(text, &l, &err)) << err << "\n" << text;
    lines.push_back(l);
  }
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].sha256, kShaA);
  EXPECT_EQ(lines[0].count, 5u);
  EXPECT_EQ(lines[1].sha256, kShaB);
  EXPECT_EQ(lines[1].count, 2u);
  for (const FleetLine& l : lines) {
    EXPECT_EQ(l.host_id, "web-01");
    EXPECT_EQ(l.path, "/usr/bin/tool");
    EXPECT_TRUE(l.required);
  }
}

TEST(FleetCli, ParsesExportAndFleetCommands) {
  std::ostringstream out, err;
  auto parse = [&](std::vector<const char*> argv) {
    argv.insert(argv.begin(), "capaudit");
    return parse_cli(static_cast<int>(argv.size()), argv.data(), out, err);
  };
  auto e = parse({"export", "--db", "x.db", "--host-id", "h1", "--output", "f"});
  ASSERT_TRUE(std::holds_alternative<ExportArgs>(e));
  EXPECT_EQ(std::get<ExportArgs>(e).host_id, "h1");
  auto l = parse({"fleet", "load", "--postgres", "host=/tmp", "a", "b"});
  ASSERT_TRUE(std::holds_alternative<FleetLoadArgs>(l));
  EXPECT_EQ(std::get<FleetLoadArgs>(l).files, (std::vector<std::string>{"a", "b"}));
  auto r = parse({"fleet", "recommend", "--postgres", "host=/tmp", "--sha256", kShaA.c_str(), "--json"});
  ASSERT_TRUE(std::holds_alternative<FleetRecommendArgs>(r));
  EXPECT_TRUE(std::get<FleetRecommendArgs>(r).json);
  EXPECT_EQ(std::get<FleetRecommendArgs>(r).sha256, kShaA);
  auto o = parse({"fleet", "outliers", "--postgres", "host=/tmp"});
  ASSERT_TRUE(std::holds_alternative<FleetOutliersArgs>(o));

  EXPECT_EQ(std::get<int>(parse({"fleet", "outliers"})), 2);
  EXPECT_NE(err.str().find("--postgres"), std::string::npos) << err.str();
  EXPECT_EQ(std::get<int>(parse({"fleet", "recommend", "--postgres", "x", "--sha256", "XYZ"})), 2);
  EXPECT_EQ(std::get<int>(parse({"export", "--host-id", "a b"})), 2);
  EXPECT_EQ(std::get<int>(parse({"fleet"})), 2);
}

}  // namespace
}  // namespace capaudit
