/* Forks and maps memory in a loop: the kernel asks CAP_SYS_ADMIN on every
 * mmap and fork (vm_enough_memory) without needing it. Needs nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 20;
  for (int i = 0; i < n; i++) {
    void* p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
    ((char*)p)[0] = 1;
    munmap(p, 1 << 20);
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid == 0) _exit(0);
    int st;
    waitpid(pid, &st, 0);
  }
  return 0;
}
