// Text from untrusted sources (paths and comm names of programs any user
// ran) made safe to print on a terminal or into a log line.
#pragma once

#include <string>
#include <string_view>

namespace capaudit {

// One idea of which bytes are unsafe: a control byte (C0 or DEL) can act on
// a terminal or end a line of a script; a non-ASCII byte is harmless to sh
// but may be half a character or an escape to a terminal, so what is shown
// escapes both and what a script runs only refuses the first.
bool is_control_byte(unsigned char c);
bool has_control_bytes(std::string_view s);

// Always '...', for a line sh will run: there every byte but the quote
// itself is literal. What a script must not carry (has_control_bytes) is
// refused before it is quoted.
std::string shell_quote(std::string_view s);

// Quoted when it is not plain: '...' when printable, bash's $'...' with
// \xNN escapes when it holds control or non-ASCII bytes.
std::string quote_for_display(std::string_view s);
// Free text that may carry untrusted parts (reasons naming origins): control
// and non-ASCII bytes as \xNN, nothing quoted.
std::string escape_for_display(std::string_view s);

}  // namespace capaudit
