#include "capnames.h"

#include <gtest/gtest.h>
#include <linux/capability.h>

#include <fstream>

namespace capaudit {
namespace {

TEST(CapNames, NameOfNumber) {
  EXPECT_EQ(cap_name(CAP_CHOWN), "cap_chown");
  EXPECT_EQ(cap_name(CAP_NET_RAW), "cap_net_raw");
  EXPECT_EQ(cap_name(CAP_SYS_ADMIN), "cap_sys_admin");
  EXPECT_EQ(cap_name(CAP_CHECKPOINT_RESTORE), "cap_checkpoint_restore");
}

TEST(CapNames, UnknownNumbersGetNumericName) {
  EXPECT_EQ(cap_name(63), "cap_63");
  EXPECT_EQ(cap_name(-1), "cap_-1");
}

TEST(CapNames, ParsesEverySpelling) {
  for (const char* spelling : {"cap_net_raw", "net_raw", "CAP_NET_RAW", "Net_Raw", "13"}) {
    auto cap = cap_from_name(spelling);
    ASSERT_TRUE(cap) << spelling;
    EXPECT_EQ(*cap, CAP_NET_RAW) << spelling;
  }
}

TEST(CapNames, RoundTripsNumericFallback) {
  EXPECT_EQ(cap_from_name(cap_name(63)), 63);
}

TEST(CapNames, RejectsUnknown) {
  for (const char* spelling : {"", "cap_", "bogus", "cap_bogus", "64", "-1", "13x", "cap_-1"}) {
    EXPECT_FALSE(cap_from_name(spelling)) << spelling;
  }
}

TEST(CapNames, RoundTripsEveryKnownCapability) {
  for (int cap = 0; cap <= last_cap(); ++cap) {
    EXPECT_EQ(cap_from_name(cap_name(cap)), cap) << cap;
  }
}

TEST(CapNames, LastCapMatchesKernel) {
  std::ifstream f("/proc/sys/kernel/cap_last_cap");
  int kernel = -1;
  if (!(f >> kernel)) GTEST_SKIP() << "no /proc/sys/kernel/cap_last_cap";
  EXPECT_EQ(last_cap(), kernel);
  EXPECT_GE(last_cap(), CAP_AUDIT_READ);
}

TEST(CapNames, SetNamesAreSortedByName) {
  uint64_t set = (1ull << CAP_SYS_ADMIN) | (1ull << CAP_CHOWN) | (1ull << CAP_NET_RAW) |
                 (1ull << CAP_BPF);
  EXPECT_EQ(cap_set_names(set), (std::vector<std::string>{"cap_bpf", "cap_chown",
                                                          "cap_net_raw", "cap_sys_admin"}));
  EXPECT_TRUE(cap_set_names(0).empty());
}

TEST(CapNames, ListsKeepTheirOrderUntilSortedByName) {
  EXPECT_EQ(cap_names({CAP_NET_RAW, CAP_CHOWN}), (std::vector<std::string>{"cap_net_raw", "cap_chown"}));
  EXPECT_TRUE(cap_names({}).empty());
  std::vector<int> caps = {CAP_SYS_ADMIN, CAP_NET_RAW, CAP_BPF, CAP_NET_RAW};
  sort_caps_by_name(caps);
  EXPECT_EQ(caps, (std::vector<int>{CAP_BPF, CAP_NET_RAW, CAP_SYS_ADMIN}));
}

TEST(CapNames, SetcapText) {
  EXPECT_EQ(setcap_text({CAP_NET_RAW, CAP_CHOWN}), "cap_chown,cap_net_raw+ep");
  EXPECT_EQ(setcap_text({CAP_NET_RAW, CAP_NET_RAW}), "cap_net_raw+ep");
  EXPECT_EQ(setcap_text({CAP_NET_BIND_SERVICE}), "cap_net_bind_service+ep");
  EXPECT_EQ(setcap_text({}), "");
  // setcap parses a bare number, not "cap_63".
  EXPECT_EQ(setcap_text({63, CAP_CHOWN}), "cap_chown,63+ep");
}

}  // namespace
}  // namespace capaudit
