// The CUDA backend's attention-map probe: uploads only what the region needs (its keys once, its
// queries, lse and MoBA selection in bands of output rows), pools each band on the device
// (map_probe.cu) and copies the pooled cells back. Memory is O(region keys + one band).
#include "cuda_map.hpp"

#include <algorithm>
#include <string>

#include "attnscope/error.hpp"
#include "attnscope/mask.hpp"
#include "attnscope/probes.hpp"
#include "attnscope/registry.hpp"
#include "cuda_check.hpp"
#include "launchers.hpp"
#include "map_probe_plan.hpp"

namespace attnscope::cuda {
namespace {

struct SyncGuard {
  cudaStream_t s;
  ~SyncGuard() { (void)cudaStreamSynchronize(s); }
};

// An input the map reads directly, checked for presence and shape: reading a misshapen tensor
// would run past its end.
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

template <class T>
void upload(T* dev, const T* host, int64_t count, cudaStream_t s) {
  if (count > 0) {
    check_cuda(cudaMemcpyAsync(dev, host, size_t(count) * sizeof(T), cudaMemcpyHostToDevice, s),
               "cudaMemcpyAsync host->device (attention map)");
  }
}

// rows x width floats from a host matrix with row stride src_stride into columns
// [0, width) of a device matrix with row stride dst_stride.
void upload_columns(float* dev, int64_t dst_stride, const float* host, int64_t src_stride,
                    int64_t width, int64_t rows, cudaStream_t s) {
  if (width <= 0 || rows <= 0) return;
  check_cuda(cudaMemcpy2DAsync(dev, size_t(dst_stride) * 4, host, size_t(src_stride) * 4,
                               size_t(width) * 4, size_t(rows), cudaMemcpyHostToDevice, s),
             "cudaMemcpy2DAsync host->device (attention map)");
}

size_t free_device_bytes() {
  size_t free_bytes = 0, total_bytes = 0;
  check_cuda(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  return free_bytes;
}

}  // namespace

bool map_on_device(const AttentionProblem& p) {
  switch (p.variant) {  // the backend's own dispatch over the registry's variants
    case VariantId::dense:
    case VariantId::swa:
    case VariantId::moba:
    case VariantId::mla:
      return true;
    case VariantId::gated_delta:
      return false;
  }
  return false;
}

Tensor device_attention_map(const AttentionProblem& p, const Inputs& in, const RunResult& r,
                            const MapRequest& req, const CancelToken& cancel, cudaStream_t st) {
  const MapRegion region = resolve_map_region(p, r, req);
  if (!map_on_device(p)) return attention_map(p, in, r, req, cancel);
  const ProblemShape& s = p.shape;
  const bool mla = p.variant == VariantId::mla, moba = p.variant == VariantId::moba;
  const int64_t Dn = p.mla.nope_dim, Dr = p.mla.rope_dim, Dc = p.mla.kv_lora_rank;
  const int64_t Dq = mla ? Dn + Dr : s.head_dim;  // query row width in the inputs
  const int64_t D = mla ? Dc + Dr : s.head_dim;   // score width on the device
  const int64_t top_k = p.moba.top_k;
  if (moba && r.selection->shape() != Shape{s.batch, s.heads, s.q_len, top_k}) {
    throw Error(
        "attention map: the run result's MoBA selection does not match the problem (rerun "
        "it)");
  }
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
      4.0 * (double(cols) * double(D) + double(band_rows) * double(D + (mla ? Dq : 0) + 1) +
             (moba ? double(band_rows) * double(top_k) : 0.0) +
             double(band_out_rows) * double(region.out_cols) + (mla ? double(Dn * Dc) : 0.0));
  if (need > 0.8 * double(free_device_bytes())) {
    return attention_map(p, in, r, req, cancel);  // the host streams tiles in O(tile) memory
  }

  const int64_t b = req.batch, h = req.head;
  const int64_t bh = b * s.heads + h;
  DeviceBuffer<float> keys(cols * D);                         // [cols, D]
  DeviceBuffer<float> queries(band_rows * D);                 // [band rows, D]
  DeviceBuffer<float> raw_queries(mla ? band_rows * Dq : 0);  // MLA: [band rows, Dn + Dr]
  DeviceBuffer<float> w_uk(mla ? Dn * Dc : 0);                // MLA: this head's [Dn, Dc]
  DeviceBuffer<float> lse(band_rows);
  DeviceBuffer<int32_t> selection(moba ? band_rows * top_k : 0);
  DeviceBuffer<float> pooled(band_out_rows * region.out_cols);
  SyncGuard guard{st};  // destroyed first: the stream drains before the buffers are freed

  // The region's keys, once: q·k for the q/k variants; [c_kv | k_rope] for MLA, whose scores the
  // host map tile forms in the absorbed form (reference/mla.cpp mla_map_tile), either run form.
  if (mla) {
    const int64_t first = b * s.kv_len + region.col0;
    upload_columns(keys.get(), D, map_input(p, in, "c_kv").data() + first * Dc, Dc, Dc, cols, st);
    upload_columns(keys.get() + Dc, D, map_input(p, in, "k_rope").data() + first * Dr, Dr, Dr, cols,
                   st);
    upload(w_uk.get(), map_input(p, in, "w_uk").data() + h * Dn * Dc, Dn * Dc, st);
  } else {
    const int64_t kvh = h / (s.heads / s.kv_heads);  // contiguous GQA groups
    const float* k =
        map_input(p, in, "k").data() + ((b * s.kv_heads + kvh) * s.kv_len + region.col0) * D;
    upload(keys.get(), k, cols * D, st);
  }
  const float* q_head = map_input(p, in, "q").data() + bh * s.q_len * Dq;
  const float* lse_head = r.lse.data() + bh * s.q_len;
  const int32_t* sel_head = moba ? r.selection->data() + bh * s.q_len * top_k : nullptr;

  MapProbeArgs a;
  a.k = keys.get();
  a.q = queries.get();
  a.lse = lse.get();
  a.selection = moba ? selection.get() : nullptr;
  a.out = pooled.get();
  a.row0 = region.row0, a.col0 = region.col0;
  a.rows = region.rows(), a.cols = cols;
  a.out_rows = region.out_rows, a.out_cols = region.out_cols;
  a.group_rows = plan.group_rows, a.group_cols = plan.group_cols;
  a.col_groups = plan.col_groups;
  a.D = int(D);
  a.scale = float(p.effective_scale());
  a.mask = device_mask(KeyMask::of(p));
  if (moba) a.block_size = int(p.moba.block_size), a.top_k = int(top_k);
  a.mean = req.pool == Pool::mean;

  Tensor out({region.out_rows, region.out_cols});
  for (int64_t g0 = 0; g0 < plan.row_groups; g0 += groups_per_band) {
    cancel.throw_if_cancelled();
    const MapBand band = map_band(plan, g0, groups_per_band);
    const int64_t n = band.q_end - band.q_first;
    const int64_t row = region.row0 + band.q_first;  // absolute first query of the band
    if (mla) {
      upload(raw_queries.get(), q_head + row * Dq, n * Dq, st);
      launch_map_absorb_queries(raw_queries.get(), w_uk.get(), queries.get(), n, int(Dn), int(Dr),
                                int(Dc), st);
    } else {
      upload(queries.get(), q_head + row * D, n * D, st);
    }
    upload(lse.get(), lse_head + row, n, st);
    if (moba) upload(selection.get(), sel_head + row * top_k, n * top_k, st);
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
