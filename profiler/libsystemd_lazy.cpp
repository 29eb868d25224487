// libsystemd, loaded by the first command that asks systemd about a unit
// (groups_systemd.cpp) instead of at every start: linked in, it and the six
// libraries it pulls (libgcrypt, liblzma, libzstd, ...) are loaded and
// relocated before main by every command (issue 14). These are the entry
// points groups_systemd.cpp calls (lib/lazy_library.h). capauditd links
// libsystemd itself: it notifies systemd from its first second.
#include "lazy_library.h"

#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>

namespace {
capaudit::LazyLibrary libsystemd("libsystemd.so.0", "the systemd library");
}

#define CAPAUDIT_LIBSYSTEMD(ret, name, params, args) CAPAUDIT_LAZY(libsystemd, ret, name, params, args)

CAPAUDIT_LIBSYSTEMD(int, sd_booted, (void), ())
CAPAUDIT_LIBSYSTEMD(int, sd_bus_new, (sd_bus * *ret), (ret))
CAPAUDIT_LIBSYSTEMD(int, sd_bus_set_address, (sd_bus * bus, const char* address), (bus, address))
CAPAUDIT_LIBSYSTEMD(int, sd_bus_start, (sd_bus * bus), (bus))
CAPAUDIT_LIBSYSTEMD(int, sd_bus_open_system, (sd_bus * *ret), (ret))
CAPAUDIT_LIBSYSTEMD(sd_bus*, sd_bus_unref, (sd_bus * bus), (bus))
CAPAUDIT_LIBSYSTEMD(sd_bus*, sd_bus_flush_close_unref, (sd_bus * bus), (bus))
CAPAUDIT_LIBSYSTEMD(int, sd_bus_path_encode, (const char* prefix, const char* external_id, char** ret_path),
                    (prefix, external_id, ret_path))
CAPAUDIT_LIBSYSTEMD(int, sd_bus_get_property_string,
                    (sd_bus * bus, const char* destination, const char* path, const char* interface,
                     const char* member, sd_bus_error* ret_error, char** ret),
                    (bus, destination, path, interface, member, ret_error, ret))
CAPAUDIT_LIBSYSTEMD(int, sd_bus_get_property_trivial,
                    (sd_bus * bus, const char* destination, const char* path, const char* interface,
                     const char* member, sd_bus_error* ret_error, char type, void* ret_ptr),
                    (bus, destination, path, interface, member, ret_error, type, ret_ptr))
CAPAUDIT_LIBSYSTEMD(int, sd_bus_error_is_set, (const sd_bus_error* e), (e))
CAPAUDIT_LIBSYSTEMD(void, sd_bus_error_free, (sd_bus_error * e), (e))
