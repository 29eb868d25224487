/* Path rebuilding for exec events, included by capaudit.bpf.c alone. */
#pragma once

/*
 * Rebuilds the absolute path of `file` from its dentry chain, right to left,
 * crossing mounts through struct mount (what d_path does, minus the locks).
 * Gives up with "" rather than a wrong path when the path is too long or
 * too deep. The path is relative to the root of the task's mount namespace.
 */
static __always_inline void build_dpath(char *out, struct file *file)
{
	__u32 zero = 0;
	struct path_scratch *s = bpf_map_lookup_elem(&path_scratch, &zero);
	struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
	struct vfsmount *vfsmnt = BPF_CORE_READ(file, f_path.mnt);
	/* container_of, with the offset relocated: struct mount is private. */
	struct mount *mnt = (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt);
	__u32 pos;

	out[0] = 0;
	if (!s)
		return;
	s->buf[CA_PATH_LEN - 1] = 0;
	s->pos = CA_PATH_LEN - 1;

	for (int i = 0; i < CA_DPATH_MAX_STEPS; i++) {
		struct dentry *mnt_root = BPF_CORE_READ(mnt, mnt.mnt_root);
		struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
		const unsigned char *name;
		__u32 len;

		if (dentry == mnt_root || dentry == parent) {
			struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);

			/* A namespace's root mount is its own parent. */
			if (dentry != mnt_root || mnt_parent == mnt)
				goto done;
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mnt_parent;
			continue;
		}
		len = BPF_CORE_READ(dentry, d_name.len);
		name = BPF_CORE_READ(dentry, d_name.name);
		/* pos lives in the map value, not a register: loaded from there
		 * it is unknown to the verifier, so every path through the loop
		 * looks alike and gets pruned instead of explored one by one. */
		pos = *(volatile __u32 *)&s->pos;
		if (len + 1 > pos)
			return;
		pos -= len;
		/* The masks only convince the verifier: pos and len are in range. */
		bpf_probe_read_kernel(&s->buf[pos & (CA_PATH_LEN - 1)], len & (CA_PATH_LEN - 1), name);
		pos -= 1;
		s->buf[pos & (CA_PATH_LEN - 1)] = '/';
		s->pos = pos;
		dentry = parent;
	}
	return;

done:
	pos = *(volatile __u32 *)&s->pos;
	if (pos >= CA_PATH_LEN - 1) {
		pos = CA_PATH_LEN - 2;
		s->buf[pos] = '/';
	}
	bpf_probe_read_kernel_str(out, CA_PATH_LEN, &s->buf[pos & (CA_PATH_LEN - 1)]);
}
