// Running a command as another user holding chosen capabilities as ambient
// capabilities (libcap-ng), as `capaudit profile --user` needs.
#pragma once

#include "owners.h"

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace capaudit {

struct RunAs {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
};

// Looks USER up by name or number; nullopt with *err naming it.
std::optional<RunAs> lookup_user(const std::string& user, std::string* err);

// Capabilities of this process's bounding set: "every capability" for a
// profile means every one the bounding set still allows.
std::vector<int> bounding_set();

// In a child, before exec: become `who` keeping exactly `caps` as permitted,
// inheritable, effective and ambient. Returns false with *err on failure
// (the child then reports and exits instead of running unprivileged).
bool become_user_with_ambient(const RunAs& who, const std::vector<int>& caps, std::string* err);

// command[0] as execvp finds it, resolved: the path the kernel reports.
// The name itself when nothing is found.
std::string resolve_command(const std::string& name);

// The command's executable opened by capaudit while it is root, for runs
// as a user who cannot reach its path without capabilities (a directory
// only root may enter). Those runs hold only candidate sets; the traced run
// reached the file holding every capability, and the path walk of an exec
// is made before tracking starts, so the trace never asks for what the walk
// needs. Executing this descriptor gives every run the file itself.
struct OpenedExecutable {
  Fd fd;                // O_PATH, close-on-exec
  std::string path;     // resolved
  bool script = false;  // "#!": the interpreter is given /dev/fd/N as the script's path
};

// For --minimize: nullopt with *err empty when `who`, holding no
// capability, can reach command[0] (runs exec it by name, as without
// --minimize) or capaudit cannot open it either (the run says why).
// nullopt with *err when it cannot be run through a descriptor (a script
// whose interpreter is out of reach too).
std::optional<OpenedExecutable> open_unreachable_executable(const std::string& command0, const RunAs& who,
                                                            std::string* err);

// In a child, the last step: exec argv[0] by name (execvp), or `exe` when
// given. Returns only on failure, with errno set.
void exec_command(const OpenedExecutable* exe, char* const argv[]);

}  // namespace capaudit
