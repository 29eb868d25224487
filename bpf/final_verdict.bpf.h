/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The final verdict: security_capable()'s result after every LSM, beside
 * commoncap's (cap_capable's). Included by capaudit.bpf.c after count_check's
 * helpers; loaded with the fexit method only, when kernel BTF has
 * security_capable (rodata final_verdict).
 *
 * security_capable() runs commoncap's hook (cap_capable) first, then each
 * LSM's, and stops at the first error: an LSM can deny what commoncap
 * granted, never the reverse. So the check cap_capable's program sees inside
 * security_capable is not counted there: fentry/security_capable arms this
 * CPU's slot, cap_capable's program leaves its key in the slot, and
 * fexit/security_capable counts it with CA_FLAG_FINAL_KNOWN (and
 * CA_FLAG_FINAL_DENIED when the result is an error). cap_capable calls made
 * outside security_capable (SELinux's has_cap_mac_admin, AppArmor's policy
 * admin check) are counted by cap_capable's program as before, final unknown.
 *
 * Exactness: a slot holds one pending key. fexit programs are preemptible
 * and an interrupt may call security_capable on the same CPU, so a fentry
 * that finds a pending key (of another task, or of the interrupted one)
 * counts it first, final unknown, and an exit that finds its key gone does
 * nothing. Every check is counted once either way; only its final verdict
 * can be lost, never the check.
 */

const volatile bool final_verdict = false;

enum final_slot_state {
	CA_FINAL_EMPTY = 0,
	CA_FINAL_ARMED = 1,  /* in security_capable, cap_capable not yet seen */
	CA_FINAL_FILLED = 2, /* cap_capable's key waits for the final verdict */
};

struct final_slot {
	__u32 tid;
	__u32 state;
	__s32 cap;
	__u32 _pad;
	struct ca_check_key key;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct final_slot);
} final_slot SEC(".maps");

/* Counts a key from a program other than cap_capable's: atomic adds (with
 * final_verdict loaded, cap_capable's program uses them too, see count_check),
 * sampled origins and the trace stream as count_check does. */
static __always_inline void final_count(void *ctx, const struct ca_check_key *key)
{
	struct ca_origin_key okey;

	__builtin_memset(&okey, 0, sizeof(okey));
	__builtin_memcpy(&okey.check, key, sizeof(okey.check));
	/* Before counting: a coarse count rewrites the key. */
	if (stream_checks)
		stream_check(ctx, &okey.check, bpf_get_current_pid_tgid(), 2);
	count_key(ctx, &okey, 2, false);
}

/* From count_check in cap_capable's program: true when the key was left for
 * fexit/security_capable to count. */
static __always_inline bool final_defer(const struct ca_check_key *key)
{
	__u32 zero = 0;
	struct final_slot *s;

	if (!final_verdict)
		return false;
	s = bpf_map_lookup_elem(&final_slot, &zero);
	if (!s || s->state != CA_FINAL_ARMED || s->tid != (__u32)bpf_get_current_pid_tgid() ||
	    s->cap != key->cap)
		return false;
	__builtin_memcpy(&s->key, key, sizeof(s->key));
	s->state = CA_FINAL_FILLED;
	return true;
}

SEC("fentry/security_capable")
int BPF_PROG(ca_fentry_security_capable, const struct cred *cred, struct user_namespace *ns,
	     int cap, unsigned int opts)
{
	__u32 zero = 0;
	struct final_slot *s = bpf_map_lookup_elem(&final_slot, &zero);

	if (!s)
		return 0;
	if (s->state == CA_FINAL_FILLED) {
		struct ca_check_key k;

		__builtin_memcpy(&k, &s->key, sizeof(k));
		s->state = CA_FINAL_EMPTY;
		final_count(ctx, &k);
	}
	s->tid = (__u32)bpf_get_current_pid_tgid();
	s->cap = cap;
	s->state = CA_FINAL_ARMED;
	return 0;
}

SEC("fexit/security_capable")
int BPF_PROG(ca_fexit_security_capable, const struct cred *cred, struct user_namespace *ns,
	     int cap, unsigned int opts, int ret)
{
	__u32 zero = 0;
	struct final_slot *s = bpf_map_lookup_elem(&final_slot, &zero);
	struct ca_check_key k;

	if (!s || s->tid != (__u32)bpf_get_current_pid_tgid() || s->cap != cap)
		return 0;
	if (s->state != CA_FINAL_FILLED) {
		/* Not counted by cap_capable's program (a filter: trace -p, profile). */
		s->state = CA_FINAL_EMPTY;
		return 0;
	}
	__builtin_memcpy(&k, &s->key, sizeof(k));
	s->state = CA_FINAL_EMPTY;
	k.flags |= CA_FLAG_FINAL_KNOWN | (ret ? CA_FLAG_FINAL_DENIED : 0);
	final_count(ctx, &k);
	return 0;
}
