// MLA on the CPU, both forms on the flash tiles. Absorbed: q̃ = w_ukᵀ q_nope turns MLA into MQA
// over the latent cache (K = [c_kv | k_rope], V = c_kv, one "kv head" for all H), then o = w_uv x.
// Naive: expand K/V per head from the latent and run MHA. The cost model picks the cheaper form.
#include "attnscope/cost.hpp"
#include "attnscope/parallel.hpp"
#include "backends/cpu/cpu_backend.hpp"
#include "backends/cpu/eigen_types.hpp"
#include "backends/cpu/flash.hpp"
#include "variants/mla/mla.hpp"

namespace attnscope::cpu {
namespace {

// The counters describe the form that ran, not the one the problem names.
void count(RunResult& r, const AttentionProblem& p, bool absorbed) {
  AttentionProblem ran = p;
  ran.mla.absorbed = absorbed;
  const Cost cost = cost_of(ran);
  r.counters = {cost.flops, cost.bytes, cost.visible_pairs};
}

bool use_absorbed(const Context& c) {
  switch (c.options.form) {
    case CpuOptions::Form::naive:
      return false;
    case CpuOptions::Form::absorbed:
      return true;
    case CpuOptions::Form::automatic:
      break;
  }
  AttentionProblem naive = c.problem, absorbed = c.problem;
  naive.mla.absorbed = false;
  absorbed.mla.absorbed = true;
  return cost_of(absorbed).flops < cost_of(naive).flops;
}

}  // namespace

RunResult run_mla(const Context& c) {
  const AttentionProblem& p = c.problem;
  const int64_t B = p.shape.batch, H = p.shape.heads, Lq = p.shape.q_len, Lk = p.shape.kv_len;
  const int64_t Dn = p.mla.nope_dim, Dr = p.mla.rope_dim, Dc = p.mla.kv_lora_rank;
  const int64_t Dv = p.shape.v_head_dim, Dq = Dn + Dr;
  const float* q = c.inputs.at("q").data();            // [B, H, Lq, Dn + Dr]
  const float* c_kv = c.inputs.at("c_kv").data();      // [B, Lk, Dc]
  const float* k_rope = c.inputs.at("k_rope").data();  // [B, Lk, Dr]
  const float* w_uk = c.inputs.at("w_uk").data();      // [H, Dn, Dc]
  const float* w_uv = c.inputs.at("w_uv").data();      // [H, Dv, Dc]
  ThreadPool& pool = ThreadPool::global();
  RunResult r;
  r.o = Tensor({B, H, Lq, Dv});
  r.lse = Tensor({B, H, Lq});

  FlashArgs a;
  a.B = B, a.H = H, a.Lq = Lq, a.Lk = Lk;
  a.mask = KeyMask::of(p);
  a.scale = static_cast<float>(p.effective_scale());
  a.threads = c.threads;
  a.lse = r.lse.data();
  a.pyramid = c.probes.pyramid;  // both forms compute every head's scores: the same P

  const bool absorbed = use_absorbed(c);
  count(r, p, absorbed);
  if (absorbed) {
    const int64_t Dl = Dc + Dr;    // latent key width: 576 for DeepSeek-V3
    Tensor q_abs({B, H, Lq, Dl});  // [q̃ | q_rope]
    Tensor kv({B, 1, Lk, Dl});     // [c_kv | k_rope]; its first Dc columns double as V
    Tensor x({B, H, Lq, Dc});      // attention-weighted latent
    pool.parallel_for(B * H, c.threads, [&](int64_t bh, int) {
      const int64_t h = bh % H;
      auto qh = view(q + bh * Lq * Dq, Lq, Dq, Dq);
      auto out = view(q_abs.data() + bh * Lq * Dl, Lq, Dl, Dl);
      out.leftCols(Dc).noalias() = qh.leftCols(Dn) * view(w_uk + h * Dn * Dc, Dn, Dc, Dc);
      out.rightCols(Dr) = qh.rightCols(Dr);
    });
    for (int64_t b = 0; b < B; ++b) {
      auto dst = view(kv.data() + b * Lk * Dl, Lk, Dl, Dl);
      dst.leftCols(Dc) = view(c_kv + b * Lk * Dc, Lk, Dc, Dc);
      dst.rightCols(Dr) = view(k_rope + b * Lk * Dr, Lk, Dr, Dr);
    }
    a.q = q_abs.data(), a.k = kv.data(), a.v = kv.data(), a.o = x.data();
    a.Hkv = 1, a.Dk = Dl, a.Dv = Dc, a.k_ld = Dl, a.v_ld = Dl;
    r.pyramid = flash_attention(a, c.cancel);
    pool.parallel_for(B * H, c.threads, [&](int64_t bh, int) {
      const int64_t h = bh % H;
      view(r.o.data() + bh * Lq * Dv, Lq, Dv, Dv).noalias() =
          view(x.data() + bh * Lq * Dc, Lq, Dc, Dc) *
          view(w_uv + h * Dv * Dc, Dv, Dc, Dc).transpose();
    });
    return r;
  }

  // Naive form: per-head keys [c_kv w_ukᵀ | k_rope] and values c_kv w_uvᵀ, then MHA.
  Tensor k({B, H, Lk, Dq});
  Tensor v({B, H, Lk, Dv});
  pool.parallel_for(B * H, c.threads, [&](int64_t bh, int) {
    c.cancel.throw_if_cancelled();
    const int64_t b = bh / H, h = bh % H;
    auto latent = view(c_kv + b * Lk * Dc, Lk, Dc, Dc);
    auto kh = view(k.data() + bh * Lk * Dq, Lk, Dq, Dq);
    kh.leftCols(Dn).noalias() = latent * view(w_uk + h * Dn * Dc, Dn, Dc, Dc).transpose();
    kh.rightCols(Dr) = view(k_rope + b * Lk * Dr, Lk, Dr, Dr);
    view(v.data() + bh * Lk * Dv, Lk, Dv, Dv).noalias() =
        latent * view(w_uv + h * Dv * Dc, Dv, Dc, Dc).transpose();
  });
  a.q = q, a.k = k.data(), a.v = v.data(), a.o = r.o.data();
  a.Hkv = H, a.Dk = Dq, a.Dv = Dv;
  r.pyramid = flash_attention(a, c.cancel);
  return r;
}

}  // namespace attnscope::cpu
