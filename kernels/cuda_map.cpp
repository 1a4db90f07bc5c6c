// The CUDA backend's attention-map probe: uploads only what the region needs (its keys once, its
// queries, lse and block selection in bands of output rows), pools each band on the device
// (map_probe.cu) and copies the pooled cells back. Memory is O(region keys + one band).
#include "cuda_map.hpp"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>

#include "attnscope/error.hpp"
#include "attnscope/mask.hpp"
#include "attnscope/probes.hpp"
#include "attnscope/registry.hpp"
#include "cuda_host.hpp"
#include "cuda_variant.hpp"
#include "launchers.hpp"
#include "map_probe_plan.hpp"

namespace attnscope::cuda {
namespace {

// Scores q · k of the q and k inputs, one kv head's keys for each query head (contiguous GQA
// groups).
class QkScores final : public MapScores {
 public:
  QkScores(const AttentionProblem& p, const Inputs& in, int64_t b, int64_t h)
      : p_(p), in_(in), b_(b), h_(h) {}

  int64_t width() const override { return p_.shape.head_dim; }
  double extra_floats(int64_t) const override { return 0; }
  void allocate(int64_t) override {}
  void upload_keys(float* keys, int64_t col0, int64_t cols, cudaStream_t st) override {
    const ProblemShape& s = p_.shape;
    const int64_t D = width();
    const int64_t kvh = h_ / (s.heads / s.kv_heads);
    const float* k =
        map_input(p_, in_, "k").data() + ((b_ * s.kv_heads + kvh) * s.kv_len + col0) * D;
    map_upload(keys, k, cols * D, st);
    q_head_ = map_input(p_, in_, "q").data() + (b_ * s.heads + h_) * s.q_len * D;
  }
  void upload_queries(float* queries, int64_t row, int64_t n, cudaStream_t st) override {
    map_upload(queries, q_head_ + row * width(), n * width(), st);
  }

 private:
  const AttentionProblem& p_;
  const Inputs& in_;
  int64_t b_, h_;
  const float* q_head_ = nullptr;
};

}  // namespace

const Tensor& map_input(const AttentionProblem& p, const Inputs& in, const std::string& name) {
  for (const TensorSpec& spec : variant_info(p.variant).inputs(p)) {
    if (spec.name != name) continue;
    const Tensor& t = in.at(name);
    if (t.shape() != spec.shape) {
      throw Error("attention map: input tensor '" + name + "' has shape " + shape_str(t.shape()) +
                  " but the problem needs " + shape_str(spec.shape));
    }
    return t;
  }
  throw Error("attention map: the variant has no input '" + name + "'");
}

void upload_columns(float* dev, int64_t dst_stride, const float* host, int64_t src_stride,
                    int64_t width, int64_t rows, cudaStream_t s) {
  if (width <= 0 || rows <= 0) return;
  check_cuda(cudaMemcpy2DAsync(dev, size_t(dst_stride) * 4, host, size_t(src_stride) * 4,
                               size_t(width) * 4, size_t(rows), cudaMemcpyHostToDevice, s),
             "cudaMemcpy2DAsync host->device (attention map)");
}

bool map_on_device(const AttentionProblem& p) {
  return find_cuda_variant(p.variant) && variant_info(p.variant).map_kind == MapKind::softmax;
}

Tensor device_attention_map(const AttentionProblem& p, const Inputs& in, const RunResult& r,
                            const MapRequest& req, const CancelToken& cancel, cudaStream_t st) {
  const MapRegion region = resolve_map_region(p, r, req);
  if (!map_on_device(p)) return attention_map(p, in, r, req, cancel);
  const ProblemShape& s = p.shape;
  const std::optional<BlockSelection> sel = block_selection(p);
  const int64_t top_k = sel ? sel->top_k : 0;
  if (sel && r.selection->shape() != Shape{s.batch, s.heads, s.q_len, top_k}) {
    throw Error(
        "attention map: the run result's block selection does not match the problem (rerun it)");
  }
  const int64_t b = req.batch, h = req.head;
  const CudaVariant& cv = *find_cuda_variant(p.variant);
  const std::unique_ptr<MapScores> scores =
      cv.map_scores ? cv.map_scores(p, in, b, h) : std::make_unique<QkScores>(p, in, b, h);
  const int64_t D = scores->width();  // score width on the device
  if (region.rows() > INT32_MAX || region.cols() > INT32_MAX || D > INT32_MAX / 2) {
    return attention_map(p, in, r, req, cancel);
  }

  const MapPlan plan =
      make_map_plan(region.rows(), region.cols(), region.out_rows, region.out_cols);
  const int64_t groups_per_band = map_groups_per_band(plan);
  const int64_t band_rows = std::min(region.rows(), groups_per_band * plan.group_input_rows);
  const int64_t band_out_rows =
      std::min(region.out_rows, groups_per_band * int64_t(plan.group_rows));
  const int64_t cols = region.cols();
  const double need =
      4.0 * (double(cols) * double(D) + double(band_rows) * double(D + 1) +
             (sel ? double(band_rows) * double(top_k) : 0.0) +
             double(band_out_rows) * double(region.out_cols) + scores->extra_floats(band_rows));
  if (need > 0.8 * double(free_device_bytes())) {
    return attention_map(p, in, r, req, cancel);  // the host streams tiles in O(tile) memory
  }

  const int64_t bh = b * s.heads + h;
  DeviceBuffer<float> keys(cols * D);          // [cols, D]
  DeviceBuffer<float> queries(band_rows * D);  // [band rows, D]
  scores->allocate(band_rows);
  DeviceBuffer<float> lse(band_rows);
  DeviceBuffer<int32_t> selection(sel ? band_rows * top_k : 0);
  DeviceBuffer<float> pooled(band_out_rows * region.out_cols);
  SyncGuard guard{st};  // destroyed first: the stream drains before the buffers are freed

  scores->upload_keys(keys.get(), region.col0, cols, st);  // the region's keys, once
  const float* lse_head = r.lse.data() + bh * s.q_len;
  const int32_t* sel_head = sel ? r.selection->data() + bh * s.q_len * top_k : nullptr;

  MapProbeArgs a;
  a.k = keys.get();
  a.q = queries.get();
  a.lse = lse.get();
  a.selection = sel ? selection.get() : nullptr;
  a.out = pooled.get();
  a.row0 = region.row0, a.col0 = region.col0;
  a.rows = region.rows(), a.cols = cols;
  a.out_rows = region.out_rows, a.out_cols = region.out_cols;
  a.group_rows = plan.group_rows, a.group_cols = plan.group_cols;
  a.col_groups = plan.col_groups;
  a.D = int(D);
  a.scale = float(p.effective_scale());
  a.mask = device_mask(KeyMask::of(p));
  if (sel) a.block_size = int(sel->block_size), a.top_k = int(top_k);
  a.mean = req.pool == Pool::mean;

  Tensor out({region.out_rows, region.out_cols});
  for (int64_t g0 = 0; g0 < plan.row_groups; g0 += groups_per_band) {
    cancel.throw_if_cancelled();
    const MapBand band = map_band(plan, g0, groups_per_band);
    const int64_t n = band.q_end - band.q_first;
    const int64_t row = region.row0 + band.q_first;  // absolute first query of the band
    scores->upload_queries(queries.get(), row, n, st);
    map_upload(lse.get(), lse_head + row, n, st);
    if (sel) map_upload(selection.get(), sel_head + row * top_k, n * top_k, st);
    a.q_first = band.q_first;
    a.orow_first = band.orow_first;
    a.row_groups = band.group1 - band.group0;
    launch_map_probe(a, st);
    const int64_t floats = (band.orow_end - band.orow_first) * region.out_cols;
    check_cuda(cudaMemcpyAsync(out.data() + band.orow_first * region.out_cols, pooled.get(),
                               size_t(floats) * sizeof(float), cudaMemcpyDeviceToHost, st),
               "cudaMemcpyAsync device->host (attention map)");
    check_cuda(cudaStreamSynchronize(st), "cudaStreamSynchronize (attention map)");
    cancel.report(double(band.group1) / double(plan.row_groups));
  }
  check_cuda(cudaGetLastError(), "attention map");
  return out;
}

}  // namespace attnscope::cuda
