#include "kallsyms.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace capaudit {
namespace {

constexpr const char* kSample =
    "ffffffff81000000 T _stext\n"
    "ffffffff81000000 T _text\n"
    "ffffffff81100000 T cap_capable\n"
    "ffffffff81100200 t cap_capable_helper.isra.0\n"
    "ffffffff81100300 D some_data\n"
    "ffffffff81100400 T security_capable\n"
    "ffffffff81100500 W weak_function\n"
    "0000000000000000 T hidden_by_kptr_restrict\n"
    "garbage line without fields\n"
    "zzzz T not_hex\n"
    "ffffffff81100600 T _etext\n"
    "ffffffffc0200000 t mod_func\t[nf_tables]\n"
    "ffffffffc0200100 T mod_func2\t[nf_tables]\n";

std::string write_temp(const std::string& content) {
  char tmpl[] = "/tmp/kallsyms_test_XXXXXX";
  int fd = mkstemp(tmpl);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  close(fd);
  return tmpl;
}

TEST(Kallsyms, KeepsOnlyTextSymbolsWithAddresses) {
  Kallsyms k = Kallsyms::from_text(kSample);
  // _stext _text cap_capable helper security_capable weak_function _etext mod_func mod_func2
  EXPECT_EQ(k.size(), 9u);
}

TEST(Kallsyms, SymbolizesWithHexOffset) {
  Kallsyms k = Kallsyms::from_text(kSample);
  EXPECT_EQ(k.symbolize(0xffffffff81100083), "cap_capable+0x83");
  EXPECT_EQ(k.symbolize(0xffffffff81100000), "cap_capable+0x0");
  EXPECT_EQ(k.symbolize(0xffffffff81100210), "cap_capable_helper.isra.0+0x10");
  // Data symbols are not kept, so the function before them spans the gap.
  EXPECT_EQ(k.symbolize(0xffffffff81100310), "cap_capable_helper.isra.0+0x110");
  EXPECT_EQ(k.symbolize(0xffffffff81100510), "weak_function+0x10");
}

TEST(Kallsyms, FunctionDropsCloneSuffix) {
  Kallsyms k = Kallsyms::from_text(kSample);
  EXPECT_EQ(k.function(0xffffffff81100210), "cap_capable_helper");
  EXPECT_EQ(k.function(0xffffffff81100401), "security_capable");
  EXPECT_EQ(k.function(0x1000), "");
}

TEST(Kallsyms, AliasesReportFirstListed) {
  Kallsyms k = Kallsyms::from_text(kSample);
  EXPECT_EQ(k.symbolize(0xffffffff81000010), "_stext+0x10");
}

TEST(Kallsyms, ModuleSymbolsNameTheModule) {
  Kallsyms k = Kallsyms::from_text(kSample);
  EXPECT_EQ(k.symbolize(0xffffffffc0200010), "mod_func+0x10 [nf_tables]");
  EXPECT_EQ(k.symbolize(0xffffffffc0200180), "mod_func2+0x80 [nf_tables]");
  EXPECT_EQ(k.function(0xffffffffc0200180), "mod_func2");
}

TEST(Kallsyms, UnknownAddressesStayNumeric) {
  Kallsyms k = Kallsyms::from_text(kSample);
  EXPECT_EQ(k.symbolize(0x1000), "0x1000");
  // Far past the kernel image's last symbol, and far past a module's: not
  // "_etext+0x3f0ffa00" or "mod_func2+0x1000000".
  EXPECT_EQ(k.symbolize(0xffffffffc0100000), "0xffffffffc0100000");
  EXPECT_EQ(k.symbolize(0xffffffffc1200100), "0xffffffffc1200100");
  // Close behind the last symbol of a region is still attributed.
  EXPECT_EQ(k.symbolize(0xffffffff81100620), "_etext+0x20");
}

TEST(Kallsyms, EmptyWhenAllAddressesHidden) {
  Kallsyms k = Kallsyms::from_text(
      "0000000000000000 T cap_capable\n0000000000000000 T security_capable\n");
  EXPECT_EQ(k.size(), 0u);
}

TEST(Kallsyms, LoadErrorsNameTheFile) {
  std::string err;
  EXPECT_FALSE(Kallsyms::load("/nonexistent/kallsyms", &err));
  EXPECT_NE(err.find("/nonexistent/kallsyms"), std::string::npos) << err;

  std::string hidden = write_temp("0000000000000000 T cap_capable\n");
  err.clear();
  EXPECT_FALSE(Kallsyms::load(hidden, &err));
  EXPECT_NE(err.find(hidden), std::string::npos) << err;
  EXPECT_NE(err.find("kptr_restrict"), std::string::npos) << err;
  std::remove(hidden.c_str());
}

TEST(Kallsyms, LoadsFile) {
  std::string path = write_temp(kSample);
  std::string err;
  auto k = Kallsyms::load(path, &err);
  ASSERT_TRUE(k) << err;
  EXPECT_EQ(k->symbolize(0xffffffff81100401), "security_capable+0x1");
  std::remove(path.c_str());
}

// How long the load takes is the benchmark's business, not a test's: a
// busy CI machine must not turn a timing into a failure.
TEST(Kallsyms, LoadsProcKallsyms) {
  std::string err;
  auto k = Kallsyms::load("/proc/kallsyms", &err);
  if (!k) GTEST_SKIP() << err;
  EXPECT_GT(k->size(), 1000u);
}

TEST(FrameFunction, StripsOffsetModuleAndCloneSuffix) {
  EXPECT_EQ(frame_function("ns_capable+0x12 [mod]"), "ns_capable");
  EXPECT_EQ(frame_function("cap_capable+0x83"), "cap_capable");
  EXPECT_EQ(frame_function("do_execveat_common.isra.0+0x1a2"), "do_execveat_common");
  EXPECT_EQ(frame_function("bare_name"), "bare_name");
  EXPECT_EQ(frame_function(""), "");
  EXPECT_EQ(bare_function_name("f.constprop.0.isra.0"), "f");
  EXPECT_EQ(bare_function_name("f.part.0"), "f");
  EXPECT_EQ(bare_function_name("f.cold"), "f");
}

TEST(CheckMachinery, TheCheckItself) {
  for (const char* name :
       {"cap_capable", "security_capable", "ns_capable", "ns_capable_noaudit",
        "ns_capable_setid", "capable", "file_ns_capable", "has_capability",
        "has_capability_noaudit", "has_ns_capability", "has_ns_capability_noaudit",
        "capable_wrt_inode_uidgid", "privileged_wrt_inode_uidgid", "ns_capable_common",
        "sk_ns_capable", "sk_capable", "sk_net_capable", "netlink_ns_capable",
        "netlink_capable", "netlink_net_capable", "ns_capable_common.part.0"}) {
    EXPECT_TRUE(is_check_machinery(name)) << name;
  }
}

TEST(CheckMachinery, TracingGlue) {
  for (const char* name :
       {"bpf_trace_run4", "__bpf_trace_cap_capable", "__traceiter_cap_capable",
        "bpf_trampoline_6442521812", "__bpf_prog_enter_recur", "kprobe_ftrace_handler",
        "ftrace_regs_caller", "perf_trace_run_bpf_submit", "trace_event_raw_event_cap_capable",
        "__probestub_cap_capable", "bpf_get_stackid", "bpf_get_stackid_raw_tp",
        "__bpf_get_stackid", "bpf_prog_6deef7357e7b4530_handle_cap_capable",
        "bpf_prog_6deef7357e7b4530"}) {
    EXPECT_TRUE(is_check_machinery(name)) << name;
  }
}

TEST(CheckMachinery, InformativeWrappersAndCallersAreOrigins) {
  for (const char* name :
       {"perfmon_capable", "bpf_capable", "checkpoint_restore_ns_capable", "bpf_token_capable",
        "setattr_prepare", "security_vm_enough_memory_mm", "cap_vm_enough_memory",
        "__x64_sys_fchown", "do_syscall_64", "bpf_prog_load", "bpf_prog_alloc",
        "inode_owner_or_capable", "capable_foo", "xcapable"}) {
    EXPECT_FALSE(is_check_machinery(name)) << name;
  }
}

TEST(StackOrigin, FchownMeasuredStack) {
  std::vector<std::string> frames = {
      "cap_capable+0x83",
      "security_capable+0x3b",
      "capable_wrt_inode_uidgid+0x39",
      "setattr_prepare+0x115",
      "ext4_setattr+0x9b",
      "notify_change+0x1f6",
      "chown_common+0x23a",
      "vfs_fchown+0x71",
      "__x64_sys_fchown+0x6e",
      "do_syscall_64+0x7f",
      "entry_SYSCALL_64_after_hwframe+0x76",
  };
  EXPECT_EQ(stack_origin(frames), "setattr_prepare");
}

TEST(StackOrigin, MmapMeasuredStack) {
  std::vector<std::string> frames = {
      "cap_capable+0x83",
      "security_vm_enough_memory_mm+0x36",
      "__mmap_region+0x1c3",
  };
  EXPECT_EQ(stack_origin(frames), "security_vm_enough_memory_mm");
}

TEST(StackOrigin, BareNameOfClonedOrigin) {
  std::vector<std::string> frames = {
      "bpf_prog_6deef7357e7b4530_on_cap+0x4c [bpf]",
      "bpf_trace_run4+0x8c",
      "__bpf_trace_cap_capable+0x10",
      "cap_capable+0x83",
      "security_capable+0x3b",
      "ns_capable+0x2d",
      "do_execveat_common.isra.0+0x1a2",
  };
  EXPECT_EQ(stack_origin(frames), "do_execveat_common");
}

TEST(StackOrigin, AlternativeWrapperIsTheOrigin) {
  EXPECT_EQ(stack_origin({"cap_capable+0x83", "security_capable+0x3b", "ns_capable+0x2d",
                          "capable+0x19", "perfmon_capable+0x12", "perf_event_open+0x40"}),
            "perfmon_capable");
}

TEST(StackOrigin, EmptyWhenOnlyMachinery) {
  EXPECT_EQ(stack_origin({"cap_capable+0x83", "security_capable+0x3b"}), "");
  EXPECT_EQ(stack_origin({}), "");
}

TEST(StackOrigin, WorksWithRealSymbols) {
  Kallsyms k = Kallsyms::from_text(
      "ffffffff81100000 T cap_capable\n"
      "ffffffff81100400 T security_capable\n"
      "ffffffff81100500 T capable_wrt_inode_uidgid\n"
      "ffffffff81100600 T setattr_prepare\n"
      "ffffffff81100900 T ext4_setattr\n");
  std::vector<std::string> frames;
  for (uint64_t addr : {0xffffffff81100083ull, 0xffffffff8110043bull, 0xffffffff81100539ull,
                        0xffffffff81100715ull, 0xffffffff8110099bull}) {
    frames.push_back(k.symbolize(addr));
  }
  EXPECT_EQ(frames[3], "setattr_prepare+0x115");
  EXPECT_EQ(stack_origin(frames), "setattr_prepare");
}

}  // namespace
}  // namespace capaudit
