// RAII owners for the fds and libbpf objects of the collector, so that every
// early return and every exception while starting closes what was opened.
// (The skeleton's owner is in configure.h, next to the generated header; the
// fd owner is lib/fd.h, shared with the rest of user space.)
#pragma once

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "fd.h"

#include <memory>

namespace capaudit {

struct LinkDeleter {
  void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};
// Destroying a link detaches it unless it is pinned (or adopted from a pin).
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

struct RingBufferDeleter {
  void operator()(ring_buffer* r) const { ring_buffer__free(r); }
};
using RingBufferPtr = std::unique_ptr<ring_buffer, RingBufferDeleter>;

struct BtfDeleter {
  void operator()(btf* b) const { btf__free(b); }
};
using BtfPtr = std::unique_ptr<btf, BtfDeleter>;

}  // namespace capaudit
