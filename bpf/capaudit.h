/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Structures crossing the kernel/user boundary. Included by capaudit.bpf.c
 * (where vmlinux.h provides the __u* types) and by the C++ collector layer.
 * Plain fixed-width members only, explicit padding, so both sides agree on
 * the layout without relying on compiler-specific packing.
 */
#ifndef CAPAUDIT_H
#define CAPAUDIT_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define CA_COMM_LEN 16
#define CA_MAX_STACK_DEPTH 32
#define CA_PATH_LEN 256

/* Where the attach method cannot tell audit from non-audit (the tracepoint
 * carries no opts), the profiler decides from the stack origin. */
enum ca_audit {
	CA_AUDIT_NO = 0,
	CA_AUDIT_YES = 1,
	CA_AUDIT_UNKNOWN = 2,
};

enum ca_method {
	CA_METHOD_FEXIT = 1,
	CA_METHOD_KPROBE = 2,
	CA_METHOD_TRACEPOINT = 3,
};

enum ca_key_flags {
	CA_FLAG_INSETID = 1 << 0,   /* opts & CAP_OPT_INSETID */
	CA_FLAG_KTHREAD = 1 << 1,   /* no mm: a kernel thread, comm identifies it */
	CA_FLAG_NO_EXE = 1 << 2,    /* user task whose exe_file could not be read: comm identifies it */
	/* security_capable()'s answer after every LSM (fexit only, see
	 * final_verdict.bpf.h): FINAL_KNOWN when it was seen, FINAL_DENIED when
	 * it was an error. ret stays commoncap's: ret 0 with FINAL_DENIED is a
	 * grant an LSM (SELinux, AppArmor, BPF-LSM) took back. The high bits,
	 * so flags added below them do not collide. */
	CA_FLAG_FINAL_KNOWN = 1 << 6,
	CA_FLAG_FINAL_DENIED = 1 << 7,
	/* Counted where the exact key found no room (counts map full, or the
	 * unprivileged share of it used up): only the executable (or comm),
	 * cap, ret, audit, these flags and target_ns_level kept; uid, euid,
	 * cgroup, namespaces' inums, syscall and cap_effective are zero. */
	CA_FLAG_COARSE = 1 << 4,
	/* Coarser still (the coarse map full too): a per-capability slot of
	 * cap_counts, the executable lost as well. Set with CA_FLAG_COARSE. */
	CA_FLAG_CAP_ONLY = 1 << 5,
};

/* cap_counts, the map that cannot fill: one slot per capability (0-63),
 * target namespace initial or not, granted or denied, and audit. */
#define CA_CAP_SLOTS 1024
static inline __u32 ca_cap_slot(__u32 cap, int userns, int denied, __u32 audit)
{
	return ((cap & 63) << 4) | (userns ? 8 : 0) | (denied ? 4 : 0) | (audit & 3);
}

/* key_quota slots: keys the unprivileged have in each generation's counts
 * map (the kernel adds, user space zeroes a cleared generation's). */
enum ca_quota {
	CA_QUOTA_NONROOT_GEN0 = 0,
	CA_QUOTA_NONROOT_GEN1 = 1,
	CA_QUOTA_MAX,
};

/* exe_names: the path of every executable exec'd, kept until user space
 * has read it, so binaries run while the daemon is down are named. */
struct ca_exe_id {
	__u64 dev;             /* kernel encoding */
	__u64 ino;
};

struct ca_exe_name {
	char path[CA_PATH_LEN]; /* as ca_exec_event.dpath */
};

/*
 * One counted combination. Everything the profiler needs to tell checks
 * apart is here; anything per-event (pid, time) is not, so the key space
 * stays small and counting stays a single hash update. Every check hashes
 * the whole key, so it is kept to 64 bytes: a task without an executable
 * is named by its comm, in the place of the executable's identity.
 */
struct ca_check_key {
	union {
		struct {
			__u64 exe_dev; /* super_block->s_dev, kernel encoding (major << 20 | minor) */
			__u64 exe_ino;
		};
		/* CA_FLAG_KTHREAD and CA_FLAG_NO_EXE only, NUL-padded */
		char comm[CA_COMM_LEN];
	};
	__u64 cgroup_id;
	__u64 cap_effective;   /* cred->cap_effective, bit n = capability n */
	__u32 uid;
	__u32 euid;
	__u32 target_ns_inum;  /* user namespace the check is against */
	__u32 cred_ns_inum;    /* user namespace of the credential */
	__s32 syscall_nr;      /* -1 outside a syscall */
	__s32 ret;             /* cap_capable's return: 0 granted, -EPERM denied */
	__u8 cap;
	__u8 audit;            /* enum ca_audit */
	__u8 flags;            /* enum ca_key_flags */
	__u8 target_ns_level;  /* 0: the initial user namespace */
	__u32 arg;             /* what the syscall asked for: CA_ARG_* (0: not classified) */
};

/*
 * ca_check_key.arg: the syscall's request at the check, classified in the
 * kernel from its arguments and the credential, so user space can tell a
 * check that decides the outcome from one that does not (docs/rules.md).
 * The family is in the top byte; the bits below mean what the family says.
 */
#define CA_ARG_FAMILY_SHIFT 24
#define CA_ARG_FAMILY(arg) ((arg) >> CA_ARG_FAMILY_SHIFT)

enum ca_arg_family {
	CA_ARGF_NONE = 0,
	CA_ARGF_SETID = 1,     /* setuid ... setfsgid, setgroups */
	CA_ARGF_OPEN = 2,      /* open, openat, openat2, creat */
	CA_ARGF_RW = 3,        /* read/write family on an open file */
	CA_ARGF_CHMOD = 4,     /* chmod, fchmod, fchmodat, fchmodat2 */
	/* stat, lstat, newfstatat, statx, readlink(at), chdir: a path walk
	 * whose only permission checks are directory searches. Not access(2):
	 * its answer (W_OK...) is a question the program acts on. */
	CA_ARGF_LOOKUP = 5,
};

enum ca_arg_bits {
	/* setid: every id asked for is one the kernel's unprivileged path
	 * accepts, and that path leaves the same credentials: the call would
	 * succeed, with the same effect, without the capability. */
	CA_ARG_SETID_HELD = 1 << 0,
	/* open: O_WRONLY or O_RDWR; rw: a write. */
	CA_ARG_WRITE = 1 << 0,
	CA_ARG_CREAT = 1 << 1,     /* open: O_CREAT */
	CA_ARG_TRUNC = 1 << 2,     /* open: O_TRUNC */
	/* chmod: the new mode has S_ISGID / S_ISUID. */
	CA_ARG_MODE_SETGID = 1 << 0,
	CA_ARG_MODE_SETUID = 1 << 1,
};

/* A program asking the kernel which capabilities it holds. */
enum ca_inspect_kind {
	CA_INSPECT_CAPGET = 1,          /* capget of itself, with a data buffer */
	CA_INSPECT_CAPGET_VERSION = 2,  /* capget with no data: only the ABI version */
	CA_INSPECT_CAPGET_OTHER = 3,    /* capget of another process */
	CA_INSPECT_BSET = 4,            /* prctl(PR_CAPBSET_READ) */
	CA_INSPECT_AMBIENT = 5,         /* prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET) */
	/* capset of itself narrowing the permitted set, keeping cap in
	 * permitted and effective: the call fails without it. */
	CA_INSPECT_CAPSET_KEEP = 6,
};

/* The inspections map's key: counted exactly per executable and kind. */
struct ca_inspect_key {
	union {
		struct {
			__u64 exe_dev; /* kernel encoding, as in ca_check_key */
			__u64 exe_ino;
		};
		char comm[CA_COMM_LEN]; /* CA_FLAG_KTHREAD and CA_FLAG_NO_EXE only */
	};
	__u8 kind;             /* enum ca_inspect_kind */
	__u8 flags;            /* enum ca_key_flags */
	__u8 cap;              /* BSET, AMBIENT, CAPSET_KEEP: the capability (255: out of range) */
	__u8 _pad0;
	__u32 _pad1;
};

/* Origins are sampled, so a key may have several stacks; samples is how
 * often each was seen, not an exact count (the key's count is exact). */
struct ca_origin_key {
	struct ca_check_key check;
	__s32 stack_id;
	__u32 _pad;
};

enum ca_stat {
	CA_STAT_CHECKS = 0,        /* every check the program saw */
	CA_STAT_COUNT_DROPS,       /* checks not counted: counts map full */
	CA_STAT_ORIGIN_DROPS,      /* origin samples not recorded: origins map full */
	CA_STAT_STACK_ERRORS,      /* stack walks that failed (collision, map full) */
	CA_STAT_STACK_WALKS,       /* stack walks made */
	CA_STAT_EXEC_EVENTS,       /* exec events sent */
	CA_STAT_RINGBUF_DROPS,     /* events lost because a ring buffer was full */
	CA_STAT_COARSE_CHECKS,     /* checks counted at the coarse key (CA_FLAG_COARSE) */
	CA_STAT_CAP_ONLY_CHECKS,   /* checks counted per capability only (CA_FLAG_CAP_ONLY) */
	CA_STAT_NAME_DROPS,        /* execs whose path found no room in exe_names */
	CA_STAT_MAX,
};

struct ca_exec_event {
	__u64 exe_dev;         /* kernel encoding */
	__u64 exe_ino;
	__u64 ktime_ns;
	__u32 pid;
	__u32 tgid;
	__u32 uid;
	__u32 euid;
	char comm[CA_COMM_LEN];
	char filename[CA_PATH_LEN]; /* bprm->filename as given to execve */
	char dpath[CA_PATH_LEN];    /* absolute path rebuilt from dentries; "" if unknown */
};

/* A cgroup2 directory was made (issue 12): its id, as
 * bpf_get_current_cgroup_id() gives it, and its path from the root of the
 * hierarchy. Not pinned: a restarted daemon names what exists from the
 * cgroup2 mount instead. */
struct ca_cgroup_event {
	__u64 id;
	__u64 ktime_ns;
	__u32 level;
	__u32 _pad;
	char path[CA_PATH_LEN];
};

/* Only in trace mode (rodata stream_checks): one event per check. */
struct ca_check_event {
	struct ca_check_key key;
	__u64 ktime_ns;
	__u32 pid;
	__u32 tgid;
	char task_comm[CA_COMM_LEN];
	__s32 kstack_len;      /* bytes in kstack, negative errno on failure */
	__s32 ustack_len;
	__u64 kstack[CA_MAX_STACK_DEPTH];
	__u64 ustack[CA_MAX_STACK_DEPTH];
};

/*
 * The hot keys of one CPU in one generation (the per-CPU array `hot_keys`, one
 * element per generation parity): a key that made CA_HOT_AFTER checks on
 * this CPU in the counts map is counted on in e[cur] instead, so its next
 * checks are a 64-byte compare rather than a hash lookup. An entry is never
 * given to another key (its count would have to move, which a reader could
 * see twice or not at all): a newly hot key takes the next free entry, and
 * the older ones keep their counts, read and emptied with the generation.
 * A key's count is its counts-map value plus every entry holding it.
 */
#define CA_HOT_ENTRIES 8
#define CA_HOT_AFTER 1024

struct ca_hot_entry {
	struct ca_check_key key;
	__u64 base;            /* this CPU's counts-map value when taken */
	__u64 count;           /* checks counted here since */
};

struct ca_hot {
	__u32 used;            /* entries taken, 0..CA_HOT_ENTRIES */
	__u32 cur;             /* the entry compared against */
	struct ca_hot_entry e[CA_HOT_ENTRIES];
};

enum ca_track_state {
	CA_TRACK_ARMED = 1,    /* profile: counted once it execs */
	CA_TRACK_ON = 2,       /* counted, and its children too */
};

/*
 * Pinned state (the one-entry ARRAY map `meta`, user space only): tells a
 * restarted collector whether the maps and link an earlier run left pinned
 * can be adopted. Bump CA_LAYOUT_REVISION whenever a pinned map's key or
 * value changes meaning without changing size, and whenever ca_exec_event
 * changes at all (the exec_events ring buffer is pinned too).
 * Revision 3: two generations of counts and coarse maps, cap_counts,
 * epoch, key_quota, exe_names.
 * Revision 4: the hot entries (ca_hot) hold part of the counts.
 */
#define CA_LAYOUT_REVISION 4
#define CA_LAYOUT_VERSION \
	((__u32)((CA_LAYOUT_REVISION << 16) | sizeof(struct ca_check_key)))

struct ca_pin_meta {
	__u32 layout;          /* CA_LAYOUT_VERSION of the run that pinned */
	__u32 method;          /* enum ca_method of the pinned link */
	__u64 config;          /* hash of the load-time settings of the pinned program */
};

#endif /* CAPAUDIT_H */
