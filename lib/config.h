// capaudit.json: the daemon's configuration, validated on load and reload.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace capaudit {

// Where the daemon writes and the CLI reads unless told otherwise.
inline constexpr const char* kDefaultDb = "/var/lib/capaudit/capaudit.db";

struct Config {
  std::string database = kDefaultDb;
  uint32_t drain_interval_sec = 10;
  std::string attach_method = "auto";  // auto | fexit | kprobe | tracepoint
  uint32_t max_checks = 65536;
  uint32_t max_origins = 65536;
  uint32_t max_stacks = 16384;
  uint32_t stack_sample_period = 1024;
  std::string log_level = "info";
  std::string pin_dir = "/sys/fs/bpf/capaudit";
  bool pin = true;
  uint32_t retention_days = 0;        // 0: keep forever
  std::vector<std::string> ignore_paths;  // path prefixes not stored
  std::string kallsyms = "/proc/kallsyms";
};

struct ConfigResult {
  std::optional<Config> config;
  std::string error;  // "FILE:LINE: key 'x': expected ..." when config is empty
};

// A missing file gives the defaults; a malformed one an error naming the
// file, the line and the key at fault. Unknown keys are errors (typos must
// not silently fall back to defaults).
ConfigResult load_config(const std::string& path);
ConfigResult parse_config(const std::string& text, const std::string& name_for_errors);

}  // namespace capaudit
