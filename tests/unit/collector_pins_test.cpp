// The collector's parts that need no root and no BPF: the config hash that
// decides whether a pinned link may be adopted, the pin names, the bpffs
// check, method names, errno text and where libbpf's messages go.
#include "collector.h"
#include "libbpf_log.h"
#include "pins.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <functional>
#include <set>
#include <sstream>

namespace capaudit {
namespace {

TEST(CollectorConfigHash, ChangesWithEverySettingBakedIntoTheProgram) {
  const CollectorOptions base;
  const uint64_t h = config_hash(base, AttachMethod::Tracepoint, false);
  EXPECT_EQ(h, config_hash(base, AttachMethod::Tracepoint, false)) << "deterministic";

  const std::vector<std::pair<const char*, std::function<void(CollectorOptions&)>>> changes = {
      {"follow_tracked", [](CollectorOptions& o) { o.follow_tracked = true; }},
      {"only_tgid", [](CollectorOptions& o) { o.only_tgid = 42; }},
      {"stream_checks", [](CollectorOptions& o) { o.stream_checks = true; }},
      {"stream_kernel_stacks", [](CollectorOptions& o) { o.stream_kernel_stacks = true; }},
      {"stream_user_stacks", [](CollectorOptions& o) { o.stream_user_stacks = true; }},
      {"stack_sample_period", [](CollectorOptions& o) { o.stack_sample_period = 512; }},
  };
  for (const auto& [name, change] : changes) {
    CollectorOptions o;
    change(o);
    EXPECT_NE(config_hash(o, AttachMethod::Tracepoint, false), h) << name;
  }
  EXPECT_NE(config_hash(base, AttachMethod::Fexit, false), h);
  EXPECT_NE(config_hash(base, AttachMethod::Kprobe, false), h);
  EXPECT_NE(config_hash(base, AttachMethod::Tracepoint, true), h) << "old audit argument";
}

TEST(CollectorConfigHash, IgnoresWhatThePinnedMapsOrTheCallerDecide) {
  // Map sizes come with the adopted maps; the pin directory and a forced
  // method do not change the program.
  const CollectorOptions base;
  CollectorOptions o;
  o.max_checks = 7;
  o.max_origins = 8;
  o.max_stacks = 9;
  o.pin_dir = "/sys/fs/bpf/elsewhere";
  o.forced_method = AttachMethod::Tracepoint;
  EXPECT_EQ(config_hash(o, AttachMethod::Tracepoint, false),
            config_hash(base, AttachMethod::Tracepoint, false));
}

TEST(CollectorPins, NamesAreDistinctAndCoverMapsAndEveryMethodsLinks) {
  const auto names = all_pin_names();
  const std::set<std::string> unique(names.begin(), names.end());
  EXPECT_EQ(unique.size(), names.size());
  for (const char* m : kPinnedMaps) EXPECT_TRUE(unique.count(m)) << m;
  EXPECT_TRUE(unique.count(kExecLinkPin));
  for (AttachMethod m : kMethodPreference)
    for (const auto& l : link_pin_names(m)) EXPECT_TRUE(unique.count(l)) << l;
  EXPECT_EQ(link_pin_names(AttachMethod::Kprobe).size(), 2u) << "kprobe and kretprobe";
  for (const auto& n : names) EXPECT_EQ(n.find('.'), std::string::npos) << "bpffs refuses '.'";
}

TEST(CollectorPins, DirectoryOffBpffsIsRefusedNamingIt) {
  test::TempDir dir;
  const std::string pins = dir.file("pins");
  try {
    prepare_pins(pins);
    FAIL() << "prepare_pins accepted " << pins;
  } catch (const CollectorError& e) {
    EXPECT_NE(std::string(e.what()).find(pins), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not on a bpf filesystem"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(pins)) << "nothing created off bpffs";
}

TEST(CollectorMethods, NamesRoundTrip) {
  for (AttachMethod m : kMethodPreference) EXPECT_EQ(parse_method(method_name(m)), m);
  EXPECT_FALSE(parse_method("auto"));
  EXPECT_FALSE(parse_method("fentry"));
  EXPECT_FALSE(parse_method(""));
}

TEST(CollectorErrno, TextNamesTheErrno) {
  EXPECT_EQ(errno_text(EPERM), "Operation not permitted (EPERM)");
  EXPECT_EQ(errno_text(-EPERM), errno_text(EPERM));
  EXPECT_EQ(errno_text(524), "Operation not supported (ENOTSUPP)");
}

// libbpf calls its printer with a va_list.
int print(libbpf_print_level level, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = libbpf_to_spdlog(level, fmt, ap);
  va_end(ap);
  return r;
}

class LibbpfLog : public ::testing::Test {
 protected:
  void SetUp() override {
    prev_ = spdlog::default_logger();
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("test", sink);
    logger->set_pattern("%l %v");
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  void TearDown() override { spdlog::set_default_logger(prev_); }
  std::string take() {
    std::string s = out_.str();
    out_.str({});
    return s;
  }

  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> prev_;
};

TEST_F(LibbpfLog, LevelsMapAndTrailingNewlinesGo) {
  print(LIBBPF_WARN, "libbpf: prog '%s': failed to load: %d\n", "x", -1);
  EXPECT_EQ(take(), "warning libbpf: prog 'x': failed to load: -1\n");
  print(LIBBPF_INFO, "libbpf: info \n");
  EXPECT_EQ(take(), "debug libbpf: info\n");
  print(LIBBPF_DEBUG, "libbpf: detail\n");
  EXPECT_EQ(take(), "trace libbpf: detail\n");
}

TEST_F(LibbpfLog, QuietScopeDemotesWarningsWhileProbing) {
  {
    QuietLibbpf quiet;
    {
      QuietLibbpf nested;
    }
    print(LIBBPF_WARN, "libbpf: expected refusal\n");
    EXPECT_EQ(take(), "debug libbpf: expected refusal\n") << "still quiet after a nested scope";
  }
  print(LIBBPF_WARN, "libbpf: real problem\n");
  EXPECT_EQ(take(), "warning libbpf: real problem\n");
}

}  // namespace
}  // namespace capaudit
