// Gated DeltaNet's decode on the cpu backend: one recurrent step per (sequence, head) on the
// cache's per-sequence state; there are no pages.
#include <Eigen/Core>
#include <cmath>
#include <vector>

#include "attnscope/decode.hpp"
#include "attnscope/kv_cache.hpp"
#include "attnscope/parallel.hpp"
#include "variants/gated_delta/gated_delta.hpp"

namespace attnscope::cpu {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

}  // namespace

// One step of the gated delta rule per (sequence, head), on the cached fp32 state:
// S = e^g S;  u = beta (v - Sᵀk);  S += k uᵀ;  o = Sᵀ q  (q scaled, q/k L2-normalized if asked).
RunResult decode_gated_delta(PagedKvCache& cache, const DecodeStep& step, int threads,
                             const CancelToken& cancel) {
  const AttentionProblem& p = cache.problem();
  const int64_t B = int64_t(step.sequences.size()), H = p.shape.heads;
  const int64_t Dk = p.shape.head_dim, Dv = p.shape.v_head_dim;
  const float* q = step.inputs.at("q").data();
  const float* k = step.inputs.at("k").data();
  const float* v = step.inputs.at("v").data();
  const float* g = step.inputs.at("g").data();
  const float* beta = step.inputs.at("beta").data();
  const double scale = p.effective_scale();
  std::vector<float*> states;
  for (int64_t seq : step.sequences) states.push_back(cache.state(seq).data());
  RunResult r;
  r.o = Tensor({B, H, 1, Dv});
  ThreadPool::global().parallel_for(B * H, threads, [&](int64_t bh, int) {
    cancel.throw_if_cancelled();
    const int64_t b = bh / H, h = bh % H;
    const float* qs = q + bh * Dk;
    const float* ks = k + bh * Dk;
    double qn = 0, kn = 0;
    for (int64_t d = 0; d < Dk; ++d) {
      qn += double(qs[d]) * qs[d];
      kn += double(ks[d]) * ks[d];
    }
    const double qf = (p.gated_delta.qk_l2norm ? 1.0 / std::sqrt(qn + 1e-6) : 1.0) * scale;
    const double kf = p.gated_delta.qk_l2norm ? 1.0 / std::sqrt(kn + 1e-6) : 1.0;
    Eigen::VectorXf qv(Dk), kv(Dk);
    for (int64_t d = 0; d < Dk; ++d) {
      qv[d] = float(qs[d] * qf);
      kv[d] = float(ks[d] * kf);
    }
    Eigen::Map<RowMat> S(states[size_t(b)] + h * Dk * Dv, Dk, Dv);
    S *= std::exp(g[bh]);
    Eigen::RowVectorXf u =
        Eigen::Map<const Eigen::RowVectorXf>(v + bh * Dv, Dv) - kv.transpose() * S;
    u *= beta[bh];
    S.noalias() += kv * u;
    Eigen::Map<Eigen::RowVectorXf>(r.o.data() + bh * Dv, Dv).noalias() = qv.transpose() * S;
  });
  return r;
}

}  // namespace attnscope::cpu
