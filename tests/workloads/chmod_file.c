/* chmod 02640 of FILE (owned by another user and group when the tests run
 * it): needs CAP_FOWNER, and CAP_FSETID for the setgid bit it asks for to
 * survive; chmod(2) succeeds either way, so this checks the effect. Exits 0
 * when the mode is what was asked, 1 otherwise. */
#include <stdio.h>
#include <sys/stat.h>

int main(int argc, char** argv) {
  struct stat st;

  if (argc != 2) {
    fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 2;
  }
  if (chmod(argv[1], 02640) != 0) {
    perror(argv[1]);
    return 1;
  }
  if (stat(argv[1], &st) != 0 || (st.st_mode & 07777) != 02640) {
    fprintf(stderr, "%s: the setgid bit was cleared\n", argv[1]);
    return 1;
  }
  return 0;
}
