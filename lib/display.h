// Text from untrusted sources (paths and comm names of programs any user
// ran) made safe to print on a terminal or into a log line.
#pragma once

#include <string>
#include <string_view>

namespace capaudit {

// Quoted when it is not plain: '...' when printable, bash's $'...' with
// \xNN escapes when it holds control or non-ASCII bytes.
std::string quote_for_display(std::string_view s);
// Free text that may carry untrusted parts (reasons naming origins): control
// and non-ASCII bytes as \xNN, nothing quoted.
std::string escape_for_display(std::string_view s);

}  // namespace capaudit
