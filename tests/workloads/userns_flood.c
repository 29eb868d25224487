/* A local user's flood of distinct check keys: PROCS processes, one after
 * another, each nesting LEVELS user namespaces and making a CAP_SYS_ADMIN
 * check (unshare of a UTS namespace) against each, which it owns, so it
 * needs nothing on the host. Every namespace is a new key (target_ns_inum).
 * usage: userns_flood PROCS LEVELS. Exits 0 when every level was made. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  close(fd);
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* One more level: the caller's ids mapped to root inside, so the next
 * level's creator is mapped in its parent, as the kernel requires. */
static int nest(void) {
  char map[64];
  unsigned uid = getuid(), gid = getgid();
  if (unshare(CLONE_NEWUSER) != 0) return -1;
  if (write_file("/proc/self/setgroups", "deny") != 0) return -1;
  snprintf(map, sizeof map, "0 %u 1", uid);
  if (write_file("/proc/self/uid_map", map) != 0) return -1;
  snprintf(map, sizeof map, "0 %u 1", gid);
  if (write_file("/proc/self/gid_map", map) != 0) return -1;
  return unshare(CLONE_NEWUTS);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: userns_flood PROCS LEVELS\n");
    return 2;
  }
  int procs = atoi(argv[1]), levels = atoi(argv[2]);
  for (int p = 0; p < procs; p++) {
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
      for (int l = 0; l < levels; l++)
        if (nest() != 0) {
          perror("userns_flood: nesting");
          _exit(1);
        }
      _exit(0);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  }
  return 0;
}
