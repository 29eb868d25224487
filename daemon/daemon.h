// capauditd's event loop: signals, drain timer, watchdog and exec events on
// one epoll, with the systemd notifications of a Type=notify service.
#pragma once

#include "collector.h"
#include "config.h"
#include "drainer.h"
#include "exe_paths.h"
#include "fd.h"
#include "kallsyms.h"
#include "store.h"

#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace capaudit {

struct DaemonArgs {
  std::string config_path = "/etc/capaudit/capaudit.json";
  std::optional<std::string> db_path;        // overrides the config
  std::optional<std::string> log_level;      // overrides the config
  std::optional<std::string> attach_method;  // overrides the config
  std::optional<std::string> pin_dir;        // overrides the config; "" disables pinning
};

// Fatal start-up problems; main logs them and exits 1.
// Exit status for a configuration no restart can fix (sysexits' EX_CONFIG):
// the unit's RestartPreventExitStatus= stops systemd retrying it, and its
// Result= then says exit-code with status=78/CONFIG.
inline constexpr int kExitConfig = 78;

struct StartupError : std::runtime_error {
  explicit StartupError(const std::string& what, int exit_status = 1)
      : std::runtime_error(what), exit_status(exit_status) {}
  int exit_status;
};

class Daemon {
 public:
  explicit Daemon(DaemonArgs args);
  ~Daemon();
  // Loads config, opens the store, starts the collector, sends READY=1.
  void start();
  // Runs until SIGTERM/SIGINT; returns the exit code.
  int run();

 private:
  // Opens the store; a damaged capaudit database is moved aside and a new
  // one started (db_note_ says so in STATUS=). Throws StartupError for what
  // no retry fixes (someone else's file, a newer schema); false with *why
  // for what may pass (read-only or full filesystem).
  bool open_database(std::string* why);
  // Renames the database (and its -wal, -shm) to <db>.corrupt-<time>;
  // false with *err when that fails.
  bool move_database_aside(const std::string& why, std::string* err);
  // A drain met damage in the open database: move it aside, start a new
  // one and keep draining into it.
  bool replace_damaged_store(const std::string& why);
  // Starts draining into the store once it is open.
  void attach_store();
  void record_method();
  bool drain_now(const char* why);
  // One drain of every map, in parts; retired_final as begin_prune_step said.
  DrainResult drain_parts(bool retired_final);
  // Pruning the kernel maps (Collector::advance_epoch): before a drain, move
  // the epoch on when due; true when the snapshot read next holds the
  // retired generation's final counts. After a drain that stored them,
  // empty that generation.
  bool begin_prune_step();
  void end_prune_step();
  // After a drain that stored every key the maps held: the tables of
  // executables and cgroups back within their bounds (issue 14 item 3).
  void trim_caches();
  static constexpr time_t kPruneIntervalSec = 6 * 3600;
  time_t last_prune_ = time(nullptr);
  void reload();
  // Sends STATUS=, in one message with `with` (e.g. "READY=1") when given.
  void update_status(std::string_view with = {});
  bool setup_fds();
  void apply_log_level(const std::string& level);
  std::optional<AttachMethod> method_from(const std::string& name);

  DaemonArgs args_;
  Config config_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Collector> collector_;
  std::unique_ptr<ExePathResolver> paths_;
  CgroupCatalog cgroups_;  // names the checks' units and containers (issue 12)
  std::optional<Kallsyms> syms_;
  std::unique_ptr<Drainer> drainer_;
  Fd epfd_, sigfd_, drainfd_, watchdogfd_;
  uint64_t flush_requests_ = 0;  // SIGUSR1s handled, shown in STATUS=
  std::string last_error_;  // the store's last failure, shown in STATUS=
  uint64_t pending_failures_ = 0;
  std::string db_note_;  // a database event worth keeping in STATUS=
};

}  // namespace capaudit
