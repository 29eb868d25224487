#include "daemon.h"

#include "journal.h"
#include "time_util.h"

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>

namespace capaudit {

namespace {

void arm_timer(int fd, uint64_t usec) {
  itimerspec its{};
  its.it_value.tv_sec = static_cast<time_t>(usec / 1000000);
  its.it_value.tv_nsec = static_cast<long>((usec % 1000000) * 1000);
  its.it_interval = its.it_value;
  timerfd_settime(fd, 0, &its, nullptr);
}

void drain_fd(int fd) {
  uint64_t expirations;
  while (read(fd, &expirations, sizeof expirations) > 0) {
  }
}

// A line of /proc/self/status in KiB ("VmRSS", "VmHWM"), for the debug log.
long status_kib(const char* field) {
  FILE* f = fopen("/proc/self/status", "re");
  if (!f) return -1;
  char line[256];
  long v = -1;
  const size_t n = strlen(field);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0 && line[n] == ':') {
      v = strtol(line + n + 1, nullptr, 10);
      break;
    }
  fclose(f);
  return v;
}

uint64_t monotonic_usec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

}  // namespace

Daemon::Daemon(DaemonArgs args) : args_(std::move(args)) {}

Daemon::~Daemon() = default;

void Daemon::apply_log_level(const std::string& level) {
  spdlog::set_level(spdlog::level::from_str(level));
}

std::optional<AttachMethod> Daemon::method_from(const std::string& name) {
  if (name == "auto") return std::nullopt;
  auto m = parse_method(name);
  if (!m)
    throw StartupError("unknown attach method '" + name + "' (auto, fexit, kprobe, tracepoint)", kExitConfig);
  return m;
}

void Daemon::start() {
  // Blocks of 128 KiB and more (the drain's tables and chunks, libbpf's
  // BTF) straight from mmap and back to the kernel when freed. Left to
  // glibc, the threshold rises to the largest block freed (BTF: 17 MiB),
  // and every block below it is carved from the heap, which then holds the
  // holes of each table that grew: resident, never given back.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  mallopt(M_TRIM_THRESHOLD, 256 * 1024);
  ConfigResult cr = load_config(args_.config_path);
  if (!cr.config) throw StartupError(cr.error, kExitConfig);
  config_ = *cr.config;
  if (args_.db_path) config_.database = *args_.db_path;
  if (args_.log_level) config_.log_level = *args_.log_level;
  if (args_.attach_method) config_.attach_method = *args_.attach_method;
  if (args_.pin_dir) {
    config_.pin = !args_.pin_dir->empty();
    config_.pin_dir = *args_.pin_dir;
  }
  apply_log_level(config_.log_level);
  spdlog::info("capauditd starting: config '{}', database '{}'", args_.config_path, config_.database);

  // A database that cannot be written yet (read-only or full filesystem)
  // does not stop counting: the kernel keeps the counts until it opens.
  std::string db_err;
  if (!open_database(&db_err)) {
    last_error_ = db_err;
    pending_failures_ = 1;
    spdlog::error("database unavailable: {}; counting goes on in the kernel and is written once it opens",
                  db_err);
  }

  paths_ = std::make_unique<ExePathResolver>();
  size_t known = paths_->scan_proc();
  spdlog::debug("learned {} executables from /proc", known);

  CollectorOptions co;
  co.forced_method = method_from(config_.attach_method);
  co.max_checks = config_.max_checks;
  co.max_origins = config_.max_origins;
  co.max_stacks = config_.max_stacks;
  co.stack_sample_period = config_.stack_sample_period;
  co.cgroup_events = true;
  if (config_.pin) co.pin_dir = config_.pin_dir;
  try {
    collector_ = Collector::start(co);
  } catch (const CollectorError& e) {
    throw StartupError(e.what());
  }
  // Loading BPF parses the kernel's BTF (megabytes, freed again): give that
  // memory back before the symbol table takes its share, so the peak is
  // the larger of the two, not their sum.
  malloc_trim(0);
  spdlog::debug("memory after loading BPF: rss {} KiB, peak {} KiB", status_kib("VmRSS"), status_kib("VmHWM"));
  std::string kerr;
  syms_ = Kallsyms::load(config_.kallsyms, &kerr);
  if (!syms_) spdlog::warn("kernel stacks will be stored unsymbolised: {}", kerr);
  malloc_trim(0);

  // The collector has logged each method passed over and why.
  const bool tracepoint = collector_->method() == AttachMethod::Tracepoint;
  log_fields(spdlog::level::info,
             fmt::format("attach method '{}' in use{}", method_name(collector_->method()),
                         tracepoint ? " (no audit flag: audit vs non-audit comes from the stack origin)" : ""),
             {{"CAPAUDIT_ATTACH_METHOD", std::string(method_name(collector_->method()))},
              {"CAPAUDIT_AUDIT_FLAG", tracepoint ? "unknown" : "known"},
              {"CAPAUDIT_ADOPTED_PINS", collector_->adopted_maps() ? "1" : "0"},
              {"CAPAUDIT_ADOPTED_LINK", collector_->adopted_link() ? "1" : "0"}});
  if (collector_->adopted_maps())
    spdlog::info("adopted pinned maps under '{}'{}: counts made while the daemon was down are drained now",
                 config_.pin_dir,
                 collector_->adopted_link() ? "" : " (with this build's program and settings attached in place "
                                                   "of the pinned one)");
  collector_->on_exec([this](const ca_exec_event& ev) {
    paths_->learn_exec(ev);
    // A container's entrypoint execs once its runtime's state files are
    // written, and may be gone (--rm) before the next drain: name it now.
    if (cgroups_.pending()) cgroups_.name_pending(time(nullptr));
  });
  collector_->on_cgroup([this](const ca_cgroup_event& ev) {
    cgroups_.learn(ev.id, std::string_view(ev.path, strnlen(ev.path, sizeof ev.path)), time(nullptr));
  });

  if (store_) attach_store();

  if (!setup_fds()) throw StartupError(std::string("event loop setup failed: ") + std::strerror(errno));
  if (collector_->adopted_maps()) {
    // Execs queued while the daemon was down name their binaries first.
    collector_->poll_events(0);
    drain_now("adopted pins");
  }
  // One message: a STATUS= sent after READY=1 could be taken for the answer
  // to whatever the service manager (or a test) asks next.
  update_status("READY=1");
  spdlog::info("ready: draining every {} s", config_.drain_interval_sec);
  spdlog::debug("memory: rss {} KiB, peak {} KiB", status_kib("VmRSS"), status_kib("VmHWM"));
}

namespace {

// Where a damaged database goes: beside it, named by the time it was found.
std::string aside_name(const std::string& db) {
  std::string base = db + ".corrupt-" + format_utc(time(nullptr), "%Y%m%dT%H%M%SZ");
  std::string name = base;
  for (int i = 1; std::filesystem::exists(name) || std::filesystem::exists(name + "-wal"); i++)
    name = base + "." + std::to_string(i);
  return name;
}

}  // namespace

bool Daemon::open_database(std::string* retry_why) {
  const std::string& db = config_.database;
  // The database holds what every user ran: not for other users' eyes.
  std::filesystem::path db_dir = std::filesystem::path(db).parent_path();
  if (!db_dir.empty() && !std::filesystem::exists(db_dir)) {
    std::error_code ec;
    std::filesystem::create_directories(db_dir, ec);
    if (ec) {
      *retry_why = "cannot create database directory '" + db_dir.string() + "': " + ec.message();
      return false;
    }
    chmod(db_dir.c_str(), 0700);
  }
  std::string err, why;
  Store::OpenFailure failure = Store::OpenFailure::None;
  store_ = Store::open(db, &err, false, &failure);
  if (store_) {
    if (store_->check_integrity(&why)) {
      chmod(db.c_str(), 0600);
      return true;
    }
    // Opened, so the header is ours (or the file was empty): the damage is
    // further in.
    store_.reset();
  } else if (failure == Store::OpenFailure::Damaged) {
    // Only a file that says it is capaudit's (or whose header was zeroed
    // by a crash) is moved: a wrong --db must never move someone else's file.
    Store::FileKind kind = Store::identify(db);
    if (kind != Store::FileKind::Capaudit && kind != Store::FileKind::Zeroed)
      throw StartupError(err + "; it is not recognisably capaudit's, so it is left alone: "
                               "point --db (or \"database\" in the config) at capaudit's database",
                         kExitConfig);
    why = err;
    for (const std::string& prefix : {"database '" + db + "' cannot be read: ", "database '" + db + "' "})
      if (why.rfind(prefix, 0) == 0) {
        why.erase(0, prefix.size());
        break;
      }
  } else if (failure == Store::OpenFailure::Foreign || failure == Store::OpenFailure::TooNew) {
    throw StartupError(err, kExitConfig);
  } else {
    struct statvfs vfs {};
    const std::string dir = db_dir.empty() ? "." : db_dir.string();
    if (statvfs(dir.c_str(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY)) err += " (its filesystem is read-only)";
    *retry_why = err;
    return false;
  }

  std::string move_err;
  if (!move_database_aside(why, &move_err)) throw StartupError(move_err);
  store_ = Store::open(db, &err);
  if (!store_) {
    *retry_why = err;
    return false;
  }
  chmod(db.c_str(), 0600);
  return true;
}

bool Daemon::move_database_aside(const std::string& why, std::string* err) {
  const std::string& db = config_.database;
  const std::string aside = aside_name(db);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::string from = db + suffix, to = aside + suffix;
    if (rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
      *err = fmt::format("database '{}' is damaged ({}) and moving it to '{}' failed: {}", db, why, to,
                         std::strerror(errno));
      return false;
    }
  }
  spdlog::error("database '{}' is damaged ({}); moved it to '{}' and starting a new, empty database", db,
                why, aside);
  db_note_ = fmt::format("damaged database moved to '{}', new one started", aside);
  return true;
}

bool Daemon::replace_damaged_store(const std::string& why) {
  // The failed drain rolled back: the drainer still knows what the old file
  // holds, so the new one gets exactly what was not yet written.
  store_.reset();
  std::string err;
  if (!move_database_aside(why, &err)) {
    spdlog::error("{}", err);
    return false;
  }
  store_ = Store::open(config_.database, &err);
  if (!store_) {
    spdlog::error("cannot start a new database: {}", err);
    return false;
  }
  chmod(config_.database.c_str(), 0600);
  drainer_->rebind(*store_);
  record_method();
  return true;
}

void Daemon::record_method() {
  store_->set_meta("attach_method", std::string(method_name(collector_->method())));
  store_->set_meta("audit_flag", collector_->method() == AttachMethod::Tracepoint ? "unknown" : "known");
}

void Daemon::attach_store() {
  DrainOptions dopts;
  dopts.ignore_paths = config_.ignore_paths;
  drainer_ = std::make_unique<Drainer>(*store_, *paths_, syms_ ? &*syms_ : nullptr, dopts);
  drainer_->set_cgroups(&cgroups_);
  // Fresh maps start from zero whenever the store opens; adopted ones carry
  // what the store already holds.
  drainer_->resume(collector_->adopted_maps());
  record_method();
  if (pending_failures_ > 0) spdlog::info("database '{}' opened", config_.database);
}

bool Daemon::setup_fds() {
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&mask, s);
  if (sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) return false;
  sigfd_ = Fd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  epfd_ = Fd(epoll_create1(EPOLL_CLOEXEC));
  drainfd_ = Fd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!sigfd_ || !epfd_ || !drainfd_) return false;
  arm_timer(drainfd_.get(), static_cast<uint64_t>(config_.drain_interval_sec) * 1000000);
  uint64_t wd_usec = 0;
  if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
    watchdogfd_ = Fd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!watchdogfd_) return false;
    arm_timer(watchdogfd_.get(), wd_usec / 2);
  }
  auto add = [&](int fd) {
    if (fd < 0) return true;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    return epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
  };
  return add(sigfd_.get()) && add(drainfd_.get()) && add(watchdogfd_.get()) && add(collector_->events_fd());
}

bool Daemon::drain_now(const char* why) {
  if (!store_) {
    std::string err;
    try {
      if (open_database(&err)) attach_store();
    } catch (const StartupError& e) {
      err = e.what();
    }
    if (!store_) {
      pending_failures_++;
      last_error_ = err;
      spdlog::log(pending_failures_ == 1 ? spdlog::level::err : spdlog::level::debug,
                  "database still unavailable: {}", err);
      update_status();
      return false;
    }
  }
  // Paths recorded at exec, however long the daemon was down: learned before
  // the counts are read, forgotten in the kernel once a drain stored them.
  std::vector<ExeName> names = collector_->read_exe_names();
  for (const ExeName& n : names) paths_->learn_exec(ExeId{n.id.dev, n.id.ino}, n.path, "", 0);
  const uint64_t t0 = monotonic_usec();
  const bool final = begin_prune_step();
  const uint64_t t1 = monotonic_usec();
  DrainResult r = drain_parts(final);
  if (!r.ok && store_->damaged() && replace_damaged_store(r.error)) r = drain_parts(final);
  const uint64_t t2 = monotonic_usec();
  if (r.ok) {
    std::vector<ca_exe_id> ids;
    ids.reserve(names.size());
    for (const ExeName& n : names) ids.push_back(n.id);
    collector_->forget_exe_names(ids);
    end_prune_step();
    trim_caches();
  }
  const uint64_t t3 = monotonic_usec();
  // Pages are read again from the file at the next drain, so damage done to
  // it meanwhile is found then, not hidden by a cache; it also gives the
  // memory back between drains.
  if (store_) store_->release_memory();
  malloc_trim(0);
  if (!r.ok) {
    pending_failures_++;
    last_error_ = r.error;
    // Counts stay in the kernel maps and are written by the next drain
    // that succeeds; say so once per failure streak, not every interval.
    if (pending_failures_ == 1)
      spdlog::error("cannot write to '{}': {}; counts are kept in the kernel until it works again",
                    config_.database, r.error);
    update_status();
    return false;
  }
  if (pending_failures_ > 0)
    spdlog::info("database '{}' writable again after {} failed drains; nothing was lost", config_.database,
                 pending_failures_);
  pending_failures_ = 0;
  last_error_.clear();
  // The times tell a drain that cannot keep up with the keys made (bench-soak).
  spdlog::debug("drain ({}): {} checks in {} keys, {} deferred, {} ignored; drain state of {} keys held; "
                "rss {} KiB, peak {} KiB; {} ms moving the epoch, {} ms writing, {} ms pruning",
                why, r.checks_added, r.keys_written, r.keys_deferred, r.keys_ignored, drainer_->keys_tracked(),
                status_kib("VmRSS"), status_kib("VmHWM"), (t1 - t0) / 1000, (t2 - t1) / 1000, (t3 - t2) / 1000);
  update_status();
  return true;
}

DrainResult Daemon::drain_parts(bool retired_final) {
  // Chunk by chunk, as the maps are read: the daemon holds one chunk of
  // keys at a time, never a copy of the maps (issue 14, item 3).
  constexpr size_t kChunk = 4096;
  DrainResult total;
  const int64_t now = static_cast<int64_t>(time(nullptr));
  auto read_stack = [this](int32_t id) { return collector_->read_stack(id); };
  KernelSnapshot part;
  part.epoch = collector_->epoch();
  auto run = [&] {
    DrainResult r = drainer_->drain(part, read_stack, now);
    if (!r.ok) {
      total.ok = false;
      total.error = r.error;
      return false;
    }
    total.checks_added += r.checks_added;
    total.keys_written += r.keys_written;
    total.keys_deferred += r.keys_deferred;
    total.keys_ignored += r.keys_ignored;
    total.inspections_added += r.inspections_added;
    return true;
  };
  drainer_->begin_parts();
  bool ok = collector_->read_counts(kChunk, [&](std::vector<CheckCount>& chunk) {
    part.counts.swap(chunk);
    bool done = run();
    part.counts.swap(chunk);
    return done;
  });
  if (ok)
    ok = collector_->read_origins(kChunk, [&](std::vector<OriginCount>& chunk) {
      part.origins.swap(chunk);
      bool done = run();
      part.origins.swap(chunk);
      return done;
    });
  if (ok) {
    // Last: the generation marker says every count of the retired one is stored.
    part.stats = collector_->stats();
    part.inspections = collector_->read_inspections();
    part.retired_final = retired_final;
    ok = run();
  }
  drainer_->end_parts(ok);
  return total;
}

bool Daemon::begin_prune_step() {
  const uint64_t epoch = collector_->epoch();
  const int64_t retired = epoch >= 1 ? static_cast<int64_t>(epoch) - 1 : -1;
  if (retired > drainer_->drained_generation()) {
    // Moved on by an earlier run (or an earlier drain that failed) and not
    // yet drained final.
    collector_->wait_grace();
    return true;
  }
  if (retired > drainer_->cleared_generation()) return false;  // end_prune_step empties it
  // Idle keys stay in the map until pruned: prune when half of it is used,
  // and every kPruneIntervalSec so keys idle for long leave a quiet map too.
  const size_t keys = collector_->active_keys();
  const time_t now = time(nullptr);
  if (keys < config_.max_checks / 2 && (keys == 0 || now - last_prune_ < kPruneIntervalSec)) return false;
  std::string err;
  if (!collector_->advance_epoch(&err)) {
    spdlog::warn("pruning the kernel maps: {}", err);
    return false;
  }
  last_prune_ = now;
  spdlog::debug("pruning: {} keys in generation {}, now counting into {}", keys, epoch, epoch + 1);
  return true;
}

void Daemon::end_prune_step() {
  const uint64_t epoch = collector_->epoch();
  if (epoch == 0) return;
  const uint64_t retired = epoch - 1;
  const int64_t r = static_cast<int64_t>(retired);
  if (drainer_->drained_generation() < r || drainer_->cleared_generation() >= r) return;
  std::string err;
  if (!collector_->clear_generation(retired, &err) || !drainer_->forget_generation(retired, &err)) {
    spdlog::warn("pruning generation {}: {}; retried at the next drain", retired, err);
    return;
  }
  if (!drainer_->forget_origins(collector_->prune_origins(), &err)) {
    spdlog::warn("pruning origins: {}", err);
    return;
  }
  // Stacks go once no origin left refers to them (their frames are in the
  // database already); only when the map is half full, as for the counts.
  std::vector<int32_t> stacks = collector_->prune_stacks(collector_->max_stacks() / 2);
  drainer_->forget_stacks(stacks);
  if (!stacks.empty()) spdlog::debug("pruning: {} stacks no origin refers to", stacks.size());
}

void Daemon::trim_caches() {
  const size_t exes = paths_->trim();
  const size_t cgroups = cgroups_.trim();
  if (exes || cgroups)
    spdlog::debug("forgot {} executables' paths ({} kept) and {} cgroups ({} kept), all stored", exes,
                  paths_->size(), cgroups, cgroups_.size());
}

void Daemon::update_status(std::string_view with) {
  CollectorStats st = collector_->stats();
  uint64_t drops = st[CA_STAT_COUNT_DROPS] + st[CA_STAT_ORIGIN_DROPS] + st[CA_STAT_RINGBUF_DROPS];
  // The flush count lets whoever sent SIGUSR1 tell its answer from a timer
  // drain's that happened to finish meanwhile.
  std::string status = fmt::format("{}{}STATUS=method {}, {} checks counted, {} written, {} dropped, "
                                   "{} flush requests served{}{}",
                                   with, with.empty() ? "" : "\n", method_name(collector_->method()),
                                   st[CA_STAT_CHECKS], drainer_ ? drainer_->checks_written() : 0, drops,
                                   flush_requests_,
                                   last_error_.empty() ? "" : ", database error: " + last_error_,
                                   db_note_.empty() ? "" : "; " + db_note_);
  sd_notify(0, status.c_str());
  if (drops > 0) {
    static uint64_t reported = 0;
    if (drops != reported)
      spdlog::warn("{} counts or origins dropped: kernel maps full (raise max_checks/max_origins)", drops);
    reported = drops;
  }
}

void Daemon::reload() {
  std::string msg = fmt::format("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec());
  sd_notify(0, msg.c_str());
  ConfigResult cr = load_config(args_.config_path);
  if (!cr.config) {
    spdlog::error("reload refused, keeping the running configuration: {}", cr.error);
  } else {
    Config next = *cr.config;
    // Command-line overrides stay in force over a reload.
    if (args_.db_path) next.database = *args_.db_path;
    if (args_.log_level) next.log_level = *args_.log_level;
    if (args_.attach_method) next.attach_method = *args_.attach_method;
    for (auto [changed, name] : {std::pair{next.database != config_.database, "database"},
                                 {next.attach_method != config_.attach_method, "attach_method"},
                                 {next.max_checks != config_.max_checks, "max_checks"},
                                 {next.max_origins != config_.max_origins, "max_origins"},
                                 {next.max_stacks != config_.max_stacks, "max_stacks"},
                                 {next.stack_sample_period != config_.stack_sample_period,
                                  "stack_sample_period"},
                                 {next.pin != config_.pin || next.pin_dir != config_.pin_dir, "pin"}})
      if (changed) spdlog::warn("'{}' changed in '{}': takes effect at the next restart", name, args_.config_path);
    config_.drain_interval_sec = next.drain_interval_sec;
    config_.log_level = next.log_level;
    config_.ignore_paths = next.ignore_paths;
    config_.retention_days = next.retention_days;
    apply_log_level(config_.log_level);
    arm_timer(drainfd_.get(), static_cast<uint64_t>(config_.drain_interval_sec) * 1000000);
    DrainOptions dopts;
    dopts.ignore_paths = config_.ignore_paths;
    if (drainer_) drainer_->set_options(dopts);
    spdlog::info("configuration reloaded from '{}'", args_.config_path);
  }
  update_status("READY=1");
}

int Daemon::run() {
  int exit_code = 0;
  bool running = true;
  time_t last_retention = 0;
  while (running) {
    epoll_event evs[8];
    int n = epoll_wait(epfd_.get(), evs, 8, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("epoll_wait: {}", std::strerror(errno));
      exit_code = 1;
      break;
    }
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == sigfd_.get()) {
        signalfd_siginfo si{};
        while (read(sigfd_.get(), &si, sizeof si) == sizeof si) {
          switch (si.ssi_signo) {
            case SIGTERM:
            case SIGINT: running = false; break;
            case SIGHUP: reload(); break;
            case SIGUSR1:
              flush_requests_++;
              drain_now("SIGUSR1");
              break;
          }
        }
      } else if (fd == drainfd_.get()) {
        drain_fd(drainfd_.get());
        drain_now("timer");
        time_t now = time(nullptr);
        if (store_ && config_.retention_days > 0 && now - last_retention > 3600) {
          store_->apply_retention(config_.retention_days, now);
          last_retention = now;
        }
      } else if (fd == watchdogfd_.get()) {
        drain_fd(watchdogfd_.get());
        sd_notify(0, "WATCHDOG=1");
      } else {
        collector_->poll_events(0);
      }
    }
  }
  sd_notify(0, "STOPPING=1");
  collector_->poll_events(0);  // exec events of the last instants name their binaries
  // Unpinning frees the maps: a key still waiting for its path is stored
  // unnamed (by device and inode) rather than lost.
  DrainOptions last;
  last.ignore_paths = config_.ignore_paths;
  last.unresolved_grace_drains = 0;
  if (drainer_) drainer_->set_options(last);
  if (drain_now("stop")) {
    if (config_.pin) collector_->unpin();
    uint64_t written = drainer_ ? drainer_->checks_written() : 0;
    log_fields(spdlog::level::info, fmt::format("stopped: {} checks written to '{}'", written, config_.database),
               {{"CAPAUDIT_CHECKS_WRITTEN", std::to_string(written)},
                {"CAPAUDIT_CHECKS_COUNTED", std::to_string(collector_->stats()[CA_STAT_CHECKS])},
                {"CAPAUDIT_DATABASE", config_.database}});
  } else {
    spdlog::error("final write to '{}' failed: {}; {}", config_.database, last_error_,
                  config_.pin ? "counts stay pinned under '" + config_.pin_dir + "' for the next start"
                              : "counts since the last drain are lost");
    exit_code = 1;
  }
  return exit_code;
}

}  // namespace capaudit
