/* Self-inspection: a program asking the kernel what it holds (capget,
 * prctl capability queries) or asking to keep what it holds (capset).
 * Counted per executable in the inspections map; docs/rules.md says what
 * each kind means. Three ways in, one body, best first:
 * - fentry on the three syscalls' functions, where trampolines work (the
 *   fexit method's kernels): only these calls pay;
 * - the syscalls:sys_enter_* tracepoints (tracefs needed to attach): any
 *   syscall tracepoint sets TIF_SYSCALL_TRACEPOINT on every task, so every
 *   syscall of the machine takes the slow entry path (getppid 68 -> 76 ns);
 * - where tracefs is not mounted either (inside `ip netns exec`, which
 *   remounts /sys), tp_btf/sys_enter, loaded only to follow tracked tasks
 *   (capaudit profile): it runs on every syscall of the machine, so it
 *   returns after one compare for every other call. */
#pragma once

#define CA_PR_CAPBSET_READ 23
#define CA_PR_CAP_AMBIENT 47
#define CA_PR_CAP_AMBIENT_IS_SET 1
#define CA_CAP_VERSION_1 0x19980330

#if defined(__TARGET_ARCH_x86)
#define CA_NR_capget 125
#define CA_NR_capset 126
#define CA_NR_prctl 157
/* The syscall wrappers (ARCH_HAS_SYSCALL_WRAPPER), taking the user's pt_regs. */
#define CA_SYSCALL_FENTRY(name) "fentry/__x64_sys_" #name
#elif defined(__TARGET_ARCH_arm64)
#define CA_NR_capget 90
#define CA_NR_capset 91
#define CA_NR_prctl 167
#define CA_SYSCALL_FENTRY(name) "fentry/__arm64_sys_" #name
#endif

static __always_inline bool inspect_wanted(__u32 tgid)
{
	if (only_tgid && tgid != only_tgid)
		return false;
	if (follow_tracked) {
		__u32 *state = bpf_map_lookup_elem(&tracked, &tgid);

		if (!state || *state != CA_TRACK_ON)
			return false;
	}
	return true;
}

/* The key of the current executable, cap and kind still 0. */
static __always_inline void inspection_key(struct ca_inspect_key *k)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct inode *inode = NULL;
	struct mm_struct *mm;

	__builtin_memset(k, 0, sizeof(*k));
	mm = BPF_CORE_READ(task, mm);
	if (BPF_CORE_READ(task, flags) & PF_KTHREAD)
		k->flags = CA_FLAG_KTHREAD;
	else if (mm)
		inode = BPF_CORE_READ(mm, exe_file, f_inode);
	if (inode) {
		k->exe_ino = BPF_CORE_READ(inode, i_ino);
		k->exe_dev = BPF_CORE_READ(inode, i_sb, s_dev);
	} else {
		k->flags |= k->flags ? 0 : CA_FLAG_NO_EXE;
		bpf_get_current_comm(k->comm, sizeof(k->comm));
	}
}

static __always_inline void count_inspection_key(struct ca_inspect_key *k)
{
	bool is_new;

	if (!map_count(&inspections, k, &is_new, false))
		stat_inc(CA_STAT_COUNT_DROPS);
}

static __always_inline void count_inspection(__u8 kind, unsigned long cap)
{
	struct ca_inspect_key k;

	inspection_key(&k);
	k.kind = kind;
	/* libcap's start-up probe of the highest capability reads numbers up
	 * to 64: kept apart so user space can tell it from a real question. */
	k.cap = cap < 255 ? cap : 255;
	count_inspection_key(&k);
}

/* capget(header, data): header->pid 0 or the caller is itself. */
static __always_inline void inspect_capget(unsigned long header, unsigned long data)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct __user_cap_header_struct hdr = {};
	__u8 kind = CA_INSPECT_CAPGET;

	if (!inspect_wanted(pid_tgid >> 32))
		return;
	bpf_probe_read_user(&hdr, sizeof(hdr), (void *)header);
	if (!data)
		kind = CA_INSPECT_CAPGET_VERSION;
	else if (hdr.pid && hdr.pid != (int)(__u32)pid_tgid && hdr.pid != (int)(pid_tgid >> 32))
		kind = CA_INSPECT_CAPGET_OTHER;
	count_inspection(kind, 0);
}

static __always_inline void inspect_prctl(long option, unsigned long arg2, unsigned long arg3)
{
	unsigned long cap = arg2;
	__u8 kind;

	if (option == CA_PR_CAPBSET_READ)
		kind = CA_INSPECT_BSET;
	else if (option == CA_PR_CAP_AMBIENT && arg2 == CA_PR_CAP_AMBIENT_IS_SET)
		kind = CA_INSPECT_AMBIENT, cap = arg3;
	else
		return;
	if (!inspect_wanted(bpf_get_current_pid_tgid() >> 32))
		return;
	count_inspection(kind, cap);
}

/*
 * capset(header, data) of itself that narrows the permitted set: what it
 * keeps in both permitted and effective is what the program chose to go on
 * using, and commoncap's cap_capset() refuses (EPERM, no capability check)
 * a new permitted set that is not a subset of the old one, so the call
 * fails without each of them. A call that keeps the whole permitted set
 * (or raises, and fails) chose nothing: not counted. Checks against
 * another user namespace's credentials never justify a file capability.
 */
static __always_inline void inspect_capset(unsigned long header, unsigned long data)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct __user_cap_header_struct hdr = {};
	struct __user_cap_data_struct d0 = {}, d1 = {};
	struct task_struct *task;
	const struct cred *cred;
	struct ca_inspect_key k;
	__u64 old_p = 0, new_p, keep;

	if (!inspect_wanted(pid_tgid >> 32))
		return;
	if (bpf_probe_read_user(&hdr, sizeof(hdr), (void *)header) ||
	    bpf_probe_read_user(&d0, sizeof(d0), (void *)data))
		return;
	if (hdr.pid && hdr.pid != (int)(__u32)pid_tgid && hdr.pid != (int)(pid_tgid >> 32))
		return;
	if (hdr.version != CA_CAP_VERSION_1 &&
	    bpf_probe_read_user(&d1, sizeof(d1), (void *)(data + sizeof(d0))))
		return;
	task = (struct task_struct *)bpf_get_current_task();
	cred = BPF_CORE_READ(task, cred);
	if (BPF_CORE_READ(cred, user_ns, level))
		return;
	/* kernel_cap_t: u32[2] before 6.3, u64 since; the same 8 bytes. */
	bpf_core_read(&old_p, sizeof(old_p), &cred->cap_permitted);
	new_p = d0.permitted | ((__u64)d1.permitted << 32);
	if ((new_p & ~old_p) || new_p == old_p)
		return;
	keep = new_p & (d0.effective | ((__u64)d1.effective << 32));
	if (!keep)
		return;
	inspection_key(&k);
	k.kind = CA_INSPECT_CAPSET_KEEP;
	for (int i = 0; i < 64; i++) {
		if (!(keep & (1ULL << i)))
			continue;
		k.cap = i;
		count_inspection_key(&k);
	}
}

SEC("tracepoint/syscalls/sys_enter_capget")
int ca_tp_capget(struct trace_event_raw_sys_enter *ctx)
{
	unsigned long header = ctx->args[0], data = ctx->args[1];

	/* Both read first, at fixed offsets: the verifier refuses a load
	 * through a context pointer the compiler moved. */
	barrier_var(data);
	inspect_capget(header, data);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_capset")
int ca_tp_capset(struct trace_event_raw_sys_enter *ctx)
{
	unsigned long header = ctx->args[0], data = ctx->args[1];

	barrier_var(data);
	inspect_capset(header, data);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_prctl")
int ca_tp_prctl(struct trace_event_raw_sys_enter *ctx)
{
	long option = ctx->args[0];
	unsigned long arg2 = ctx->args[1], arg3 = ctx->args[2];

	barrier_var(arg3);
	inspect_prctl(option, arg2, arg3);
	return 0;
}

/* A call of one of the three syscalls, from the user's registers: what
 * tp_btf/sys_enter and the fentry programs share (a constant id leaves only
 * its own branch). Under another ABI the number meant another call. */
static __always_inline void inspect_syscall(long id, struct pt_regs *regs)
{
	if (compat_syscall((struct task_struct *)bpf_get_current_task()))
		return;
	if (id == CA_NR_capget)
		inspect_capget(PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs));
	else if (id == CA_NR_capset)
		inspect_capset(PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs));
	else
		inspect_prctl(PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs),
			      PT_REGS_PARM3_CORE_SYSCALL(regs));
}

/* The same without tracefs (see the top of this file). */
SEC("tp_btf/sys_enter")
int BPF_PROG(ca_btf_sys_enter, struct pt_regs *regs, long id)
{
	if (id == CA_NR_capget || id == CA_NR_capset || id == CA_NR_prctl)
		inspect_syscall(id, regs);
	return 0;
}

/* The same on the syscalls' own functions, which take the user's pt_regs
 * (see the top of this file): ca_fentry_capget, _capset, _prctl. ia32 calls
 * enter through __ia32_sys_*, never these; inspect_syscall's compat test
 * stays, so every way in counts the same calls. */
#define CA_INSPECT_FENTRY(name)                                  \
	SEC(CA_SYSCALL_FENTRY(name))                             \
	int BPF_PROG(ca_fentry_##name, struct pt_regs *regs)     \
	{                                                        \
		inspect_syscall(CA_NR_##name, regs);             \
		return 0;                                        \
	}
CA_INSPECT_FENTRY(capget)
CA_INSPECT_FENTRY(capset)
CA_INSPECT_FENTRY(prctl)
