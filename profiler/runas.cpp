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
  return RunAs{found->pw_uid, found->pw_gid, found->pw_name};
}

std::vector<int> bounding_set() {
  std::vector<int> caps;
  for (int cap = 0; cap <= last_cap(); cap++)
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) caps.push_back(cap);
  return caps;
}

bool become_user_with_ambient(const RunAs& who, const std::vector<int>& caps, std::string* err) {
  capng_clear(CAPNG_SELECT_ALL);
  for (int cap : caps) {
    auto c = static_cast<unsigned>(cap);
    if (capng_updatev(CAPNG_ADD,
                      static_cast<capng_type_t>(CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_INHERITABLE |
                                                CAPNG_AMBIENT),
                      c, -1) != 0) {
      *err = "cannot add " + cap_name(cap);
      return false;
    }
  }
  // Keep the bounding set as it is: what it allows is what "all" means.
  if (initgroups(who.name.c_str(), who.gid) != 0) {
    *err = "initgroups for '" + who.name + "': " + std::strerror(errno);
    return false;
  }
  int rc = capng_change_id(static_cast<int>(who.uid), static_cast<int>(who.gid), CAPNG_NO_FLAG);
  if (rc != 0) {
    *err = "cannot become '" + who.name + "' keeping capabilities (libcap-ng capng_change_id " +
           std::to_string(rc) + ")";
    return false;
  }
  if (capng_apply(CAPNG_SELECT_AMBIENT) != 0) {
    *err = std::string("cannot raise ambient capabilities: ") + std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace capaudit
