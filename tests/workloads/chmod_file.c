/* chmod of FILE (owned by another user when the tests run it): needs
 * CAP_FOWNER; the CAP_FSETID check that follows only decides whether the
 * setgid bit survives. Exits 0 when changed, 1 when refused. */
#include <stdio.h>
#include <sys/stat.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 2;
  }
  if (chmod(argv[1], 02640) != 0) {
    perror(argv[1]);
    return 1;
  }
  return 0;
}
