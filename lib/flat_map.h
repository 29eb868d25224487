// A flat open-addressing table from a 64-bit key hash to a small value: 16
// bytes a key where std::map<std::string, ...> of the kernel keys' 64-72
// bytes took about 200 (issue 14, item 3: the daemon's memory must not grow
// with the keys it drained). The keys are seeded hashes (key_hash), so two
// keys collide with probability 2^-64, a seed an attacker does not know.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace capaudit {

// 64-bit hash of a kind byte and a key's bytes, seeded per process (the
// tables are rebuilt from the store at start, never persisted).
inline uint64_t key_hash_seed() {
  static const uint64_t seed = [] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }();
  return seed;
}

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

inline uint64_t key_hash(char kind, const void* p, size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  uint64_t h = mix64(key_hash_seed() ^ (static_cast<uint64_t>(static_cast<unsigned char>(kind)) << 56) ^ n);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, b + i, 8);
    h = mix64(h ^ (w * 0x9e3779b97f4a7c15ULL)) + i;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, b + i, n - i);
  h = mix64(h ^ tail ^ 0x5bd1e9955bd1e995ULL);
  return h ? h : 1;  // 0 marks an empty slot
}

template <typename V>
class FlatMap {
 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Memory held, for the drain's log line.
  size_t bytes() const { return slots_.capacity() * sizeof(Slot); }

  const V* find(uint64_t h) const {
    if (slots_.empty()) return nullptr;
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].h == h) return &slots_[i].v;
      if (slots_[i].h == 0) return nullptr;
    }
  }
  V get(uint64_t h, V absent = V{}) const {
    const V* v = find(h);
    return v ? *v : absent;
  }
  bool contains(uint64_t h) const { return find(h) != nullptr; }

  void set(uint64_t h, V v) {
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    size_t i = h & mask_;
    for (; slots_[i].h != 0; i = (i + 1) & mask_)
      if (slots_[i].h == h) {
        slots_[i].v = v;
        return;
      }
    slots_[i] = {h, v};
    size_++;
  }

  // Backward-shift deletion: linear probing needs no tombstones.
  void erase(uint64_t h) {
    if (slots_.empty()) return;
    size_t i = h & mask_;
    for (; slots_[i].h != h; i = (i + 1) & mask_)
      if (slots_[i].h == 0) return;
    for (size_t j = (i + 1) & mask_; slots_[j].h != 0; j = (j + 1) & mask_) {
      size_t home = slots_[j].h & mask_;
      // Move j back to i when its home is not in (i, j] (cyclically).
      if (((j - home) & mask_) >= ((j - i) & mask_)) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = {};
    size_--;
    if (slots_.size() > 64 && size_ * 16 < slots_.size()) rehash(slots_.size() / 4);
  }

  void clear() {
    std::vector<Slot>().swap(slots_);
    mask_ = 0;
    size_ = 0;
  }

  template <typename F>
  void for_each(F&& f) const {
    for (const Slot& s : slots_)
      if (s.h) f(s.h, s.v);
  }

 private:
  struct Slot {
    uint64_t h = 0;
    V v{};
  };
  void grow() { rehash(slots_.empty() ? 16 : slots_.size() * 2); }
  void rehash(size_t n) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(n, Slot{});
    mask_ = n - 1;
    size_ = 0;
    for (const Slot& s : old)
      if (s.h) set(s.h, s.v);
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace capaudit
