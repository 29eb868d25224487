// Ring buffers: exec events (always, when the exec program loaded) and one
// event per check (trace), read through one libbpf ring_buffer.
#include "collector_impl.h"
#include "libbpf_log.h"

#include <cerrno>
#include <cstring>

namespace capaudit {

namespace {

// Copied out: the sample's memory is the ring's, and may be unaligned for
// the struct.
template <typename Event>
int deliver(const std::function<void(const Event&)>& cb, const void* data, size_t size) {
  if (size < sizeof(Event) || !cb) return 0;
  Event e;
  std::memcpy(&e, data, sizeof(e));
  cb(e);
  return 0;
}

int on_exec_sample(void* ctx, void* data, size_t size) {
  return deliver(static_cast<Collector::Impl*>(ctx)->exec_cb, data, size);
}

int on_check_sample(void* ctx, void* data, size_t size) {
  return deliver(static_cast<Collector::Impl*>(ctx)->check_cb, data, size);
}

int on_cgroup_sample(void* ctx, void* data, size_t size) {
  return deliver(static_cast<Collector::Impl*>(ctx)->cgroup_cb, data, size);
}

}  // namespace

void Collector::Impl::setup_events(bool exec_events, bool cgroup_events) {
  auto add = [this](bpf_map* map, ring_buffer_sample_fn fn) {
    if (!rb) {
      rb.reset(ring_buffer__new(bpf_map__fd(map), fn, this, nullptr));
      if (!rb) throw CollectorError("creating the ring buffer reader: " + errno_text(errno));
    } else if (int err = ring_buffer__add(rb.get(), bpf_map__fd(map), fn, this)) {
      throw CollectorError("adding a ring buffer: " + errno_text(err));
    }
  };
  if (exec_events) add(skel->maps.exec_events, &on_exec_sample);
  if (opts.stream_checks) add(skel->maps.check_events, &on_check_sample);
  if (cgroup_events) add(skel->maps.cgroup_events, &on_cgroup_sample);
}

int Collector::events_fd() const { return impl_->rb ? ring_buffer__epoll_fd(impl_->rb.get()) : -1; }

void Collector::on_exec(std::function<void(const ca_exec_event&)> cb) { impl_->exec_cb = std::move(cb); }

void Collector::on_check(std::function<void(const ca_check_event&)> cb) {
  impl_->check_cb = std::move(cb);
}

void Collector::on_cgroup(std::function<void(const ca_cgroup_event&)> cb) {
  impl_->cgroup_cb = std::move(cb);
}

bool Collector::cgroup_events() const { return !impl_->cgroup_links.empty(); }

int Collector::poll_events(int timeout_ms) {
  if (!impl_->rb) return -ENOENT;
  int n = ring_buffer__poll(impl_->rb.get(), timeout_ms);
  return n == -EINTR ? 0 : n;
}

}  // namespace capaudit
