// Times as text, through the reentrant libc calls only (the daemon's threads
// and the CLI share these).
#pragma once

#include <ctime>
#include <string>

namespace capaudit {

// t in UTC, in strftime's format; "" when t cannot be broken down.
std::string format_utc(time_t t, const char* format = "%Y-%m-%dT%H:%M:%SZ");
// t in the local time zone (trace's wall clock), likewise.
std::string format_local(time_t t, const char* format);

}  // namespace capaudit
