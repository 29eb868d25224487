#include "display.h"

#include "identity.h"  // to_hex

#include <algorithm>

namespace capaudit {

namespace {

bool is_hex_escape_needed(unsigned char c) { return is_control_byte(c) || c >= 0x80; }

bool is_plain(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("/._+,:=@%-").find(static_cast<char>(c)) != std::string_view::npos;
}

std::string hex_byte(unsigned char c) { return "\\x" + to_hex(&c, 1); }

}  // namespace

bool is_control_byte(unsigned char c) { return c < 0x20 || c == 0x7f; }

bool has_control_bytes(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return is_control_byte(static_cast<unsigned char>(c)); });
}

std::string shell_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

std::string escape_for_display(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (is_hex_escape_needed(c)) out += hex_byte(c);
    else out += static_cast<char>(c);
  }
  return out;
}

std::string quote_for_display(std::string_view s) {
  bool plain = !s.empty() && s.front() != '-' &&
               std::all_of(s.begin(), s.end(), [](char c) { return is_plain(static_cast<unsigned char>(c)); });
  if (plain) return std::string(s);
  bool needs_escapes = std::any_of(s.begin(), s.end(), [](char c) { return is_hex_escape_needed(static_cast<unsigned char>(c)); });
  // Single quotes show everything literally; only the quote itself needs care.
  if (!needs_escapes) return shell_quote(s);
  // Bash's $'...' form: every byte that could act on a terminal becomes \xNN.
  std::string out = "$'";
  for (unsigned char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\'') out += "\\'";
    else if (is_hex_escape_needed(c)) out += hex_byte(c);
    else out += static_cast<char>(c);
  }
  return out + "'";
}

}  // namespace capaudit
