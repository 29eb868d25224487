# Shared by scripts/run-daemon and scripts/test: Debian packages and build.
set -euo pipefail

CAPAUDIT_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CAPAUDIT_BUILD="${CAPAUDIT_BUILD:-$CAPAUDIT_SRC/build}"

# What building and running capauditd needs.
RUNTIME_PACKAGES=(build-essential cmake pkg-config clang llvm bpftool libbpf-dev
  libcap-ng-dev libsqlite3-dev libspdlog-dev nlohmann-json3-dev libsystemd-dev libssl-dev libcli11-dev
  libpq-dev)
# What the tests need on top: the workloads' tools and the cross-checks.
TEST_PACKAGES=(googletest libgtest-dev sqlite3 libcap2-bin util-linux iputils-ping bpftrace
  systemd systemd-container procps libclang-rt-14-dev postgresql-15
  qemu-system-x86 xz-utils zstd python3
  iproute2 libcap-ng-utils attr tar psmisc bpftool linux-perf auditd iputils-arping mtr-tiny
  e2fsprogs libgstreamer1.0-0 podman runc tcpdump)
# What scripts/package needs on top of the runtime packages; the tests build
# and install the package too.
PACKAGE_PACKAGES=(debhelper dpkg-dev lintian)

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "$0: run as root (it installs Debian packages and loads BPF programs)" >&2
    exit 1
  fi
}

install_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "Installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# bpffs for pinning, tracefs for bpftrace's cross-checks.
mount_kernel_filesystems() {
  mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
  mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing || true
}

build() {
  cmake -S "$CAPAUDIT_SRC" -B "$CAPAUDIT_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$CAPAUDIT_BUILD" -j"$(nproc)"
}
