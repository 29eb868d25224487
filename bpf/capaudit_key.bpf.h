/* SPDX-License-Identifier: GPL-2.0 */
/* The key of one check, filled on every check: the hot path's reads.
 * Included by capaudit.bpf.c alone, after its settings, maps and the
 * argument classes. */
#pragma once

/* bpf_rdonly_cast (6.2+) is inlined by the verifier (a register move): a
 * typed pointer at a computed address without a helper call. Weak, and
 * called only from the tracepoint's program (6.14+), so fexit and kprobe
 * load on kernels without it. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/* task_pt_regs(task) - task->stack: THREAD_SIZE less the pt_regs (and any
 * padding above them), the same for every task of a kernel. Learnt from
 * bpf_task_pt_regs by the first check; 0 until then. */
__u64 regs_offset = 0;

/* The user registers of the current task (in a syscall: not a kthread). */
static __always_inline struct pt_regs *task_regs(struct task_struct *task, const bool task_btf,
						 const bool kfuncs)
{
	struct pt_regs *regs;
	__u64 off = regs_offset;

	if (kfuncs && task_btf && off)
		return bpf_rdonly_cast((void *)((unsigned long)task->stack + off),
				       bpf_core_type_id_kernel(struct pt_regs));
	regs = (struct pt_regs *)bpf_task_pt_regs(task_btf ? task : bpf_get_current_task_btf());
	if (kfuncs && task_btf)
		regs_offset = (unsigned long)regs - (unsigned long)task->stack;
	return regs;
}

/*
 * Fills the key of one check. args_btf: cred/target_ns are BTF pointers the
 * verifier lets us dereference directly (fexit, tp_btf: plain loads, a few ns
 * each); otherwise (kprobe) they are raw addresses read with probe_read.
 * kfuncs: the program loads only on 6.2+ (the tracepoint's), see task_regs.
 */
static __always_inline void fill_key(struct ca_check_key *k, const struct cred *cred,
				     struct user_namespace *target_ns, const bool args_btf,
				     const bool kfuncs)
{
	/* bpf_get_current_task_btf is 5.11+: fexit on 5.5-5.10 falls back to
	 * probe reads. The check is a load-time constant the verifier prunes. */
	const bool task_btf =
		args_btf && bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf);
	struct task_struct *task = task_btf ? bpf_get_current_task_btf()
					    : (struct task_struct *)bpf_get_current_task();
	unsigned int pflags = task_btf ? task->flags : BPF_CORE_READ(task, flags);
	struct mm_struct *mm = task_btf ? task->mm : BPF_CORE_READ(task, mm);

	k->syscall_nr = -1;
	if ((pflags & PF_KTHREAD) || !mm) {
		/* An exiting user task has dropped its mm already: not a kthread. */
		k->flags |= (pflags & PF_KTHREAD) ? CA_FLAG_KTHREAD : CA_FLAG_NO_EXE;
		bpf_get_current_comm(k->comm, sizeof(k->comm));
	} else {
		struct file *exe = task_btf ? mm->exe_file : BPF_CORE_READ(mm, exe_file);
		struct inode *inode = NULL;

		if (exe)
			inode = task_btf ? exe->f_inode : BPF_CORE_READ(exe, f_inode);
		if (inode) {
			k->exe_ino = task_btf ? inode->i_ino : BPF_CORE_READ(inode, i_ino);
			k->exe_dev = task_btf ? inode->i_sb->s_dev : BPF_CORE_READ(inode, i_sb, s_dev);
		} else {
			k->flags |= CA_FLAG_NO_EXE;
			bpf_get_current_comm(k->comm, sizeof(k->comm));
		}

		/* The syscall number says which request asked; bpf_task_pt_regs
		 * is 5.15+, older kernels leave -1. */
		if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs) &&
		    bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf)) {
			struct pt_regs *regs = task_regs(task, task_btf, kfuncs);
#if defined(__TARGET_ARCH_x86)
			k->syscall_nr = task_btf ? regs->orig_ax : BPF_CORE_READ(regs, orig_ax);
#elif defined(__TARGET_ARCH_arm64)
			k->syscall_nr = task_btf ? regs->syscallno : BPF_CORE_READ(regs, syscallno);
#endif
			k->arg = classify_args(task, regs, k->syscall_nr, cred);
		}
	}

	/* What bpf_get_current_cgroup_id() returns (the default hierarchy's
	 * cgroup, kn->id), read with plain loads: a helper call is a return
	 * through the kernel's return thunk, ~25 ns a check where the SRSO
	 * mitigation is on. kn->id is the 64-bit id since 5.5. */
	if (task_btf && bpf_core_field_exists(task->cgroups) &&
	    bpf_core_field_size(((struct kernfs_node *)0)->id) == sizeof(__u64))
		k->cgroup_id = task->cgroups->dfl_cgrp->kn->id;
	else
		k->cgroup_id = bpf_get_current_cgroup_id();
	k->uid = args_btf ? cred->uid.val : BPF_CORE_READ(cred, uid.val);
	k->euid = args_btf ? cred->euid.val : BPF_CORE_READ(cred, euid.val);
	/* kernel_cap_t was struct { __u32 cap[2]; } before 6.3 and is
	 * struct { __u64 val; } since: on little-endian both are the same 8
	 * bytes (bit n = capability n), so one raw 8-byte read fits both. With
	 * BTF pointers on 6.3+ a plain load of val does it without a helper. */
	if (args_btf && bpf_core_field_exists(((struct cred___capu64 *)cred)->cap_effective.val))
		k->cap_effective = ((struct cred___capu64 *)cred)->cap_effective.val;
	else
		bpf_core_read(&k->cap_effective, sizeof(k->cap_effective), &cred->cap_effective);
	k->cred_ns_inum = args_btf ? cred->user_ns->ns.inum : BPF_CORE_READ(cred, user_ns, ns.inum);
	if (!target_ns) {
		/* A decision against init_user_ns made without cap_capable's
		 * arguments (cap_mmap_addr, cap_vm_enough_memory). */
		k->target_ns_inum = CA_INIT_USER_NS_INUM;
		k->target_ns_level = 0;
		return;
	}
	k->target_ns_inum = args_btf ? target_ns->ns.inum : BPF_CORE_READ(target_ns, ns.inum);
	k->target_ns_level = args_btf ? target_ns->level : BPF_CORE_READ(target_ns, level);
}
