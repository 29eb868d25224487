// The trim policy of the daemon's tables of what the host makes, executables'
// paths and cgroups (issue 14 item 3: bounded for months): past its limit a
// table forgets down to 3/4 of it, first the entries no longer in use (no
// process runs the executable, the cgroup is gone), least recently used first.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace capaudit {

// The keys of `table` to forget, by that policy; none while within `limit`.
// Each value has `used`, a clock advanced at each use; in_use(key, value)
// says whether the entry is still in use.
template <typename Map, typename InUse>
std::vector<typename Map::key_type> least_used_beyond(const Map& table, size_t limit, InUse in_use) {
  using Key = typename Map::key_type;
  if (table.size() <= limit) return {};
  const size_t drop = table.size() - limit * 3 / 4;
  std::vector<std::pair<std::pair<bool, uint64_t>, Key>> order;
  order.reserve(table.size());
  for (const auto& [key, value] : table) order.push_back({{in_use(key, value), value.used}, key});
  std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(drop - 1), order.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Key> keys;
  keys.reserve(drop);
  for (size_t i = 0; i < drop; i++) keys.push_back(order[i].second);
  return keys;
}

}  // namespace capaudit
