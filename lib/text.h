// Small string helpers every layer uses.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace capaudit {

// "a, b, c": parts joined by sep.
std::string join(const std::vector<std::string>& parts, std::string_view sep);

}  // namespace capaudit
