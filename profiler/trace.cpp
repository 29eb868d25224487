// capaudit trace: one line per check while it runs, like bcc's capable.
// The only mode that streams events to user space.
#include "capnames.h"
#include "collector.h"
#include "commands.h"
#include "fd.h"
#include "kallsyms.h"
#include "time_util.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>

namespace capaudit {

namespace {

std::string wall_clock() { return format_local(time(nullptr), "%H:%M:%S"); }

std::vector<std::string> kernel_frames(const ca_check_event& ev, const Kallsyms* syms) {
  std::vector<std::string> frames;
  for (int i = 0; i < ev.kstack_len / 8 && i < CA_MAX_STACK_DEPTH; i++) {
    if (!ev.kstack[i]) break;
    if (syms) {
      frames.push_back(syms->symbolize(ev.kstack[i]));
    } else {
      char buf[32];
      snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(ev.kstack[i]));
      frames.emplace_back(buf);
    }
  }
  return frames;
}

std::vector<std::string> user_frames(const ca_check_event& ev) {
  std::vector<std::string> frames;
  for (int i = 0; i < ev.ustack_len / 8 && i < CA_MAX_STACK_DEPTH; i++) {
    if (!ev.ustack[i]) break;
    char buf[32];
    snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(ev.ustack[i]));
    frames.emplace_back(buf);
  }
  return frames;
}

// The tracepoint carries no audit flag: a check whose origin is a known
// probe counts as non-audit, as the profiler would judge it.
bool is_non_audit(const ca_check_event& ev, const std::vector<std::string>& frames) {
  if (ev.key.audit == CA_AUDIT_NO) return true;
  if (ev.key.audit == CA_AUDIT_YES) return false;
  const Rule* r = Rules::builtin().match(ev.key.cap, stack_origin(frames), frames);
  return r && r->kind == RuleKind::Probe;
}

}  // namespace

int cmd_trace(const TraceArgs& a) {
  std::string err;
  std::optional<Kallsyms> syms = Kallsyms::load("/proc/kallsyms", &err);
  if (!syms && a.kernel_stacks) std::cerr << "capaudit trace: kernel stacks unsymbolised: " << err << "\n";

  CollectorOptions co;
  co.stream_checks = true;
  co.only_tgid = a.pid;
  co.stack_sample_period = 0;
  // Without the audit flag, the stack decides what -v would hide.
  co.stream_kernel_stacks = true;
  co.stream_user_stacks = a.user_stacks;
  std::unique_ptr<Collector> collector;
  try {
    collector = Collector::start(co);
  } catch (const CollectorError& e) {
    std::cerr << "capaudit trace: " << e.what() << "\n";
    return 1;
  }
  if (!a.json) {
    std::cerr << "Tracing capability checks (attach method " << method_name(collector->method())
              << (collector->method() == AttachMethod::Tracepoint ? ", audit from stack origin" : "")
              << ")... Ctrl-C to end.\n";
    printf("%-9s %-6s %-7s %-16s %-4s %-22s %-6s %s\n", "TIME", "UID", "PID", "COMM", "CAP", "NAME", "AUDIT",
           "VERDICT");
    fflush(stdout);
  }

  collector->on_check([&](const ca_check_event& ev) {
    std::vector<std::string> kframes = kernel_frames(ev, syms ? &*syms : nullptr);
    bool non_audit = is_non_audit(ev, kframes);
    if (non_audit && !a.verbose) return;
    std::string comm(ev.task_comm, strnlen(ev.task_comm, sizeof ev.task_comm));
    bool granted = ev.key.ret == 0;
    nlohmann::json audit = ev.key.audit == CA_AUDIT_UNKNOWN ? nlohmann::json(nullptr)
                                                             : nlohmann::json(ev.key.audit == CA_AUDIT_YES);
    if (a.json) {
      nlohmann::json j = {{"time", wall_clock()},
                          {"uid", ev.key.uid},
                          {"euid", ev.key.euid},
                          {"pid", ev.tgid},
                          {"tid", ev.pid},
                          {"comm", comm},
                          {"cap", ev.key.cap},
                          {"capability", cap_name(ev.key.cap)},
                          {"audit", audit},
                          {"non_audit", non_audit},
                          {"verdict", granted ? "granted" : "denied"},
                          {"syscall", ev.key.syscall_nr},
                          {"user_namespace_level", ev.key.target_ns_level},
                          {"origin", stack_origin(kframes)}};
      if (a.kernel_stacks) j["kernel_stack"] = kframes;
      if (a.user_stacks) j["user_stack"] = user_frames(ev);
      printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      const char* audit_text = ev.key.audit == CA_AUDIT_UNKNOWN ? (non_audit ? "0?" : "1?")
                               : ev.key.audit == CA_AUDIT_YES   ? "1"
                                                                : "0";
      printf("%-9s %-6u %-7u %-16s %-4u %-22s %-6s %s\n", wall_clock().c_str(), ev.key.uid, ev.tgid,
             quote_for_display(comm).c_str(), ev.key.cap, cap_name(ev.key.cap).c_str(), audit_text,
             granted ? "granted" : "denied");
      if (a.kernel_stacks)
        for (auto& f : kframes) printf("        %s\n", f.c_str());
      if (a.user_stacks)
        for (auto& f : user_frames(ev)) printf("        %s\n", f.c_str());
    }
    fflush(stdout);
  });

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  Fd sfd(signalfd(-1, &mask, SFD_CLOEXEC));
  for (;;) {
    pollfd fds[2] = {{collector->events_fd(), POLLIN, 0}, {sfd.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (fds[0].revents) collector->poll_events(0);
    if (fds[1].revents) break;
  }
  collector->poll_events(0);
  CollectorStats st = collector->stats();
  if (st[CA_STAT_RINGBUF_DROPS] > 0)
    std::cerr << "capaudit trace: " << st[CA_STAT_RINGBUF_DROPS] << " events lost (ring buffer full)\n";
  return 0;
}

}  // namespace capaudit
