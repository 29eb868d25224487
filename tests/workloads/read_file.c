/* Reads FILE (a root-owned 0600 file when the tests run it as another
 * user: CAP_DAC_READ_SEARCH suffices, CAP_DAC_OVERRIDE is not needed).
 * Exits 0 when read, 1 when refused. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 2;
  }
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) {
    perror(argv[1]);
    return 1;
  }
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  return n < 0 ? 1 : 0;
}
