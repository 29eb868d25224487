/* Makes exactly N CAP_CHOWN checks: fchown of a file owned by another uid
 * to that same uid asks CAP_CHOWN once per call (chown_ok), and nothing else.
 * Whether the file is owned by root (the new uid differs) or by uid 1 (the
 * caller is not the owner), every call makes one check, so the first call
 * counts like the others.
 * usage: fchown_loop FILE N */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s FILE N\n", argv[0]);
    return 2;
  }
  long n = strtol(argv[2], NULL, 10);
  int fd = open(argv[1], O_CREAT | O_RDWR, 0644);
  if (fd < 0) {
    perror(argv[1]);
    return 1;
  }
  for (long i = 0; i < n; i++) {
    if (fchown(fd, 1, (gid_t)-1) != 0) {
      perror("fchown");
      return 1;
    }
  }
  return 0;
}
