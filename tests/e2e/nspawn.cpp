#include "nspawn.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace capaudit::e2e {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string ns_of(pid_t pid, const char* ns) {
  char buf[64];
  std::string link = "/proc/" + std::to_string(pid) + "/ns/" + ns;
  ssize_t n = readlink(link.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// The container's PID 1 as the host sees it: nspawn's child in another PID
// namespace.
pid_t find_leader(pid_t nspawn) {
  const std::string mine = ns_of(getpid(), "pid");
  std::error_code ec;
  for (auto& task : fs::directory_iterator("/proc/" + std::to_string(nspawn) + "/task", ec)) {
    std::ifstream f(task.path() / "children");
    for (pid_t child; f >> child;) {
      std::string ns = ns_of(child, "pid");
      if (!ns.empty() && ns != mine) return child;
    }
  }
  return -1;
}

// cgroup directories go bottom-up, and only once the kernel has let go of
// the processes that were in them.
void remove_cgroup_tree(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  for (auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory(ec) && !e.is_symlink(ec)) remove_cgroup_tree(e.path());
  for (int i = 0; i < 100 && rmdir(dir.c_str()) != 0 && errno == EBUSY; i++) std::this_thread::sleep_for(50ms);
}

bool write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  f.close();
  return static_cast<bool>(f);
}

}  // namespace

std::string build_dir() {
  std::string bin = capaudit_bin();
  return bin.substr(0, bin.rfind('/'));
}

std::string nspawn_missing() {
  for (const char* tool : {"/usr/bin/systemd-nspawn", "/usr/bin/nsenter"})
    if (access(tool, X_OK) != 0) return std::string(tool) + " missing (package systemd-container / util-linux)";
  if (access("/sys/fs/cgroup/unified/cgroup.procs", W_OK) != 0 && access("/sys/fs/cgroup/cgroup.procs", W_OK) != 0)
    return "no writable cgroup2 hierarchy";
  return "";
}

bool stage_install(const std::string& stage, std::string* err) {
  auto r = run({"env", "DESTDIR=" + stage, "cmake", "--install", build_dir()});
  if (r.exit_code != 0) {
    *err = "cmake --install failed:\n" + r.out + r.err;
    return false;
  }
  if (access((stage + "/usr/local/sbin/capauditd").c_str(), X_OK) != 0) {
    *err = "cmake --install did not write " + stage +
           "/usr/local/sbin/capauditd: these tests expect the default prefix /usr/local";
    return false;
  }
  return true;
}

Container::~Container() { shutdown(); }

bool Container::boot(const ContainerOptions& opts, std::string* err) {
  std::string tmpl = "/tmp/capaudit-nspawn-" + opts.name + "-XXXXXX";
  if (!mkdtemp(tmpl.data())) {
    *err = std::string("mkdtemp: ") + std::strerror(errno);
    return false;
  }
  scratch_ = tmpl;
  log_path_ = scratch_ + "/console.log";
  // A bpffs instance of its own: pins made in the container are seen (and
  // removed) here, and never collide with a daemon on the host.
  std::string bpffs = scratch_ + "/bpffs";
  mkdir(bpffs.c_str(), 0700);
  if (mount("bpf", bpffs.c_str(), "bpf", 0, "mode=0700") != 0) {
    *err = std::string("mount bpffs: ") + std::strerror(errno);
    return false;
  }
  bpffs_ = bpffs;
  // A cgroup of its own in each hierarchy: nspawn --keep-unit makes its
  // payload/ and supervisor/ below the cgroup it starts in.
  const std::string cg_name = fs::path(scratch_).filename();
  for (const char* root : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"}) {
    std::string dir = std::string(root) + "/" + cg_name;
    if (access(root, W_OK) != 0) continue;
    if (mkdir(dir.c_str(), 0755) != 0) {
      *err = "mkdir " + dir + ": " + std::strerror(errno);
      return false;
    }
    cgroups_.push_back(dir);
  }

  std::vector<std::string> argv = {"systemd-nspawn"};
  if (opts.overlay_root) {
    // The upper layer on a filesystem of its own: overlayfs refuses layers
    // that overlap.
    upper_ = scratch_ + "/upper";
    merged_ = scratch_ + "/root";
    mkdir(upper_.c_str(), 0700);
    mkdir(merged_.c_str(), 0755);
    if (mount("tmpfs", upper_.c_str(), "tmpfs", 0, "mode=0700") != 0) {
      *err = std::string("mount tmpfs: ") + std::strerror(errno);
      upper_.clear();
      return false;
    }
    mkdir((upper_ + "/u").c_str(), 0755);
    mkdir((upper_ + "/w").c_str(), 0755);
    const std::string layers = "lowerdir=/,upperdir=" + upper_ + "/u,workdir=" + upper_ + "/w";
    if (mount("overlay", merged_.c_str(), "overlay", 0, layers.c_str()) != 0) {
      *err = std::string("mount overlay: ") + std::strerror(errno);
      merged_.clear();
      return false;
    }
    argv.push_back("--directory=" + merged_);
  } else {
    argv.insert(argv.end(), {"--directory=/", "--volatile=yes"});
  }
  argv.insert(argv.end(), {"--private-network", "--boot", "--register=no", "--keep-unit",
                           "--machine=" + opts.name, "--console=pipe", "--capability=all",
                           // else nspawn's own seccomp filter refuses these in services
                           "--system-call-filter=bpf perf_event_open", "--bind=" + bpffs_ + ":/sys/fs/bpf"});
  for (auto& b : opts.bind_ro) argv.push_back("--bind-ro=" + b);
  for (auto& b : opts.bind) argv.push_back("--bind=" + b);
  for (const char* unit : {"systemd-firstboot.service", "nftables.service", "systemd-networkd-wait-online.service"})
    argv.push_back(std::string("systemd.mask=") + unit);

  nspawn_ = fork();
  if (nspawn_ == 0) {
    for (auto& dir : cgroups_) write_text(dir + "/cgroup.procs", "0\n");
    int in = open("/dev/null", O_RDONLY), out = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(in, 0), dup2(out, 1), dup2(out, 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }

  auto deadline = std::chrono::steady_clock::now() + 60s;
  while ((leader_ = find_leader(nspawn_)) < 0) {
    if (waitpid(nspawn_, nullptr, WNOHANG) == nspawn_) {
      nspawn_ = -1;
      *err = "systemd-nspawn exited:\n" + log();
      return false;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      *err = "no container leader after 60 s:\n" + log();
      return false;
    }
    std::this_thread::sleep_for(20ms);
  }
  // Until PID 1 listens on its private socket, systemctl cannot ask.
  std::string state;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = exec({"systemctl", "is-system-running", "--wait"}, 60);
    std::istringstream(r.out) >> state;
    if (state == "running" || state == "degraded") return true;
    std::this_thread::sleep_for(100ms);
  }
  *err = "system never reached running (last: '" + state + "'):\n" + log();
  return false;
}

void Container::shutdown() {
  if (nspawn_ > 0) {
    // One SIGTERM halts the container in order; a second, or SIGKILL after
    // that, ends it at once.
    kill(nspawn_, SIGTERM);
    bool gone = false;
    for (int i = 0; i < 300 && !gone; i++) {
      gone = waitpid(nspawn_, nullptr, WNOHANG) == nspawn_;
      if (!gone) std::this_thread::sleep_for(100ms);
    }
    if (!gone) {
      kill(nspawn_, SIGKILL);
      waitpid(nspawn_, nullptr, 0);
    }
    nspawn_ = leader_ = -1;
  }
  for (auto& dir : cgroups_) remove_cgroup_tree(dir);
  cgroups_.clear();
  for (std::string* m : {&merged_, &upper_})
    if (!m->empty()) {
      umount2(m->c_str(), MNT_DETACH);
      m->clear();
    }
  if (!bpffs_.empty()) {
    umount2(bpffs_.c_str(), MNT_DETACH);
    bpffs_.clear();
  }
  if (!scratch_.empty()) {
    std::error_code ec;
    fs::remove_all(scratch_, ec);
    scratch_.clear();
  }
}

ProcessResult Container::exec(const std::vector<std::string>& argv, int timeout_sec) const {
  std::vector<std::string> full = {"timeout", "-k", "5", std::to_string(timeout_sec),
                                   "nsenter", "-t", std::to_string(leader_), "-a"};
  full.insert(full.end(), argv.begin(), argv.end());
  return run(full);
}

ProcessResult Container::systemctl(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"systemctl", "--no-pager"};
  argv.insert(argv.end(), args.begin(), args.end());
  return exec(argv);
}

std::map<std::string, std::string> Container::show(const std::string& unit, const std::string& props) const {
  std::map<std::string, std::string> out;
  std::istringstream in(systemctl({"show", "-p", props, unit}).out);
  for (std::string line; std::getline(in, line);) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

bool Container::wait_for(const std::string& unit, const std::string& props,
                         const std::function<bool(const std::map<std::string, std::string>&)>& pred,
                         std::chrono::milliseconds timeout, std::map<std::string, std::string>* last) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto now = show(unit, props);
    if (last) *last = now;
    if (pred(now)) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(100ms);
  }
}

std::vector<nlohmann::json> Container::journal(const std::string& unit) const {
  std::vector<nlohmann::json> out;
  std::istringstream in(exec({"journalctl", "--no-pager", "-o", "json", "-u", unit}).out);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

std::string Container::host_path(const std::string& path) const {
  return "/proc/" + std::to_string(leader_) + "/root" + path;
}

bool Container::write_file(const std::string& path, const std::string& text, mode_t mode) const {
  std::string host = host_path(path);
  std::error_code ec;
  fs::create_directories(fs::path(host).parent_path(), ec);
  if (!write_text(host, text)) return false;
  return chmod(host.c_str(), mode) == 0;
}

std::string Container::log() const { return read_file(log_path_); }

}  // namespace capaudit::e2e
