// A shared library opened by the first call that needs it instead of at
// every start. Each library linked in costs every command its loading and
// relocating before main (libcrypto alone binds about 4,000 symbols, most of
// what `report --binary` spent before reading anything: issue 14), though
// only a few commands call into it.
//
// CAPAUDIT_LAZY defines one of the library's own entry points, forwarding to
// the library opened on first use. Its definition must match the library
// header's declaration (the compiler holds it to it); a function that starts
// to be used needs its line, or the link fails. The files of these lines are
// compiled with -fvisibility=hidden (CMakeLists.txt), so the library's own
// calls never bind to them.
#pragma once

#include <mutex>

namespace capaudit {

class LazyLibrary {
 public:
  // `what` names it for the user: "the PostgreSQL client library".
  constexpr LazyLibrary(const char* soname, const char* what) : soname_(soname), what_(what) {}
  // Without the library or the symbol (the package depends on it), the
  // command stops here, as when the dynamic linker misses a library.
  void* symbol(const char* name);

 private:
  [[noreturn]] void unavailable(const char* why) const;

  const char* soname_;
  const char* what_;
  std::once_flag opened_;
  void* handle_ = nullptr;
};

}  // namespace capaudit

#define CAPAUDIT_LAZY(library, ret, name, params, args)                              \
  extern "C" ret name params {                                                       \
    static const auto real = reinterpret_cast<ret(*) params>((library).symbol(#name)); \
    return real args;                                                                \
  }
