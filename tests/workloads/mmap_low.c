/* Maps one page at address 0, below vm.mmap_min_addr: allowed only with
 * CAP_SYS_RAWIO (cap_mmap_addr asks it once, audited). On Debian 12's 6.1 and
 * 6.12 kernels that check is made with cap_capable() inlined, so only a
 * program on cap_mmap_addr itself sees it.
 * Exits 0 when the page was mapped, 1 when refused. */
#include <stdio.h>
#include <sys/mman.h>

int main(void) {
  void* p = mmap((void*)0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                 -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap at 0");
    return 1;
  }
  munmap(p, 4096);
  return 0;
}
