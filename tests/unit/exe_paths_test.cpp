#include "exe_paths.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace capaudit {
namespace {

namespace fs = std::filesystem;

ExeId id_of(const fs::path& path) {
  struct stat st{};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return ExeId{user_dev_to_kernel(st.st_dev), st.st_ino};
}

void write_file(const fs::path& path, const std::string& content) {
  std::ofstream(path) << content;
}

// A temporary directory holding a fake /proc tree and the files it points at.
class FakeProc : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "exe_paths_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    proc_ = root_ / "proc";
    fs::create_directories(proc_);
    fs::create_directories(root_ / "work" / "bin");
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path add_pid(uint32_t pid) {
    fs::path dir = proc_ / std::to_string(pid);
    fs::create_directories(dir);
    return dir;
  }

  fs::path root_;
  fs::path proc_;
};

TEST(DevEncoding, KernelToUser) {
  EXPECT_EQ(kernel_dev_to_user(0x800001), makedev(8, 1));
  EXPECT_EQ(kernel_dev_to_user((259ull << 20) | 3), makedev(259, 3));
  EXPECT_EQ(major(kernel_dev_to_user(0x10300003)), 259u);
  EXPECT_EQ(minor(kernel_dev_to_user(0x10300003)), 3u);
}

TEST(DevEncoding, UserToKernel) {
  EXPECT_EQ(user_dev_to_kernel(makedev(8, 1)), 0x800001u);
  EXPECT_EQ(user_dev_to_kernel(makedev(259, 3)), 0x10300003u);
  EXPECT_EQ(user_dev_to_kernel(makedev(0, 0x2d)), 0x2du);
}

TEST(DevEncoding, RoundTrip) {
  for (auto [maj, min] : {std::pair{8u, 1u}, {259u, 3u}, {0u, 45u}, {253u, 0xfffffu}}) {
    dev_t dev = makedev(maj, min);
    EXPECT_EQ(kernel_dev_to_user(user_dev_to_kernel(dev)), dev) << maj << ":" << min;
  }
}

TEST_F(FakeProc, ReadProcExeStripsDeletedSuffix) {
  fs::create_symlink("/usr/bin/gone (deleted)", add_pid(123) / "exe");
  bool deleted = false;
  auto path = read_proc_exe(proc_.string(), 123, &deleted);
  ASSERT_TRUE(path);
  EXPECT_EQ(*path, "/usr/bin/gone");
  EXPECT_TRUE(deleted);
}

TEST_F(FakeProc, ReadProcExePlain) {
  fs::create_symlink("/usr/bin/tool", add_pid(7) / "exe");
  bool deleted = true;
  EXPECT_EQ(read_proc_exe(proc_.string(), 7, &deleted), "/usr/bin/tool");
  EXPECT_FALSE(deleted);
  EXPECT_FALSE(read_proc_exe(proc_.string(), 8));
}

TEST_F(FakeProc, LearnExecPrefersDpath) {
  fs::path tool = root_ / "work" / "bin" / "tool";
  write_file(tool, "x");
  ExeId id = id_of(tool);
  ExePathResolver resolver(proc_.string());
  resolver.learn_exec(id, tool.string(), "tool", 999);  // pid long gone
  auto found = resolver.lookup(id);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->path, tool.string());
  EXPECT_FALSE(found->stale);
}

TEST_F(FakeProc, LearnExecUsesAbsoluteFilenameWithoutDpath) {
  fs::path tool = root_ / "work" / "bin" / "tool";
  write_file(tool, "x");
  ExeId id = id_of(tool);
  ExePathResolver resolver(proc_.string());
  resolver.learn_exec(id, "", tool.string(), 999);
  auto found = resolver.lookup(id);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->path, tool.string());
  EXPECT_FALSE(found->stale);
}

TEST_F(FakeProc, LearnExecResolvesRelativeFilenameAgainstCwd) {
  fs::path tool = root_ / "work" / "bin" / "tool";
  write_file(tool, "x");
  ExeId id = id_of(tool);
  fs::create_symlink(root_ / "work", add_pid(123) / "cwd");
  ExePathResolver resolver(proc_.string());
  resolver.learn_exec(id, "", "./bin/tool", 123);
  auto found = resolver.lookup(id);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->path, tool.string());
  EXPECT_FALSE(found->stale);
}

TEST_F(FakeProc, RelativeFilenameOfExitedProcessIsNotGuessed) {
  fs::path tool = root_ / "work" / "bin" / "tool";
  write_file(tool, "x");
  ExePathResolver resolver(proc_.string());
  resolver.learn_exec(id_of(tool), "", "./bin/tool", 4242);
  EXPECT_FALSE(resolver.lookup(id_of(tool)));
}

TEST_F(FakeProc, ScriptResolvesToInterpreterThroughProcExe) {
  // A script's exec event names the script, but the task runs the interpreter.
  fs::path script = root_ / "work" / "bin" / "script.sh";
  fs::path interp = root_ / "work" / "bin" / "sh";
  write_file(script, "#!/bin/sh\n");
  write_file(interp, "elf");
  fs::create_symlink(interp, add_pid(55) / "exe");
  ExeId id = id_of(interp);
  ExePathResolver resolver(proc_.string());
  resolver.learn_exec(id, script.string(), script.string(), 55);
  auto found = resolver.lookup(id);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->path, interp.string());
  EXPECT_FALSE(found->stale);
}

TEST_F(FakeProc, ReplacedFileIsRememberedAsStale) {
  fs::path tool = root_ / "work" / "bin" / "tool";
  write_file(tool, "old");
  ExeId old_id = id_of(tool);
  // Keep the old inode allocated so the replacement cannot reuse its number.
  int keep = open(tool.c_str(), O_RDONLY);
  ASSERT_GE(keep, 0);
  fs::path next = root_ / "work" / "bin" / "tool.new";
  write_file(next, "new");
  fs::rename(next, tool);  // what a package upgrade does
  ASSERT_FALSE(id_of(tool) == old_id);

  ExePathResolver resolver(proc_.string());
  resolver.learn_exec(old_id, tool.string(), tool.string(), 999);
  auto found = resolver.lookup(old_id);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->path, tool.string());
  EXPECT_TRUE(found->stale);
  close(keep);
}

TEST_F(FakeProc, LookupNoticesReplacementAfterLearning) {
  fs::path tool = root_ / "work" / "bin" / "tool";
  write_file(tool, "old");
  ExeId id = id_of(tool);
  int keep = open(tool.c_str(), O_RDONLY);
  ASSERT_GE(keep, 0);
  ExePathResolver resolver(proc_.string());
  resolver.learn_exec(id, tool.string(), "", 999);
  ASSERT_FALSE(resolver.lookup(id)->stale);

  fs::remove(tool);
  EXPECT_TRUE(resolver.lookup(id)->stale);
  write_file(tool, "new");
  EXPECT_TRUE(resolver.lookup(id)->stale);
  EXPECT_EQ(resolver.lookup(id)->path, tool.string());
  close(keep);
}

TEST_F(FakeProc, VerifiedPathReplacesStaleOne) {
  fs::path tool = root_ / "work" / "bin" / "tool";
  write_file(tool, "x");
  ExeId id = id_of(tool);
  ExePathResolver resolver(proc_.string());
  resolver.learn_exec(id, (root_ / "elsewhere").string(), "", 999);
  ASSERT_TRUE(resolver.lookup(id)->stale);
  resolver.learn_exec(id, tool.string(), "", 999);
  EXPECT_EQ(resolver.lookup(id)->path, tool.string());
  EXPECT_FALSE(resolver.lookup(id)->stale);
}

TEST_F(FakeProc, ScanProcLearnsRunningExecutables) {
  fs::path tool = root_ / "work" / "bin" / "tool";
  write_file(tool, "x");
  fs::create_symlink(tool, add_pid(123) / "exe");
  fs::create_symlink(root_ / "work", proc_ / "123" / "cwd");
  add_pid(2);                                                // kernel thread: no exe
  fs::create_symlink("/nowhere (deleted)", add_pid(77) / "exe");  // cannot stat here
  fs::create_directories(proc_ / "self");                    // not a pid
  fs::create_symlink(tool, proc_ / "self" / "exe");

  ExePathResolver resolver(proc_.string());
  EXPECT_EQ(resolver.scan_proc(), 1u);
  EXPECT_EQ(resolver.scan_proc(), 0u);  // nothing new the second time
  auto found = resolver.lookup(id_of(tool));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->path, tool.string());
  EXPECT_FALSE(found->stale);
}

TEST_F(FakeProc, ResolveScansForUnknownIds) {
  fs::path tool = root_ / "work" / "bin" / "tool";
  write_file(tool, "x");
  ExePathResolver resolver(proc_.string());
  EXPECT_FALSE(resolver.resolve(id_of(tool)));
  fs::create_symlink(tool, add_pid(321) / "exe");
  auto found = resolver.resolve(id_of(tool));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->path, tool.string());
}

TEST(RealProc, FindsOwnExecutable) {
  ExePathResolver resolver;
  ExeId self = id_of("/proc/self/exe");
  auto found = resolver.resolve(self);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->path, fs::read_symlink("/proc/self/exe").string());
  EXPECT_FALSE(found->stale);
}

}  // namespace
}  // namespace capaudit
