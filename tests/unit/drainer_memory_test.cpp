// The drainer's memory (issue 14, item 3): its drain state is a flat table
// of key hashes, drains come in parts a chunk of keys at a time, and what it
// holds follows the kernel maps, not the keys it ever saw. Exactness across
// a death between any two parts and across a store replaced mid-drain.
#include "drainer.h"
#include "flat_map.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <random>
#include <unordered_map>

#include "drainer_fixture.h"

namespace capaudit {
namespace {

const StackReader kOneStack = [](int32_t id) { return std::vector<uint64_t>{0x1000u + static_cast<uint64_t>(id)}; };

TEST(FlatMap, AgreesWithAReferenceMapThroughInsertsAndErases) {
  FlatMap<uint64_t> m;
  std::unordered_map<uint64_t, uint64_t> ref;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200000; i++) {
    // Few distinct hashes, many collisions in the low bits: probing and
    // backward-shift deletion are exercised.
    uint64_t h = ((rng() % 5000) << 20) | 1;
    if (rng() % 3 == 0) {
      m.erase(h);
      ref.erase(h);
    } else {
      m.set(h, static_cast<uint64_t>(i));
      ref[h] = static_cast<uint64_t>(i);
    }
  }
  ASSERT_EQ(m.size(), ref.size());
  for (auto [h, v] : ref) {
    ASSERT_TRUE(m.contains(h));
    EXPECT_EQ(m.get(h), v);
  }
  size_t seen = 0;
  m.for_each([&](uint64_t h, uint64_t v) {
    seen++;
    EXPECT_EQ(ref.at(h), v);
  });
  EXPECT_EQ(seen, ref.size());
  for (auto [h, v] : ref) m.erase(h);
  EXPECT_TRUE(m.empty());
  EXPECT_LE(m.bytes(), 64u * 16u * 4u);  // shrunk back
}

TEST(FlatMap, KeyHashSeparatesKindsAndBytes) {
  ca_check_key a{}, b{};
  b.uid = 1;
  EXPECT_NE(key_hash('c', &a, sizeof a), key_hash('b', &a, sizeof a));
  EXPECT_NE(key_hash('c', &a, sizeof a), key_hash('c', &b, sizeof b));
  EXPECT_EQ(key_hash('c', &b, sizeof b), key_hash('c', &b, sizeof b));
}

struct PartsTest : ::testing::Test, test::StoreAndProgram {
  ExePathResolver paths{"/nonexistent-proc"};

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(open_store_and_program());
    key.target_ns_inum = key.cred_ns_inum = 4026531837u;
    key.audit = CA_AUDIT_YES;
    learn_exec(paths);
  }
  ca_check_key key_of(uint32_t uid) const {
    ca_check_key k = key;
    k.uid = k.euid = uid;
    return k;
  }
  std::unique_ptr<Drainer> drainer(Store& s, bool adopted) {
    DrainOptions o;
    o.record_identity = false;
    auto d = std::make_unique<Drainer>(s, paths, nullptr, o);
    d->resume(adopted);
    return d;
  }
  static uint64_t stored(Store& s) {
    uint64_t total = 0;
    for (auto& b : s.binaries())
      for (auto& c : s.checks(b.id)) total += c.count;
    return total;
  }
  // The daemon's drain: counts in chunks, origins, then the rest. Stops
  // after `parts` parts (a death) when given.
  bool drain_in_parts(Drainer& d, uint64_t epoch, const std::vector<CheckCount>& counts,
                      const std::vector<OriginCount>& origins, bool final, int64_t now, int parts = 1000) {
    d.begin_parts();
    bool ok = true;
    int done = 0;
    auto run = [&](KernelSnapshot& s) {
      if (!ok || done >= parts) return false;
      s.epoch = epoch;
      ok = d.drain(s, kOneStack, now).ok;
      done++;
      return ok;
    };
    for (size_t i = 0; i < counts.size(); i += 3) {
      KernelSnapshot s;
      s.counts.assign(counts.begin() + static_cast<long>(i),
                      counts.begin() + static_cast<long>(std::min(counts.size(), i + 3)));
      if (!run(s)) break;
    }
    if (ok && done < parts) {
      KernelSnapshot s;
      s.origins = origins;
      run(s);
    }
    if (ok && done < parts) {
      KernelSnapshot s;
      s.retired_final = final;
      run(s);
    }
    d.end_parts(ok);
    return ok;
  }
};

// Ten keys in four parts, the daemon killed after each number of parts and
// restarted on the pinned maps, which counted on meanwhile: every check
// once, and the origin found the row of a check drained in an earlier part.
TEST_F(PartsTest, DeathBetweenAnyTwoPartsLosesAndRepeatsNothing) {
  for (int parts = 0; parts <= 5; parts++) {
    SCOPED_TRACE(parts);
    std::string err;
    auto s = Store::open(dir.file("p" + std::to_string(parts) + ".db"), &err);
    ASSERT_TRUE(s) << err;
    std::vector<CheckCount> first, second;
    for (uint32_t u = 0; u < 10; u++) {
      first.push_back({key_of(u), 5, 0});
      second.push_back({key_of(u), 8, 0});
    }
    {
      auto d = drainer(*s, false);
      drain_in_parts(*d, 0, first, {{key_of(9), 3, 2}}, false, 100, parts);
    }
    auto d = drainer(*s, true);
    ASSERT_TRUE(drain_in_parts(*d, 0, second, {{key_of(9), 3, 4}}, false, 200));
    EXPECT_EQ(stored(*s), 80u);
    uint64_t samples = 0;
    for (auto& b : s->binaries())
      for (auto& c : s->checks(b.id))
        for (auto& o : s->origins(c.id)) samples += o.samples;
    EXPECT_EQ(samples, 4u);
  }
}

// A store found damaged mid-drain is replaced: the new one gets only what
// the old did not hold, and a restart on the new one resumes exactly.
TEST_F(PartsTest, StoreReplacedBetweenPartsGetsOnlyWhatWasNotWritten) {
  std::vector<CheckCount> counts;
  for (uint32_t u = 0; u < 7; u++) counts.push_back({key_of(u), 10, 0});
  auto d = drainer(*store, false);
  ASSERT_TRUE(drain_in_parts(*d, 0, counts, {}, false, 100, 2));  // 6 of 7 keys written
  std::string err;
  auto fresh = Store::open(dir.file("new.db"), &err);
  ASSERT_TRUE(fresh) << err;
  d->rebind(*fresh);
  for (auto& c : counts) c.count = 12;
  ASSERT_TRUE(drain_in_parts(*d, 0, counts, {}, false, 200));
  EXPECT_EQ(stored(*fresh), 6u * 2 + 12);
  d.reset();
  auto again = drainer(*fresh, true);
  for (auto& c : counts) c.count = 13;
  ASSERT_TRUE(drain_in_parts(*again, 0, counts, {}, false, 300));
  EXPECT_EQ(stored(*fresh), 6u * 2 + 12 + 7);
}

// The origins part finds its checks' rows as an earlier part committed
// them; a store replaced between those parts has other rows under the same
// ids, so the origin goes to the new store's row of its own check.
TEST_F(PartsTest, CheckRowsOfEarlierPartsAreForgottenWithTheStore) {
  std::string err;
  auto fresh = Store::open(dir.file("new.db"), &err);
  ASSERT_TRUE(fresh) << err;
  {
    // Other checks take the new store's first row ids.
    std::vector<CheckCount> others;
    for (uint32_t u = 100; u < 110; u++) others.push_back({key_of(u), 1, 0});
    auto d = drainer(*fresh, false);
    ASSERT_TRUE(drain_in_parts(*d, 0, others, {}, false, 50));
  }
  auto samples_of = [](Store& s, uint32_t uid) {
    uint64_t n = 0;
    for (auto& b : s.binaries())
      for (auto& c : s.checks(b.id))
        for (auto& o : s.origins(c.id))
          if (c.f.uid == uid) n += o.samples;
          else ADD_FAILURE() << "origin under the check of uid " << c.f.uid;
    return n;
  };
  std::vector<CheckCount> counts;
  for (uint32_t u = 0; u < 10; u++) counts.push_back({key_of(u), 4, 0});
  auto d = drainer(*store, false);
  d->begin_parts();
  KernelSnapshot part;
  part.counts = counts;
  ASSERT_TRUE(d->drain(part, kOneStack, 100).ok);
  // Without the store in between, the origin takes its check's row as written.
  part.counts.clear();
  part.origins = {{key_of(3), 3, 2}};
  ASSERT_TRUE(d->drain(part, kOneStack, 100).ok);
  EXPECT_EQ(samples_of(*store, 3), 2u);
  // The next check is stored, then the store replaced, then its origin.
  part.origins.clear();
  part.counts = {{key_of(9), 6, 0}};
  ASSERT_TRUE(d->drain(part, kOneStack, 100).ok);
  d->rebind(*fresh);
  part.counts.clear();
  part.origins = {{key_of(9), 3, 5}};
  DrainResult r = d->drain(part, kOneStack, 100);
  ASSERT_TRUE(r.ok) << r.error;
  d->end_parts(true);
  EXPECT_EQ(samples_of(*fresh, 9), 5u);
  EXPECT_EQ(stored(*store), 10u * 4 + 2);
}

// A hundred thousand distinct keys over ten generations, pruned as the
// daemon does: the drain state held follows the live keys, never the total.
TEST_F(PartsTest, DrainStateHeldFollowsTheMapsNotTheKeysEverSeen) {
  auto d = drainer(*store, false);
  uint64_t expected = 0;
  size_t most = 0;
  for (uint64_t gen = 0; gen < 10; gen++) {
    std::vector<CheckCount> counts;
    for (uint32_t u = 0; u < 10000; u++)
      counts.push_back({key_of(static_cast<uint32_t>(gen * 10000 + u)), 2, static_cast<uint8_t>(gen & 1)});
    expected += 2 * counts.size();
    KernelSnapshot s;
    s.epoch = gen;
    s.counts = counts;
    ASSERT_TRUE(d->drain(s, kOneStack, 100).ok);
    most = std::max(most, d->keys_tracked());
    // Moved on: this generation final, drained, emptied.
    s.epoch = gen + 1;
    s.retired_final = true;
    ASSERT_TRUE(d->drain(s, kOneStack, 101).ok);
    std::string err;
    ASSERT_TRUE(d->forget_generation(gen, &err)) << err;
    EXPECT_EQ(d->keys_tracked(), 0u);
  }
  EXPECT_EQ(stored(*store), expected);
  EXPECT_LE(most, 10000u);
}

}  // namespace
}  // namespace capaudit
