// SPDX-License-Identifier: GPL-2.0
/*
 * A BPF LSM program for the guest suite: the "capable" hook refuses one
 * capability to one comm, after commoncap granted it. That is an LSM denial
 * security_capable() returns and cap_capable() never sees, the case
 * capaudit's final verdict is for. Debian 12's kernels list bpf in their
 * default lsm= (CONFIG_LSM), so it works there without a boot option.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define EPERM 1

const volatile int deny_cap = -1;
const volatile char deny_comm[16] = {};
/* Refusals made, for the loader to report. */
__u64 denied = 0;

SEC("lsm/capable")
int BPF_PROG(ca_test_deny_capable, const struct cred *cred, struct user_namespace *ns, int cap,
	     unsigned int opts, int ret)
{
	char comm[16];

	if (ret || cap != deny_cap)
		return ret;
	bpf_get_current_comm(comm, sizeof(comm));
	for (int i = 0; i < 16; i++) {
		if (comm[i] != deny_comm[i])
			return 0;
		if (!comm[i])
			break;
	}
	__sync_fetch_and_add(&denied, 1);
	return -EPERM;
}
