#include "runas.h"

#include "capnames.h"

#include <cap-ng.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace capaudit {

std::optional<RunAs> lookup_user(const std::string& user, std::string* err) {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  uid_t numeric = 0;
  auto [end, ec] = std::from_chars(user.data(), user.data() + user.size(), numeric);
  bool is_number = ec == std::errc() && end == user.data() + user.size();
  int rc = is_number ? getpwuid_r(numeric, &pw, buf.data(), buf.size(), &found)
                     : getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0 || !found) {
    if (err) *err = "unknown user '" + user + "'";
    return std::nullopt;
  }
  return RunAs{found->pw_uid, found->pw_gid, found->pw_name, found->pw_dir ? found->pw_dir : "/",
               found->pw_shell && *found->pw_shell ? found->pw_shell : "/bin/sh"};
}

std::vector<int> bounding_set() {
  std::vector<int> caps;
  for (int cap = 0; cap <= last_cap(); cap++)
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) caps.push_back(cap);
  return caps;
}

bool become_user_with_ambient(const RunAs& who, const std::vector<int>& caps, std::string* err) {
  // Done step by step rather than with capng_change_id, which also applies
  // the bounding set and gives one opaque code for any failure.
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
    *err = std::string("PR_SET_KEEPCAPS: ") + std::strerror(errno);
    return false;
  }
  if (initgroups(who.name.c_str(), who.gid) != 0 || setresgid(who.gid, who.gid, who.gid) != 0 ||
      setresuid(who.uid, who.uid, who.uid) != 0) {
    *err = "cannot become '" + who.name + "': " + std::strerror(errno);
    return false;
  }
  // Permitted survived the uid change (keepcaps); effective did not.
  capng_clear(static_cast<capng_select_t>(CAPNG_SELECT_CAPS | CAPNG_SELECT_AMBIENT));
  for (int cap : caps) {
    if (capng_update(CAPNG_ADD,
                     static_cast<capng_type_t>(CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_INHERITABLE |
                                               CAPNG_AMBIENT),
                     static_cast<unsigned>(cap)) != 0) {
      *err = "cannot add " + cap_name(cap);
      return false;
    }
  }
  if (capng_apply(CAPNG_SELECT_CAPS) != 0) {
    *err = std::string("cannot set capabilities: ") + std::strerror(errno);
    return false;
  }
  if (capng_apply(CAPNG_SELECT_AMBIENT) != 0) {
    *err = std::string("cannot raise ambient capabilities: ") + std::strerror(errno);
    return false;
  }
  prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  return true;
}

void apply_login_environment(const RunAs& who) {
  setenv("HOME", who.home.empty() ? "/" : who.home.c_str(), 1);
  setenv("USER", who.name.c_str(), 1);
  setenv("LOGNAME", who.name.c_str(), 1);
  setenv("SHELL", who.shell.empty() ? "/bin/sh" : who.shell.c_str(), 1);
  setenv("PATH", kLoginPath, 1);
}

}  // namespace capaudit
