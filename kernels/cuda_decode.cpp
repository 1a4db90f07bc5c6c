// Paged-KV decode on the GPU (cuda_decode.hpp). The host cache stays the source of truth; the
// device holds a mirror of its page pool, brought up to date at each step with the pages written
// since the generation it last saw (PagedKvCache::generation / pages_written_since), so a decode
// step uploads the pages its appends touched, the step's page tables and the query rows.
#include "cuda_decode.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "attnscope/cost.hpp"
#include "attnscope/error.hpp"
#include "attnscope/mask.hpp"
#include "cuda_check.hpp"
#include "cuda_host.hpp"
#include "cuda_variant.hpp"
#include "launchers.hpp"

namespace attnscope::cuda {
namespace {

// The cache model fields the page layout, the block means and the kernels depend on.
bool same_model(const AttentionProblem& a, const AttentionProblem& b) {
  if (a.variant != b.variant || a.shape.heads != b.shape.heads ||
      a.shape.kv_heads != b.shape.kv_heads || a.shape.head_dim != b.shape.head_dim ||
      a.shape.v_head_dim != b.shape.v_head_dim) {
    return false;
  }
  const VariantInfo& info = variant_info(a.variant);
  const CacheSpec x = info.cache(a), y = info.cache(b);
  if (x.layout != y.layout || x.heads != y.heads || x.key_width != y.key_width ||
      x.value_width != y.value_width || x.mean_block != y.mean_block) {
    return false;
  }
  if (!info.has_selection()) return true;
  return info.selection(a).block_size == info.selection(b).block_size;
}

// The device buffer of one sequence's block means, [capacity][Hkv][Dk], first `blocks` valid.
struct MeansMirror {
  DeviceBuffer<float> buf;
  int64_t blocks = 0;
  int64_t capacity = 0;
};

}  // namespace

// The device copy of one cache's page pool (physical page p at pool + p * page_floats) and of its
// block means. Pages are immutable between the generations that stamp them, and block means
// never change once written, so both mirrors only ever add what is new.
struct PagedDecoder::Mirror {
  const PagedKvCache* cache = nullptr;
  uint64_t uid = 0;  // PagedKvCache::uid(): exact identity, whatever the address
  // Host address of physical page 0 (chunks never move): a different cache allocated at the same
  // address has other chunks, so the mirror does not mistake it for the one it copied.
  const float* first_page = nullptr;
  AttentionProblem model;
  int64_t page_size = 0, page_floats = 0;
  uint64_t seen = 0;     // the cache generation the device pool reflects (0 = nothing yet)
  int64_t capacity = 0;  // pages the device pool holds
  DeviceBuffer<float> pool;
  DeviceBuffer<float> staging;  // [batch pages, page_floats] of an upload
  DeviceBuffer<int32_t> staging_ids;
  std::vector<float> host_staging;
  std::map<int64_t, int64_t> lengths;  // per sequence, at the last step: lengths only grow
  std::map<int64_t, MeansMirror> means;
  std::vector<DeviceBuffer<float>> retired;  // replaced buffers, freed once the stream drained

  explicit Mirror(const PagedKvCache& c)
      : cache(&c),
        uid(c.uid()),
        model(c.problem()),
        page_size(c.page_size()),
        page_floats(c.page_floats()) {}

  // Whether this mirror may continue from `c` (else it is rebuilt from scratch).
  bool continues(const PagedKvCache& c, bool cache_has_pages) const {
    if (cache != &c || uid != c.uid() || !same_model(model, c.problem()) ||
        page_size != c.page_size() || page_floats != c.page_floats() || c.generation() < seen) {
      return false;
    }
    if (first_page && cache_has_pages && c.rows(0, 0, 0) != first_page) return false;
    for (const auto& [seq, len] : lengths) {
      if (c.has_sequence(seq) && c.length(seq) < len) return false;
    }
    return true;
  }

  void grow(int64_t needed, cudaStream_t s) {
    int64_t cap = std::max({needed, capacity + capacity / 2, int64_t(16)});
    const double free_bytes = double(free_device_bytes());
    if (double(cap) * double(page_floats) * 4 > 0.9 * free_bytes) cap = needed;
    if (double(cap) * double(page_floats) * 4 > 0.9 * free_bytes) {
      throw Error("cuda decode: mirroring the KV cache's " + str(needed) + " pages needs " +
                  str(int64_t(double(needed) * double(page_floats) * 4 / (1 << 20))) +
                  " MiB of device memory, " + str(int64_t(free_bytes / (1 << 20))) + " MiB free");
    }
    DeviceBuffer<float> bigger(cap * page_floats);
    if (capacity > 0) {
      check_cuda(cudaMemcpyAsync(bigger.get(), pool.get(), size_t(pool.bytes()),
                                 cudaMemcpyDeviceToDevice, s),
                 "cudaMemcpyAsync (KV mirror growth)");
    }
    retired.push_back(std::move(pool));
    pool = std::move(bigger);
    capacity = cap;
  }

  // Copies pages `ids` from the host cache into the device pool: packed into a staging buffer,
  // one host-to-device copy per batch of <= 16 MiB, then a scatter kernel to their slots.
  void upload(const PagedKvCache& c, const std::vector<int32_t>& ids, cudaStream_t s) {
    const int64_t n = int64_t(ids.size());
    if (n == 0) return;
    const int64_t batch =
        std::min(n, std::max<int64_t>(1, (int64_t(16) << 20) / (page_floats * 4)));
    if (staging.size() < batch * page_floats) {
      check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize");  // old staging may be in use
      staging = DeviceBuffer<float>(batch * page_floats);
      staging_ids = DeviceBuffer<int32_t>(batch);
    }
    host_staging.resize(size_t(batch * page_floats));
    for (int64_t first = 0; first < n; first += batch) {
      const int64_t count = std::min(batch, n - first);
      if (first > 0) {  // the previous batch's copies read staging: let them finish
        check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize");
      }
      for (int64_t i = 0; i < count; ++i) {
        c.copy_page(ids[size_t(first + i)], host_staging.data() + i * page_floats);
      }
      check_cuda(
          cudaMemcpyAsync(staging.get(), host_staging.data(),
                          size_t(count * page_floats) * sizeof(float), cudaMemcpyHostToDevice, s),
          "cudaMemcpyAsync (KV pages)");
      check_cuda(cudaMemcpyAsync(staging_ids.get(), ids.data() + first,
                                 size_t(count) * sizeof(int32_t), cudaMemcpyHostToDevice, s),
                 "cudaMemcpyAsync (KV page ids)");
      launch_scatter_pages(staging.get(), staging_ids.get(), int(count), page_floats, pool.get(),
                           s);
    }
  }

  // Brings the pool up to date; `needed` = 1 + the highest physical page the step's tables use.
  void sync_pages(const PagedKvCache& c, int64_t needed, cudaStream_t s) {
    const uint64_t gen = c.generation();
    std::vector<int32_t> ids;
    if (gen != seen) ids = c.pages_written_since(seen);
    for (int32_t p : ids) needed = std::max<int64_t>(needed, int64_t(p) + 1);
    if (needed > capacity) grow(needed, s);
    upload(c, ids, s);
    seen = gen;
  }

  // Device block means of one sequence ([blocks][Hkv][Dk]), uploading new blocks only; null
  // while no block is complete.
  const float* means_of(const PagedKvCache& c, int64_t seq, cudaStream_t s) {
    const int64_t blocks = c.complete_blocks(seq);
    if (blocks == 0) return nullptr;
    const int64_t row = model.shape.kv_heads * model.shape.head_dim;
    MeansMirror& m = means[seq];
    if (blocks > m.capacity) {
      const int64_t cap = std::max({blocks, 2 * m.capacity, int64_t(8)});
      DeviceBuffer<float> bigger(cap * row);
      if (m.blocks > 0) {
        check_cuda(cudaMemcpyAsync(bigger.get(), m.buf.get(), size_t(m.blocks * row) * 4,
                                   cudaMemcpyDeviceToDevice, s),
                   "cudaMemcpyAsync (block means growth)");
      }
      retired.push_back(std::move(m.buf));
      m.buf = std::move(bigger);
      m.capacity = cap;
    }
    if (blocks > m.blocks) {
      const std::span<const float> host = c.block_means(seq);
      if (int64_t(host.size()) < blocks * row) {
        throw Error("cuda decode: the cache holds fewer block means than complete blocks");
      }
      // From pageable memory: returns once the values are staged, before the next append.
      check_cuda(cudaMemcpyAsync(m.buf.get() + m.blocks * row, host.data() + m.blocks * row,
                                 size_t((blocks - m.blocks) * row) * 4, cudaMemcpyHostToDevice, s),
                 "cudaMemcpyAsync (block means)");
      m.blocks = blocks;
    }
    return m.buf.get();
  }

  // Forgets sequences the cache no longer has.
  void prune(const PagedKvCache& c) {
    for (auto it = means.begin(); it != means.end();) {
      if (c.has_sequence(it->first)) {
        ++it;
      } else {
        retired.push_back(std::move(it->second.buf));
        it = means.erase(it);
      }
    }
    std::erase_if(lengths, [&](const auto& kv) { return !c.has_sequence(kv.first); });
  }
};

Support paged_fits(int64_t dk, int64_t dv, bool v_from_k, const char* what, size_t smem_max) {
  // + the kernel's static key-address arrays (3 x 32 int64).
  if (dk > kPagedMaxHeadDim ||
      paged_attention_smem_bytes(int(dk), int(dv), v_from_k) + 3 * kPagedKeys * 8 > smem_max) {
    return Support::no(std::string(what) + " " + str(dk) +
                       " is too wide for the CUDA paged decode kernel (at most " +
                       str(kPagedMaxHeadDim) + " and the device's shared memory)");
  }
  return Support::yes();
}

Support paged_decode_support(const AttentionProblem& p) {
  const ProblemShape& s = p.shape;
  const VariantInfo& info = variant_info(p.variant);
  const CudaVariant* cv = find_cuda_variant(p.variant);
  if (!cv) return Support::no(std::string(info.name) + ": " + std::string(cuda_refusal(info.id)));
  if (s.heads > 65535) return Support::no("heads must be at most 65535 on CUDA (grid limits)");
  const size_t smem_max = max_shared_memory_per_block();
  if (info.has_selection() && !cv->decode_select) {
    return Support::no(std::string(info.name) + " has no CUDA decode selection");
  }
  if (cv->decode_supports) return cv->decode_supports(p, smem_max);
  const CacheSpec c = info.cache(p);
  switch (c.layout) {
    case CacheLayout::kv:
      return paged_fits(s.head_dim, s.v_head_dim, false, "head_dim", smem_max);
    case CacheLayout::latent:
      return paged_fits(c.key_width + c.value_width, c.key_width, true,
                        "latent width (latent + rope)", smem_max);
    case CacheLayout::state:
      return Support::yes();
  }
  return Support::yes();
}

void set_paged_layout(PagedAttentionArgs& a, const CacheSpec& c, int page_size,
                      int64_t page_floats) {
  const int heads = int(c.heads), kw = int(c.key_width), vw = int(c.value_width);
  if (c.layout == CacheLayout::latent) {
    a.Hkv = heads, a.Dk = kw + vw, a.Dv = kw;
    a.layout = paged_latent_layout(page_size, page_floats, kw, vw);
  } else {
    a.Hkv = heads, a.Dk = kw, a.Dv = vw;
    a.layout = paged_kv_layout(page_size, page_floats, heads, kw, vw);
  }
}

int64_t paged_visible_keys(int64_t length, int64_t window, int64_t sinks) {
  const int64_t p = length - 1;  // KeyMask::count for the row at p
  const int64_t lo = window > 0 ? std::max<int64_t>(0, p - window + 1) : 0;
  return std::min<int64_t>(sinks, lo) + (p + 1 - lo);
}

const Tensor& step_input(const DecodeStep& step, const std::string& name, const Shape& shape) {
  if (!step.inputs.has(name)) {
    throw Error("cuda decode: missing step input '" + name + "' " + shape_str(shape));
  }
  const Tensor& t = step.inputs.at(name);
  if (t.shape() != shape) {
    throw Error("cuda decode: step input '" + name + "' has shape " + shape_str(t.shape()) +
                ", expected " + shape_str(shape));
  }
  return t;
}

void paged_forward(const PagedRun& r) {
  const CudaVariant* cv = find_cuda_variant(r.problem.variant);
  if (cv && cv->paged_step) {
    cv->paged_step(r);
    return;
  }
  PagedAttentionArgs a = r.args;
  a.q = r.inputs.at("q");
  a.o = r.o;
  paged_attention_forward(a, r.splits, r.max_keys, r.stream);
}

PagedDecoder::PagedDecoder() = default;
PagedDecoder::~PagedDecoder() = default;

RunResult PagedDecoder::decode(PagedKvCache& cache, const DecodeStep& step, const Probes& probes,
                               const CancelToken& cancel, const DecodeContext& ctx) {
  const AttentionProblem& P = cache.problem();
  const ProblemShape& sh = P.shape;
  if (const Support sup = paged_decode_support(P); !sup.ok) {
    throw Error("cuda backend: " + sup.why_not);
  }
  const int64_t B = int64_t(step.sequences.size());
  if (B == 0) throw Error("cuda decode: the step has no sequences");
  if (B > 65535) {
    throw Error("cuda decode: at most 65535 sequences per step (grid limit), got " + str(B));
  }
  cancel.throw_if_cancelled();
  const cudaStream_t s = ctx.stream;
  const int H = int(sh.heads);
  const VariantInfo& info = variant_info(P.variant);
  const CacheSpec spec = info.cache(P);

  Arena buf;
  SyncGuard guard{s};                     // destroyed before buf: drains the stream first
  if (mirror_) mirror_->retired.clear();  // the previous step synchronized its stream

  // The step as a problem of its own: B rows of one token, in the form decode computes.
  AttentionProblem sp = decode_form(P);
  sp.shape.batch = B, sp.shape.q_len = 1, sp.shape.kv_len = 1;
  // Its tensors but those the cache holds (appended by decode_step), checked and uploaded.
  DeviceTensors inputs;
  for (const TensorSpec& t : info.inputs(sp)) {
    if (t.optional) continue;
    if (spec.layout != CacheLayout::state &&
        (t.name == spec.key_tensor || t.name == spec.value_tensor)) {
      continue;
    }
    inputs.add(t.name, buf.upload(step_input(step, t.name, t.shape), s));
  }

  RunResult r;
  r.o = Tensor({B, sh.heads, 1, sh.v_head_dim});
  std::vector<int64_t> context(static_cast<size_t>(B));

  if (spec.layout == CacheLayout::state) {
    // One token of the variant's own forward pass, from each sequence's cached state.
    const int64_t state_floats = sh.heads * sh.head_dim * sh.v_head_dim;  // [H, Dk, Dv]
    std::vector<float> states(static_cast<size_t>(B * state_floats));
    for (int64_t b = 0; b < B; ++b) {
      const int64_t seq = step.sequences[size_t(b)];
      const Tensor& st = cache.state(seq);
      if (st.numel() != state_floats) throw Error("cuda decode: a cached state has the wrong size");
      std::memcpy(states.data() + b * state_floats, st.data(), size_t(state_floats) * 4);
      context[size_t(b)] = cache.length(seq) + 1;  // the token this step adds
    }
    DeviceRun run{.problem = sp, .inputs = inputs, .cancel = cancel};
    run.initial_state = buf.upload(states, s);
    run.o = buf.floats_of(r.o.numel());
    run.final_state = buf.floats_of(B * state_floats);
    run.stream = s;
    run.blas = ctx.blas;
    run.sm_count = ctx.sm_count;
    run.kv_splits = ctx.kv_splits;
    launch_forward(run);
    download(run.o, r.o.data(), r.o.numel(), s);
    download(run.final_state, states.data(), B * state_floats, s);
    check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize");
    for (int64_t b = 0; b < B; ++b) {
      Tensor next({sh.heads, sh.head_dim, sh.v_head_dim});
      std::memcpy(next.data(), states.data() + b * state_floats, size_t(state_floats) * 4);
      cache.set_state(step.sequences[size_t(b)], std::move(next));
    }
  } else {
    // Softmax variants: the step's tokens are in the cache; each row's query sits at length - 1.
    std::vector<int32_t> lengths(static_cast<size_t>(B));
    std::vector<std::span<const int32_t>> tables(static_cast<size_t>(B));
    int64_t stride = 1;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t seq = step.sequences[size_t(b)];
      const int64_t len = cache.length(seq);
      if (len > INT_MAX / 2) throw Error("cuda decode: a sequence beyond 2^30 tokens");
      lengths[size_t(b)] = int32_t(len);
      context[size_t(b)] = len;
      tables[size_t(b)] = cache.page_table(seq);
      stride = std::max<int64_t>(stride, int64_t(tables[size_t(b)].size()));
    }
    std::vector<int32_t> table_rows(static_cast<size_t>(B * stride), -1);  // [B, stride], -1 padded
    int64_t needed = 0;
    for (int64_t b = 0; b < B; ++b) {
      const std::span<const int32_t> t = tables[size_t(b)];
      std::copy(t.begin(), t.end(), table_rows.begin() + b * stride);
      for (int32_t p : t) needed = std::max<int64_t>(needed, int64_t(p) + 1);
    }

    // Bring the mirror up to date (rebuilt when it describes another cache).
    try {
      if (!mirror_ || !mirror_->continues(cache, needed > 0)) {
        mirror_.reset();
        mirror_ = std::make_unique<Mirror>(cache);
      }
      mirror_->prune(cache);
      mirror_->sync_pages(cache, needed, s);
      if (!mirror_->first_page && needed > 0) mirror_->first_page = cache.rows(0, 0, 0);
      for (int64_t b = 0; b < B; ++b) mirror_->lengths[step.sequences[size_t(b)]] = lengths[b];
    } catch (...) {
      (void)cudaStreamSynchronize(s);
      mirror_.reset();  // half-updated: start over next step
      throw;
    }
    cancel.throw_if_cancelled();

    PagedAttentionArgs a;
    a.pool = mirror_->pool.get();
    a.tables = buf.upload(table_rows, s);
    a.lengths = buf.upload(lengths, s);
    a.B = int(B), a.H = H, a.table_stride = int(stride);
    a.scale = float(P.effective_scale());
    float* o = buf.floats_of(r.o.numel());
    r.lse = Tensor({B, sh.heads, 1});
    a.lse = buf.floats_of(r.lse.numel());
    set_paged_layout(a, spec, int(cache.page_size()), mirror_->page_floats);
    const KeyMask mask = KeyMask::of(P);
    a.window = int(std::min<int64_t>(mask.window, INT_MAX / 2));
    a.sinks = int(std::min<int64_t>(mask.sinks, INT_MAX / 2));
    int64_t max_keys = 0;  // the longest row's visible keys
    const std::optional<BlockSelection> sel = block_selection(P);
    if (sel) {
      // The variant chooses each row's blocks; the row attends to those blocks' keys only.
      const int bs = int(sel->block_size), top_k = int(sel->top_k);
      for (int32_t len : lengths) {
        max_keys = std::max<int64_t>(max_keys, std::min<int64_t>(len, int64_t(top_k) * bs));
      }
      int32_t* selection = buf.ints_of(B * H * int64_t(top_k));
      find_cuda_variant(P.variant)->decode_select(
          {.problem = P,
           .step = step,
           .lengths = lengths,
           .selection = *sel,
           .q = inputs.at("q"),
           .device_lengths = a.lengths,
           .block_means = [&](int64_t seq) { return mirror_->means_of(cache, seq, s); },
           .arena = buf,
           .out = selection,
           .stream = s});
      a.selection = selection;
      a.block_size = bs, a.top_k = top_k;
      if (probes.selection) {
        IndexTensor sel_host({B, sh.heads, 1, int64_t(top_k)}, -1);
        download(selection, sel_host, s);
        r.selection = std::move(sel_host);
      }
    } else {
      for (int32_t len : lengths) {
        max_keys = std::max<int64_t>(max_keys, paged_visible_keys(len, a.window, a.sinks));
      }
    }
    const int splits = ctx.kv_splits > 0
                           ? ctx.kv_splits
                           : choose_paged_splits(paged_attention_blocks(a), max_keys, ctx.sm_count);
    const CudaVariant& cv = *find_cuda_variant(P.variant);
    PagedRun run{.problem = sp, .inputs = inputs, .cancel = cancel, .args = a};
    run.splits = splits;
    run.max_keys = max_keys;
    run.o = o;
    run.scratch = buf.floats_of(cv.paged_scratch_floats ? cv.paged_scratch_floats(sp, B) : 0);
    run.stream = s;
    run.blas = ctx.blas;
    paged_forward(run);
    download(o, r.o.data(), r.o.numel(), s);
    download(a.lse, r.lse.data(), r.lse.numel(), s);
    check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize");
  }
  check_cuda(cudaGetLastError(), "cuda decode");
  if (mirror_) mirror_->retired.clear();
  const Cost cost = decode_cost(P, context);
  r.counters = {cost.flops, cost.bytes, cost.visible_pairs};
  r.backend = "cuda";
  return r;
}

}  // namespace attnscope::cuda
