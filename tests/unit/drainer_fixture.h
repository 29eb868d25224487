// The store and the program file the drainer tests count checks for.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include "drainer.h"
#include "store_fixture.h"

namespace capaudit::test {

// A drain's stack reader for checks that carry no stack.
inline const StackReader kNoStacks = [](int32_t) { return std::vector<uint64_t>{}; };

// The fresh store, and a file `prog` beside it whose (device, inode) `key`
// carries; the other key fields are each test's.
struct StoreAndProgram : FreshStore {
  std::string exe;
  ca_check_key key{};

  // Call as ASSERT_NO_FATAL_FAILURE(open_store_and_program()).
  void open_store_and_program() {
    ASSERT_NO_FATAL_FAILURE(open_store());
    exe = dir.file("prog");
    std::ofstream(exe) << "#!/bin/true\n";
    struct stat st {};
    ASSERT_EQ(stat(exe.c_str(), &st), 0);
    key.exe_dev = user_dev_to_kernel(st.st_dev);
    key.exe_ino = st.st_ino;
  }
  // The program's exec, as the daemon learns it from the exec event.
  void learn_exec(ExePathResolver& paths) const { paths.learn_exec(ExeId{key.exe_dev, key.exe_ino}, exe, exe, 0); }
  // The checks stored of the binaries at `path`.
  uint64_t stored(const std::string& path) {
    uint64_t total = 0;
    for (auto& b : store->binaries(path))
      for (auto& c : store->checks(b.id)) total += c.count;
    return total;
  }
  // The kernel maps holding `count` checks of `key`.
  KernelSnapshot key_counted(uint64_t count) const {
    KernelSnapshot s;
    s.counts.push_back({key, count});
    return s;
  }
};

}  // namespace capaudit::test
