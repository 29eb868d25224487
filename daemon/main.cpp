// capauditd: counts every capability check on the host into SQLite.
#include "daemon.h"

#include <getopt.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include <cstdio>
#include <cstdlib>

namespace {

constexpr const char* kUsage =
    "usage: capauditd [--config FILE] [--db PATH] [--log-level LEVEL]\n"
    "                 [--attach-method auto|fexit|kprobe|tracepoint] [--pin-dir DIR|'']\n"
    "\n"
    "Counts every capability check the kernel makes, per executable, into SQLite.\n"
    "  --config FILE        configuration (default /etc/capaudit/capaudit.json)\n"
    "  --db PATH            database (default from the config: /var/lib/capaudit/capaudit.db)\n"
    "  --log-level LEVEL    trace, debug, info, warn, error, critical, off\n"
    "  --attach-method M    force one attach method; a refused one is an error\n"
    "  --pin-dir DIR        pin maps under DIR on bpffs; '' disables pinning\n"
    "Signals: TERM/INT flush and exit, HUP reloads the config, USR1 flushes now.\n";

// Under systemd, logs go to the journal with structured fields; elsewhere
// to standard error.
void setup_logging() {
  std::shared_ptr<spdlog::logger> logger;
  if (getenv("JOURNAL_STREAM") || getenv("INVOCATION_ID"))
    logger = std::make_shared<spdlog::logger>("capauditd", std::make_shared<spdlog::sinks::systemd_sink_mt>());
  else
    logger = spdlog::stderr_color_mt("capauditd");
  spdlog::set_default_logger(logger);
}

bool parse_args(int argc, char** argv, capaudit::DaemonArgs& args) {
  enum { kConfig = 1, kDb, kLogLevel, kAttach, kPinDir, kHelp, kVersion };
  static const option longopts[] = {
      {"config", required_argument, nullptr, kConfig},   {"db", required_argument, nullptr, kDb},
      {"log-level", required_argument, nullptr, kLogLevel}, {"attach-method", required_argument, nullptr, kAttach},
      {"pin-dir", required_argument, nullptr, kPinDir},  {"help", no_argument, nullptr, kHelp},
      {"version", no_argument, nullptr, kVersion},       {nullptr, 0, nullptr, 0},
  };
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, nullptr)) != -1) {
    switch (c) {
      case kConfig: args.config_path = optarg; break;
      case kDb: args.db_path = optarg; break;
      case kLogLevel: {
        auto lvl = spdlog::level::from_str(optarg);
        if (lvl == spdlog::level::off && std::string(optarg) != "off") {
          fprintf(stderr, "capauditd: --log-level: unknown level '%s'\n", optarg);
          return false;
        }
        args.log_level = optarg;
        break;
      }
      case kAttach: args.attach_method = optarg; break;
      case kPinDir: args.pin_dir = optarg; break;
      case kHelp: fputs(kUsage, stdout); exit(0);
      case kVersion: puts("capauditd " CAPAUDIT_VERSION); exit(0);
      default: fputs(kUsage, stderr); return false;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "capauditd: unexpected argument '%s'\n%s", argv[optind], kUsage);
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  umask(077);  // database, WAL and logs: root only
  capaudit::DaemonArgs args;
  if (!parse_args(argc, argv, args)) return 2;
  setup_logging();
  try {
    capaudit::Daemon daemon(args);
    daemon.start();
    return daemon.run();
  } catch (const capaudit::StartupError& e) {
    spdlog::critical("{}", e.what());
    sd_notifyf(0, "STOPPING=1\nSTATUS=failed: %s", e.what());
    return e.exit_status;
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    sd_notifyf(0, "STOPPING=1\nSTATUS=failed: %s", e.what());
    return 1;
  }
}
