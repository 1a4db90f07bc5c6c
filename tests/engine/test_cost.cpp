// Tests of the analytic cost model: hand-checked model shapes, closed forms against brute force.
// The roofline and KV views trust these numbers, so each formula is pinned by an independent count.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <utility>

#include "attnscope/cost.hpp"
#include "attnscope/mask.hpp"
#include "attnscope/problem.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"

namespace attnscope {
namespace {

// MoBA's attended pairs in one head of one sequence, through the generic count.
int64_t visible_pairs_moba(const AttentionProblem& p) {
  return visible_pairs(p);
}

AttentionProblem make(VariantId variant, ProblemShape shape, bool causal) {
  AttentionProblem p;
  p.variant = variant;
  p.shape = shape;
  p.causal = causal;
  return p;
}

ProblemShape shape_of(int64_t batch, int64_t heads, int64_t kv_heads, int64_t q_len, int64_t kv_len,
                      int64_t head_dim, int64_t v_head_dim) {
  ProblemShape s;
  s.batch = batch;
  s.heads = heads;
  s.kv_heads = kv_heads;
  s.q_len = q_len;
  s.kv_len = kv_len;
  s.head_dim = head_dim;
  s.v_head_dim = v_head_dim;
  return s;
}

AttentionProblem swa(int64_t q_len, int64_t kv_len, int64_t window, int64_t sinks) {
  AttentionProblem p = make(VariantId::swa, shape_of(1, 1, 1, q_len, kv_len, 64, 64), true);
  p.swa.window = window;
  p.swa.sinks = sinks;
  return p;
}

AttentionProblem moba(int64_t q_len, int64_t kv_len, int64_t block_size, int64_t top_k) {
  AttentionProblem p = make(VariantId::moba, shape_of(1, 1, 1, q_len, kv_len, 64, 64), true);
  p.moba.block_size = block_size;
  p.moba.top_k = top_k;
  return p;
}

AttentionProblem deepseek_v3_mla(int64_t q_len, int64_t kv_len, bool absorbed) {
  AttentionProblem p = make(VariantId::mla, shape_of(1, 128, 1, q_len, kv_len, 192, 128), true);
  p.mla.kv_lora_rank = 512;
  p.mla.rope_dim = 64;
  p.mla.nope_dim = 128;
  p.mla.absorbed = absorbed;
  return p;
}

int64_t triangle(int64_t n) {
  return n * (n + 1) / 2;
}

// The independent count: ask the mask about every (i, j).
int64_t brute_dense_pairs(const AttentionProblem& p) {
  const KeyMask mask = KeyMask::of(p);
  int64_t n = 0;
  for (int64_t i = 0; i < p.shape.q_len; ++i)
    for (int64_t j = 0; j < p.shape.kv_len; ++j) n += mask.visible(i, j) ? 1 : 0;
  return n;
}

// MoBA by its definition: own-block keys j <= p, plus the first min(top_k - 1, c) past blocks
// (which blocks win does not change the count: every past block is complete).
int64_t brute_moba_pairs(const AttentionProblem& p) {
  const int64_t bs = p.moba.block_size;
  int64_t n = 0;
  for (int64_t i = 0; i < p.shape.q_len; ++i) {
    const int64_t pos = p.query_position(i);
    if (pos < 0) continue;
    const int64_t own = pos / bs;
    const int64_t selected_past = std::min(p.moba.top_k - 1, own);
    for (int64_t j = 0; j < p.shape.kv_len; ++j) {
      const int64_t c = j / bs;
      if (c == own && j <= pos) ++n;
      if (c < selected_past) ++n;
    }
  }
  return n;
}

TEST(Cost, DeepSeekV3MlaCachesLatentPlusRope) {
  const Cost c = cost_of(deepseek_v3_mla(1, 32768, true), 2);
  EXPECT_EQ(c.kv_values_per_token, 576);
  EXPECT_EQ(c.kv_bytes_per_token, 1152);
  EXPECT_EQ(c.kv_cache_bytes, 32768.0 * 1152);
}

TEST(Cost, Llama3GqaKvPerToken) {
  const AttentionProblem p = make(VariantId::dense, shape_of(1, 32, 8, 1, 32768, 128, 128), true);
  const Cost c = cost_of(p, 2);
  EXPECT_EQ(c.kv_values_per_token, 2 * 8 * 128);
  EXPECT_EQ(c.kv_bytes_per_token, 4096);
  EXPECT_EQ(c.kv_cache_bytes, 32768.0 * 4096);
  EXPECT_EQ(cost_of(p).kv_bytes_per_token, 8192);  // fp32 default
}

TEST(Cost, MhaNonCausalFlopsAreFourBHLqLkD) {
  const int64_t B = 2, H = 8, Lq = 300, Lk = 500, D = 64;
  const AttentionProblem p = make(VariantId::dense, shape_of(B, H, H, Lq, Lk, D, D), false);
  const Cost c = cost_of(p);
  EXPECT_EQ(c.flops, 4.0 * B * H * Lq * Lk * D);
  EXPECT_EQ(c.visible_pairs, B * H * Lq * Lk);
  EXPECT_EQ(visible_pairs_dense(p), Lq * Lk);
  // q + k + v + o at 4 bytes, lse at 4 bytes.
  const double values = B * H * (Lq * D + Lk * D + Lk * D + Lq * D);
  EXPECT_EQ(c.bytes, 4 * values + 4.0 * B * H * Lq);
}

TEST(Cost, GqaFlopsCountQueryHeadsAndBytesCountKvHeads) {
  const int64_t B = 1, H = 32, Hkv = 8, L = 1024, D = 128;
  const Cost c = cost_of(make(VariantId::dense, shape_of(B, H, Hkv, L, L, D, D), true), 2);
  EXPECT_EQ(c.flops, 4.0 * B * H * triangle(L) * D);
  EXPECT_EQ(c.bytes, 2.0 * B * (H * L * D + Hkv * L * 2 * D + H * L * D) + 4.0 * B * H * L);
}

TEST(Cost, CausalSquareSeesLowerTriangle) {
  for (int64_t L : {1, 2, 7, 256, 257, 1000}) {
    const AttentionProblem p = make(VariantId::dense, shape_of(1, 4, 2, L, L, 64, 64), true);
    EXPECT_EQ(visible_pairs_dense(p), triangle(L)) << "L=" << L;
    EXPECT_EQ(cost_of(p).visible_pairs, 4 * triangle(L)) << "L=" << L;
  }
}

TEST(Cost, DecodeSeesWholeCache) {
  const AttentionProblem p = make(VariantId::dense, shape_of(1, 1, 1, 1, 4096, 64, 64), true);
  EXPECT_EQ(visible_pairs_dense(p), 4096);
  // Several decode rows at the end of the cache: Lk - Lq + 1 .. Lk keys.
  const AttentionProblem q = make(VariantId::dense, shape_of(1, 1, 1, 4, 100, 64, 64), true);
  EXPECT_EQ(visible_pairs_dense(q), 97 + 98 + 99 + 100);
}

TEST(Cost, CausalMoreQueriesThanKeysFirstRowsSeeNothing) {
  // Lq = 10, Lk = 4: rows 0..5 sit at p < 0; rows 6..9 see 1..4 keys.
  const AttentionProblem p = make(VariantId::dense, shape_of(1, 1, 1, 10, 4, 64, 64), true);
  EXPECT_EQ(visible_pairs_dense(p), 1 + 2 + 3 + 4);
  EXPECT_EQ(brute_dense_pairs(p), visible_pairs_dense(p));
}

TEST(Cost, SwaWindowOneSeesOnlyItself) {
  EXPECT_EQ(visible_pairs_dense(swa(50, 50, 1, 0)), 50);
  EXPECT_EQ(visible_pairs_dense(swa(10, 50, 1, 0)), 10);
  EXPECT_EQ(visible_pairs_dense(swa(50, 10, 1, 0)), 10);  // only rows with p >= 0
}

TEST(Cost, SwaWindowCoveringEverythingEqualsCausalDense) {
  for (auto [lq, lk] : {std::pair<int64_t, int64_t>{64, 64}, {10, 64}, {64, 10}, {1, 300}}) {
    const AttentionProblem dense = make(VariantId::dense, shape_of(1, 1, 1, lq, lk, 64, 64), true);
    for (int64_t w : {lk, lk + 1, 10 * lk}) {
      EXPECT_EQ(visible_pairs_dense(swa(lq, lk, w, 0)), visible_pairs_dense(dense))
          << lq << "x" << lk << " W=" << w;
      EXPECT_EQ(visible_pairs_dense(swa(lq, lk, w, 3)), visible_pairs_dense(dense))
          << lq << "x" << lk << " W=" << w << " with sinks";
    }
  }
}

TEST(Cost, SwaSinksHandCount) {
  // L = 10, W = 3, S = 2. Window keys per row p: min(p + 1, 3) -> 1 + 2 + 3·8 = 27.
  // Sinks below the window per row: min(2, p - 2) for p >= 3 -> 1 + 2·6 = 13.
  EXPECT_EQ(visible_pairs_dense(swa(10, 10, 3, 0)), 27);
  EXPECT_EQ(visible_pairs_dense(swa(10, 10, 3, 2)), 40);
  EXPECT_EQ(brute_dense_pairs(swa(10, 10, 3, 2)), 40);
}

TEST(Cost, DenseClosedFormMatchesBruteForce) {
  std::mt19937_64 rng(20240611);
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  for (int trial = 0; trial < 600; ++trial) {
    const int64_t lq = uniform(1, 70), lk = uniform(1, 70);
    AttentionProblem p;
    switch (trial % 3) {
      case 0:
        p = make(VariantId::dense, shape_of(1, 1, 1, lq, lk, 64, 64), trial % 2 == 0);
        break;
      case 1:
        p = make(VariantId::mla, shape_of(1, 1, 1, lq, lk, 192, 128), trial % 2 == 0);
        break;
      default:
        p = swa(lq, lk, uniform(1, 80), uniform(0, 3) == 0 ? 0 : uniform(1, 20));
        break;
    }
    ASSERT_EQ(visible_pairs_dense(p), brute_dense_pairs(p))
        << "trial " << trial << " variant " << static_cast<int>(p.variant) << " Lq=" << lq
        << " Lk=" << lk << " causal=" << p.causal << " W=" << p.swa.window << " S=" << p.swa.sinks;
  }
}

TEST(Cost, MobaTopKCoveringAllBlocksEqualsCausalDense) {
  for (auto [lq, lk] : {std::pair<int64_t, int64_t>{256, 256}, {100, 256}, {300, 256}}) {
    const AttentionProblem dense = make(VariantId::dense, shape_of(1, 1, 1, lq, lk, 64, 64), true);
    EXPECT_EQ(visible_pairs_moba(moba(lq, lk, 64, 4)), visible_pairs_dense(dense));
    EXPECT_EQ(visible_pairs_moba(moba(lq, lk, 60, 100)), visible_pairs_dense(dense));
  }
}

TEST(Cost, MobaHandCount) {
  // L = 8, block 2, top_k 2: rows p = 0..7 own 1,2,1,2,1,2,1,2 keys; past blocks min(1, p / 2)
  // of 2 keys: 0,0,2,2,2,2,2,2 -> 12 + 12 = 24.
  EXPECT_EQ(visible_pairs_moba(moba(8, 8, 2, 2)), 24);
  EXPECT_EQ(brute_moba_pairs(moba(8, 8, 2, 2)), 24);
}

TEST(Cost, MobaClosedFormMatchesBruteForce) {
  std::mt19937_64 rng(77);
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  for (int trial = 0; trial < 600; ++trial) {
    const AttentionProblem p = moba(uniform(1, 90), uniform(1, 90), uniform(1, 20), uniform(1, 6));
    ASSERT_EQ(visible_pairs_moba(p), brute_moba_pairs(p))
        << "Lq=" << p.shape.q_len << " Lk=" << p.shape.kv_len << " block=" << p.moba.block_size
        << " top_k=" << p.moba.top_k;
  }
}

TEST(Cost, MobaFlopsAddGateAndBlockMeans) {
  // L = 8, block 2, top_k 2, D = 4, one head: pairs 24 (above); complete past blocks scored per
  // row p: p / 2 -> 0+0+1+1+2+2+3+3 = 12; block means 8·4 adds.
  AttentionProblem p = moba(8, 8, 2, 2);
  p.shape.head_dim = 4;
  p.shape.v_head_dim = 4;
  const Cost c = cost_of(p);
  EXPECT_EQ(c.flops, 24.0 * 2 * (4 + 4) + 12.0 * 2 * 4 + 8.0 * 4);
  // q, k, v, o fp32; lse and the int32 selection [8, top_k].
  EXPECT_EQ(c.bytes, 4.0 * (8 * 4 * 4) + 4.0 * 8 + 4.0 * 8 * 2);
  // Cache: 8 tokens · (4 + 4) values, plus 4 block means of 4 values.
  EXPECT_EQ(c.kv_cache_bytes, 4.0 * (8 * 8 + 4 * 4));
}

TEST(Cost, HugeShapesAreInstantAndExact) {
  const int64_t L = int64_t{1} << 22;
  const auto start = std::chrono::steady_clock::now();
  const AttentionProblem dense = make(VariantId::dense, shape_of(1, 128, 8, L, L, 128, 128), true);
  EXPECT_EQ(visible_pairs_dense(dense), triangle(L));
  EXPECT_EQ(cost_of(dense).visible_pairs, 128 * triangle(L));
  const int64_t W = 4096;
  EXPECT_EQ(visible_pairs_dense(swa(L, L, W, 0)), L * W - W * (W - 1) / 2);
  EXPECT_EQ(visible_pairs_dense(swa(L, L, W, 4)),
            L * W - W * (W - 1) / 2 + 4 * (L - W) - triangle(3));
  EXPECT_EQ(visible_pairs_moba(moba(L, L, 64, int64_t{1} << 20)), triangle(L));
  EXPECT_EQ(visible_pairs_moba(moba(L, L, L, 1)), triangle(L));  // one block, own block only
  // Beyond 2^32 keys the triangle needs more than 64 bits in the middle of the sum.
  const int64_t big = int64_t{1} << 32;
  EXPECT_EQ(visible_pairs_dense(make(VariantId::dense, shape_of(1, 1, 1, 1, big, 64, 64), true)),
            big);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 0.5);
}

TEST(Cost, MlaFlopsFollowTheChosenForm) {
  const double H = 128, Dc = 512, Dr = 64, Dn = 128, Dv = 128;
  // Decode: one query over 4096 latents.
  const double Lk = 4096;
  const Cost absorbed = cost_of(deepseek_v3_mla(1, 4096, true));
  const Cost naive = cost_of(deepseek_v3_mla(1, 4096, false));
  EXPECT_EQ(absorbed.flops, H * (2 * Dc * (Dn + Dv) + Lk * 2 * (2 * Dc + Dr)));
  EXPECT_EQ(naive.flops, H * (Lk * 2 * Dc * (Dn + Dv) + Lk * 2 * (Dn + Dr + Dv)));
  EXPECT_LT(absorbed.flops, naive.flops / 50);
  // Same inputs and outputs either way.
  EXPECT_EQ(absorbed.bytes, naive.bytes);
  EXPECT_EQ(absorbed.bytes,
            4 * (H * (Dn + Dr) + Lk * (Dc + Dr) + H * Dc * (Dn + Dv) + H * Dv) + 4 * H);
  // Causal prefill: the absorbed form pays 2·(2·Dc + Dr) per pair instead of 2·(Dn + Dr + Dv).
  const double L = 512, pairs = L * (L + 1) / 2;
  EXPECT_EQ(cost_of(deepseek_v3_mla(512, 512, true)).flops,
            H * (L * 2 * Dc * (Dn + Dv) + pairs * 2 * (2 * Dc + Dr)));
  EXPECT_EQ(cost_of(deepseek_v3_mla(512, 512, false)).flops,
            H * (L * 2 * Dc * (Dn + Dv) + pairs * 2 * (Dn + Dr + Dv)));
}

AttentionProblem gdn(int64_t L, bool recurrent, int64_t chunk) {
  AttentionProblem p = make(VariantId::gated_delta, shape_of(2, 4, 4, L, L, 64, 32), true);
  p.gated_delta.recurrent = recurrent;
  p.gated_delta.chunk_size = chunk;
  return p;
}

TEST(Cost, GatedDeltaStateIsConstantInContext) {
  const Cost short_ctx = cost_of(gdn(64, false, 64));
  const Cost long_ctx = cost_of(gdn(1 << 20, false, 64));
  EXPECT_EQ(short_ctx.kv_values_per_token, 0);
  EXPECT_EQ(short_ctx.kv_bytes_per_token, 0);
  EXPECT_EQ(short_ctx.kv_cache_bytes, 2.0 * 4 * 64 * 32 * 4);
  EXPECT_EQ(long_ctx.kv_cache_bytes, short_ctx.kv_cache_bytes);
  EXPECT_EQ(cost_of(gdn(64, false, 64), 2).kv_cache_bytes, short_ctx.kv_cache_bytes);  // fp32
}

TEST(Cost, GatedDeltaFlopsPerForm) {
  const double B = 2, H = 4, Dk = 64, Dv = 32;
  const int64_t L = 200;
  EXPECT_EQ(cost_of(gdn(L, true, 64)).flops, B * H * L * 7 * Dk * Dv);
  auto chunk = [&](double c) {
    return c * c * (6 * Dk + 4 * Dv) + (c - 1) * c * (2 * c - 1) / 3 + 6 * c * Dk * Dv + Dk * Dv;
  };
  // 200 = 3 chunks of 64 + a tail of 8.
  EXPECT_EQ(cost_of(gdn(L, false, 64)).flops, B * H * (3 * chunk(64) + chunk(8)));
  EXPECT_EQ(cost_of(gdn(L, false, 64)).visible_pairs, 2 * 4 * triangle(L));
  // q, k, v, g, beta in, o out, fp32 final state.
  EXPECT_EQ(cost_of(gdn(L, false, 64)).bytes,
            4 * B * H * L * (2 * Dk + Dv + 2 + Dv) + 4 * B * H * Dk * Dv);
}

TEST(Cost, SwaCacheStopsGrowingPastWindowPlusSinks) {
  const double per_token = 4.0 * 1 * 128;  // Hkv = 1, Dk = Dv = 64, fp32
  EXPECT_EQ(cost_of(swa(1, 100, 256, 4)).kv_cache_bytes, 100 * per_token);
  const double full = cost_of(swa(1, 260, 256, 4)).kv_cache_bytes;
  EXPECT_EQ(full, 260 * per_token);
  for (int64_t lk : {261, 1000, 1 << 20})
    EXPECT_EQ(cost_of(swa(1, lk, 256, 4)).kv_cache_bytes, full) << lk;
}

TEST(Cost, SwaDecodeReadsOnlyWindowAndSinks) {
  // One query at the end of a 10000-key cache reads the last 256 keys and 4 sinks.
  const Cost c = cost_of(swa(1, 10000, 256, 4));
  const double keys = 260;
  EXPECT_EQ(c.bytes, 4.0 * (64 + keys * 128 + 64) + 4.0);
  EXPECT_EQ(c.visible_pairs, 260);
}

}  // namespace
}  // namespace attnscope

namespace attnscope {
namespace {

// Pairs counted from what a run actually selected, for the cost model's closed forms.
int64_t nsa_pairs_from_run(const AttentionProblem& p, const RunResult& r) {
  const int64_t bs = p.nsa.block_size, S = p.nsa.block_count, Lk = p.shape.kv_len;
  const IndexTensor& sel = r.extra_index.at("selection");  // [B, Hkv, Lq, S]
  int64_t n = 0;
  for (int64_t i = 0; i < p.shape.q_len; ++i) {
    const int64_t pos = p.query_position(i);
    if (pos < 0) continue;
    n += (pos + 1) / bs;                                         // complete blocks (compressed)
    if (p.nsa.window > 0) n += std::min(p.nsa.window, pos + 1);  // window
    for (int64_t t = 0; t < S; ++t) {                            // selected keys j <= pos
      const int32_t c = sel.data()[i * S + t];
      if (c >= 0) n += std::min({(c + 1) * bs, pos + 1, Lk}) - c * bs;
    }
  }
  return n;
}

}  // namespace

TEST(Cost, NsaAndDsaCountWhatTheirRunsSelect) {
  std::mt19937_64 rng(1234);
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  auto ref = make_backend("reference");
  for (int trial = 0; trial < 40; ++trial) {
    AttentionProblem p = AttentionProblem::defaults(VariantId::nsa);
    p.shape = {1, 1, 1, uniform(1, 70), uniform(1, 70), 4, 4};
    p.nsa = {uniform(1, 9), uniform(3, 7), uniform(0, 20)};
    const RunResult r = ref->run(p, make_inputs(p, "random", uint64_t(trial)), {}, {});
    ASSERT_EQ(visible_pairs(p), nsa_pairs_from_run(p, r))
        << "Lq=" << p.shape.q_len << " Lk=" << p.shape.kv_len << " bs=" << p.nsa.block_size
        << " S=" << p.nsa.block_count << " W=" << p.nsa.window;
  }
  for (int trial = 0; trial < 40; ++trial) {
    AttentionProblem p = AttentionProblem::defaults(VariantId::dsa);
    p.shape = {1, 1, 1, uniform(1, 70), uniform(1, 70), 6, 4};
    p.mla = {8, 2, 4, true};
    p.dsa = {uniform(1, 80), 2, 4, false};
    const RunResult r = ref->run(p, make_inputs(p, "random", uint64_t(trial)), {}, {});
    int64_t attended = 0;
    for (int32_t s : r.extra_index.at("selection").span()) attended += s >= 0;
    ASSERT_EQ(visible_pairs(p), attended)
        << "Lq=" << p.shape.q_len << " Lk=" << p.shape.kv_len << " top_k=" << p.dsa.top_k;
  }
}

}  // namespace attnscope
