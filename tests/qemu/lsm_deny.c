/* Loads tests/qemu/lsm_deny.bpf.c: refuses capability CAP to tasks named
 * COMM through the BPF LSM until SIGTERM/SIGINT, then prints how many it
 * refused. Prints "lsm_deny-ready" once attached.
 *   lsm_deny CAP COMM */
#include "lsm_deny.skel.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char** argv) {
  if (argc != 3 || strlen(argv[2]) >= 16) {
    fprintf(stderr, "usage: lsm_deny CAP COMM (COMM under 16 bytes)\n");
    return 2;
  }
  struct lsm_deny_bpf* s = lsm_deny_bpf__open();
  if (!s) {
    perror("lsm_deny: open");
    return 1;
  }
  s->rodata->deny_cap = atoi(argv[1]);
  memcpy((char*)s->rodata->deny_comm, argv[2], strlen(argv[2]));
  int err = lsm_deny_bpf__load(s);
  if (!err) err = lsm_deny_bpf__attach(s);
  if (err) {
    fprintf(stderr, "lsm_deny: load/attach: %s\n", strerror(-err));
    lsm_deny_bpf__destroy(s);
    return 1;
  }
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  printf("lsm_deny-ready\n");
  fflush(stdout);
  while (!stop) pause();
  printf("lsm_deny-denied %llu\n", (unsigned long long)s->bss->denied);
  lsm_deny_bpf__destroy(s);
  return 0;
}
