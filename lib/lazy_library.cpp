#include "lazy_library.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

namespace capaudit {

void* LazyLibrary::symbol(const char* name) {
  std::call_once(opened_, [this] {
    handle_ = dlopen(soname_, RTLD_NOW | RTLD_LOCAL);
    if (!handle_) unavailable(dlerror());
  });
  void* p = dlsym(handle_, name);
  if (!p) unavailable(dlerror());
  return p;
}

void LazyLibrary::unavailable(const char* why) const {
  std::fprintf(stderr, "capaudit: cannot load %s %s: %s\n", what_, soname_, why);
  std::exit(1);
}

}  // namespace capaudit
