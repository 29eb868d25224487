// Running a command as another user holding chosen capabilities as ambient
// capabilities (libcap-ng), as `capaudit profile --user` needs.
#pragma once

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

}  // namespace capaudit
