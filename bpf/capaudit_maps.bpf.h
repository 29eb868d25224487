/* The maps of capaudit.bpf.c, included by it alone: one place for their
 * types and sizes (user space resizes some between open and load, see
 * bpf/configure.cpp). */
#pragma once

/*
 * Two generations of the exact counts (and of the coarse ones): the cap_capable
 * program counts into the one `epoch` names (even: counts/coarse, odd:
 * counts_b/coarse_b). To prune, user space moves the epoch on, waits for an
 * RCU grace period (no program still holds the old map), drains the old map's
 * final values and empties it: idle keys go, busy ones come back in the new
 * generation, and no check is ever counted into a key being deleted.
 * Not preallocated: the second generation costs memory only while it holds keys.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct ca_check_key);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct ca_check_key);
	__type(value, __u64);
} counts_b SEC(".maps");

/* Where a check goes when its exact key finds no room: keyed by executable,
 * cap, verdict, audit (CA_FLAG_COARSE), sized for executables x checks. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct ca_check_key);
	__type(value, __u64);
} coarse SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct ca_check_key);
	__type(value, __u64);
} coarse_b SEC(".maps");

/* And when that is full too: an array, which cannot fail (ca_cap_slot). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CA_CAP_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} cap_counts SEC(".maps");

/* [gen & 1]: this CPU's hot keys of that generation (ca_hot); emptied by
 * user space with the generation's maps. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct ca_hot);
} hot_keys SEC(".maps");

/* [0]: the generation counted into; written by user space only. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} epoch SEC(".maps");

/* enum ca_quota: keys of unprivileged credentials per generation. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CA_QUOTA_MAX);
	__type(key, __u32);
	__type(value, __u64);
} key_quota SEC(".maps");

/* Filled at exec, emptied by user space once read; a full map counts
 * CA_STAT_NAME_DROPS (the ring buffer may still carry the name). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct ca_exe_id);
	__type(value, struct ca_exe_name);
} exe_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ca_exe_name);
} name_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ca_origin_key);
	__type(value, __u64);
} origins SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, CA_STACK_MAP_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CA_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);   /* tgid */
	__type(value, __u32); /* enum ca_track_state */
} tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} exec_events SEC(".maps");

/* Resized by user space: 4 MiB when streaming, one page otherwise. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} check_events SEC(".maps");

/* kprobe -> kretprobe hand-over: the arguments are gone at return. */
struct kprobe_stash {
	__u64 cred;
	__u64 target_ns;
	__s32 cap;
	__u32 arg4;
};

/* LRU: a kretprobe can be missed (too many instances in flight), and the
 * entry of a thread that then exits must not hold a slot forever. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct kprobe_stash);
} kprobe_args SEC(".maps");

/* Path assembly needs more than the 512-byte BPF stack allows next to the
 * event; twice the path length so masked offsets never leave the buffer. */
struct path_scratch {
	__u32 pos; /* the path so far is buf[pos, CA_PATH_LEN) */
	__u32 _pad;
	char buf[2 * CA_PATH_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_scratch);
} path_scratch SEC(".maps");

/*
 * Whether cap_capable ran inside the inline-site function this CPU is in:
 * fentry on the site sets tid, the cap_capable program sets seen, fexit on
 * the site counts only when it was not. Where cap_capable is inlined (Debian
 * 6.1, 6.12) seen stays 0; where it is called (6.18) the check is counted
 * once, by cap_capable's program, with its real arguments.
 */
struct site_guard {
	__u32 tid;
	__u32 seen;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct site_guard);
} site_guard SEC(".maps");

/* Written and read by user space only: tells a restarted collector whether
 * the pinned maps and link of an earlier run are compatible. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ca_pin_meta);
} meta SEC(".maps");

/* Self-inspection (capget, prctl capability queries), counted exactly per
 * executable and kind: few programs ask, and rarely. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ca_inspect_key);
	__type(value, __u64);
} inspections SEC(".maps");
