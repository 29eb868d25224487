/* Naming the cgroups checks are counted in (issue 12), included by
 * capaudit.bpf.c alone. A check's key carries only its cgroup id; a unit or
 * container that lives a fraction of a second has lost its cgroup directory
 * by the next drain, so the id and path are sent when the cgroup is made. */
#pragma once

/* Only the daemon asks for it; otherwise it costs one page. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} cgroup_events SEC(".maps");

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(ca_tp_cgroup_mkdir, struct cgroup *cgrp, const char *path)
{
	struct ca_cgroup_event *e;

	/* The default hierarchy (cgroup2, id 0) is the one whose ids
	 * bpf_get_current_cgroup_id() returns; v1 hierarchies of a hybrid
	 * layout make their own directories too. */
	if (BPF_CORE_READ(cgrp, root, hierarchy_id) != 0)
		return 0;
	e = bpf_ringbuf_reserve(&cgroup_events, sizeof(*e), 0);
	if (!e) {
		stat_inc(CA_STAT_RINGBUF_DROPS);
		return 0;
	}
	e->id = BPF_CORE_READ(cgrp, kn, id);
	e->ktime_ns = bpf_ktime_get_ns();
	e->level = BPF_CORE_READ(cgrp, level);
	e->_pad = 0;
	/* The path from the hierarchy's root, not the caller's cgroup
	 * namespace: the same for every reader. */
	bpf_probe_read_kernel_str(e->path, sizeof(e->path), path);
	bpf_ringbuf_submit(e, 0);
	return 0;
}
