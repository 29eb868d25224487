// A unit's User= and capability settings, asked of systemd itself when
// grouping (issue 12): `systemctl show -p User,DynamicUser,...` without a
// child process. As root, the manager's private socket answers even where
// no D-Bus broker runs (as systemctl does); otherwise the system bus.
#include "groups.h"

#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace capaudit {
namespace {

constexpr const char* kDest = "org.freedesktop.systemd1";
constexpr const char* kPrivate = "unix:path=/run/systemd/private";

struct BusUnref {
  void operator()(sd_bus* b) const { sd_bus_flush_close_unref(b); }
};
using Bus = std::unique_ptr<sd_bus, BusUnref>;

struct FreeChars {
  void operator()(char* p) const { free(p); }
};
using CString = std::unique_ptr<char, FreeChars>;

std::string errno_text(int r) { return std::strerror(r < 0 ? -r : r); }

// nullptr with *why when systemd cannot be reached.
Bus connect(std::string* why) {
  if (sd_booted() <= 0) {
    *why = "systemd is not the init system here";
    return nullptr;
  }
  sd_bus* raw = nullptr;
  if (geteuid() == 0 && access("/run/systemd/private", F_OK) == 0) {
    int r = sd_bus_new(&raw);
    if (r >= 0) r = sd_bus_set_address(raw, kPrivate);
    if (r >= 0) r = sd_bus_start(raw);
    if (r >= 0) return Bus(raw);
    sd_bus_unref(raw);
    raw = nullptr;
  }
  int r = sd_bus_open_system(&raw);
  if (r < 0) {
    *why = "cannot reach systemd over D-Bus: " + errno_text(r);
    return nullptr;
  }
  return Bus(raw);
}

class SystemdUnits {
 public:
  std::optional<UnitSettings> get(const std::string& unit, std::string* why) {
    if (!tried_) {
      tried_ = true;
      bus_ = connect(&connect_error_);
    }
    if (!bus_) {
      *why = connect_error_;
      return std::nullopt;
    }
    // Only services carry User= and the capability settings; a scope's
    // processes keep what their starter gave them.
    if (unit.size() < 8 || unit.compare(unit.size() - 8, 8, ".service") != 0) {
      *why = "only a service has User=";
      return std::nullopt;
    }
    char* p = nullptr;
    if (int r = sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit.c_str(), &p); r < 0) {
      *why = "cannot name the unit on D-Bus: " + errno_text(r);
      return std::nullopt;
    }
    CString path(p);
    std::string load_state;
    if (!string_property(path.get(), "org.freedesktop.systemd1.Unit", "LoadState", &load_state, why))
      return std::nullopt;
    if (load_state != "loaded") {
      *why = "systemd does not have it loaded (LoadState=" + load_state + ")";
      return std::nullopt;
    }
    constexpr const char* svc = "org.freedesktop.systemd1.Service";
    UnitSettings s;
    int dynamic = 0;
    if (!string_property(path.get(), svc, "User", &s.user, why) ||
        !trivial_property(path.get(), svc, "DynamicUser", 'b', &dynamic, why) ||
        !trivial_property(path.get(), svc, "CapabilityBoundingSet", 't', &s.bounding, why) ||
        !trivial_property(path.get(), svc, "AmbientCapabilities", 't', &s.ambient, why))
      return std::nullopt;
    s.dynamic_user = dynamic != 0;
    return s;
  }

 private:
  bool string_property(const char* path, const char* iface, const char* name, std::string* out, std::string* why) {
    sd_bus_error e = SD_BUS_ERROR_NULL;
    char* v = nullptr;
    int r = sd_bus_get_property_string(bus_.get(), kDest, path, iface, name, &e, &v);
    return finish(r, &e, name, why) && (out->assign(CString(v).get()), true);
  }
  bool trivial_property(const char* path, const char* iface, const char* name, char type, void* out,
                        std::string* why) {
    sd_bus_error e = SD_BUS_ERROR_NULL;
    int r = sd_bus_get_property_trivial(bus_.get(), kDest, path, iface, name, &e, type, out);
    return finish(r, &e, name, why);
  }
  static bool finish(int r, sd_bus_error* e, const char* name, std::string* why) {
    if (r < 0)
      *why = std::string("systemd did not say its ") + name + ": " +
             (sd_bus_error_is_set(e) && e->message ? e->message : errno_text(r));
    sd_bus_error_free(e);
    return r >= 0;
  }

  bool tried_ = false;
  Bus bus_;
  std::string connect_error_;
};

}  // namespace

UnitLookup systemd_unit_lookup() {
  auto units = std::make_shared<SystemdUnits>();
  return [units](const std::string& unit, std::string* why) { return units->get(unit, why); };
}

}  // namespace capaudit
