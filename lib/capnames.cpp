#include "capnames.h"

#include "text.h"

#include <cap-ng.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <set>

namespace capaudit {
namespace {

// Capability sets in the kernel (and in ca_check_key) are 64-bit masks.
constexpr int kMaxCapBits = 64;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

int read_kernel_last_cap() {
  // libcap-ng 0.8.3 reads this file internally but exports no accessor.
  if (FILE* f = std::fopen("/proc/sys/kernel/cap_last_cap", "re")) {
    int value = -1;
    int n = std::fscanf(f, "%d", &value);
    std::fclose(f);
    if (n == 1 && value >= 0 && value < kMaxCapBits) return value;
  }
  // No /proc (containers, chroots): the highest capability libcap-ng names.
  int last = -1;
  for (int cap = 0; cap < kMaxCapBits; ++cap) {
    if (capng_capability_to_name(static_cast<unsigned>(cap))) last = cap;
  }
  return last;
}

}  // namespace

namespace {

std::string make_cap_name(int cap) {
  if (cap >= 0) {
    if (const char* name = capng_capability_to_name(static_cast<unsigned>(cap))) {
      return "cap_" + lower(name);
    }
  }
  return "cap_" + std::to_string(cap);
}

// Names of every bit, and the bits in name order: a report over thousands
// of binaries names the same few dozen capabilities again and again.
struct NameTable {
  std::string names[kMaxCapBits];
  int by_name[kMaxCapBits];
  NameTable() {
    for (int cap = 0; cap < kMaxCapBits; ++cap) {
      names[cap] = make_cap_name(cap);
      by_name[cap] = cap;
    }
    std::sort(by_name, by_name + kMaxCapBits, [this](int a, int b) { return names[a] < names[b]; });
  }
};

const NameTable& name_table() {
  static const NameTable table;
  return table;
}

}  // namespace

std::string cap_name(int cap) {
  if (cap >= 0 && cap < kMaxCapBits) return name_table().names[cap];
  return make_cap_name(cap);
}

std::optional<int> cap_from_name(std::string_view name) {
  std::string s = lower(name);
  if (s.starts_with("cap_")) s.erase(0, 4);
  if (s.empty()) return std::nullopt;
  // Numbers cover capabilities newer than libcap-ng, and round-trip cap_name's
  // "cap_<n>" fallback.
  if (std::isdigit(static_cast<unsigned char>(s[0]))) {
    int cap = -1;
    auto res = std::from_chars(s.data(), s.data() + s.size(), cap);
    if (res.ec != std::errc() || res.ptr != s.data() + s.size()) return std::nullopt;
    if (cap < 0 || cap >= kMaxCapBits) return std::nullopt;
    return cap;
  }
  int cap = capng_name_to_capability(s.c_str());
  if (cap < 0) return std::nullopt;
  return cap;
}

int last_cap() {
  static const int value = read_kernel_last_cap();
  return value;
}

std::vector<std::string> cap_set_names(uint64_t set) {
  const NameTable& t = name_table();
  std::vector<std::string> names;
  for (int cap : t.by_name) {
    if (set & (uint64_t{1} << cap)) names.push_back(t.names[cap]);
  }
  return names;
}

std::vector<std::string> cap_names(const std::vector<int>& caps) {
  std::vector<std::string> names;
  names.reserve(caps.size());
  for (int cap : caps) names.push_back(cap_name(cap));
  return names;
}

std::string cap_list_text(const std::vector<int>& caps, std::string_view sep, std::string_view none) {
  if (caps.empty()) return std::string(none);
  return join(cap_names(caps), sep);
}

void sort_caps_by_name(std::vector<int>& caps) {
  std::sort(caps.begin(), caps.end(), [](int a, int b) { return cap_name(a) < cap_name(b); });
  caps.erase(std::unique(caps.begin(), caps.end()), caps.end());
}

std::string setcap_text(const std::vector<int>& caps) {
  std::set<std::string> names;  // sorted and de-duplicated
  std::set<int> unnamed;
  for (int cap : caps) {
    if (cap < 0) continue;
    if (capng_capability_to_name(static_cast<unsigned>(cap))) {
      names.insert(cap_name(cap));
    } else {
      // setcap (libcap) accepts a bare number for a capability it cannot
      // name, but not our "cap_<n>" spelling.
      unnamed.insert(cap);
    }
  }
  std::vector<std::string> parts(names.begin(), names.end());
  for (int cap : unnamed) parts.push_back(std::to_string(cap));
  if (parts.empty()) return {};
  return join(parts, ",") + "+ep";
}

}  // namespace capaudit
