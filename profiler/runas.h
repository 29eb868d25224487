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
  std::string home, shell;  // from the password database, for the login environment
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

// In a child, before exec: the environment a login as `who` gets (HOME, USER,
// LOGNAME, SHELL from the password database, and sudo's secure PATH), so the
// command does not search the caller's home or PATH directories: as `who`
// holding every capability those searches would be granted, and recommended.
void apply_login_environment(const RunAs& who);
inline constexpr const char* kLoginPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

}  // namespace capaudit
