#include "journal.h"

#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include <cstdlib>
#include <vector>

namespace capaudit {

namespace {

// The same test main.cpp makes to choose the journal sink.
bool under_journal() { return getenv("JOURNAL_STREAM") || getenv("INVOCATION_ID"); }

int syslog_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::critical: return 2;
    case spdlog::level::err: return 3;
    case spdlog::level::warn: return 4;
    case spdlog::level::info: return 6;
    default: return 7;
  }
}

}  // namespace

void log_fields(spdlog::level::level_enum level, const std::string& message,
                std::initializer_list<JournalField> fields) {
  if (!spdlog::should_log(level)) return;
  if (!under_journal()) {
    spdlog::log(level, "{}", message);
    return;
  }
  std::vector<std::string> items = {"MESSAGE=" + message, "PRIORITY=" + std::to_string(syslog_priority(level)),
                                    "SYSLOG_IDENTIFIER=capauditd"};
  for (auto& [name, value] : fields) items.push_back(std::string(name) + "=" + value);
  std::vector<iovec> iov;
  for (auto& s : items) iov.push_back({s.data(), s.size()});
  if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) < 0) spdlog::log(level, "{}", message);
}

}  // namespace capaudit
