// SPDX-License-Identifier: GPL-2.0
/*
 * capaudit kernel side: counts capability checks (cap_capable) in the kernel
 * so that user space only reads aggregated counts, samples the stacks they
 * come from, and reports execs so user space can name executables.
 *
 * Three ways to see cap_capable, because fleet kernels differ: fexit (best:
 * arguments, opts and return in one program), kprobe+kretprobe, and the
 * capability:cap_capable tracepoint (6.14+, no opts). User space autoloads
 * exactly one of them; all share count_check().
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "capaudit.h"

extern int LINUX_KERNEL_VERSION __kconfig;
#ifndef KERNEL_VERSION
#define KERNEL_VERSION(a, b, c) (((a) << 16) + ((b) << 8) + ((c) > 255 ? 255 : (c)))
#endif

/* GPL: bpf_get_stackid, bpf_probe_read_kernel_str and friends need it. */
char LICENSE[] SEC("license") = "GPL";

#define EEXIST 17
#define PF_KTHREAD 0x00200000
#define CAP_OPT_NOAUDIT (1 << 1)
#define CAP_OPT_INSETID (1 << 2)
#define CAP_SYS_ADMIN 21
#define CAP_SYS_RAWIO 17
#define EPERM 1
/* init_user_ns's inode number (PROC_USER_INIT_INO), fixed by the kernel ABI. */
#define CA_INIT_USER_NS_INUM 0xEFFFFFFDU

/* Depth of sampled origin stacks; deeper frames (the syscall entry end) are
 * cut, which only merges stacks that differ far from the check. */
#define CA_STACK_MAP_DEPTH 32
/* Path components followed (mount crossings included) when rebuilding an
 * exec'd file's path; deeper paths are reported as unknown. */
#define CA_DPATH_MAX_STEPS 32

/*
 * Settings fixed at load time, set by user space between open and load, so
 * the verifier drops the code of disabled features entirely.
 */
const volatile bool old_audit_arg = false;  /* cap_capable(..., int audit): pre-5.1 */
const volatile bool follow_tracked = false; /* profile: only tasks ON in `tracked` */
const volatile __u32 only_tgid = 0;         /* trace -p */
const volatile bool stream_checks = false;  /* trace: one event per check */
const volatile bool stream_kernel_stacks = false;
const volatile bool stream_user_stacks = false;
const volatile __u32 stack_sample_period = 1024;
/* period - 1 when the period is a power of two: a mask instead of a 64-bit
 * division on the hot path (about 5 ns a check). */
const volatile __u32 stack_sample_mask = 1023;
/* vm.mmap_min_addr (commoncap's dac_mmap_min_addr) when loaded: below it
 * cap_mmap_addr asks CAP_SYS_RAWIO (see ca_fexit_cap_mmap_addr). */
const volatile __u64 mmap_min_addr = 65536;
/* The inline-site programs are loaded: cap_capable's program marks the
 * site_guard slot so a site does not count a check cap_capable saw. */
const volatile bool guard_sites = false;
/* Keys of unprivileged credentials a generation's counts map may hold; the
 * rest of it is kept for root and kernel threads, so a flood by a local user
 * never pushes a privileged program's checks out of their exact keys.
 * 0: no reserve. */
const volatile __u64 nonroot_key_limit = 0;
/* Paths of exec'd files go to exe_names (the daemon; profile needs none). */
const volatile bool record_exe_names = false;

#include "capaudit_maps.bpf.h"

/* 6.3+ kernel_cap_t, spelt locally so the build machine's vmlinux.h may be
 * older; CO-RE matches it by name against the running kernel. */
typedef struct {
	__u64 val;
} kernel_cap_t___capu64;

struct cred___capu64 {
	kernel_cap_t___capu64 cap_effective;
} __attribute__((preserve_access_index));

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	/* Per-CPU, but a program on this CPU can still nest (NMI, another
	 * tracepoint), so the add stays atomic. */
	if (v)
		__sync_fetch_and_add(v, 1);
}

/*
 * For per-CPU slots that only the cap_capable program writes (the counts
 * map, CA_STAT_CHECKS), on every check: a plain add instead of a locked
 * one, still exact. The kernel never lets a program run twice at once on
 * one CPU: a run that would nest in another there (an interrupt), or start
 * beside a preempted one (fexit runs are preemptible), is skipped and
 * counted as a miss of the program. User space only reads. (While a
 * restart replaces a pinned link, old and new programs overlap for an
 * instant and checks are counted twice anyway.)
 */
static __always_inline void own_slot_inc(__u64 *v)
{
	*v += 1;
}

static __always_inline void stat_inc_own(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		own_slot_inc(v);
}

/* Adds one to a counter map entry, creating it at 1. Returns the value after
 * the add (this CPU's share for per-CPU maps), 0 when the map is full.
 * own_percpu: a per-CPU map written only by the cap_capable program. */
static __always_inline __u64 map_count(void *map, const void *key, bool *is_new,
				       const bool own_percpu)
{
	__u64 one = 1, *val;
	long err;

	*is_new = false;
	val = bpf_map_lookup_elem(map, key);
	if (!val) {
		err = bpf_map_update_elem(map, key, &one, BPF_NOEXIST);
		if (!err) {
			*is_new = true;
			return 1;
		}
		/* Lost a race with another CPU inserting the same key. */
		if (err != -EEXIST)
			return 0;
		val = bpf_map_lookup_elem(map, key);
		if (!val)
			return 0;
	}
	if (own_percpu) {
		own_slot_inc(val);
		return *val;
	}
	/* The fetched value is not used: that would need BPF atomics with
	 * fetch (-mcpu=v3, Linux 5.12); re-reading is exact enough to decide
	 * sampling. */
	__sync_fetch_and_add(val, 1);
	return *val;
}

/* New keys always, then at per-CPU counts 1, 2, 4, ... up to the period, then
 * every period checks: a hot key costs one walk per period, a rare one keeps
 * its few walks. */
static __always_inline bool should_sample(__u64 n, bool is_new)
{
	__u32 period = stack_sample_period;

	if (is_new)
		return true;
	if (!period || !n)
		return false;
	if (n <= period)
		return (n & (n - 1)) == 0;
	if (stack_sample_mask)
		return (n & stack_sample_mask) == 0;
	return n % period == 0;
}

#include "capaudit_args.bpf.h"
#include "capaudit_key.bpf.h"

static __always_inline void record_origin(void *ctx, struct ca_origin_key *okey, __u32 skip)
{
	bool is_new;
	long id;

	stat_inc(CA_STAT_STACK_WALKS);
	/* No BPF_F_REUSE_STACKID: a hash collision fails (counted) rather than
	 * silently replacing a stack an origin already points to. */
	id = bpf_get_stackid(ctx, &stacks, skip & BPF_F_SKIP_FIELD_MASK);
	if (id < 0) {
		stat_inc(CA_STAT_STACK_ERRORS);
		return;
	}
	okey->stack_id = id;
	if (!map_count(&origins, okey, &is_new, false))
		stat_inc(CA_STAT_ORIGIN_DROPS);
}

static __always_inline void stream_check(void *ctx, const struct ca_check_key *key, __u64 pid_tgid,
					 __u32 skip)
{
	struct ca_check_event *e;

	e = bpf_ringbuf_reserve(&check_events, sizeof(*e), 0);
	if (!e) {
		stat_inc(CA_STAT_RINGBUF_DROPS);
		return;
	}
	__builtin_memcpy(&e->key, key, sizeof(e->key));
	e->ktime_ns = bpf_ktime_get_ns();
	e->pid = (__u32)pid_tgid;
	e->tgid = pid_tgid >> 32;
	bpf_get_current_comm(e->task_comm, sizeof(e->task_comm));
	e->kstack_len = 0;
	e->ustack_len = 0;
	if (stream_kernel_stacks)
		e->kstack_len =
			bpf_get_stack(ctx, e->kstack, sizeof(e->kstack), skip & BPF_F_SKIP_FIELD_MASK);
	if (stream_user_stacks)
		e->ustack_len = bpf_get_stack(ctx, e->ustack, sizeof(e->ustack), BPF_F_USER_STACK);
	bpf_ringbuf_submit(e, 0);
}

/* Root (real or effective, in the initial user namespace's ids: a user
 * namespace's root is its creator's kuid) and kernel threads. */
static __always_inline bool privileged_key(const struct ca_check_key *k)
{
	return (k->flags & CA_FLAG_KTHREAD) || k->uid == 0 || k->euid == 0;
}

/*
 * Counts a check whose exact key found no room, still exactly, at the coarse
 * key (the key is made coarse in place, for the origin sample) or, with the
 * coarse map full too, in its cap_counts slot. Returns what map_count does;
 * 0 for the slot (no origin is sampled there).
 */
static __always_inline __u64 count_coarse(void *coarse_map, struct ca_check_key *k, bool *is_new,
					  const bool own_percpu)
{
	__u32 slot;
	__u64 n, *v;

	k->flags |= CA_FLAG_COARSE;
	k->cgroup_id = 0;
	k->cap_effective = 0;
	k->uid = 0;
	k->euid = 0;
	k->target_ns_inum = 0;
	k->cred_ns_inum = 0;
	k->syscall_nr = 0;
	n = map_count(coarse_map, k, is_new, own_percpu);
	if (n) {
		stat_inc(CA_STAT_COARSE_CHECKS);
		return n;
	}
	slot = ca_cap_slot(k->cap, k->target_ns_level != 0, k->ret != 0, k->audit);
	v = bpf_map_lookup_elem(&cap_counts, &slot);
	if (v) {
		if (own_percpu)
			own_slot_inc(v);
		else
			__sync_fetch_and_add(v, 1);
		stat_inc(CA_STAT_CAP_ONLY_CHECKS);
	} else {
		stat_inc(CA_STAT_COUNT_DROPS); /* cannot happen: slot < CA_CAP_SLOTS */
	}
	return 0;
}

_Static_assert(sizeof(struct ca_check_key) == 64, "hot_match compares eight words");

/* Whether two keys are equal: eight word compares, no branch until the end. */
static __always_inline bool hot_match(const struct ca_check_key *a, const struct ca_check_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4]) |
		(x[5] ^ y[5]) | (x[6] ^ y[6]) | (x[7] ^ y[7])) == 0;
}

/* The key just counted n times on this CPU in the counts map goes on in a
 * free hot entry (ca_hot); a multiple of CA_HOT_AFTER, so a key that stays
 * busy after losing the current entry can take another one later. */
static __always_inline void hot_take(struct ca_hot *h, const struct ca_check_key *k, __u64 n)
{
	__u32 j = h->used;
	struct ca_hot_entry *e;

	if ((n & (CA_HOT_AFTER - 1)) || j >= CA_HOT_ENTRIES)
		return;
	e = &h->e[j & (CA_HOT_ENTRIES - 1)];
	__builtin_memcpy(&e->key, k, sizeof(e->key));
	e->base = n;
	e->count = 0;
	/* Published after the entry: user space reads `used` first and only
	 * the entries below it. */
	h->cur = j;
	h->used = j + 1;
}

/* One generation's counting: the exact key if it is there or can be added
 * (within the unprivileged share), else the coarse key. hot: this CPU's hot
 * entries of the generation, only where own_percpu. */
static __always_inline __u64 count_in(void *counts_map, void *coarse_map, __u32 quota_slot,
				      struct ca_check_key *k, bool *is_new, const bool own_percpu,
				      struct ca_hot *hot)
{
	__u64 *val = bpf_map_lookup_elem(counts_map, k);
	__u64 *quota = NULL;
	__u64 n;

	*is_new = false;
	if (val) {
		/* The common case, a key seen before: one lookup, one add. */
		if (!own_percpu) {
			__sync_fetch_and_add(val, 1);
			return *val;
		}
		own_slot_inc(val);
		n = *val;
		if (hot)
			hot_take(hot, k, n);
		return n;
	}
	if (nonroot_key_limit && !privileged_key(k)) {
		quota = bpf_map_lookup_elem(&key_quota, &quota_slot);
		if (quota && *quota >= nonroot_key_limit)
			return count_coarse(coarse_map, k, is_new, own_percpu);
	}
	n = map_count(counts_map, k, is_new, own_percpu);
	if (!n)
		return count_coarse(coarse_map, k, is_new, own_percpu);
	if (*is_new && quota)
		__sync_fetch_and_add(quota, 1);
	return n;
}

/* Counts a filled key in the generation counted into, sampling its origin.
 * own_percpu: see map_count. */
static __always_inline void count_key(void *ctx, struct ca_origin_key *okey, const __u32 skip,
				      const bool own_percpu)
{
	__u32 zero = 0;
	__u64 *gen = bpf_map_lookup_elem(&epoch, &zero);
	__u32 odd = gen ? (*gen & 1) : 0;
	struct ca_hot *hot = NULL;
	bool is_new = false;
	__u64 n;

	/* Written only where the counts map's slots are (own_percpu), so
	 * plain stores and adds, like those slots. */
	if (own_percpu) {
		hot = bpf_map_lookup_elem(&hot_keys, &odd);
		if (hot && hot->used) {
			struct ca_hot_entry *e = &hot->e[hot->cur & (CA_HOT_ENTRIES - 1)];

			if (hot_match(&e->key, &okey->check)) {
				own_slot_inc(&e->count);
				n = e->base + e->count;
				if (should_sample(n, false))
					record_origin(ctx, okey, skip);
				return;
			}
		}
	}
	if (odd)
		n = count_in(&counts_b, &coarse_b, CA_QUOTA_NONROOT_GEN1, &okey->check, &is_new,
			     own_percpu, hot);
	else
		n = count_in(&counts, &coarse, CA_QUOTA_NONROOT_GEN0, &okey->check, &is_new,
			     own_percpu, hot);
	if (n && should_sample(n, is_new))
		record_origin(ctx, okey, skip);
}

/* security_capable's final verdict: fentry/fexit programs and final_defer(). */
#include "final_verdict.bpf.h"

/*
 * Counts one check. skip: innermost kernel frames left out of stacks, those of
 * this program and its attach glue that have no place in an origin (the BPF
 * program itself, and for fexit the trampoline); what remains starts in the
 * tracing core (bpf_trace_run*, kretprobe handlers) or at the caller.
 */
static __always_inline void count_check(void *ctx, const struct cred *cred,
					struct user_namespace *target_ns, int cap, int ret,
					__u8 audit, __u8 flags, const bool args_btf, const __u32 skip,
					const bool site, const bool kfuncs)
{
	struct ca_origin_key okey;

	/* The pid is asked for only by the modes that use it: the daemon's
	 * check makes no helper call it can do without. */
	stat_inc_own(CA_STAT_CHECKS);
	if (guard_sites && !site) {
		__u32 zero = 0;
		struct site_guard *g = bpf_map_lookup_elem(&site_guard, &zero);

		if (g && g->tid == (__u32)bpf_get_current_pid_tgid())
			g->seen = 1;
	}
	if (only_tgid && (bpf_get_current_pid_tgid() >> 32) != only_tgid)
		return;
	if (follow_tracked) {
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;
		__u32 *state = bpf_map_lookup_elem(&tracked, &tgid);

		if (!state || *state != CA_TRACK_ON)
			return;
	}

	/* Zeroed whole: padding is part of the hashed key. */
	__builtin_memset(&okey, 0, sizeof(okey));
	okey.check.cap = cap;
	okey.check.ret = ret;
	okey.check.audit = audit;
	okey.check.flags = flags;
	fill_key(&okey.check, cred, target_ns, args_btf, kfuncs);
	if (!site && final_defer(&okey.check))
		return;

	/* Before counting: a coarse count rewrites the key. */
	if (stream_checks)
		stream_check(ctx, &okey.check, bpf_get_current_pid_tgid(), skip);
	/* With final_verdict, fexit/security_capable counts into the maps too. */
	count_key(ctx, &okey, skip, !final_verdict);
}

/* opts (5.1+) or audit (before): which one is decided from kernel BTF. */
static __always_inline __u8 audit_of(unsigned int arg4)
{
	if (old_audit_arg)
		return arg4 ? CA_AUDIT_YES : CA_AUDIT_NO;
	return (arg4 & CAP_OPT_NOAUDIT) ? CA_AUDIT_NO : CA_AUDIT_YES;
}

static __always_inline __u8 flags_of(unsigned int arg4)
{
	return (!old_audit_arg && (arg4 & CAP_OPT_INSETID)) ? CA_FLAG_INSETID : 0;
}

SEC("fexit/cap_capable")
int BPF_PROG(ca_fexit_cap_capable, const struct cred *cred, struct user_namespace *target_ns,
	     int cap, unsigned int arg4, int ret)
{
	count_check(ctx, cred, target_ns, cap, ret, audit_of(arg4), flags_of(arg4), true, 2, false, false);
	return 0;
}

SEC("kprobe/cap_capable")
int BPF_KPROBE(ca_kprobe_cap_capable, const struct cred *cred, struct user_namespace *target_ns,
	       int cap, unsigned int arg4)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct kprobe_stash a = {
		.cred = (__u64)cred,
		.target_ns = (__u64)target_ns,
		.cap = cap,
		.arg4 = arg4,
	};

	bpf_map_update_elem(&kprobe_args, &id, &a, BPF_ANY);
	return 0;
}

SEC("kretprobe/cap_capable")
int BPF_KRETPROBE(ca_kretprobe_cap_capable, int ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct kprobe_stash *p = bpf_map_lookup_elem(&kprobe_args, &id);
	struct kprobe_stash a;

	if (!p)
		return 0;
	a = *p;
	bpf_map_delete_elem(&kprobe_args, &id);
	count_check(ctx, (const struct cred *)a.cred, (struct user_namespace *)a.target_ns, a.cap,
		    ret, audit_of(a.arg4), flags_of(a.arg4), false, 1, false, false);
	return 0;
}

/*
 * Decisions commoncap makes with cap_capable() inlined, invisible to the
 * programs above on fexit and kprobe (Debian 12's 6.1 and 6.12 builds both
 * inline it into these two; see docs/kernels.md). Each is counted as the
 * cap_capable check it stands for: same key, same meaning. Loaded beside
 * fexit/kprobe when kernel BTF has the function; never with the tracepoint,
 * which fires inside the inlined copies too.
 */

static __always_inline void site_enter(void)
{
	__u32 zero = 0;
	struct site_guard *g = bpf_map_lookup_elem(&site_guard, &zero);

	if (g) {
		g->tid = (__u32)bpf_get_current_pid_tgid();
		g->seen = 0;
	}
}

/* True when cap_capable's program counted this call's check already. */
static __always_inline bool site_seen(void)
{
	__u32 zero = 0, tid = (__u32)bpf_get_current_pid_tgid();
	struct site_guard *g = bpf_map_lookup_elem(&site_guard, &zero);
	bool seen;

	/* A slot taken over (preempted between entry and exit) counts. */
	if (!g || g->tid != tid)
		return false;
	seen = g->seen;
	g->tid = 0;
	return seen;
}

SEC("fentry/cap_mmap_addr")
int BPF_PROG(ca_fentry_cap_mmap_addr, unsigned long addr)
{
	site_enter();
	return 0;
}

SEC("fentry/cap_vm_enough_memory")
int BPF_PROG(ca_fentry_cap_vm_enough_memory, struct mm_struct *mm, long pages)
{
	site_enter();
	return 0;
}

/* cap_mmap_addr(addr): below dac_mmap_min_addr, cap_capable(current_cred(),
 * &init_user_ns, CAP_SYS_RAWIO, CAP_OPT_NONE), audited, and its answer is
 * the return value; at or above it, no check. */
SEC("fexit/cap_mmap_addr")
int BPF_PROG(ca_fexit_cap_mmap_addr, unsigned long addr, int ret)
{
	struct task_struct *task = bpf_get_current_task_btf();

	if (site_seen() || addr >= mmap_min_addr)
		return 0;
	count_check(ctx, task->cred, NULL, CAP_SYS_RAWIO, ret ? -EPERM : 0, CA_AUDIT_YES, 0, true, 2,
		    true, false);
	return 0;
}

/* cap_vm_enough_memory(mm, pages): cap_capable(current_cred(), &init_user_ns,
 * CAP_SYS_ADMIN, CAP_OPT_NOAUDIT) on every call. Until 6.11 it returns 1
 * when granted and 0 when not; since 6.12 ("lsm: Refactor return value of
 * LSM hook vm_enough_memory") cap_capable's own 0 or -EPERM. Only 0 is
 * ambiguous, and the kernel version (libbpf's, from uname) settles it. */
SEC("fexit/cap_vm_enough_memory")
int BPF_PROG(ca_fexit_cap_vm_enough_memory, struct mm_struct *mm, long pages, int ret)
{
	struct task_struct *task = bpf_get_current_task_btf();

	bool granted;

	if (site_seen())
		return 0;
	if (ret < 0 || ret == 1)
		granted = ret == 1;
	else
		granted = LINUX_KERNEL_VERSION >= KERNEL_VERSION(6, 12, 0);
	count_check(ctx, task->cred, NULL, CAP_SYS_ADMIN, granted ? 0 : -EPERM, CA_AUDIT_NO, 0, true, 2,
		    true, false);
	return 0;
}

/* The tracepoint has no opts: audit is left to the stack origin. */
SEC("tp_btf/cap_capable")
int BPF_PROG(ca_tp_cap_capable, const struct cred *cred, struct user_namespace *target_ns,
	     const struct user_namespace *capable_ns, int cap, int ret)
{
	count_check(ctx, cred, target_ns, cap, ret, CA_AUDIT_UNKNOWN, 0, true, 1, false, true);
	return 0;
}

#include "capaudit_dpath.bpf.h"

SEC("tp_btf/sched_process_exec")
int BPF_PROG(ca_tp_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct ca_exec_event *e;
	struct ca_exe_name *name;
	struct ca_exe_id id;
	struct file *file;
	struct inode *inode;
	const struct cred *cred;
	__u32 zero = 0;

	if (follow_tracked) {
		__u32 *state = bpf_map_lookup_elem(&tracked, &tgid);

		if (state && *state == CA_TRACK_ARMED) {
			__u32 on = CA_TRACK_ON;

			bpf_map_update_elem(&tracked, &tgid, &on, BPF_EXIST);
		}
	}

	file = BPF_CORE_READ(bprm, file);
	inode = BPF_CORE_READ(file, f_inode);
	id.ino = BPF_CORE_READ(inode, i_ino);
	id.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	name = bpf_map_lookup_elem(&name_scratch, &zero);
	if (!name)
		return 0;
	/* The path also goes to exe_names, which keeps it however long the
	 * daemon is down (the ring buffer holds a few hundred events). */
	build_dpath(name->path, file);
	if (record_exe_names && name->path[0]) {
		long err = bpf_map_update_elem(&exe_names, &id, name, BPF_NOEXIST);

		if (err && err != -EEXIST)
			stat_inc(CA_STAT_NAME_DROPS);
	}

	e = bpf_ringbuf_reserve(&exec_events, sizeof(*e), 0);
	if (!e) {
		stat_inc(CA_STAT_RINGBUF_DROPS);
		return 0;
	}
	e->exe_ino = id.ino;
	e->exe_dev = id.dev;
	e->ktime_ns = bpf_ktime_get_ns();
	e->pid = (__u32)pid_tgid;
	e->tgid = tgid;
	/* The new credentials are committed by now (begin_new_exec). */
	cred = BPF_CORE_READ(p, cred);
	e->uid = BPF_CORE_READ(cred, uid.val);
	e->euid = BPF_CORE_READ(cred, euid.val);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	__builtin_memcpy(e->dpath, name->path, sizeof(e->dpath));
	bpf_ringbuf_submit(e, 0);
	stat_inc(CA_STAT_EXEC_EVENTS);
	return 0;
}

#include "capaudit_cgroups.bpf.h"

/* Loaded only in follow_tracked mode: children of tracked processes are
 * tracked too. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(ca_tp_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid;
	__u32 on = CA_TRACK_ON;
	__u32 *state;

	if (!follow_tracked || ptgid == ctgid)
		return 0;
	state = bpf_map_lookup_elem(&tracked, &ptgid);
	if (!state || *state != CA_TRACK_ON)
		return 0;
	bpf_map_update_elem(&tracked, &ctgid, &on, BPF_ANY);
	return 0;
}

/* Loaded only in follow_tracked mode: forget a process when its group leader
 * exits (the tgid may be reused). Later arguments differ between kernels and
 * are not read. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(ca_tp_exit, struct task_struct *p)
{
	__u32 tgid = p->tgid;

	if (!follow_tracked || p->pid != p->tgid)
		return 0;
	bpf_map_delete_elem(&tracked, &tgid);
	return 0;
}
