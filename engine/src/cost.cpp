// Analytic cost of an attention problem: FLOPs, minimal bytes, visible pairs and KV-cache size.
// The roofline, throughput and KV views read these numbers; docs/cost-model.md derives each one.
#include "attnscope/cost.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "attnscope/mask.hpp"

namespace attnscope {
namespace {

// Sums of L² terms overflow int64 once L passes ~3·10⁹ (and B·H·L² far sooner), so every count
// is formed in 128 bits and only narrowed at the API boundary.
__extension__ typedef __int128 i128;

i128 triangle(i128 n) {
  return n <= 0 ? 0 : n * (n + 1) / 2;
}

// Σ_{x=1..n} min(x, cap): a ramp that saturates at cap. Both the window part (min(p + 1, W))
// and the sink part (min(S, p - W + 1)) of a sliding-window row count are this shape.
i128 capped_ramp_sum(i128 n, i128 cap) {
  if (n <= 0 || cap <= 0) return 0;
  if (n <= cap) return triangle(n);
  return triangle(cap) + (n - cap) * cap;
}

int64_t saturate(i128 v) {
  constexpr i128 top = std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(std::clamp<i128>(v, 0, top));
}

// First key position that owns a query row: rows with p < 0 (Lq > Lk under causal alignment)
// see nothing, so the visible rows are exactly p ∈ [first_position, Lk).
int64_t first_position(int64_t q_len, int64_t kv_len) {
  return std::max<int64_t>(0, kv_len - q_len);
}

i128 dense_pairs(const KeyMask& m, int64_t q_len, int64_t kv_len) {
  if (q_len <= 0 || kv_len <= 0) return 0;
  if (!m.causal) return i128{q_len} * kv_len;
  // p = i + Lk - Lq never exceeds Lk - 1, so hi(i) = p + 1 for every row that sees anything.
  const i128 a = first_position(q_len, kv_len);
  const i128 n = kv_len;
  if (a >= n) return 0;
  if (m.window <= 0) return triangle(n) - triangle(a);
  // Row at p: window keys min(p + 1, W), plus sinks min(S, p - W + 1) below the window.
  const i128 w = m.window;
  const i128 s = m.sinks;
  const i128 window_part = capped_ramp_sum(n, w) - capped_ramp_sum(a, w);
  const i128 sink_part = capped_ramp_sum(n - w, s) - capped_ramp_sum(a - w, s);
  return window_part + sink_part;
}

// Keys that at least one query row sees: the minimal K/V read. Only a causal window makes this
// smaller than Lk (the last row always reaches key Lk - 1).
i128 touched_keys(const KeyMask& m, int64_t q_len, int64_t kv_len) {
  if (q_len <= 0 || kv_len <= 0) return 0;
  if (!m.causal || m.window <= 0) return kv_len;
  const i128 a = first_position(q_len, kv_len);
  const i128 lo = std::max<i128>(0, a - m.window + 1);  // lowest key any window reaches
  return (i128{kv_len} - lo) + std::min<i128>(std::max<int64_t>(m.sinks, 0), lo);
}

// Σ_{p=0..n-1} of MoBA's own-block keys (p mod B) + 1.
i128 moba_own_sum(i128 n, i128 block) {
  if (n <= 0) return 0;
  return (n / block) * triangle(block) + triangle(n % block);
}

// Σ_{p=0..n-1} min(cap, p / B): past blocks attended (cap = top_k - 1) or scored by the gate
// (cap = unlimited). Whole blocks c < n / B contribute B rows each, the partial one n mod B rows.
i128 moba_past_blocks_sum(i128 n, i128 block, i128 cap) {
  if (n <= 0 || cap <= 0) return 0;
  const i128 q = n / block;
  const i128 r = n % block;
  // Σ_{c=0..q-1} min(cap, c) = Σ_{x=1..q-1} min(cap, x)
  return block * capped_ramp_sum(q - 1, cap) + r * std::min(cap, q);
}

struct MobaCounts {
  i128 pairs = 0;        // attended (query, key) pairs, one head
  i128 gate_scores = 0;  // (query, complete past block) gate dot products, one head
};

// MoBA is defined only under the causal mask, so the problem's causal flag is not consulted.
MobaCounts moba_counts(const AttentionProblem& p) {
  const auto& s = p.shape;
  MobaCounts out;
  const i128 block = p.moba.block_size;
  if (s.q_len <= 0 || s.kv_len <= 0 || block <= 0) return out;
  const i128 a = first_position(s.q_len, s.kv_len);
  const i128 n = s.kv_len;
  const i128 past_cap = std::max<int64_t>(0, p.moba.top_k - 1);
  const i128 unlimited = n;  // p / B < Lk, so Lk never binds
  out.pairs =
      (moba_own_sum(n, block) - moba_own_sum(a, block)) +
      block * (moba_past_blocks_sum(n, block, past_cap) - moba_past_blocks_sum(a, block, past_cap));
  out.gate_scores =
      moba_past_blocks_sum(n, block, unlimited) - moba_past_blocks_sum(a, block, unlimited);
  return out;
}

// One chunk of c tokens in the WY/UT chunked gated delta rule (per head): matrix-shaped work only.
// Products are counted at their full GEMM size (the triangular masks are applied afterwards, as
// fla's chunked form does); the forward substitution counts Σ_{i<c} i² multiply-adds.
double gdn_chunk_flops(double c, double dk, double dv) {
  // Intra-chunk GEMMs: A = K Kᵀ, W = T (β ⊙ K ⊙ e^γ) and Q Kᵀ are c×c×Dk; U = T (β ⊙ V) and
  // (Q Kᵀ ⊙ Γ) V' are c×c×Dv. The β, Γ and e^γ scalings are elementwise and not counted.
  const double intra = 3 * (2 * c * c * dk) + 2 * (2 * c * c * dv);
  // T = (I + A)⁻¹ by forward substitution: row i updates its i entries with i-term sums.
  const double solve = (c - 1) * c * (2 * c - 1) / 3;
  // Against the carried state: W S, (Q ⊙ e^γ) S and S += (K ⊙ e^{γ_C - γ})ᵀ V' are c×Dk×Dv;
  // the decay S ← e^{γ_C} S is one multiply per state entry.
  const double state = 3 * (2 * c * dk * dv) + dk * dv;
  return intra + solve + state;
}

}  // namespace

int64_t visible_pairs_dense(const AttentionProblem& problem) {
  return saturate(dense_pairs(KeyMask::of(problem), problem.shape.q_len, problem.shape.kv_len));
}

int64_t visible_pairs_moba(const AttentionProblem& problem) {
  return saturate(moba_counts(problem).pairs);
}

Cost cost_of(const AttentionProblem& problem, int element_bytes) {
  const auto& s = problem.shape;
  const double e = element_bytes;
  const double B = static_cast<double>(s.batch);
  const double H = static_cast<double>(s.heads);
  const double Hkv = static_cast<double>(s.kv_heads);
  const double Lq = static_cast<double>(s.q_len);
  const double Lk = static_cast<double>(s.kv_len);
  const double Dk = static_cast<double>(s.head_dim);
  const double Dv = static_cast<double>(s.v_head_dim);
  const i128 sequences_heads = i128{s.batch} * s.heads;

  Cost c;
  switch (problem.variant) {
    case VariantId::dense:
    case VariantId::swa: {
      const KeyMask mask = KeyMask::of(problem);
      const i128 pairs = dense_pairs(mask, s.q_len, s.kv_len);
      const double keys_read = static_cast<double>(touched_keys(mask, s.q_len, s.kv_len));
      c.visible_pairs = saturate(pairs * sequences_heads);
      c.flops = B * H * static_cast<double>(pairs) * 2 * (Dk + Dv);
      c.bytes = e * B * (H * Lq * Dk + Hkv * keys_read * (Dk + Dv) + H * Lq * Dv) + 4 * B * H * Lq;
      c.kv_values_per_token = Hkv * (Dk + Dv);
      c.kv_bytes_per_token = c.kv_values_per_token * e;
      // SWA keeps a ring buffer of the last W keys plus the S sinks; W = 0 means unlimited.
      double held = Lk;
      if (problem.variant == VariantId::swa && problem.swa.window > 0)
        held = std::min(Lk, static_cast<double>(problem.swa.window + problem.swa.sinks));
      c.kv_cache_bytes = B * held * c.kv_bytes_per_token;
      break;
    }
    case VariantId::moba: {
      const MobaCounts counts = moba_counts(problem);
      const double pairs = static_cast<double>(counts.pairs);
      const double gate_scores = static_cast<double>(counts.gate_scores);
      const double blocks = problem.moba.block_size > 0
                                ? static_cast<double>((s.kv_len + problem.moba.block_size - 1) /
                                                      problem.moba.block_size)
                                : 0.0;
      c.visible_pairs = saturate(counts.pairs * sequences_heads);
      c.flops = B * H * pairs * 2 * (Dk + Dv)   // attention over the selected keys
                + B * H * gate_scores * 2 * Dk  // gate q · k̄_c for every complete past block
                + B * Hkv * Lk * Dk;            // block means: one add per key element
      const double top_k = static_cast<double>(problem.moba.top_k);
      c.bytes = e * B * (H * Lq * Dk + Hkv * Lk * (Dk + Dv) + H * Lq * Dv) +
                4 * B * H * Lq * (1 + top_k);  // lse + int32 selection
      c.kv_values_per_token = Hkv * (Dk + Dv);
      c.kv_bytes_per_token = c.kv_values_per_token * e;
      // A decode loop keeps the block-mean keys next to the cache so it need not re-average.
      c.kv_cache_bytes = B * Lk * c.kv_bytes_per_token + B * Hkv * blocks * Dk * e;
      break;
    }
    case VariantId::mla: {
      const double Dc = static_cast<double>(problem.mla.kv_lora_rank);
      const double Dr = static_cast<double>(problem.mla.rope_dim);
      const double Dn = static_cast<double>(problem.mla.nope_dim);
      const i128 pairs_i = dense_pairs(KeyMask::of(problem), s.q_len, s.kv_len);
      const double pairs = static_cast<double>(pairs_i);
      c.visible_pairs = saturate(pairs_i * sequences_heads);
      if (problem.mla.absorbed) {
        // Per head: q̃ = w_ukᵀ q_nope and o = w_uv x once per query; per pair the score reads
        // Dc + Dr values and x = Σ p c accumulates Dc.
        c.flops = B * H * (Lq * 2 * Dc * (Dn + Dv) + pairs * 2 * (2 * Dc + Dr));
      } else {
        // Per head: expand k_nope = c_kv w_ukᵀ and v = c_kv w_uvᵀ for every key, then dense
        // attention with Dk = Dn + Dr.
        c.flops = B * H * (Lk * 2 * Dc * (Dn + Dv) + pairs * 2 * (Dn + Dr + Dv));
      }
      c.bytes = e * (B * H * Lq * (Dn + Dr)  // q
                     + B * Lk * (Dc + Dr)    // c_kv, k_rope
                     + H * Dc * (Dn + Dv)    // w_uk, w_uv
                     + B * H * Lq * Dv)      // o
                + 4 * B * H * Lq;            // lse
      c.kv_values_per_token = Dc + Dr;       // one latent + one rotary key shared by all heads
      c.kv_bytes_per_token = c.kv_values_per_token * e;
      c.kv_cache_bytes = B * Lk * c.kv_bytes_per_token;
      break;
    }
    case VariantId::gated_delta: {
      const int64_t L = s.q_len;
      const double Ld = static_cast<double>(L);
      // The implicit attention matrix is lower-triangular: token t mixes values 0..t.
      c.visible_pairs = saturate(triangle(L) * sequences_heads);
      double per_head = 0;
      if (problem.gdn.recurrent || problem.gdn.chunk_size <= 0) {
        // Per token: decay (Dk·Dv), Sᵀk, rank-1 update k uᵀ, output Sᵀq (2·Dk·Dv each).
        per_head = Ld * 7 * Dk * Dv;
      } else {
        const int64_t C = problem.gdn.chunk_size;
        const double full_chunks = static_cast<double>(L / C);
        const double tail = static_cast<double>(L % C);
        per_head = full_chunks * gdn_chunk_flops(static_cast<double>(C), Dk, Dv);
        if (tail > 0) per_head += gdn_chunk_flops(tail, Dk, Dv);
      }
      c.flops = B * H * per_head;
      // q, k, v, g, beta in; o out; the final state is fp32. No initial state is assumed (the
      // problem has no flag for it): a given one adds B·H·Dk·Dv·element_bytes.
      c.bytes = e * B * H * Ld * (2 * Dk + Dv + 2 + Dv) + 4 * B * H * Dk * Dv;
      c.kv_values_per_token = 0;
      c.kv_bytes_per_token = 0;
      c.kv_cache_bytes = 4 * B * H * Dk * Dv;  // the fp32 state, whatever the context length
      break;
    }
  }
  return c;
}

}  // namespace attnscope
