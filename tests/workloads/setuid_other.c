/* setuid(1) from another uid: needs CAP_SETUID. The same check as
 * setuid_self in a trace; only a run without the capability tells them
 * apart. Exits 0 when setuid succeeded, 1 when refused. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
  if (setuid(1) != 0) {
    perror("setuid");
    return 1;
  }
  return 0;
}
