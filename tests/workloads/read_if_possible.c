/* Prints FILE to standard output when it can read it and exits 0 either
 * way: CAP_DAC_READ_SEARCH changes its output, never its exit status. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 2;
  }
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) return 0;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    if (write(STDOUT_FILENO, buf, (size_t)n) != n) break;
  }
  close(fd);
  return 0;
}
