/* The syscall's request at a check (ca_check_key.arg) and the programs that
 * count self-inspection (capget, prctl capability queries). Included by
 * capaudit.bpf.c alone, after its maps and settings. What each class means
 * and the kernel code it rests on: docs/rules.md. */
#pragma once

/* Syscall numbers of the families classified; other ABIs (ia32, x32) are
 * left unclassified (arg 0). */
#if defined(__TARGET_ARCH_x86)
#define CA_NR_read 0
#define CA_NR_write 1
#define CA_NR_open 2
#define CA_NR_pread64 17
#define CA_NR_pwrite64 18
#define CA_NR_readv 19
#define CA_NR_writev 20
#define CA_NR_creat 85
#define CA_NR_chmod 90
#define CA_NR_fchmod 91
#define CA_NR_setuid 105
#define CA_NR_setgid 106
#define CA_NR_setreuid 113
#define CA_NR_setregid 114
#define CA_NR_setgroups 116
#define CA_NR_setresuid 117
#define CA_NR_setresgid 119
#define CA_NR_setfsuid 122
#define CA_NR_setfsgid 123
#define CA_NR_openat 257
#define CA_NR_fchmodat 268
#define CA_NR_preadv 295
#define CA_NR_pwritev 296
#define CA_NR_preadv2 327
#define CA_NR_pwritev2 328
#define CA_NR_stat 4
#define CA_NR_lstat 6
#define CA_NR_chdir 80
#define CA_NR_readlink 89
#define CA_NR_newfstatat 262
#define CA_NR_readlinkat 267
#define CA_NR_statx 332
#elif defined(__TARGET_ARCH_arm64)
#define CA_NR_read 63
#define CA_NR_write 64
#define CA_NR_open -2
#define CA_NR_pread64 67
#define CA_NR_pwrite64 68
#define CA_NR_readv 65
#define CA_NR_writev 66
#define CA_NR_creat -3
#define CA_NR_chmod -4
#define CA_NR_fchmod 52
#define CA_NR_setuid 146
#define CA_NR_setgid 144
#define CA_NR_setreuid 145
#define CA_NR_setregid 143
#define CA_NR_setgroups 159
#define CA_NR_setresuid 147
#define CA_NR_setresgid 149
#define CA_NR_setfsuid 151
#define CA_NR_setfsgid 152
#define CA_NR_openat 56
#define CA_NR_fchmodat 53
#define CA_NR_preadv 69
#define CA_NR_pwritev 70
#define CA_NR_preadv2 286
#define CA_NR_pwritev2 287
#define CA_NR_stat -5
#define CA_NR_lstat -6
#define CA_NR_chdir 49
#define CA_NR_readlink -7
#define CA_NR_newfstatat 79
#define CA_NR_readlinkat 78
#define CA_NR_statx 291
#endif
#define CA_NR_openat2 437
#define CA_NR_fchmodat2 452

#define CA_O_ACCMODE 3
#define CA_O_CREAT 0100
#define CA_O_TRUNC 01000
#define CA_S_ISUID 04000
#define CA_S_ISGID 02000
#define CA_TS_COMPAT 0x0002

static __always_inline __u32 ca_family(__u32 f, __u32 bits)
{
	return (f << CA_ARG_FAMILY_SHIFT) | bits;
}

/* A requested id (-1: unchanged) is one of the task's. */
#define CA_ID_IN2(x, a, b) ((x) == (__u32)-1 || (x) == (a) || (x) == (b))
#define CA_ID_IN3(x, a, b, c) (CA_ID_IN2(x, a, b) || (x) == (c))

/*
 * The unprivileged paths of kernel/sys.c, per call: HELD when they accept
 * every id asked for with the credentials the privileged path would make.
 * setuid/setgid with the capability also set the real and saved ids, so
 * without it the result is the same only when those already are the id.
 * setgroups has no unprivileged path (may_setgroups): never HELD.
 */
static __always_inline __u32 classify_setid(struct pt_regs *regs, int nr, const struct cred *cred)
{
	__u32 a = PT_REGS_PARM1_CORE_SYSCALL(regs), b = PT_REGS_PARM2_CORE_SYSCALL(regs),
	      c = PT_REGS_PARM3_CORE_SYSCALL(regs);
	bool gid = nr == CA_NR_setgid || nr == CA_NR_setregid || nr == CA_NR_setresgid ||
		   nr == CA_NR_setfsgid;
	__u32 r = gid ? BPF_CORE_READ(cred, gid.val) : BPF_CORE_READ(cred, uid.val);
	__u32 e = gid ? BPF_CORE_READ(cred, egid.val) : BPF_CORE_READ(cred, euid.val);
	__u32 s = gid ? BPF_CORE_READ(cred, sgid.val) : BPF_CORE_READ(cred, suid.val);
	__u32 fs = gid ? BPF_CORE_READ(cred, fsgid.val) : BPF_CORE_READ(cred, fsuid.val);
	bool held = false;

	if (nr == CA_NR_setuid || nr == CA_NR_setgid)
		held = a != (__u32)-1 && a == r && a == s;
	else if (nr == CA_NR_setreuid || nr == CA_NR_setregid)
		held = CA_ID_IN2(a, r, e) && CA_ID_IN3(b, r, e, s);
	else if (nr == CA_NR_setresuid || nr == CA_NR_setresgid)
		held = CA_ID_IN3(a, r, e, s) && CA_ID_IN3(b, r, e, s) && CA_ID_IN3(c, r, e, s);
	else if (nr == CA_NR_setfsuid || nr == CA_NR_setfsgid)
		held = a != (__u32)-1 && (CA_ID_IN3(a, r, e, s) || a == fs);
	return ca_family(CA_ARGF_SETID, held ? CA_ARG_SETID_HELD : 0);
}

static __always_inline __u32 open_bits(__u64 flags)
{
	return ((flags & CA_O_ACCMODE) ? CA_ARG_WRITE : 0) | ((flags & CA_O_CREAT) ? CA_ARG_CREAT : 0) |
	       ((flags & CA_O_TRUNC) ? CA_ARG_TRUNC : 0);
}

static __always_inline __u32 mode_bits(__u32 mode)
{
	return ((mode & CA_S_ISGID) ? CA_ARG_MODE_SETGID : 0) |
	       ((mode & CA_S_ISUID) ? CA_ARG_MODE_SETUID : 0);
}

/* The task runs a syscall of another ABI (ia32): its numbers mean other calls. */
static __always_inline bool compat_syscall(struct task_struct *task)
{
#if defined(__TARGET_ARCH_x86)
	if (bpf_core_field_exists(task->thread_info.status))
		return BPF_CORE_READ(task, thread_info.status) & CA_TS_COMPAT;
#endif
	return false;
}

/* ca_check_key.arg for a check made inside syscall nr; 0 when not one of
 * the families (or its arguments could not be read). One compare chain on
 * every check; the arguments, and the task's ABI, read only in the syscalls
 * classified. Under another ABI the number meant another call: what was
 * read for it is dropped. */
static __always_inline __u32 classify_args(struct task_struct *task, struct pt_regs *regs, int nr,
					   const struct cred *cred)
{
	__u32 arg;

	switch (nr) {
	case CA_NR_setgroups:
		arg = ca_family(CA_ARGF_SETID, 0);
		break;
	case CA_NR_setuid:
	case CA_NR_setgid:
	case CA_NR_setreuid:
	case CA_NR_setregid:
	case CA_NR_setresuid:
	case CA_NR_setresgid:
	case CA_NR_setfsuid:
	case CA_NR_setfsgid:
		arg = classify_setid(regs, nr, cred);
		break;
	case CA_NR_open:
		arg = ca_family(CA_ARGF_OPEN, open_bits(PT_REGS_PARM2_CORE_SYSCALL(regs)));
		break;
	case CA_NR_openat:
		arg = ca_family(CA_ARGF_OPEN, open_bits(PT_REGS_PARM3_CORE_SYSCALL(regs)));
		break;
	case CA_NR_creat:
		arg = ca_family(CA_ARGF_OPEN, CA_ARG_WRITE | CA_ARG_CREAT | CA_ARG_TRUNC);
		break;
	case CA_NR_openat2: {
		struct open_how how;

		/* Non-sleepable: a paged-out struct leaves the check unclassified. */
		if (bpf_probe_read_user(&how, sizeof(how), (void *)PT_REGS_PARM3_CORE_SYSCALL(regs)))
			return 0;
		arg = ca_family(CA_ARGF_OPEN, open_bits(how.flags));
		break;
	}
	case CA_NR_write:
	case CA_NR_pwrite64:
	case CA_NR_writev:
	case CA_NR_pwritev:
	case CA_NR_pwritev2:
		arg = ca_family(CA_ARGF_RW, CA_ARG_WRITE);
		break;
	case CA_NR_read:
	case CA_NR_pread64:
	case CA_NR_readv:
	case CA_NR_preadv:
	case CA_NR_preadv2:
		arg = ca_family(CA_ARGF_RW, 0);
		break;
	case CA_NR_chmod:
	case CA_NR_fchmod:
		arg = ca_family(CA_ARGF_CHMOD, mode_bits(PT_REGS_PARM2_CORE_SYSCALL(regs)));
		break;
	case CA_NR_fchmodat:
	case CA_NR_fchmodat2:
		arg = ca_family(CA_ARGF_CHMOD, mode_bits(PT_REGS_PARM3_CORE_SYSCALL(regs)));
		break;
	case CA_NR_stat:
	case CA_NR_lstat:
	case CA_NR_newfstatat:
	case CA_NR_statx:
	case CA_NR_readlink:
	case CA_NR_readlinkat:
	case CA_NR_chdir:
		/* Only walks a path: no argument says more. */
		arg = ca_family(CA_ARGF_LOOKUP, 0);
		break;
	default:
		return 0;
	}
	return compat_syscall(task) ? 0 : arg;
}

/* The self-inspection programs: capaudit_inspect.bpf.h (kept apart: they
 * are programs, this file is the check's classification). */
#include "capaudit_inspect.bpf.h"
