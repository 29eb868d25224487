#include "config.h"

#include "fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

namespace capaudit {
namespace {

using nlohmann::json;

struct KeyOccurrence {
  std::string key;
  int line;
};

// nlohmann keeps no source positions, so find where each top-level key sits
// by tokenising just enough (strings and nesting) of the already-validated
// text; a key name inside a string value or a nested object cannot match.
std::vector<KeyOccurrence> top_level_keys(std::string_view text) {
  std::vector<KeyOccurrence> keys;
  int depth = 0;
  int line = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\n') {
      ++line;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      --depth;
    } else if (c == '"') {
      size_t start = i;
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\') ++i;  // JSON strings cannot hold raw newlines
      }
      if (depth != 1) continue;
      size_t after = text.find_first_not_of(" \t\r\n", i + 1);
      if (after == std::string_view::npos || text[after] != ':') continue;
      std::string key;
      try {
        key = json::parse(text.substr(start, i + 1 - start)).get<std::string>();
      } catch (const json::exception&) {
        continue;  // cannot happen for text nlohmann accepted
      }
      keys.push_back({std::move(key), line});
    }
  }
  return keys;
}

int line_of_first_token(std::string_view text) {
  size_t pos = text.find_first_not_of(" \t\r\n");
  if (pos == std::string_view::npos) pos = text.size();
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + pos, '\n'));
}

std::string syntax_error(const json::parse_error& e, std::string_view text,
                         const std::string& name) {
  // e.byte is the 1-based index of the last character read (one past the
  // end for a premature end of input), as nlohmann counts for its message.
  size_t idx = e.byte > 0 ? e.byte - 1 : 0;
  size_t end = std::min(idx, text.size());
  int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + end, '\n'));
  size_t last_nl = text.rfind('\n', end == 0 ? std::string_view::npos : end - 1);
  size_t col = end == 0 || last_nl == std::string_view::npos ? idx + 1 : idx - last_nl;

  // Keep nlohmann's explanation, drop its position prefix and error id:
  // "[json.exception.parse_error.101] parse error at line 3, column 1: syntax
  // error while parsing object key - unexpected '}'; expected string literal".
  std::string_view what = e.what();
  if (size_t p = what.find("syntax error "); p != std::string_view::npos) {
    what.remove_prefix(p + std::strlen("syntax error "));
    if (size_t dash = what.find(" - "); dash != std::string_view::npos) {
      what.remove_prefix(dash + 3);
    }
  } else if (size_t p = what.find(": "); p != std::string_view::npos) {
    what.remove_prefix(p + 2);
  }
  return name + ":" + std::to_string(line) + ":" + std::to_string(col) +
         ": syntax error: " + std::string(what);
}

std::string shown(const json& value) {
  std::string text = value.dump();
  constexpr size_t kMax = 60;
  if (text.size() > kMax) text = text.substr(0, kMax) + "...";
  return text;
}

// Validators fill the field and return an empty string, or the complaint
// ("expected ..., got ...").
using Setter = std::function<std::string(const json&, Config&)>;

std::string expect_uint(const json& v, uint64_t lo, uint64_t hi, uint32_t& out) {
  std::string expected = "expected an integer from " + std::to_string(lo) + " to " +
                         std::to_string(hi) + ", got " + shown(v);
  if (!v.is_number_integer()) return expected;
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u < lo || u > hi) return expected;
    out = static_cast<uint32_t>(u);
    return {};
  }
  int64_t i = v.get<int64_t>();
  if (i < 0 || static_cast<uint64_t>(i) < lo || static_cast<uint64_t>(i) > hi) return expected;
  out = static_cast<uint32_t>(i);
  return {};
}

Setter uint_in(uint32_t Config::*field, uint64_t lo, uint64_t hi) {
  return [=](const json& v, Config& c) { return expect_uint(v, lo, hi, c.*field); };
}

Setter one_of(std::string Config::*field, std::vector<std::string> choices) {
  return [field, choices = std::move(choices)](const json& v, Config& c) -> std::string {
    if (v.is_string()) {
      const auto& s = v.get_ref<const std::string&>();
      if (std::find(choices.begin(), choices.end(), s) != choices.end()) {
        c.*field = s;
        return {};
      }
    }
    std::string expected = "expected one of ";
    for (size_t i = 0; i < choices.size(); ++i) {
      if (i) expected += ", ";
      expected += json(choices[i]).dump();
    }
    return expected + ", got " + shown(v);
  };
}

bool is_absolute_path(const json& v) {
  return v.is_string() && v.get_ref<const std::string&>().starts_with('/');
}

// Relative paths would depend on the daemon's working directory, which
// systemd sets to "/" and a developer's shell to anything.
Setter absolute_path(std::string Config::*field) {
  return [field](const json& v, Config& c) -> std::string {
    if (!is_absolute_path(v)) return "expected an absolute path, got " + shown(v);
    c.*field = v.get<std::string>();
    return {};
  };
}

const std::vector<std::pair<std::string_view, Setter>>& setters() {
  static const std::vector<std::pair<std::string_view, Setter>> table = {
      {"database", absolute_path(&Config::database)},
      {"drain_interval_sec", uint_in(&Config::drain_interval_sec, 1, 3600)},
      {"attach_method",
       one_of(&Config::attach_method, {"auto", "fexit", "kprobe", "tracepoint"})},
      {"max_checks", uint_in(&Config::max_checks, 1, 16777216)},
      {"max_origins", uint_in(&Config::max_origins, 1, 16777216)},
      {"max_stacks", uint_in(&Config::max_stacks, 1, 16777216)},
      {"stack_sample_period", uint_in(&Config::stack_sample_period, 0, 2147483648u)},
      {"log_level", one_of(&Config::log_level, {"trace", "debug", "info", "warn", "error",
                                                "critical", "off"})},
      {"pin_dir", absolute_path(&Config::pin_dir)},
      {"pin",
       [](const json& v, Config& c) -> std::string {
         if (!v.is_boolean()) return "expected true or false, got " + shown(v);
         c.pin = v.get<bool>();
         return {};
       }},
      {"retention_days", uint_in(&Config::retention_days, 0, 36500)},
      {"ignore_paths",
       [](const json& v, Config& c) -> std::string {
         if (!v.is_array()) return "expected an array of absolute paths, got " + shown(v);
         std::vector<std::string> paths;
         for (size_t i = 0; i < v.size(); ++i) {
           if (!is_absolute_path(v[i])) {
             return "element " + std::to_string(i) + ": expected an absolute path, got " +
                    shown(v[i]);
           }
           paths.push_back(v[i].get<std::string>());
         }
         c.ignore_paths = std::move(paths);
         return {};
       }},
      {"kallsyms", absolute_path(&Config::kallsyms)},
  };
  return table;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string unknown_key_message(std::string_view key) {
  std::string_view best;
  size_t best_distance = 3;  // further than this is not a typo
  for (const auto& [name, setter] : setters()) {
    size_t d = edit_distance(key, name);
    if (d < best_distance) {
      best = name;
      best_distance = d;
    }
  }
  if (best.empty()) return "unknown key";
  return "unknown key (did you mean '" + std::string(best) + "'?)";
}

}  // namespace

ConfigResult parse_config(const std::string& text, const std::string& name_for_errors) {
  const std::string& name = name_for_errors;
  // The JSON parser takes a NUL byte for the end of the text, while the key
  // scanner below reads on: the two would disagree about what the file says.
  if (size_t nul = text.find('\0'); nul != std::string::npos) {
    return {std::nullopt, name + ":" + std::to_string(1 + std::count(text.begin(), text.begin() + nul, '\n')) +
                              ": a NUL byte: not a text file"};
  }
  json doc;
  try {
    doc = json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/true,
                      /*ignore_comments=*/false);
  } catch (const json::parse_error& e) {
    return {std::nullopt, syntax_error(e, text, name)};
  } catch (const json::exception& e) {
    // A number too large for any JSON number type ("1e999"): nlohmann
    // names the literal but not where it is.
    std::string_view what = e.what();
    std::string literal;
    if (size_t q = what.find('\''); q != std::string_view::npos) {
      size_t q2 = what.find('\'', q + 1);
      if (q2 != std::string_view::npos) literal = std::string(what.substr(q + 1, q2 - q - 1));
    }
    size_t at = literal.empty() ? std::string::npos : text.find(literal);
    std::string where = at == std::string::npos
                            ? ""
                            : ":" + std::to_string(1 + std::count(text.begin(), text.begin() + at, '\n'));
    return {std::nullopt, name + where + ": " +
                              (literal.empty() ? std::string(what) : "number out of range: " + literal)};
  }
  if (!doc.is_object()) {
    return {std::nullopt, name + ":" + std::to_string(line_of_first_token(text)) +
                              ": expected a JSON object at the top level, got " +
                              doc.type_name()};
  }

  Config config;
  std::vector<std::string> seen;
  // In file order, so the first problem reported is the first in the file.
  for (const KeyOccurrence& occ : top_level_keys(text)) {
    auto fail = [&](const std::string& what) {
      return ConfigResult{std::nullopt, name + ":" + std::to_string(occ.line) + ": key '" +
                                            occ.key + "': " + what};
    };
    // nlohmann keeps the last of duplicate keys; which one the user meant to
    // win is a guess, so refuse.
    if (std::find(seen.begin(), seen.end(), occ.key) != seen.end()) {
      return fail("duplicate key");
    }
    seen.push_back(occ.key);
    const auto& table = setters();
    auto it = std::find_if(table.begin(), table.end(),
                           [&](const auto& entry) { return entry.first == occ.key; });
    if (it == table.end()) return fail(unknown_key_message(occ.key));
    auto found = doc.find(occ.key);
    if (found == doc.end()) return fail("not understood here (is it inside a string or a comment?)");
    const json& value = *found;
    if (std::string complaint = it->second(value, config); !complaint.empty()) {
      return fail(complaint);
    }
  }
  return {std::move(config), {}};
}

ConfigResult load_config(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    // No file is a supported setup: the defaults are documented to work.
    if (errno == ENOENT) return {Config{}, {}};
    return {std::nullopt, path + ": " + std::strerror(errno)};
  }
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return {std::nullopt, path + ": " + std::strerror(errno)};  // EISDIR for a directory
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  fd.reset();
  return parse_config(text, path);
}

}  // namespace capaudit
