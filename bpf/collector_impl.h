// What a started Collector owns, shared by the files that make it up:
// collector.cpp (open, configure, load, attach), pins.cpp (pinning),
// maps.cpp (reading maps), ringbuf.cpp (events).
#pragma once

#include "collector.h"
#include "configure.h"
#include "owners.h"

#include <functional>
#include <string>
#include <vector>

namespace capaudit {

struct PinPlan;

struct Collector::Impl {
  // Declaration order is teardown order reversed: ring buffer, then links,
  // then the object they belong to.
  SkelPtr skel;
  std::vector<LinkPtr> cap_links;   // method_programs() order
  std::vector<LinkPtr> task_links;  // exec first
  // fentry/fexit on the inline decision sites (site_link_pin_names(sites)
  // order) and on security_capable (kFinalLinkPins order): pinned and adopted
  // with cap_links, all or none.
  std::vector<LinkPtr> site_links;
  std::vector<std::string> sites;
  std::vector<LinkPtr> final_links;
  std::vector<LinkPtr> inspect_links;  // capget/prctl tracepoints: never pinned
  // tp_btf/cgroup_mkdir: never pinned; a restarted daemon scans the mount.
  std::vector<LinkPtr> cgroup_links;
  RingBufferPtr rb;

  CollectorOptions opts;
  AttachMethod method = AttachMethod::Tracepoint;
  std::vector<MethodAttempt> passed_over;
  bool old_audit = false;
  bool guard_sites = false;  // loaded with inline-site programs (config_hash)
  bool adopted = false;       // the pinned cap_capable link (and its program)
  bool maps_adopted = false;  // the pinned maps, with or without their link
  bool exec_adopted = false;
  bool pinned = false;
  int ncpus = 1;
  std::function<void(const ca_exec_event&)> exec_cb;
  std::function<void(const ca_check_event&)> check_cb;
  std::function<void(const ca_cgroup_event&)> cgroup_cb;

  // pins.cpp: pins maps and links (or keeps adopted ones) and writes the
  // meta a later run checks before adopting. Throws CollectorError.
  void pin_state(const PinPlan& plan);
  // pins.cpp: removes the pins and their directory, if this run pinned.
  void remove_pinned_state();
  // ringbuf.cpp: one reader over the ring buffers in use. Throws CollectorError.
  void setup_events(bool exec_events, bool cgroup_events);
};

}  // namespace capaudit
