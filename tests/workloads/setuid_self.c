/* setuid(getuid()): the kernel asks CAP_SETUID first whatever the target,
 * so a trace shows CAP_SETUID granted, yet the call succeeds without it
 * (the target is the caller's own uid). Exits 0 when setuid succeeded. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
  if (setuid(getuid()) != 0) {
    perror("setuid");
    return 1;
  }
  return 0;
}
