#include "libbpf_log.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <mutex>

namespace capaudit {

namespace {
thread_local bool t_quiet = false;
}  // namespace

int libbpf_to_spdlog(enum libbpf_print_level level, const char* fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = std::vsnprintf(nullptr, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return 0;
  std::string msg(static_cast<size_t>(n) + 1, '\0');
  std::vsnprintf(msg.data(), msg.size(), fmt, ap);
  msg.resize(static_cast<size_t>(n));
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (level == LIBBPF_DEBUG)
    spdlog::trace("{}", msg);
  else if (t_quiet || level == LIBBPF_INFO)
    spdlog::debug("{}", msg);
  else
    spdlog::warn("{}", msg);
  return 0;
}

void install_libbpf_logging() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(libbpf_to_spdlog); });
}

QuietLibbpf::QuietLibbpf() : prev_(t_quiet) { t_quiet = true; }
QuietLibbpf::~QuietLibbpf() { t_quiet = prev_; }

std::string errno_text(int err) {
  if (err < 0) err = -err;
  // ENOTSUPP is kernel-internal (524), unknown to libc.
  if (err == 524) return "Operation not supported (ENOTSUPP)";
  std::string s = std::strerror(err);
  if (const char* name = strerrorname_np(err)) s += fmt::format(" ({})", name);
  return s;
}

}  // namespace capaudit
