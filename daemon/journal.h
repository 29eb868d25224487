// Log lines that carry fields of their own in the journal (CAPAUDIT_*), so
// that `journalctl -o json` shows them and `journalctl CAPAUDIT_ATTACH_METHOD=
// fexit` finds them. Away from systemd they are the plain log line.
#pragma once

#include <spdlog/spdlog.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace capaudit {

using JournalField = std::pair<std::string_view, std::string>;

void log_fields(spdlog::level::level_enum level, const std::string& message,
                std::initializer_list<JournalField> fields);

}  // namespace capaudit
