// Device-resident timing for benchmarks (timing.hpp): inputs generated on the device in rotated
// sets, the backend's launchers called as CudaBackend::run / PagedDecoder::decode call them, CUDA
// events around each repetition. The bench validates this path against the reference (through
// TimingOptions::inputs) before it trusts a time, so a dispatch mistake here cannot go unseen.
#include <algorithm>
#include <climits>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
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
#include "cuda_host.hpp"
#include "cuda_variant.hpp"
#include "launchers.hpp"

namespace attnscope::cuda {
namespace {

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

// Random values shaped like the workload's "random" pattern (workload.cpp): unit normals unless
// the variant draws an input otherwise (CudaVariant::input_fill).
void fill_input(const std::string& name, const AttentionProblem& p, float* x, int64_t n,
                uint64_t seed, cudaStream_t s) {
  const CudaVariant* cv = find_cuda_variant(p.variant);
  const InputFill f = cv && cv->input_fill ? cv->input_fill(p, name) : InputFill{};
  fill(x, n, seed, f.normal, f.a, f.b, s);
}

// ---- timing plumbing -----------------------------------------------------------------------

double elapsed_ms(const Event& a, const Event& b) {
  float ms = 0;
  check_cuda(cudaEventElapsedTime(&ms, a.get(), b.get()), "cudaEventElapsedTime");
  return double(ms);
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
  const double budget = o.max_set_fraction * double(free_device_bytes());
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
  const VariantInfo& info = variant_info(p.variant);

  // One set: every required input in fp32; for bf16/fp16 (tensor-core variants: q, k, v only)
  // just the 16-bit tensors the kernel reads, made through one fp32 staging buffer as CudaBackend
  // does.
  std::vector<TensorSpec> specs;
  double set_bytes = 0;
  int64_t largest = 0;
  for (const TensorSpec& spec : info.inputs(p)) {
    if (spec.optional) continue;  // an initial state: zeros, as run() without it
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
  const std::optional<BlockSelection> sel = block_selection(p);
  DeviceBuffer<float> o_dev(rows * s.v_head_dim), lse_dev(rows);
  DeviceBuffer<int32_t> selection(sel ? rows * sel->top_k : 0);
  DeviceBuffer<float> state(info.has_state ? s.batch * s.heads * s.head_dim * s.v_head_dim : 0);
  const CancelToken cancel;
  std::vector<DeviceTensors> inputs(static_cast<size_t>(sets));
  for (int set = 0; set < sets && !lowp; ++set) {
    for (const auto& [name, buffer] : f32[size_t(set)]) inputs[size_t(set)].add(name, buffer.get());
  }
  std::string path;
  auto launch = [&](int set) {  // as CudaBackend::run
    if (lowp) {
      FlashTcArgs a = flash_tc_args_of(p);
      a.q = f16[size_t(set)].at("q").get();
      a.k = f16[size_t(set)].at("k").get();
      a.v = f16[size_t(set)].at("v").get();
      a.o = o_dev.get(), a.lse = lse_dev.get();
      launch_flash_attention_tc(a, st);
      path = "flash tensor-core " + std::string(precision_name(p.precision));
      return;
    }
    DeviceRun run{.problem = p, .inputs = inputs[size_t(set)], .cancel = cancel};
    run.o = o_dev.get();
    if (info.has_lse()) run.lse = lse_dev.get();
    if (sel) run.selection = selection.get();
    if (info.has_state) run.final_state = state.get();
    run.stream = st;
    run.blas = blas.get();
    run.sm_count = sm_count;
    run.kv_splits = o.kv_splits;
    path = launch_forward(run);
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
    if (info.has_state) {
      Tensor fs({s.batch, s.heads, s.head_dim, s.v_head_dim});
      download(state.get(), fs, st);
      t.output.final_state = std::move(fs);
    }
    if (info.has_lse()) {
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
  // Timed: the variants whose step attends over K/V or latent pages without choosing blocks.
  auto timed = [](const VariantInfo& v) {
    return find_cuda_variant(v.id) && !v.has_state && !v.has_selection();
  };
  const VariantInfo& info = variant_info(model.variant);
  if (!timed(info)) {
    std::vector<std::string> names;
    for (const VariantInfo& v : variants()) {
      if (timed(v)) names.emplace_back(v.name);
    }
    std::string list;
    for (size_t i = 0; i < names.size(); ++i) {
      list += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i];
    }
    throw Error("cuda timing: paged decode is timed for " + list + " only");
  }
  if (model.precision != Precision::fp32) {
    throw Error("cuda timing: paged decode runs in fp32 only");
  }
  if (batch < 1 || batch > 65535 || context < 1 || context > INT_MAX / 2 || page_size < 1) {
    throw Error("cuda timing: batch, context or page size out of range");
  }
  AttentionProblem p = decode_form(model);  // the step: one query per sequence at context - 1
  p.causal = true;
  p.shape.batch = batch, p.shape.q_len = 1, p.shape.kv_len = context;
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
  const CudaVariant& cv = *find_cuda_variant(p.variant);
  const CacheSpec cache = info.cache(p);
  const int B = int(batch), H = int(s.heads), Dv = int(s.v_head_dim);
  const int64_t heads = cache.heads, kw = cache.key_width, vw = cache.value_width;
  const int ps = int(page_size);
  // A page holds part 0 (key_width per head and token) of every head, then part 1.
  const int64_t page_floats = int64_t(ps) * heads * (kw + vw);
  const int64_t pages_per_seq = (context + ps - 1) / ps;
  const int64_t pool_floats = int64_t(B) * pages_per_seq * page_floats;
  // The step's tensors beyond the cached ones: its queries and any weights.
  std::vector<TensorSpec> cached, step_specs;
  for (const TensorSpec& spec : info.inputs(p)) {
    if (spec.optional) continue;
    const bool in_cache = spec.name == cache.key_tensor || spec.name == cache.value_tensor;
    (in_cache ? cached : step_specs).push_back(spec);
  }
  int64_t step_floats = 0;
  for (const TensorSpec& spec : step_specs) step_floats += shape_numel(spec.shape);
  const double set_bytes = 4.0 * double(pool_floats + step_floats);
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
    DeviceBuffer<float> pool;
    std::vector<DeviceBuffer<float>> step;  // step_specs' tensors
    DeviceTensors inputs;
  };
  std::vector<Set> data(static_cast<size_t>(sets));
  std::vector<float> packed;  // validation: the host inputs in the page layout
  for (int set = 0; set < sets; ++set) {
    Set& d = data[size_t(set)];
    d.pool = DeviceBuffer<float>(pool_floats);
    for (const TensorSpec& spec : step_specs) {
      d.step.emplace_back(shape_numel(spec.shape));
      d.inputs.add(spec.name, d.step.back().get());
    }
    const uint64_t seed = o.seed * 1000003u + uint64_t(set) * 131u;
    if (set == 0 && o.inputs) {
      const Inputs& in = *o.inputs;
      for (const TensorSpec& spec : cached) {
        if (in.at(spec.name).shape() != spec.shape) {
          throw Error("cuda timing: input '" + spec.name + "' has shape " +
                      shape_str(in.at(spec.name).shape()) + ", expected " + shape_str(spec.shape));
        }
      }
      // Token j of head g of sequence b, as [B, heads, context, width] (heads = 1 may omit its
      // axis), goes to row j % ps of its head in the page: part 0 then part 1.
      packed.assign(size_t(pool_floats), 0.0f);
      const float* part0 = in.at(cache.key_tensor).data();
      const float* part1 = in.at(cache.value_tensor).data();
      for (int b = 0; b < B; ++b) {
        for (int64_t g = 0; g < heads; ++g) {
          for (int64_t j = 0; j < context; ++j) {
            const int64_t base = (j / ps * B + b) * page_floats;  // physical page of token j
            const int64_t row = g * ps + j % ps, src = (int64_t(b) * heads + g) * context + j;
            std::copy(part0 + src * kw, part0 + (src + 1) * kw, packed.begin() + base + row * kw);
            std::copy(part1 + src * vw, part1 + (src + 1) * vw,
                      packed.begin() + base + heads * ps * kw + row * vw);
          }
        }
      }
      d.pool.upload(packed.data(), st);
      for (size_t i = 0; i < step_specs.size(); ++i) {
        upload_checked(in, step_specs[i].name, step_specs[i].shape, d.step[i].get(), st);
      }
    } else {
      fill(d.pool.get(), pool_floats, seed + 1, true, 1.0f, 0.0f, st);
      for (size_t i = 0; i < step_specs.size(); ++i) {
        fill_input(step_specs[i].name, p, d.step[i].get(), d.step[i].size(), seed + 2 + i, st);
      }
    }
  }
  check_cuda(cudaStreamSynchronize(st), "cudaStreamSynchronize");  // packed may go

  DeviceBuffer<float> o_dev(int64_t(B) * H * Dv), lse_dev(int64_t(B) * H);
  DeviceBuffer<float> scratch(cv.paged_scratch_floats ? cv.paged_scratch_floats(p, B) : 0);
  PagedAttentionArgs base;
  base.pool = nullptr;
  base.tables = tables_dev.get();
  base.lengths = lengths_dev.get();
  base.lse = lse_dev.get();
  base.B = B, base.H = H;
  base.table_stride = int(pages_per_seq);
  set_paged_layout(base, cache, ps, page_floats);
  base.scale = float(p.effective_scale());
  const KeyMask mask = KeyMask::of(p);
  base.window = int(std::min<int64_t>(mask.window, INT_MAX / 2));
  base.sinks = int(std::min<int64_t>(mask.sinks, INT_MAX / 2));
  const int64_t max_keys = paged_visible_keys(context, base.window, base.sinks);
  const int splits = o.kv_splits > 0
                         ? o.kv_splits
                         : choose_paged_splits(paged_attention_blocks(base), max_keys, sm_count);
  const CancelToken cancel;
  auto launch = [&](int set) {  // as PagedDecoder::decode
    Set& d = data[size_t(set)];
    PagedRun run{.problem = p, .inputs = d.inputs, .cancel = cancel, .args = base};
    run.args.pool = d.pool.get();
    run.splits = splits;
    run.max_keys = max_keys;
    run.o = o_dev.get();
    run.scratch = scratch.get();
    run.stream = st;
    run.blas = blas.get();
    paged_forward(run);
  };

  Timing t;
  t.ms = run_timed(launch, sets, o, st);
  t.sets = sets;
  t.set_bytes = set_bytes;
  t.path = std::string(cv.paged_path.empty() ? "paged attention fp32" : cv.paged_path) + ", " +
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
