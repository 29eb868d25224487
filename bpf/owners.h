// RAII owners for the fds and libbpf objects of the collector, so that every
// early return and every exception while starting closes what was opened.
// (The skeleton's owner is in configure.h, next to the generated header.)
#pragma once

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <memory>
#include <utility>

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

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_;
};

}  // namespace capaudit
