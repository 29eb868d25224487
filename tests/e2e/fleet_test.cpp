// The fleet on a real PostgreSQL (a private server on a Unix socket, one
// per suite, as docs in shared/MACHINE.md say): host databases written by
// capaudit's own store (and one by a real `capaudit profile --db` run),
// exported with the real binary, loaded, and the answers read as a user
// reads them.
#include "e2e_util.h"
#include "private_postgres.h"

#include "store.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace capaudit::e2e {
namespace {

using nlohmann::json;

const std::string kShaA(64, 'a'), kShaB(64, 'b'), kShaC(64, 'c');

struct Check {
  int cap;
  std::vector<std::string> stack;  // after the check machinery
  uint64_t count;
};
struct Binary {
  std::string path, sha256;
  std::vector<Check> checks;
};

// An audited check by nobody in the initial user namespace, as the daemon stores it.
CheckFields host_check(int cap) {
  CheckFields f;
  f.cap = cap;
  f.audit = Audit::Yes;
  f.uid = f.euid = 65534;
  f.target_ns_inum = 4026531837u;
  return f;
}

// A host database as capauditd writes it, through the store.
void write_host(const std::string& db, const std::vector<Binary>& binaries, int64_t now) {
  std::string err;
  auto store = Store::open(db, &err);
  ASSERT_TRUE(store) << err;
  ASSERT_TRUE(store->begin(&err)) << err;
  uint64_t ino = 100;
  for (const Binary& b : binaries) {
    int64_t id = store->upsert_binary({2049, ino++, b.path, ""}, false, now);
    ASSERT_GT(id, 0) << store->last_error();
    BinaryRow identity;
    identity.sha256 = b.sha256;
    identity.owner_uid = 0;
    identity.owner_gid = 0;
    identity.mode = S_IFREG | 0755;
    identity.file_caps = "";
    ASSERT_TRUE(store->set_binary_identity(id, identity)) << store->last_error();
    for (const Check& c : b.checks) {
      int64_t check = store->add_check(id, host_check(c.cap), c.count, now);
      ASSERT_GT(check, 0) << store->last_error();
      std::vector<std::string> frames{"cap_capable+0x83", "security_capable+0x40", "ns_capable+0x12"};
      for (const std::string& fn : c.stack) frames.push_back(fn + "+0x2a");
      int64_t stack = store->put_stack(frames, c.stack.front());
      ASSERT_TRUE(store->add_origin(check, stack, 1)) << store->last_error();
    }
  }
  ASSERT_TRUE(store->commit(&err)) << err;
}

// The host counts on: `count` more cap_net_raw checks by `path` at `now`.
void count_on(const std::string& db, const std::string& path, uint64_t count, int64_t now) {
  std::string err;
  auto store = Store::open(db, &err);
  ASSERT_TRUE(store) << err;
  ASSERT_TRUE(store->begin(&err)) << err;
  ASSERT_GT(store->add_check(store->binaries(path).at(0).id, host_check(CAP_NET_RAW), count, now), 0);
  ASSERT_TRUE(store->commit(&err)) << err;
}

const Check kRaw{CAP_NET_RAW, {"inet_create", "__sock_create", "__sys_socket"}, 1};
const Check kDac{CAP_DAC_OVERRIDE, {"generic_permission", "may_create"}, 1};

Check with_count(Check c, uint64_t n) {
  c.count = n;
  return c;
}

class FleetPostgres : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pg_ = new PrivatePostgres(); }
  static void TearDownTestSuite() {
    delete pg_;
    pg_ = nullptr;
  }

  void SetUp() override {
    CAPAUDIT_REQUIRE_E2E();
    ASSERT_TRUE(pg_ && pg_->started()) << "the private PostgreSQL did not start: " << (pg_ ? pg_->why() : "");
    // A database per test: each starts from an empty fleet.
    std::string err;
    db_ = pg_->create_database(::testing::UnitTest::GetInstance()->current_test_info()->name(), &err);
    ASSERT_FALSE(db_.empty()) << err;
  }

  ProcessResult capaudit(std::vector<std::string> args, const std::string& in = "") {
    args.insert(args.begin(), capaudit_bin());
    return run(args, in);
  }
  std::string export_host(const std::string& db, const std::string& host, const std::string& file) {
    ProcessResult r = capaudit({"export", "--db", db, "--host-id", host, "--output", file});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return file;
  }
  json fleet_json(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"fleet"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--postgres", db_, "--json"});
    ProcessResult r = capaudit(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out, nullptr, false);
  }
  static const json* version(const json& rec, const std::string& sha) {
    for (const json& b : rec["binaries"])
      if (b["sha256"] == sha) return &b;
    return nullptr;
  }
  static const json* check(const json& b, const std::string& cap) {
    for (const json& c : b["checks"])
      if (c["capability"] == cap) return &c;
    return nullptr;
  }

  static inline PrivatePostgres* pg_ = nullptr;
  std::string db_;
  TempDir tmp_;
};

// 50 hosts: ping (one version) everywhere, cap_dac_override on two of them
// only (the outlier); tool in two versions that need different sets.
std::vector<Binary> host_binaries(int i, uint64_t ping_count) {
  Binary ping{"/usr/bin/ping", kShaA, {with_count(kRaw, ping_count)}};
  if (i < 2) ping.checks.push_back(kDac);
  Binary tool = i < 30 ? Binary{"/usr/bin/tool", kShaB, {kRaw}} : Binary{"/usr/bin/tool", kShaC, {kDac}};
  return {ping, tool};
}

std::string host_name(int i) { return "host-" + std::string(i < 10 ? "0" : "") + std::to_string(i); }

TEST_F(FleetPostgres, FiftyHostsRecommendOutliersAndCountingOnce) {
  std::vector<std::string> files;
  for (int i = 0; i < 50; i++) {
    std::string db = tmp_.file(host_name(i) + ".db");
    write_host(db, host_binaries(i, static_cast<uint64_t>(i + 1)), 1000 + i);
    files.push_back(export_host(db, host_name(i), tmp_.file(host_name(i) + ".ndjson")));
  }
  // One host profiled for real: the kernel's own checks of a raw socket.
  std::string real_db = tmp_.file("real.db");
  ProfileRun p = profile_as_nobody(tmp_, {workload("raw_socket")}, {"--db", real_db});
  ASSERT_EQ(p.run.exit_code, 0) << p.run.err;
  files.push_back(export_host(real_db, "real-host", tmp_.file("real.ndjson")));

  std::vector<std::string> load{"fleet", "load", "--postgres", db_};
  load.insert(load.end(), files.begin(), files.end());
  ProcessResult r = capaudit(load);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");

  json rec = fleet_json({"recommend"});
  const json* ping = version(rec, kShaA);
  ASSERT_TRUE(ping) << rec.dump(2);
  EXPECT_EQ((*ping)["path"], "/usr/bin/ping");
  EXPECT_EQ((*ping)["hosts"], 50);
  EXPECT_EQ((*ping)["capabilities"], json({"cap_dac_override", "cap_net_raw"}));
  EXPECT_EQ((*ping)["setcap"], "cap_dac_override,cap_net_raw+ep");
  ASSERT_TRUE(check(*ping, "cap_net_raw"));
  EXPECT_EQ((*check(*ping, "cap_net_raw"))["count"], 50 * 51 / 2);
  EXPECT_EQ((*check(*ping, "cap_net_raw"))["hosts"], 50);
  EXPECT_EQ((*check(*ping, "cap_net_raw"))["verdict"], "granted");
  EXPECT_EQ((*check(*ping, "cap_net_raw"))["required"], true);
  ASSERT_TRUE(check(*ping, "cap_dac_override"));
  EXPECT_EQ((*check(*ping, "cap_dac_override"))["hosts"], 2);
  EXPECT_EQ((*check(*ping, "cap_dac_override"))["required_hosts"], 2);
  const json* tool_b = version(rec, kShaB);
  const json* tool_c = version(rec, kShaC);
  ASSERT_TRUE(tool_b && tool_c) << rec.dump(2);
  EXPECT_EQ((*tool_b)["hosts"], 30);
  EXPECT_EQ((*tool_b)["capabilities"], json({"cap_net_raw"}));
  EXPECT_EQ((*tool_c)["hosts"], 20);
  EXPECT_EQ((*tool_c)["capabilities"], json({"cap_dac_override"}));
  const json* real = find_binary(rec, real_path(workload("raw_socket")));
  ASSERT_TRUE(real) << rec.dump(2);
  EXPECT_EQ((*real)["hosts"], 1);
  EXPECT_EQ((*real)["capabilities"], json({"cap_net_raw"}));
  EXPECT_EQ(rec["binaries"].size(), 4u);

  json only = fleet_json({"recommend", "--binary", "/usr/bin/tool"});
  EXPECT_EQ(only["binaries"].size(), 2u);
  only = fleet_json({"recommend", "--sha256", kShaC});
  ASSERT_EQ(only["binaries"].size(), 1u);
  EXPECT_EQ(only["binaries"][0]["hosts"], 20);

  json out = fleet_json({"outliers"});
  json expected = {{"outliers",
                    {{{"path", "/usr/bin/ping"},
                      {"sha256", kShaA},
                      {"capability", "cap_dac_override"},
                      {"hosts", {"host-00", "host-01"}},
                      {"of_hosts", 50}}}}};
  EXPECT_EQ(out, expected) << out.dump(2);

  // Twice: nothing changes.
  r = capaudit(load);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(fleet_json({"recommend"}), rec);

  // host-00 counts on; its newer export, then its older one again.
  std::string db0 = tmp_.file("host-00.db");
  count_on(db0, "/usr/bin/ping", 100, 5000);
  std::string newer = export_host(db0, "host-00", tmp_.file("host-00.newer.ndjson"));
  for (const std::string& f : {newer, files[0], newer, files[0]}) {
    r = capaudit({"fleet", "load", "--postgres", db_, f});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  json after = fleet_json({"recommend", "--sha256", kShaA});
  EXPECT_EQ((*check(after["binaries"][0], "cap_net_raw"))["count"], 50 * 51 / 2 + 100);
  EXPECT_EQ(after["binaries"][0]["hosts"], 50);
}

TEST_F(FleetPostgres, BadLineRefusesItsFileWholeAndKeepsTheOthers) {
  std::string db = tmp_.file("good.db");
  write_host(db, {{"/usr/bin/ping", kShaA, {kRaw}}}, 1000);
  std::string good = export_host(db, "good-host", tmp_.file("good.ndjson"));
  // A file whose first line is good and whose second is not.
  std::string first;
  {
    std::ifstream in(good);
    std::getline(in, first);
  }
  std::string bad_first = first;
  bad_first.replace(bad_first.find("good-host"), 9, "bad-host");
  std::string bad = tmp_.file("bad.ndjson");
  std::ofstream(bad) << bad_first << "\n{\"schema\": \"capaudit.v1\", \"host_id\": 7}\n";

  ProcessResult r = capaudit({"fleet", "load", "--postgres", db_, good, bad});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(bad + ":2: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("host_id"), std::string::npos) << r.err;
  json rec = fleet_json({"recommend"});
  ASSERT_EQ(rec["binaries"].size(), 1u) << rec.dump(2);
  EXPECT_EQ(rec["binaries"][0]["hosts"], 1) << "bad-host's good first line was not kept";

  // Standard input, same rule.
  r = capaudit({"fleet", "load", "--postgres", db_}, bad_first + "\nnot json\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("standard input:2: not JSON"), std::string::npos) << r.err;
  EXPECT_EQ(fleet_json({"recommend"})["binaries"][0]["hosts"], 1);
}

// A shipper may hand over several nights of one host in one batch: the
// newest snapshot of each key wins whatever their order, as if the lines
// were loaded one by one. Loading goes through COPY: a path holding the
// characters COPY's text format escapes comes back byte for byte.
TEST_F(FleetPostgres, OneInputHoldingANewerAndAnOlderNightKeepsTheNewer) {
  const std::string odd = "/opt/odd\tpath\\with\nbreaks/ping";
  std::string db = tmp_.file("host.db");
  write_host(db, {{"/usr/bin/ping", kShaA, {with_count(kRaw, 5)}}, {odd, kShaB, {kDac}}}, 1000);
  const std::string older = read_file(export_host(db, "host-a", tmp_.file("older.ndjson")));
  count_on(db, "/usr/bin/ping", 7, 3000);
  const std::string newer = read_file(export_host(db, "host-a", tmp_.file("newer.ndjson")));
  ASSERT_NE(older, newer);
  for (const std::string& batch : {newer + older, older + newer}) {
    ProcessResult r = capaudit({"fleet", "load", "--postgres", db_}, batch);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json rec = fleet_json({"recommend", "--sha256", kShaA});
    ASSERT_EQ(rec["binaries"].size(), 1u) << rec.dump(2);
    EXPECT_EQ((*check(rec["binaries"][0], "cap_net_raw"))["count"], 12);
    EXPECT_EQ(rec["binaries"][0]["hosts"], 1);
  }
  json rec = fleet_json({"recommend", "--sha256", kShaB});
  ASSERT_EQ(rec["binaries"].size(), 1u) << rec.dump(2);
  EXPECT_EQ(rec["binaries"][0]["path"], odd);
  EXPECT_EQ(fleet_json({"recommend", "--binary", odd})["binaries"].size(), 1u);
}

TEST_F(FleetPostgres, PasswordNeverShownAndEmptyFleetSaysSo) {
  ProcessResult r = capaudit({"fleet", "load", "--postgres",
                              "host=" + tmp_.path() + " dbname=x user=capaudit password=s3cr3t-pw"},
                             "");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot connect to PostgreSQL"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("s3cr3t-pw"), std::string::npos) << r.err;
  r = capaudit({"fleet", "recommend", "--postgres", "host=x password s3cr3t-pw"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.find("s3cr3t-pw"), std::string::npos) << r.err;
  r = capaudit({"fleet", "outliers", "--postgres", db_, "--json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no fleet data"), std::string::npos) << r.err;
  // An empty load creates the schema; then the answers are empty, not errors.
  r = capaudit({"fleet", "load", "--postgres", db_}, "");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(fleet_json({"outliers"}), json::parse(R"({"outliers": []})"));
  EXPECT_EQ(fleet_json({"recommend"}), json::parse(R"({"binaries": []})"));
}

}  // namespace
}  // namespace capaudit::e2e
