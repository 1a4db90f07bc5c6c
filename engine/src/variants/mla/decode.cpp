// MLA's decode on the cpu backend: the absorbed form over the latent pages, built on the shared
// paged softmax walk (cpu/paged_decode.hpp).
#include <Eigen/Core>
#include <vector>

#include "attnscope/decode.hpp"
#include "attnscope/kv_cache.hpp"
#include "attnscope/parallel.hpp"
#include "backends/cpu/paged_decode.hpp"
#include "variants/mla/mla.hpp"

namespace attnscope::cpu {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Stride = Eigen::OuterStride<>;
using CMap = Eigen::Map<const RowMat, 0, Stride>;

}  // namespace

// MLA in the absorbed form, which is what makes the latent cache pay: q̃_h = w_uk_hᵀ q_nope_h,
// scores q̃_h · c_t + q_rope_h · k_rope_t over the latent pages (all heads share them), x_h = Σ p
// c_t, o_h = w_uv_h x_h.
RunResult decode_mla(PagedKvCache& cache, const DecodeStep& step, int threads,
                     const CancelToken& cancel) {
  const AttentionProblem& p = cache.problem();
  const int64_t B = int64_t(step.sequences.size()), H = p.shape.heads, Dv = p.shape.v_head_dim;
  const int64_t Dc = p.mla.kv_lora_rank, Dr = p.mla.rope_dim, Dn = p.mla.nope_dim;
  const int64_t Dq = Dn + Dr;
  const float* q = step.inputs.at("q").data();        // [B, H, 1, Dn + Dr]
  const float* w_uk = step.inputs.at("w_uk").data();  // [H, Dn, Dc]
  const float* w_uv = step.inputs.at("w_uv").data();  // [H, Dv, Dc]
  // Absorbed queries [B, H, Dc + Dr]: q̃ then the rotary part.
  std::vector<float> qa(size_t(B * H * (Dc + Dr)));
  ThreadPool::global().parallel_for(B * H, threads, [&](int64_t bh, int) {
    const int64_t h = bh % H;
    const float* qn = q + bh * Dq;
    Eigen::Map<Eigen::RowVectorXf> out(qa.data() + bh * (Dc + Dr), Dc);
    out.noalias() =
        Eigen::Map<const Eigen::RowVectorXf>(qn, Dn) * CMap(w_uk + h * Dn * Dc, Dn, Dc, Stride(Dc));
    std::copy(qn + Dn, qn + Dq, qa.data() + bh * (Dc + Dr) + Dc);
  });
  std::vector<float> x(size_t(B * H * Dc));
  RunResult r;
  r.lse = Tensor({B, H, 1});
  std::vector<Unit> units;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t seq = step.sequences[size_t(b)];
    Unit u;
    u.q = qa.data() + b * H * (Dc + Dr);
    u.G = H;
    u.q_ld = Dc + Dr;
    u.layout.parts = Dr > 0 ? 2 : 1;
    u.layout.width[0] = Dc;
    u.layout.q_off[1] = Dc;
    u.layout.k_part[1] = 1;  // k_rope
    u.layout.width[1] = Dr;
    u.layout.v_part = 0;  // x = Σ p c_kv: the latent is the value
    u.layout.dv = Dc;
    u.pages = cache.page_table(seq);
    u.ranges = {{0, cache.length(seq)}};
    u.o = x.data() + b * H * Dc;
    u.o_ld = Dc;
    u.lse = r.lse.data() + b * H;
    units.push_back(std::move(u));
  }
  run_units(cache, units, float(p.effective_scale()), threads, cancel);
  r.o = Tensor({B, H, 1, Dv});
  ThreadPool::global().parallel_for(B * H, threads, [&](int64_t bh, int) {
    const int64_t h = bh % H;
    Eigen::Map<Eigen::VectorXf>(r.o.data() + bh * Dv, Dv).noalias() =
        CMap(w_uv + h * Dv * Dc, Dv, Dc, Stride(Dc)) *
        Eigen::Map<const Eigen::VectorXf>(x.data() + bh * Dc, Dc);
  });
  return r;
}

}  // namespace attnscope::cpu
