// Device-resident timing for benchmarks (timing.hpp): inputs generated on the device in rotated
// sets, the backend's launchers called as CudaBackend::run / PagedDecoder::decode call them, CUDA
// events around each repetition. The bench validates this path against the reference (through
// TimingOptions::inputs) before it trusts a time, so a dispatch mistake here cannot go unseen.
#include <algorithm>
#include <climits>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "attnscope/cuda/backend.hpp"
#include "attnscope/cuda/device.hpp"
#include "attnscope/cuda/tensor_core.hpp"
#include "attnscope/cuda/timing.hpp"
#include "attnscope/error.hpp"
#include "attnscope/mask.hpp"
#include "attnscope/registry.hpp"
#include "cuda_check.hpp"
#include "cuda_decode.hpp"
#include "launchers.hpp"

namespace attnscope::cuda {
namespace {

std::string str(int64_t x) {
  return std::to_string(x);
}

// ---- inputs generated on the device -------------------------------------------------------

__device__ __forceinline__ uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// x[i] = a * N(0, 1) + b (normal) or uniform in [a, b), from a hash of (seed, i): any element
// count, no state, the same values on every run.
__global__ void fill_kernel(float* x, int64_t n, uint64_t seed, bool normal, float a, float b) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const uint64_t h = splitmix64(seed ^ splitmix64(uint64_t(i)));
    const float u1 = (float(h >> 40) + 0.5f) * (1.0f / 16777216.0f);  // (0, 1)
    const float u2 = float((h >> 16) & 0xffffff) * (1.0f / 16777216.0f);
    x[i] = normal ? a * sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2) + b : a + (b - a) * u1;
  }
}

void fill(float* x, int64_t n, uint64_t seed, bool normal, float a, float b, cudaStream_t s) {
  if (n <= 0) return;
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 65536);
  fill_kernel<<<unsigned(blocks), 256, 0, s>>>(x, n, seed, normal, a, b);
  check_launch("fill_kernel");
}

// Random values shaped like the workload's "random" pattern (workload.cpp): unit normals, MLA
// up-projections N(0, 1/Dc), Gated DeltaNet keys N(0, 1/Dk), decays with exp(g) in 0.9..0.999 and
// beta in (0.05, 0.95).
void fill_input(const std::string& name, const AttentionProblem& p, float* x, int64_t n,
                uint64_t seed, cudaStream_t s) {
  if (name == "w_uk" || name == "w_uv") {
    fill(x, n, seed, true, float(1.0 / std::sqrt(double(p.mla.kv_lora_rank))), 0.0f, s);
  } else if (name == "k" && p.variant == VariantId::gated_delta) {
    fill(x, n, seed, true, float(1.0 / std::sqrt(double(p.shape.head_dim))), 0.0f, s);
  } else if (name == "g") {
    fill(x, n, seed, false, -0.1f, -0.001f, s);
  } else if (name == "beta") {
    fill(x, n, seed, false, 0.05f, 0.95f, s);
  } else {
    fill(x, n, seed, true, 1.0f, 0.0f, s);
  }
}

// ---- timing plumbing -----------------------------------------------------------------------

class Event {
 public:
  Event() { check_cuda(cudaEventCreate(&e_), "cudaEventCreate"); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  Event(Event&& o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
  ~Event() {
    if (e_) (void)cudaEventDestroy(e_);
  }
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

double elapsed_ms(const Event& a, const Event& b) {
  float ms = 0;
  check_cuda(cudaEventElapsedTime(&ms, a.get(), b.get()), "cudaEventElapsedTime");
  return double(ms);
}

int device_attribute(cudaDeviceAttr attr, const char* what) {
  int device = 0, value = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&value, attr, device), what);
  return value;
}

size_t free_bytes() {
  size_t free_b = 0, total = 0;
  check_cuda(cudaMemGetInfo(&free_b, &total), "cudaMemGetInfo");
  return free_b;
}

// The launchers' stream-ordered scratch (cudaMallocAsync) stays in the pool between repetitions
// instead of going back to the driver at each synchronization, as in a serving loop.
void keep_pool_memory() {
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  cudaMemPool_t pool = nullptr;
  check_cuda(cudaDeviceGetDefaultMemPool(&pool, device), "cudaDeviceGetDefaultMemPool");
  uint64_t keep = UINT64_MAX;
  check_cuda(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep),
             "cudaMemPoolSetAttribute");
}

// Input sets to rotate: at least min_sets and together at least twice the L2 (or rotate_bytes),
// within max_set_fraction of free memory.
int sets_for(double set_bytes, const TimingOptions& o) {
  const double l2 = double(device_attribute(cudaDevAttrL2CacheSize, "cudaDevAttrL2CacheSize"));
  const double want = o.rotate_bytes > 0 ? o.rotate_bytes : 2 * l2;
  int n = std::max(o.min_sets, int(std::ceil(want / std::max(set_bytes, 1.0))));
  const double budget = o.max_set_fraction * double(free_bytes());
  if (set_bytes > budget) {
    throw Error("cuda timing: one input set needs " + str(int64_t(set_bytes / (1 << 20))) +
                " MiB, more than the " + str(int64_t(budget / (1 << 20))) +
                " MiB allowed of free device memory");
  }
  while (n > 1 && double(n) * set_bytes > budget) --n;
  return n;
}

// Warm-up, one timed repetition to size the rest, then the rest back to back, each between its
// own pair of events; sets rotate throughout. A warm-up longer than a second ends the warm-up.
template <class Launch>
std::vector<double> run_timed(Launch&& launch, int sets, const TimingOptions& o, cudaStream_t s) {
  int next = 0;
  Event w0, w1;
  for (int w = 0; w < o.warmup; ++w) {
    check_cuda(cudaEventRecord(w0.get(), s), "cudaEventRecord");
    launch(next++ % sets);
    check_cuda(cudaEventRecord(w1.get(), s), "cudaEventRecord");
    check_cuda(cudaEventSynchronize(w1.get()), "cudaEventSynchronize");
    if (elapsed_ms(w0, w1) > 1000.0) break;
  }
  std::vector<Event> start(1), stop(1);
  check_cuda(cudaEventRecord(start[0].get(), s), "cudaEventRecord");
  launch(next++ % sets);
  check_cuda(cudaEventRecord(stop[0].get(), s), "cudaEventRecord");
  check_cuda(cudaEventSynchronize(stop[0].get()), "cudaEventSynchronize");
  const double first = elapsed_ms(start[0], stop[0]);
  const int want = int(std::ceil(o.target_seconds * 1e3 / std::max(first, 1e-3)));
  const int lo = std::max(1, o.min_reps), hi = std::max(lo, o.max_reps);
  const int reps = std::clamp(want, lo, hi);
  // Events exist before the loop: creating them between launches is host time the GPU could spend
  // idle, which short kernels would then be charged for.
  start.resize(size_t(reps));
  stop.resize(size_t(reps));
  for (int r = 1; r < reps; ++r) {
    check_cuda(cudaEventRecord(start[size_t(r)].get(), s), "cudaEventRecord");
    launch(next++ % sets);
    check_cuda(cudaEventRecord(stop[size_t(r)].get(), s), "cudaEventRecord");
  }
  check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize");
  check_cuda(cudaGetLastError(), "cuda timing");
  std::vector<double> ms;
  for (size_t r = 0; r < start.size(); ++r) ms.push_back(elapsed_ms(start[r], stop[r]));
  return ms;
}

void download(const float* dev, Tensor& host, cudaStream_t s) {
  if (host.numel() > 0) {
    check_cuda(cudaMemcpyAsync(host.data(), dev, size_t(host.bytes()), cudaMemcpyDeviceToHost, s),
               "cudaMemcpyAsync device->host");
  }
}

void upload_checked(const Inputs& in, const std::string& name, const Shape& shape, float* dev,
                    cudaStream_t s) {
  const Tensor& t = in.at(name);
  if (t.shape() != shape) {
    throw Error("cuda timing: input '" + name + "' has shape " + shape_str(t.shape()) +
                ", expected " + shape_str(shape));
  }
  check_cuda(cudaMemcpyAsync(dev, t.data(), size_t(t.bytes()), cudaMemcpyHostToDevice, s),
             "cudaMemcpyAsync host->device");
}

void require_device() {
  const Support dev = device_available();
  if (!dev.ok) throw Error("cuda timing: " + dev.why_not);
}

}  // namespace

Timing time_run(const AttentionProblem& p, const TimingOptions& o) {
  p.check();
  require_device();
  if (const Support sup = make_cuda_backend({o.kv_splits})->supports(p); !sup.ok) {
    throw Error("cuda timing: " + sup.why_not);
  }
  const bool lowp = p.precision != Precision::fp32;
  keep_pool_memory();
  Stream stream;
  CublasHandle blas(stream.get());
  const cudaStream_t st = stream.get();
  const ProblemShape& s = p.shape;
  const int sm_count = device_attribute(cudaDevAttrMultiProcessorCount, "SM count");

  // One set: every required input in fp32; for bf16/fp16 (dense and SWA: q, k, v only) just the
  // 16-bit tensors the kernel reads, made through one fp32 staging buffer as CudaBackend does.
  std::vector<TensorSpec> specs;
  double set_bytes = 0;
  int64_t largest = 0;
  for (const TensorSpec& spec : variant_info(p.variant).inputs(p)) {
    if (spec.optional) continue;  // Gated DeltaNet's initial_state: zeros, as run() without it
    specs.push_back(spec);
    const int64_t n = shape_numel(spec.shape);
    set_bytes += (lowp ? 2.0 : 4.0) * double(n);
    largest = std::max(largest, n);
  }
  const int sets = o.inputs ? 1 : sets_for(set_bytes, o);  // validation needs no rotation
  std::vector<std::map<std::string, DeviceBuffer<float>>> f32(static_cast<size_t>(sets));
  std::vector<std::map<std::string, DeviceBuffer<uint16_t>>> f16(static_cast<size_t>(sets));
  DeviceBuffer<float> staging(lowp ? largest : 0);
  DeviceBuffer<int> overflow(1);
  check_cuda(cudaMemsetAsync(overflow.get(), 0, sizeof(int), st), "cudaMemsetAsync");
  for (int set = 0; set < sets; ++set) {
    for (const TensorSpec& spec : specs) {
      const int64_t n = shape_numel(spec.shape);
      float* x =
          lowp ? staging.get()
               : f32[size_t(set)].emplace(spec.name, DeviceBuffer<float>(n)).first->second.get();
      if (set == 0 && o.inputs) {
        upload_checked(*o.inputs, spec.name, spec.shape, x, st);
      } else {
        fill_input(spec.name, p, x, n,
                   o.seed * 1000003u + uint64_t(set) * 131u + std::hash<std::string>{}(spec.name),
                   st);
      }
      if (lowp) {  // stream order: the conversion reads staging before the next fill writes it
        uint16_t* y =
            f16[size_t(set)].emplace(spec.name, DeviceBuffer<uint16_t>(n)).first->second.get();
        launch_to_lowp(x, y, n, p.precision, overflow.get(), st);
      }
    }
  }
  int overflowed = 0;
  check_cuda(cudaMemcpyAsync(&overflowed, overflow.get(), sizeof(int), cudaMemcpyDeviceToHost, st),
             "cudaMemcpyAsync overflow flag");
  check_cuda(cudaStreamSynchronize(st), "cudaStreamSynchronize");
  if (overflowed) {
    throw Error("cuda timing: an input overflows " + std::string(precision_name(p.precision)));
  }

  const int64_t rows = s.batch * s.heads * s.q_len;
  DeviceBuffer<float> o_dev(rows * s.v_head_dim), lse_dev(rows);
  DeviceBuffer<int32_t> selection(p.variant == VariantId::moba ? rows * p.moba.top_k : 0);
  DeviceBuffer<float> state(
      p.variant == VariantId::gated_delta ? s.batch * s.heads * s.head_dim * s.v_head_dim : 0);
  const CancelToken cancel;
  const int splits = o.kv_splits > 0 ? o.kv_splits
                                     : choose_kv_splits(int(s.batch), int(s.heads), int(s.q_len),
                                                        int(s.kv_len), int(s.v_head_dim), sm_count);
  auto in = [&](int set, const char* name) { return f32[size_t(set)].at(name).get(); };
  std::string path;
  auto launch = [&](int set) {
    switch (p.variant) {  // as CudaBackend::run
      case VariantId::dense:
      case VariantId::swa:
        if (lowp) {
          FlashTcArgs a = flash_tc_args_of(p);
          a.q = f16[size_t(set)].at("q").get();
          a.k = f16[size_t(set)].at("k").get();
          a.v = f16[size_t(set)].at("v").get();
          a.o = o_dev.get(), a.lse = lse_dev.get();
          launch_flash_attention_tc(a, st);
          path = "flash tensor-core " + std::string(precision_name(p.precision));
        } else {
          FlashArgs a = flash_args_of(p);
          a.q = in(set, "q"), a.k = in(set, "k"), a.v = in(set, "v");
          a.o = o_dev.get(), a.lse = lse_dev.get();
          attention_forward(a, splits, st);
          path = "flash fp32, " + str(splits) + " key split" + (splits == 1 ? "" : "s");
        }
        break;
      case VariantId::moba: {
        MobaArgs a = moba_args_of(p);
        a.q = in(set, "q"), a.k = in(set, "k"), a.v = in(set, "v");
        a.o = o_dev.get(), a.lse = lse_dev.get(), a.selection = selection.get();
        moba_forward(a, st, cancel);
        path = "moba fp32: block means, warp top-k gate, block attention";
        break;
      }
      case VariantId::mla: {
        MlaArgs a = mla_args_of(p, sm_count, o.kv_splits);
        a.q = in(set, "q"), a.c_kv = in(set, "c_kv"), a.k_rope = in(set, "k_rope");
        a.w_uk = in(set, "w_uk"), a.w_uv = in(set, "w_uv");
        a.o = o_dev.get(), a.lse = lse_dev.get();
        mla_forward(a, blas.get(), st, cancel);
        path = p.mla.absorbed ? "mla absorbed fp32" : "mla naive fp32 (cuBLAS expansion + flash)";
        break;
      }
      case VariantId::gated_delta: {
        GdnArgs a = gdn_args_of(p);
        a.q = in(set, "q"), a.k = in(set, "k"), a.v = in(set, "v");
        a.g = in(set, "g"), a.beta = in(set, "beta");
        a.o = o_dev.get(), a.final_state = state.get();
        gated_delta_forward(a, st, cancel);
        path = p.gdn.recurrent ? "gdn recurrent fp32" : "gdn chunked fp32";
        break;
      }
    }
  };

  Timing t;
  t.ms = run_timed(launch, sets, o, st);
  t.sets = sets;
  t.set_bytes = set_bytes;
  t.path = path;
  if (o.inputs) {
    launch(0);
    t.output.o = Tensor({s.batch, s.heads, s.q_len, s.v_head_dim});
    download(o_dev.get(), t.output.o, st);
    if (p.variant == VariantId::gated_delta) {
      Tensor fs({s.batch, s.heads, s.head_dim, s.v_head_dim});
      download(state.get(), fs, st);
      t.output.final_state = std::move(fs);
    } else {
      t.output.lse = Tensor({s.batch, s.heads, s.q_len});
      download(lse_dev.get(), t.output.lse, st);
    }
    check_cuda(cudaStreamSynchronize(st), "cudaStreamSynchronize");
  }
  t.output.backend = "cuda";
  return t;
}

Timing time_paged_decode(const AttentionProblem& model, int64_t batch, int64_t context,
                         int64_t page_size, const TimingOptions& o) {
  const bool mla = model.variant == VariantId::mla;
  if (model.variant != VariantId::dense && model.variant != VariantId::swa && !mla) {
    throw Error("cuda timing: paged decode is timed for dense/GQA/MQA, SWA and MLA only");
  }
  if (model.precision != Precision::fp32) {
    throw Error("cuda timing: paged decode runs in fp32 only");
  }
  if (batch < 1 || batch > 65535 || context < 1 || context > INT_MAX / 2 || page_size < 1) {
    throw Error("cuda timing: batch, context or page size out of range");
  }
  AttentionProblem p = model;  // the step: one query per sequence at position context - 1
  p.causal = true;
  p.shape.batch = batch, p.shape.q_len = 1, p.shape.kv_len = context;
  p.mla.absorbed = true;
  p.check();
  require_device();
  if (const Support sup = paged_decode_support(p); !sup.ok) {
    throw Error("cuda timing: " + sup.why_not);
  }
  keep_pool_memory();
  Stream stream;
  CublasHandle blas(stream.get());
  const cudaStream_t st = stream.get();
  const ProblemShape& s = p.shape;
  const int sm_count = device_attribute(cudaDevAttrMultiProcessorCount, "SM count");
  const int B = int(batch), H = int(s.heads), Hkv = mla ? 1 : int(s.kv_heads);
  const int Dn = int(p.mla.nope_dim), Dr = int(p.mla.rope_dim), Dc = int(p.mla.kv_lora_rank);
  const int Dk = mla ? Dc + Dr : int(s.head_dim), Dv = int(s.v_head_dim);
  const int Dq = mla ? Dn + Dr : Dk;
  const int ps = int(page_size);
  const int64_t page_floats = mla ? int64_t(ps) * (Dc + Dr) : int64_t(ps) * Hkv * (Dk + Dv);
  const PagedKvLayout layout = mla ? paged_latent_layout(ps, page_floats, Dc, Dr)
                                   : paged_kv_layout(ps, page_floats, Hkv, Dk, Dv);
  const int64_t pages_per_seq = (context + ps - 1) / ps;
  const int64_t pool_floats = int64_t(B) * pages_per_seq * page_floats;
  const int64_t q_floats = int64_t(B) * H * Dq;
  const int64_t w_floats = mla ? int64_t(H) * (Dn + Dv) * Dc : 0;
  const double set_bytes = 4.0 * double(pool_floats + q_floats + w_floats);
  const int sets = o.inputs ? 1 : sets_for(set_bytes, o);  // validation needs no rotation

  // Logical page t of sequence b is physical page t * B + b: a batch that grows together takes
  // its pages in turns.
  std::vector<int32_t> tables(static_cast<size_t>(B * pages_per_seq));
  std::vector<int32_t> lengths(static_cast<size_t>(B), int32_t(context));
  for (int b = 0; b < B; ++b) {
    for (int64_t t = 0; t < pages_per_seq; ++t) {
      tables[size_t(b * pages_per_seq + t)] = int32_t(t * B + b);
    }
  }
  DeviceBuffer<int32_t> tables_dev(int64_t(tables.size())), lengths_dev(B);
  tables_dev.upload(tables.data(), st);
  lengths_dev.upload(lengths.data(), st);

  struct Set {
    DeviceBuffer<float> pool, q, w_uk, w_uv;
  };
  std::vector<Set> data(static_cast<size_t>(sets));
  std::vector<float> packed;  // validation: the host inputs in the page layout
  for (int set = 0; set < sets; ++set) {
    Set& d = data[size_t(set)];
    d.pool = DeviceBuffer<float>(pool_floats);
    d.q = DeviceBuffer<float>(q_floats);
    d.w_uk = DeviceBuffer<float>(mla ? int64_t(H) * Dn * Dc : 0);
    d.w_uv = DeviceBuffer<float>(mla ? int64_t(H) * Dv * Dc : 0);
    const uint64_t seed = o.seed * 1000003u + uint64_t(set) * 131u;
    if (set == 0 && o.inputs) {
      const Inputs& in = *o.inputs;
      auto check = [&](const char* name, const Shape& shape) {
        if (in.at(name).shape() != shape) {
          throw Error(std::string("cuda timing: input '") + name + "' has shape " +
                      shape_str(in.at(name).shape()) + ", expected " + shape_str(shape));
        }
      };
      if (mla) {
        check("c_kv", {batch, context, Dc});
        check("k_rope", {batch, context, Dr});
      } else {
        check("k", {batch, Hkv, context, Dk});
        check("v", {batch, Hkv, context, Dv});
      }
      packed.assign(size_t(pool_floats), 0.0f);
      auto page_base = [&](int b, int64_t j) {
        return (j / ps * B + b) * page_floats;  // physical page of token j of sequence b
      };
      for (int b = 0; b < B; ++b) {
        for (int64_t j = 0; j < context; ++j) {
          const int64_t base = page_base(b, j), r = j % ps;
          if (mla) {
            const float* c = in.at("c_kv").data() + (int64_t(b) * context + j) * Dc;
            const float* kr = in.at("k_rope").data() + (int64_t(b) * context + j) * Dr;
            std::copy(c, c + Dc, packed.begin() + base + layout.k_offset + r * layout.k_row_stride);
            std::copy(kr, kr + Dr,
                      packed.begin() + base + layout.k2_offset + r * layout.k2_row_stride);
            continue;
          }
          for (int g = 0; g < Hkv; ++g) {
            const float* k = in.at("k").data() + ((int64_t(b) * Hkv + g) * context + j) * Dk;
            const float* v = in.at("v").data() + ((int64_t(b) * Hkv + g) * context + j) * Dv;
            std::copy(k, k + Dk,
                      packed.begin() + base + layout.k_offset + g * layout.k_head_stride +
                          r * layout.k_row_stride);
            std::copy(v, v + Dv,
                      packed.begin() + base + layout.v_offset + g * layout.v_head_stride +
                          r * layout.v_row_stride);
          }
        }
      }
      d.pool.upload(packed.data(), st);
      upload_checked(in, "q", {batch, s.heads, 1, Dq}, d.q.get(), st);
      if (mla) {
        upload_checked(in, "w_uk", {s.heads, Dn, Dc}, d.w_uk.get(), st);
        upload_checked(in, "w_uv", {s.heads, Dv, Dc}, d.w_uv.get(), st);
      }
    } else {
      fill(d.pool.get(), pool_floats, seed + 1, true, 1.0f, 0.0f, st);
      fill(d.q.get(), q_floats, seed + 2, true, 1.0f, 0.0f, st);
      const float w = float(1.0 / std::sqrt(double(std::max(Dc, 1))));
      fill(d.w_uk.get(), d.w_uk.size(), seed + 3, true, w, 0.0f, st);
      fill(d.w_uv.get(), d.w_uv.size(), seed + 4, true, w, 0.0f, st);
    }
  }
  check_cuda(cudaStreamSynchronize(st), "cudaStreamSynchronize");  // packed may go

  DeviceBuffer<float> o_dev(int64_t(B) * H * Dv), lse_dev(int64_t(B) * H);
  DeviceBuffer<float> q_abs(mla ? int64_t(B) * H * (Dc + Dr) : 0), x(mla ? int64_t(B) * H * Dc : 0);
  PagedAttentionArgs base;
  base.pool = nullptr;
  base.tables = tables_dev.get();
  base.lengths = lengths_dev.get();
  base.lse = lse_dev.get();
  base.B = B, base.H = H, base.Hkv = Hkv, base.Dk = Dk, base.Dv = mla ? Dc : Dv;
  base.table_stride = int(pages_per_seq);
  base.layout = layout;
  base.scale = float(p.effective_scale());
  int64_t max_keys = context;  // KeyMask::count of the row at p = context - 1
  if (p.variant == VariantId::swa) {
    base.window = int(std::min<int64_t>(p.swa.window, INT_MAX / 2));
    base.sinks = int(std::min<int64_t>(p.swa.sinks, INT_MAX / 2));
    const int64_t lo = std::max<int64_t>(0, context - base.window);
    max_keys = std::min<int64_t>(base.sinks, lo) + (context - lo);
  }
  const int splits = o.kv_splits > 0
                         ? o.kv_splits
                         : choose_paged_splits(paged_attention_blocks(base), max_keys, sm_count);
  auto launch = [&](int set) {  // as PagedDecoder::decode
    Set& d = data[size_t(set)];
    PagedAttentionArgs a = base;
    a.pool = d.pool.get();
    if (mla) {
      mla_absorb_queries(d.q.get(), d.w_uk.get(), q_abs.get(), B, H, Dn, Dr, Dc, blas.get(), st);
      a.q = q_abs.get();
      a.o = x.get();
      paged_attention_forward(a, splits, max_keys, st);
      mla_project_out(x.get(), d.w_uv.get(), o_dev.get(), B, H, Dc, Dv, blas.get());
    } else {
      a.q = d.q.get();
      a.o = o_dev.get();
      paged_attention_forward(a, splits, max_keys, st);
    }
  };

  Timing t;
  t.ms = run_timed(launch, sets, o, st);
  t.sets = sets;
  t.set_bytes = set_bytes;
  t.path = std::string(mla ? "paged MLA absorbed fp32" : "paged attention fp32") + ", " +
           str(splits) + " key split" + (splits == 1 ? "" : "s") + ", page " + str(ps);
  if (o.inputs) {
    launch(0);
    t.output.o = Tensor({batch, s.heads, 1, Dv});
    t.output.lse = Tensor({batch, s.heads, 1});
    download(o_dev.get(), t.output.o, st);
    download(lse_dev.get(), t.output.lse, st);
    check_cuda(cudaStreamSynchronize(st), "cudaStreamSynchronize");
  }
  t.output.backend = "cuda";
  return t;
}

}  // namespace attnscope::cuda
