#include "time_util.h"

namespace capaudit {

namespace {

std::string format_tm(const tm& t, const char* format) {
  char buf[64];
  size_t n = strftime(buf, sizeof buf, format, &t);
  return std::string(buf, n);
}

}  // namespace

std::string format_utc(time_t t, const char* format) {
  tm broken{};
  if (!gmtime_r(&t, &broken)) return "";
  return format_tm(broken, format);
}

std::string format_local(time_t t, const char* format) {
  tm broken{};
  if (!localtime_r(&t, &broken)) return "";
  return format_tm(broken, format);
}

}  // namespace capaudit
