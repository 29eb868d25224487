/* Asks the kernel about its own capabilities N times (default 100) each way
 * the kernel side counts: capget(2) of itself with a data buffer, and
 * prctl(PR_CAPBSET_READ, CAP_KILL). On x86_64 it then asks the same N times
 * each through the ia32 entry (int $0x80, where the numbers are another
 * ABI's), which must not be counted; it prints "ia32 K" with K the calls
 * that entry answered (0 where the kernel has no ia32 emulation). No libcap:
 * nothing else of it asks. */
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define IA32_NR_capget 184
#define IA32_NR_prctl 172

#if defined(__x86_64__)
static long ia32_syscall2(long nr, long a, long b)
{
	long ret;

	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b) : "memory");
	return ret;
}

/* In a child: a kernel without ia32 emulation kills int $0x80 with SIGSEGV. */
static int ia32_calls(int n)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* Pointers an ia32 call can pass: below 4 GiB. */
		char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT,
				 -1, 0);
		struct __user_cap_header_struct *hdr = (void *)low;
		int ok = 0;

		if (low == MAP_FAILED)
			_exit(255);
		for (int i = 0; i < n; i++) {
			hdr->version = _LINUX_CAPABILITY_VERSION_3;
			hdr->pid = 0;
			ok += ia32_syscall2(IA32_NR_capget, (long)hdr, (long)(low + 64)) == 0;
			ok += ia32_syscall2(IA32_NR_prctl, PR_CAPBSET_READ, CAP_KILL) >= 0;
		}
		_exit(ok == 2 * n ? 0 : 1);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 2 * n : 0;
}
#endif

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100;
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct data[2];
	int ia32 = 0;

	for (int i = 0; i < n; i++) {
		hdr.version = _LINUX_CAPABILITY_VERSION_3;
		hdr.pid = 0;
		if (syscall(SYS_capget, &hdr, data) != 0 || prctl(PR_CAPBSET_READ, CAP_KILL) < 0) {
			perror("self_inspect");
			return 1;
		}
	}
#if defined(__x86_64__)
	ia32 = ia32_calls(n);
	if (ia32 < 0) {
		perror("self_inspect: fork");
		return 1;
	}
#endif
	printf("ia32 %d\n", ia32);
	return 0;
}
