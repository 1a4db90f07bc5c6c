// MLA's hooks in the CUDA backend (cuda_variant.hpp): the limits of mla.cu's forms, its forward
// pass, the absorbed decode step over the latent pages, and the map's scores in the absorbed form.
#include <cmath>
#include <memory>
#include <string>

#include "cuda_map.hpp"
#include "cuda_variant.hpp"
#include "mla.hpp"

namespace attnscope::cuda {
namespace {

MlaArgs mla_args_of(const AttentionProblem& p, int sm_count, int kv_splits) {
  const ProblemShape& s = p.shape;
  MlaArgs a;
  a.B = int(s.batch), a.H = int(s.heads), a.Lq = int(s.q_len), a.Lk = int(s.kv_len);
  a.Dn = int(p.mla.nope_dim), a.Dr = int(p.mla.rope_dim), a.Dc = int(p.mla.kv_lora_rank);
  a.Dv = int(s.v_head_dim);
  a.scale = float(p.effective_scale());
  a.mask = device_mask(KeyMask::of(p));
  a.absorbed = p.mla.absorbed;
  a.sm_count = sm_count;
  a.kv_splits = kv_splits;
  return a;
}

Support supports(const AttentionProblem& p, size_t smem_max) {
  return p.mla.absorbed ? flash_fits(p.mla.kv_lora_rank + p.mla.rope_dim,
                                     "absorbed MLA key width kv_lora_rank + rope_dim", smem_max)
                        : flash_fits(p.shape.head_dim, "head_dim", smem_max);
}

// Absorbed: the queries and the cache in the latent space and the latent output, plus split-KV
// partials over Dc. Naive: every head's expanded keys and values, plus split-KV partials.
double workspace_floats(const AttentionProblem& p) {
  const ProblemShape& s = p.shape;
  const double rows = double(s.batch) * s.heads * s.q_len;
  const double dl = double(p.mla.kv_lora_rank + p.mla.rope_dim);
  if (p.mla.absorbed) {
    return rows * dl + double(s.batch) * s.kv_len * dl + 65 * rows * (p.mla.kv_lora_rank + 1);
  }
  return double(s.batch) * s.heads * s.kv_len * (s.head_dim + s.v_head_dim) +
         64 * rows * (s.v_head_dim + 1);
}

std::string launch(const DeviceRun& r) {
  MlaArgs a = mla_args_of(r.problem, r.sm_count, r.kv_splits);
  a.q = r.inputs.at("q"), a.c_kv = r.inputs.at("c_kv"), a.k_rope = r.inputs.at("k_rope");
  a.w_uk = r.inputs.at("w_uk"), a.w_uv = r.inputs.at("w_uv");
  a.o = r.o, a.lse = r.lse;
  mla_forward(a, r.blas, r.stream, r.cancel);
  return r.problem.mla.absorbed ? "mla absorbed fp32" : "mla naive fp32 (cuBLAS expansion + flash)";
}

// The up-projections N(0, 1/Dc), as the workload's "random" pattern draws them.
InputFill input_fill(const AttentionProblem& p, std::string_view name) {
  if (name == "w_uk" || name == "w_uv") {
    return {true, float(1.0 / std::sqrt(double(p.mla.kv_lora_rank))), 0.0f};
  }
  return {};
}

// Absorbed queries [B, H, Dc + Dr], then the latent output x [B, H, Dc], each 64-float aligned.
int64_t absorbed_floats(const AttentionProblem& p, int64_t batch) {
  return (batch * p.shape.heads * (p.mla.kv_lora_rank + p.mla.rope_dim) + 63) / 64 * 64;
}

int64_t paged_scratch_floats(const AttentionProblem& p, int64_t batch) {
  return absorbed_floats(p, batch) + batch * p.shape.heads * p.mla.kv_lora_rank;
}

// Absorbed form over the latent pages: q̃ = (w_ukᵀ q_nope | q_rope), x = Σ p c_kv, o = w_uv x.
void paged_step(const PagedRun& r) {
  const AttentionProblem& P = r.problem;
  const int B = r.args.B, H = r.args.H, Dv = int(P.shape.v_head_dim);
  const int Dn = int(P.mla.nope_dim), Dr = int(P.mla.rope_dim), Dc = int(P.mla.kv_lora_rank);
  float* q_abs = r.scratch;
  float* x = r.scratch + absorbed_floats(P, B);
  mla_absorb_queries(r.inputs.at("q"), r.inputs.at("w_uk"), q_abs, B, H, Dn, Dr, Dc, r.blas,
                     r.stream);
  PagedAttentionArgs a = r.args;
  a.q = q_abs;
  a.o = x;
  paged_attention_forward(a, r.splits, r.max_keys, r.stream);
  r.cancel.throw_if_cancelled();
  mla_project_out(x, r.inputs.at("w_uv"), r.o, B, H, Dc, Dv, r.blas);
}

// The host map tile's absorbed form (either run form): keys [c_kv | k_rope] and queries
// (q_nope w_uk | q_rope), so scores are Dc + Dr wide.
class LatentScores final : public MapScores {
 public:
  LatentScores(const AttentionProblem& p, const Inputs& in, int64_t b, int64_t h)
      : p_(p), in_(in), b_(b), h_(h) {}

  int64_t width() const override { return dc() + dr(); }
  double extra_floats(int64_t band_rows) const override {
    return double(band_rows) * double(dn() + dr()) + double(dn() * dc());
  }
  void allocate(int64_t band_rows) override {
    raw_queries_ = DeviceBuffer<float>(band_rows * (dn() + dr()));
    w_uk_ = DeviceBuffer<float>(dn() * dc());
  }
  void upload_keys(float* keys, int64_t col0, int64_t cols, cudaStream_t st) override {
    const int64_t D = width(), Dc = dc(), Dr = dr(), Dn = dn();
    const int64_t first = b_ * p_.shape.kv_len + col0;
    upload_columns(keys, D, map_input(p_, in_, "c_kv").data() + first * Dc, Dc, Dc, cols, st);
    upload_columns(keys + Dc, D, map_input(p_, in_, "k_rope").data() + first * Dr, Dr, Dr, cols,
                   st);
    map_upload(w_uk_.get(), map_input(p_, in_, "w_uk").data() + h_ * Dn * Dc, Dn * Dc, st);
    q_head_ =
        map_input(p_, in_, "q").data() + (b_ * p_.shape.heads + h_) * p_.shape.q_len * (Dn + Dr);
  }
  void upload_queries(float* queries, int64_t row, int64_t n, cudaStream_t st) override {
    const int64_t Dq = dn() + dr();
    map_upload(raw_queries_.get(), q_head_ + row * Dq, n * Dq, st);
    launch_map_absorb_queries(raw_queries_.get(), w_uk_.get(), queries, n, int(dn()), int(dr()),
                              int(dc()), st);
  }

 private:
  int64_t dn() const { return p_.mla.nope_dim; }
  int64_t dr() const { return p_.mla.rope_dim; }
  int64_t dc() const { return p_.mla.kv_lora_rank; }

  const AttentionProblem& p_;
  const Inputs& in_;
  int64_t b_, h_;
  const float* q_head_ = nullptr;
  DeviceBuffer<float> raw_queries_;  // [band rows, Dn + Dr]
  DeviceBuffer<float> w_uk_;         // this head's [Dn, Dc]
};

std::unique_ptr<MapScores> map_scores(const AttentionProblem& p, const Inputs& in, int64_t b,
                                      int64_t h) {
  return std::make_unique<LatentScores>(p, in, b, h);
}

}  // namespace

CudaVariant mla_cuda_variant() {
  return {.id = VariantId::mla,
          .summary = "MLA naive (cuBLAS) and absorbed",
          .supports = supports,
          .workspace_floats = workspace_floats,
          .launch = launch,
          .input_fill = input_fill,
          .paged_step = paged_step,
          .paged_scratch_floats = paged_scratch_floats,
          .paged_path = "paged MLA absorbed fp32",
          .map_scores = map_scores};
}

}  // namespace attnscope::cuda
