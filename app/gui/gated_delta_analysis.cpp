// The state view's analysis for Gated DeltaNet, on the worker thread: its implicit attention next
// to softmax attention on the same q, k, v, the state norm over time (the engine run segment by
// segment, each starting from the previous final state) and the per-token gates.
#include <QObject>
#include <algorithm>
#include <cmath>
#include <memory>

#include "analyses.hpp"
#include "attnscope/error.hpp"

namespace attnscope::gui {
namespace {

Tensor sliceTokens(const Tensor& t, int64_t t0, int64_t t1) {
  // Along axis 2 of [B, H, L] or [B, H, L, D].
  const int64_t b = t.dim(0), h = t.dim(1), l = t.dim(2);
  const int64_t d = t.rank() == 4 ? t.dim(3) : 1;
  Shape shape = t.shape();
  shape[2] = t1 - t0;
  Tensor out(shape);
  for (int64_t bh = 0; bh < b * h; ++bh) {
    std::copy_n(t.data() + (bh * l + t0) * d, (t1 - t0) * d, out.data() + bh * (t1 - t0) * d);
  }
  return out;
}

double frobenius(const Tensor& s, int64_t head) {
  // final_state [B, H, Dk, Dv], batch 0.
  const int64_t n = s.dim(2) * s.dim(3);
  double acc = 0;
  for (int64_t x = 0; x < n; ++x) {
    const double v = s.data()[head * n + x];
    acc += v * v;
  }
  return std::sqrt(acc);
}

}  // namespace

void analyzeState(const AnalysisContext& ctx, ViewResult& out) {
  const AttentionProblem& p = ctx.problem;
  if (p.variant != VariantId::gated_delta) {
    out.note = QObject::tr(
        "This view shows Gated DeltaNet internals: choose the gated_delta "
        "variant (or the \"Gated DeltaNet memory\" demo).");
    return;
  }
  const int64_t h = clampHead(ctx.request.head, p);
  const int64_t len = p.shape.q_len;
  ViewRequest r = ctx.request;
  r.headMode = HeadMode::single;
  r.region = {};
  ctx.phase(QObject::tr("implicit attention"), 0.3, 0.45);
  MapImage implicit = computeMap(ctx.backend, p, ctx.inputs, ctx.run, r, ctx.cancel, Pool::mean);
  implicit.title = QObject::tr("Gated DeltaNet implicit attention, head %1").arg(h);

  AttentionProblem dense = AttentionProblem::defaults(VariantId::dense);
  dense.shape = p.shape;
  dense.causal = true;
  const auto qkv = std::make_shared<const Inputs>(subset(ctx.inputs, {"q", "k", "v"}));
  ctx.phase(QObject::tr("softmax attention on the same q, k, v"), 0.45, 0.6);
  const auto denseRun = ctx.runProblem(dense, qkv, true);
  // The probe's bins, as the implicit map beside it has (it has no pyramid).
  MapImage soft = computeMap(ctx.backend, dense, *qkv, *denseRun, r, ctx.cancel, Pool::mean,
                             MapDetail::probeOnly);
  soft.title = QObject::tr("softmax attention (dense causal), head %1").arg(h);
  out.maps = {implicit, soft};

  // ||S_t||_F over time: the engine runs segment by segment, each starting from the previous
  // segment's final state, so the curve comes from the same arithmetic as the run itself.
  const int64_t segments = std::min<int64_t>(len, 96);
  Tensor state;
  if (ctx.inputs.has("initial_state")) state = ctx.inputs.at("initial_state");
  out.stateT.push_back(0);
  out.stateNorm.push_back(state.empty() ? 0.0 : frobenius(state, h));
  int64_t t0 = 0;
  for (int64_t s = 0; s < segments; ++s) {
    const int64_t t1 = (s + 1) * len / segments;
    if (t1 <= t0) continue;
    ctx.phase(QObject::tr("state norm over time"), 0.6 + 0.4 * s / segments,
              0.6 + 0.4 * (s + 1) / segments);
    AttentionProblem seg = p;
    seg.shape.q_len = seg.shape.kv_len = t1 - t0;
    seg.gated_delta.chunk_size = std::min(p.gated_delta.chunk_size, t1 - t0);
    auto in = std::make_shared<Inputs>();
    for (const char* name : {"q", "k", "v", "g", "beta"}) {
      in->set(name, sliceTokens(ctx.inputs.at(name), t0, t1));
    }
    if (!state.empty()) in->set("initial_state", state);
    const auto segRun = ctx.runProblem(seg, in, false);
    if (!segRun->final_state) throw Error("the backend returned no final state for Gated DeltaNet");
    state = *segRun->final_state;
    out.stateT.push_back(double(t1));
    out.stateNorm.push_back(frobenius(state, h));
    t0 = t1;
  }

  const Tensor& g = ctx.inputs.at("g");
  const Tensor& beta = ctx.inputs.at("beta");
  out.gate.resize(len);
  out.beta.resize(len);
  for (int64_t t = 0; t < len; ++t) {
    out.gate[t] = std::exp(g.data()[h * len + t]);
    out.beta[t] = beta.data()[h * len + t];
  }
}

}  // namespace attnscope::gui
