// libbpf's messages, sent to spdlog instead of stderr.
//
// Nothing reads them back: which program the kernel refused is found by
// loading one selection at a time (collector.cpp), never by parsing this
// text, which libbpf rewords between releases.
#pragma once

#include <bpf/libbpf.h>

#include <cstdarg>
#include <string>

namespace capaudit {

// Installs the spdlog printer once per process.
void install_libbpf_logging();

// The printer itself (exposed for tests): libbpf's debug lines go to trace,
// info to debug, warnings to warn, or to debug inside a QuietLibbpf scope.
int libbpf_to_spdlog(enum libbpf_print_level level, const char* fmt, va_list ap);

// While alive on this thread, libbpf's warnings are logged at debug level
// only: a refused method is expected while probing, and the collector reports
// it itself, in one line naming the method and the kernel's answer.
class QuietLibbpf {
 public:
  QuietLibbpf();
  ~QuietLibbpf();
  QuietLibbpf(const QuietLibbpf&) = delete;
  QuietLibbpf& operator=(const QuietLibbpf&) = delete;

 private:
  bool prev_;
};

// "Operation not permitted (EPERM)", for a positive or negative errno.
std::string errno_text(int err);

}  // namespace capaudit
