#include "config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace capaudit {
namespace {

namespace fs = std::filesystem;

// The error must name the file, the line and the key, whatever else it says.
void expect_error(const ConfigResult& r, const std::string& file, int line,
                  const std::string& key) {
  EXPECT_FALSE(r.config);
  EXPECT_TRUE(r.error.starts_with(file + ":" + std::to_string(line) + ":")) << r.error;
  if (!key.empty()) {
    EXPECT_NE(r.error.find("key '" + key + "'"), std::string::npos) << r.error;
  }
}

TEST(Config, EmptyObjectGivesDefaults) {
  ConfigResult r = parse_config("{}", "c.json");
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_TRUE(r.error.empty());
  Config d;
  EXPECT_EQ(r.config->database, d.database);
  EXPECT_EQ(r.config->drain_interval_sec, 10u);
  EXPECT_EQ(r.config->attach_method, "auto");
  EXPECT_EQ(r.config->max_stacks, 16384u);
  EXPECT_TRUE(r.config->pin);
  EXPECT_TRUE(r.config->ignore_paths.empty());
}

TEST(Config, ReadsEveryKey) {
  ConfigResult r = parse_config(R"({
    "database": "/tmp/x.db",
    "drain_interval_sec": 3600,
    "attach_method": "tracepoint",
    "max_checks": 1,
    "max_origins": 16777216,
    "max_stacks": 2048,
    "stack_sample_period": 2147483648,
    "log_level": "debug",
    "pin_dir": "/sys/fs/bpf/other",
    "pin": false,
    "retention_days": 30,
    "ignore_paths": ["/usr/lib/systemd/", "/opt/x"],
    "kallsyms": "/tmp/kallsyms"
  })",
                                "c.json");
  ASSERT_TRUE(r.config) << r.error;
  const Config& c = *r.config;
  EXPECT_EQ(c.database, "/tmp/x.db");
  EXPECT_EQ(c.drain_interval_sec, 3600u);
  EXPECT_EQ(c.attach_method, "tracepoint");
  EXPECT_EQ(c.max_checks, 1u);
  EXPECT_EQ(c.max_origins, 16777216u);
  EXPECT_EQ(c.max_stacks, 2048u);
  EXPECT_EQ(c.stack_sample_period, 2147483648u);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.pin_dir, "/sys/fs/bpf/other");
  EXPECT_FALSE(c.pin);
  EXPECT_EQ(c.retention_days, 30u);
  EXPECT_EQ(c.ignore_paths, (std::vector<std::string>{"/usr/lib/systemd/", "/opt/x"}));
  EXPECT_EQ(c.kallsyms, "/tmp/kallsyms");
}

TEST(Config, ShippedDefaultFileMatchesBuiltInDefaults) {
  // From the source tree: CMake passes absolute paths, so __FILE__ locates it.
  fs::path shipped =
      (fs::path(__FILE__).parent_path() / "../../config/capaudit.json").lexically_normal();
  ConfigResult r = load_config(shipped.string());
  ASSERT_TRUE(fs::exists(shipped)) << shipped;
  ASSERT_TRUE(r.config) << r.error;
  const Config& c = *r.config;
  Config d;
  EXPECT_EQ(c.database, d.database);
  EXPECT_EQ(c.drain_interval_sec, d.drain_interval_sec);
  EXPECT_EQ(c.attach_method, d.attach_method);
  EXPECT_EQ(c.max_checks, d.max_checks);
  EXPECT_EQ(c.max_origins, d.max_origins);
  EXPECT_EQ(c.max_stacks, d.max_stacks);
  EXPECT_EQ(c.stack_sample_period, d.stack_sample_period);
  EXPECT_EQ(c.log_level, d.log_level);
  EXPECT_EQ(c.pin_dir, d.pin_dir);
  EXPECT_EQ(c.pin, d.pin);
  EXPECT_EQ(c.retention_days, d.retention_days);
  EXPECT_EQ(c.ignore_paths, d.ignore_paths);
  EXPECT_EQ(c.kallsyms, d.kallsyms);
}

TEST(Config, SyntaxErrorHasLineAndColumn) {
  ConfigResult r = parse_config("{\n  \"pin\": true,\n}\n", "/etc/capaudit.json");
  EXPECT_FALSE(r.config);
  EXPECT_TRUE(r.error.starts_with("/etc/capaudit.json:3:1: syntax error: ")) << r.error;
}

TEST(Config, SyntaxErrorInValue) {
  ConfigResult r = parse_config("{\n  \"log_level\": info\n}", "c.json");
  EXPECT_TRUE(r.error.starts_with("c.json:2:")) << r.error;
  EXPECT_NE(r.error.find("syntax error"), std::string::npos) << r.error;
}

TEST(Config, TruncatedFile) {
  ConfigResult r = parse_config("{\n  \"pin\": true\n", "c.json");
  EXPECT_TRUE(r.error.starts_with("c.json:3:1: syntax error: ")) << r.error;
  r = parse_config("", "c.json");
  EXPECT_TRUE(r.error.starts_with("c.json:1:1: syntax error: ")) << r.error;
}

TEST(Config, CommentsAreSyntaxErrors) {
  ConfigResult r = parse_config("{\n  // no\n  \"pin\": true\n}", "c.json");
  EXPECT_TRUE(r.error.starts_with("c.json:2:")) << r.error;
  EXPECT_NE(r.error.find("syntax error"), std::string::npos) << r.error;
}

TEST(Config, TopLevelMustBeAnObject) {
  ConfigResult r = parse_config("\n[1, 2]", "c.json");
  EXPECT_FALSE(r.config);
  EXPECT_TRUE(r.error.starts_with("c.json:2: ")) << r.error;
  EXPECT_NE(r.error.find("object"), std::string::npos) << r.error;
}

TEST(Config, WrongType) {
  ConfigResult r = parse_config("{\n  \"pin\": true,\n  \"drain_interval_sec\": \"x\"\n}", "c.json");
  expect_error(r, "c.json", 3, "drain_interval_sec");
  EXPECT_EQ(r.error,
            "c.json:3: key 'drain_interval_sec': expected an integer from 1 to 3600, got \"x\"");
}

TEST(Config, OutOfRange) {
  expect_error(parse_config("{\"drain_interval_sec\": 0}", "c.json"), "c.json", 1,
               "drain_interval_sec");
  expect_error(parse_config("{\"drain_interval_sec\": 3601}", "c.json"), "c.json", 1,
               "drain_interval_sec");
  expect_error(parse_config("{\"max_checks\": 16777217}", "c.json"), "c.json", 1, "max_checks");
  expect_error(parse_config("{\"max_stacks\": -1}", "c.json"), "c.json", 1, "max_stacks");
  expect_error(parse_config("{\"stack_sample_period\": 2147483649}", "c.json"), "c.json", 1,
               "stack_sample_period");
  expect_error(parse_config("{\"max_origins\": 1.5}", "c.json"), "c.json", 1, "max_origins");
  expect_error(parse_config("{\"max_origins\": 99999999999999999999}", "c.json"), "c.json", 1,
               "max_origins");
}

TEST(Config, EnumValues) {
  ConfigResult r = parse_config("{\n\n  \"attach_method\": \"fentry\"\n}", "c.json");
  expect_error(r, "c.json", 3, "attach_method");
  EXPECT_NE(r.error.find("\"tracepoint\""), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("got \"fentry\""), std::string::npos) << r.error;
  expect_error(parse_config("{\"log_level\": \"INFO\"}", "c.json"), "c.json", 1, "log_level");
  expect_error(parse_config("{\"log_level\": 3}", "c.json"), "c.json", 1, "log_level");
}

TEST(Config, BoolAndPaths) {
  expect_error(parse_config("{\"pin\": \"yes\"}", "c.json"), "c.json", 1, "pin");
  expect_error(parse_config("{\"pin\": 1}", "c.json"), "c.json", 1, "pin");
  expect_error(parse_config("{\"database\": \"capaudit.db\"}", "c.json"), "c.json", 1,
               "database");
  expect_error(parse_config("{\"kallsyms\": \"\"}", "c.json"), "c.json", 1, "kallsyms");
  expect_error(parse_config("{\"pin_dir\": null}", "c.json"), "c.json", 1, "pin_dir");
}

TEST(Config, IgnorePaths) {
  expect_error(parse_config("{\"ignore_paths\": \"/usr\"}", "c.json"), "c.json", 1,
               "ignore_paths");
  ConfigResult r = parse_config("{\n \"ignore_paths\": [\n  \"/usr\",\n  \"tmp\"\n ]\n}", "c.json");
  expect_error(r, "c.json", 2, "ignore_paths");
  EXPECT_NE(r.error.find("element 1"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("\"tmp\""), std::string::npos) << r.error;
}

TEST(Config, UnknownKeySuggestsSpelling) {
  ConfigResult r =
      parse_config("{\n  \"database\": \"/x.db\",\n  \"drain_intervl_sec\": 5\n}", "c.json");
  expect_error(r, "c.json", 3, "drain_intervl_sec");
  EXPECT_NE(r.error.find("unknown key"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("'drain_interval_sec'"), std::string::npos) << r.error;

  r = parse_config("{\"completely_else\": 5}", "c.json");
  expect_error(r, "c.json", 1, "completely_else");
  EXPECT_EQ(r.error.find("did you mean"), std::string::npos) << r.error;
}

TEST(Config, DuplicateKey) {
  ConfigResult r = parse_config("{\n  \"pin\": true,\n  \"pin\": false\n}", "c.json");
  expect_error(r, "c.json", 3, "pin");
  EXPECT_NE(r.error.find("duplicate"), std::string::npos) << r.error;
}

TEST(Config, KeyLineIgnoresLookalikesInValuesAndNesting) {
  // "pin" appears as a string value and as a nested key before the real key.
  ConfigResult r = parse_config(
      "{\n"
      "  \"database\": \"/pin\",\n"
      "  \"ignore_paths\": [\"/\\\"pin\\\":\"],\n"
      "  \"pin\": 7\n"
      "}",
      "c.json");
  expect_error(r, "c.json", 4, "pin");
}

TEST(Config, FirstErrorInFileOrderIsReported) {
  ConfigResult r = parse_config("{\n \"zzz_unknown\": 1,\n \"aaa_unknown\": 2\n}", "c.json");
  expect_error(r, "c.json", 2, "zzz_unknown");
}

class ConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "config_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(ConfigFile, MissingFileGivesDefaults) {
  ConfigResult r = load_config((dir_ / "absent.json").string());
  ASSERT_TRUE(r.config);
  EXPECT_TRUE(r.error.empty());
  EXPECT_EQ(r.config->drain_interval_sec, Config{}.drain_interval_sec);
}

TEST_F(ConfigFile, ErrorsNameThePath) {
  fs::path path = dir_ / "capaudit.json";
  std::ofstream(path) << "{\n  \"log_level\": \"loud\"\n}\n";
  ConfigResult r = load_config(path.string());
  expect_error(r, path.string(), 2, "log_level");
}

TEST_F(ConfigFile, LoadsValidFile) {
  fs::path path = dir_ / "capaudit.json";
  std::ofstream(path) << "{ \"retention_days\": 90 }\n";
  ConfigResult r = load_config(path.string());
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->retention_days, 90u);
}

TEST_F(ConfigFile, UnreadablePathIsAnError) {
  ConfigResult r = load_config(dir_.string());  // a directory
  EXPECT_FALSE(r.config);
  EXPECT_TRUE(r.error.starts_with(dir_.string() + ": ")) << r.error;
}

// Found by fuzz/fuzz_config: a number no JSON number type holds made the
// parser throw instead of answering with an error.
TEST(Config, NumberTooLargeIsAnErrorNamingTheLine) {
  ConfigResult r = parse_config("{\n  \"max_checks\": 1110038e6111111111\n}\n", "c.json");
  ASSERT_FALSE(r.config);
  EXPECT_TRUE(r.error.starts_with("c.json:2: ")) << r.error;
  EXPECT_NE(r.error.find("out of range"), std::string::npos) << r.error;
}

// Found by fuzz/fuzz_config: after a NUL byte the JSON parser saw the end
// of the text while the key scanner read on, and a key it found threw.
TEST(Config, NulByteIsAnErrorNamingTheLine) {
  std::string text = "{\n }\n";
  text += '\0';
  text += "{\n  \"database\": \"/x.db\"\n}\n";
  ConfigResult r = parse_config(text, "c.json");
  ASSERT_FALSE(r.config);
  EXPECT_TRUE(r.error.starts_with("c.json:3: ")) << r.error;
}

}  // namespace
}  // namespace capaudit
