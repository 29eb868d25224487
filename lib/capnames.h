// Capability names and sets, through libcap-ng.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace capaudit {

// "cap_net_raw" for 13; "cap_<n>" for numbers libcap-ng does not know.
std::string cap_name(int cap);
// Accepts "cap_net_raw", "net_raw", "CAP_NET_RAW", "13". nullopt if unknown.
std::optional<int> cap_from_name(std::string_view name);
// Highest capability number this kernel knows (libcap-ng's last cap).
int last_cap();
// Bit set -> sorted names.
std::vector<std::string> cap_set_names(uint64_t set);
// Each capability's name, in the order given.
std::vector<std::string> cap_names(const std::vector<int>& caps);
// Sorts by name (the order every output lists a set in), duplicates dropped.
void sort_caps_by_name(std::vector<int>& caps);
// The names joined by sep, in the order given ("cap_chown,cap_net_raw"), or
// `none` for an empty set: how the human outputs spell a set.
std::string cap_list_text(const std::vector<int>& caps, std::string_view sep = ",",
                          std::string_view none = "none");
// "cap_chown,cap_net_raw+ep" for setcap, empty string for an empty set.
// Names sorted alphabetically, duplicates dropped; capabilities libcap-ng
// cannot name follow as bare numbers ("cap_chown,41+ep"), which setcap accepts.
std::string setcap_text(const std::vector<int>& caps);

}  // namespace capaudit
