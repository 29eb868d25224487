// SPDX-License-Identifier: GPL-2.0
/*
 * The floor of the benchmark: a program on the very hook capaudit uses that
 * does nothing, so what remains of capaudit's cost is its own work.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/cap_capable")
int BPF_PROG(bench_empty_cap_capable)
{
	return 0;
}
