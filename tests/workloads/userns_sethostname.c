/* Creates its own user and UTS namespaces and sets the hostname there:
 * the CAP_SYS_ADMIN check is against the new user namespace, which the
 * process owns, so it needs nothing on the host. Exits 0 on success. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
  if (unshare(CLONE_NEWUSER | CLONE_NEWUTS) != 0) {
    perror("unshare(CLONE_NEWUSER|CLONE_NEWUTS)");
    return 1;
  }
  if (sethostname("capaudit-test", 13) != 0) {
    perror("sethostname");
    return 1;
  }
  return 0;
}
