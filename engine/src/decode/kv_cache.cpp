// The paged KV cache (kv_cache.hpp). Metadata changes happen under mutex_ so that stats() and
// page_map() can be read from the GUI thread at any moment; page contents are written only by the
// thread that appends, and read only by the decoding thread (the same one in practice).
#include "attnscope/kv_cache.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <new>
#include <set>
#include <string>

#include "attnscope/cost.hpp"
#include "attnscope/error.hpp"
#include "attnscope/host_info.hpp"
#include "attnscope/large_alloc.hpp"
#include "attnscope/mask.hpp"
#include "attnscope/variant.hpp"

namespace attnscope {

struct PagedKvCache::Sequence {
  int64_t id = 0;
  int64_t length = 0;
  std::vector<int32_t> pages;  // logical page -> physical, -1 when evicted (SWA) or never stored
  std::vector<float> means;    // MoBA, NSA: [complete blocks][Hkv][Dk]
  std::vector<float> vmeans;   // NSA: [complete blocks][Hkv][Dv]
  int64_t blocks = 0;          // complete blocks with a mean
  std::vector<float> side;     // DSA: [length][side_width] (index keys)
  Tensor state;                // Gated DeltaNet: [H, Dk, Dv]
};

namespace {

std::string str(int64_t x) {
  return std::to_string(x);
}

// Drops one leading dimension of size 1 so callers may pass a batch row or a bare tensor.
Shape squeeze_front(const Shape& s, size_t rank) {
  if (s.size() == rank + 1 && s.front() == 1) return Shape(s.begin() + 1, s.end());
  return s;
}

}  // namespace

int64_t default_page_size(VariantId variant) {
  const VariantInfo& info = variant_info(variant);
  return info.cache(AttentionProblem::defaults(variant)).default_page_size;
}

PagedKvCache::PagedKvCache(KvCacheConfig config) : problem_(std::move(config.problem)) {
  static std::atomic<uint64_t> next_uid{1};
  uid_ = next_uid.fetch_add(1);
  problem_.shape.batch = 1;
  problem_.shape.q_len = 1;
  problem_.shape.kv_len = 1;
  problem_.causal = true;  // decode queries sit at the end of their sequence
  if (auto why = problem_.validate()) throw Error("KV cache: " + *why);
  if (const std::string_view why = variant_info(problem_.variant).no_decode; !why.empty()) {
    throw Error("KV cache: " + std::string(why));
  }
  spec_ = variant_info(problem_.variant).cache(problem_);
  page_size_ = config.page_size == 0 ? spec_.default_page_size : config.page_size;
  if (page_size_ < 1 || page_size_ > (int64_t{1} << 20)) {
    throw Error("KV cache: page_size must be between 1 and 1048576 tokens (got " + str(page_size_) +
                ")");
  }
  if (config.max_pages < 0) {
    throw Error("KV cache: max_pages must be 0 (memory-bound) or more (got " +
                str(config.max_pages) + ")");
  }
  if (spec_.layout != CacheLayout::state) {
    heads_ = spec_.heads, width0_ = spec_.key_width, width1_ = spec_.value_width;
    page_floats_ = checked_mul(checked_mul(page_size_, heads_, "KV cache page"), width0_ + width1_,
                               "KV cache page");
  }
  const int64_t budget_pages =
      page_floats_ > 0 ? std::max<int64_t>(1, memory_budget_bytes() / (page_floats_ * 4)) : 0;
  max_pages_ = config.max_pages == 0 ? budget_pages : std::min(config.max_pages, budget_pages);
  if (max_pages_ > INT32_MAX) max_pages_ = INT32_MAX;
  // Chunks of about 4 MiB: growth never moves pages a backend may be reading.
  pages_per_chunk_ = page_floats_ > 0 ? std::clamp<int64_t>((int64_t{4} << 20) / (page_floats_ * 4),
                                                            1, std::max<int64_t>(1, max_pages_))
                                      : 1;
}

PagedKvCache::~PagedKvCache() = default;

PagedKvCache::Sequence& PagedKvCache::seq_locked(int64_t seq) {
  auto it = sequences_.find(seq);
  if (it == sequences_.end()) throw Error("KV cache: no sequence with id " + str(seq));
  return *it->second;
}

const PagedKvCache::Sequence& PagedKvCache::seq_locked(int64_t seq) const {
  auto it = sequences_.find(seq);
  if (it == sequences_.end()) throw Error("KV cache: no sequence with id " + str(seq));
  return *it->second;
}

int64_t PagedKvCache::add_sequence() {
  std::lock_guard lock(mutex_);
  auto s = std::make_unique<Sequence>();
  s->id = next_id_++;
  if (spec_.layout == CacheLayout::state) {
    const ProblemShape& sh = problem_.shape;
    s->state = Tensor({sh.heads, sh.head_dim, sh.v_head_dim});
  }
  const int64_t id = s->id;
  sequences_.emplace(id, std::move(s));
  ++generation_;
  return id;
}

void PagedKvCache::free_sequence(int64_t seq) {
  std::lock_guard lock(mutex_);
  Sequence& s = seq_locked(seq);
  for (int32_t p : s.pages) {
    if (p >= 0) release_page_locked(p);
  }
  sequences_.erase(seq);
  ++generation_;
}

bool PagedKvCache::has_sequence(int64_t seq) const {
  std::lock_guard lock(mutex_);
  return sequences_.count(seq) > 0;
}

std::vector<int64_t> PagedKvCache::sequence_ids() const {
  std::lock_guard lock(mutex_);
  std::vector<int64_t> ids;
  for (const auto& [id, s] : sequences_) ids.push_back(id);
  return ids;
}

int64_t PagedKvCache::length(int64_t seq) const {
  std::lock_guard lock(mutex_);
  return seq_locked(seq).length;
}

int64_t PagedKvCache::pages_available_locked() const {
  return static_cast<int64_t>(free_pages_.size()) + (max_pages_ - pages_allocated_);
}

int32_t PagedKvCache::take_page_locked() {
  int32_t p = -1;
  if (!free_pages_.empty()) {
    p = free_pages_.back();
    free_pages_.pop_back();
  } else {
    if (pages_allocated_ >= max_pages_) {
      throw Error("KV cache is full: all " + str(max_pages_) + " pages of " + str(page_size_) +
                  " tokens are in use (free a sequence or allow more pages)");
    }
    // Memory comes in chunks of ~4 MiB; pages are carved from them one at a time, so "allocated"
    // is the high-water mark of pages ever in use, which is what the page map shows.
    if (pages_allocated_ == int64_t(chunks_.size()) * pages_per_chunk_) {
      const size_t count = size_t(pages_per_chunk_ * page_floats_);
      try {
        chunks_.push_back(make_large_floats(count));
      } catch (const std::bad_alloc&) {
        throw Error("KV cache: could not allocate " + str(int64_t(count * sizeof(float)) >> 20) +
                    " MiB for more pages");
      }
    }
    p = int32_t(pages_allocated_++);
    page_written_.resize(size_t(pages_allocated_), 0);
  }
  // Zeroed, so slots no token was written to (a window's dead head) hold finite values.
  for (int part = 0; part < 2; ++part) {
    for (int64_t h = 0; h < heads_; ++h) {
      std::memset(rows_mut(p, part, h), 0, size_t(page_size_ * width(part)) * sizeof(float));
    }
  }
  page_written_[size_t(p)] = generation_;
  return p;
}

void PagedKvCache::release_page_locked(int32_t page) {
  free_pages_.push_back(page);
}

float* PagedKvCache::rows_mut(int32_t physical, int part, int64_t head) {
  return const_cast<float*>(rows(physical, part, head));
}

// Chunk layout: [part 0: heads][pages_per_chunk][page_size][width0], then the same for part 1.
const float* PagedKvCache::rows(int32_t physical, int part, int64_t head) const {
  const int64_t C = pages_per_chunk_, ps = page_size_;
  const float* chunk = chunks_[size_t(physical / C)].get();
  const int64_t base = part == 0 ? 0 : heads_ * C * ps * width0_;
  const int64_t w = width(part);
  return chunk + base + (head * C + physical % C) * ps * w;
}

void PagedKvCache::copy_page(int32_t physical, float* out) const {
  for (int part = 0; part < 2; ++part) {
    const size_t n = size_t(page_size_ * width(part));
    for (int64_t h = 0; h < heads_; ++h, out += n) {
      std::memcpy(out, rows(physical, part, h), n * sizeof(float));
    }
  }
}

// Tokens of [j0, j1) that must stay resident once the sequence has `length` tokens. The next
// query sits at position >= length - 1 and SWA lets it see j > position - window, so
// j >= length - window suffices; sinks stay for good. Kept tokens always sit in resident pages.
int64_t PagedKvCache::kept_in(int64_t j0, int64_t j1, int64_t length) const {
  const KeyMask mask = KeyMask::of(problem_);
  if (mask.window <= 0) return std::max<int64_t>(0, j1 - j0);
  const int64_t sinks = mask.sinks;
  const int64_t from = std::max(sinks, length - mask.window);
  auto overlap = [&](int64_t a, int64_t b) {
    return std::max<int64_t>(0, std::min(b, j1) - std::max(a, j0));
  };
  return overlap(0, sinks) + overlap(from, j1);
}

bool PagedKvCache::keeps(int64_t token, int64_t length) const {
  return kept_in(token, token + 1, length) == 1;
}

int64_t PagedKvCache::pages_available() const {
  std::lock_guard lock(mutex_);
  return pages_available_locked();
}

void PagedKvCache::append(int64_t seq, const Tensor& k, const Tensor& v) {
  if (spec_.side_width > 0) {
    throw Error("KV cache append: " + std::string(variant_info(problem_.variant).title) +
                " also keeps " + std::string(spec_.side_tensor) + " for every token; pass it too");
  }
  append_impl(seq, k, v, nullptr);
}

void PagedKvCache::append(int64_t seq, const Tensor& k, const Tensor& v, const Tensor& side) {
  append_impl(seq, k, v, &side);
}

void PagedKvCache::append(int64_t seq, const Inputs& tokens) {
  auto get = [&](std::string_view name) -> const Tensor& {
    if (!tokens.has(std::string(name))) {
      throw Error("KV cache append: the tokens have no tensor '" + std::string(name) + "'");
    }
    return tokens.at(std::string(name));
  };
  const Tensor& k = get(spec_.key_tensor);
  const Tensor& v = get(spec_.value_tensor);
  append_impl(seq, k, v, spec_.side_width > 0 ? &get(spec_.side_tensor) : nullptr);
}

void PagedKvCache::append_impl(int64_t seq, const Tensor& k, const Tensor& v, const Tensor* side) {
  if (spec_.layout == CacheLayout::state) {
    throw Error("KV cache: " + std::string(variant_info(problem_.variant).title) +
                " keeps a state, not keys and values; the decode step updates it");
  }
  // Shapes: per-head parts k [Hkv, n, Dk], v [Hkv, n, Dv]; a shared latent has no head axis
  // (MLA: c_kv [n, Dc], k_rope [n, Dr]).
  const bool shared = spec_.layout == CacheLayout::latent;
  const Shape ks = squeeze_front(k.shape(), shared ? 2 : 3);
  const Shape vs = squeeze_front(v.shape(), shared ? 2 : 3);
  const int64_t n = ks.empty() ? -1 : (shared ? ks[0] : (ks.size() == 3 ? ks[1] : -1));
  const int64_t kw = width0_, vw = width1_;
  const Shape want_k = shared ? Shape{n, kw} : Shape{heads_, n, kw};
  const Shape want_v = shared ? Shape{n, vw} : Shape{heads_, n, vw};
  const std::string kn(spec_.key_tensor), vn(spec_.value_tensor);
  if (n < 0 || ks != want_k || vs != want_v) {
    throw Error("KV cache append: expected " + kn + " " +
                shape_str(shared ? Shape{-1, kw} : Shape{heads_, -1, kw}) + " and " + vn + " " +
                shape_str(shared ? Shape{-1, vw} : Shape{heads_, -1, vw}) +
                " (-1 = the new tokens), got " + shape_str(k.shape()) + " and " +
                shape_str(v.shape()));
  }
  const std::string sn(spec_.side_tensor);
  const int64_t sw = spec_.side_width;
  if (sw > 0 && side == nullptr) {
    throw Error("KV cache append: " + sn + " is missing (kept for every token beside the pages)");
  }
  if (sw <= 0 && side != nullptr) {
    throw Error("KV cache append: this variant keeps nothing beside its pages");
  }
  if (side != nullptr && squeeze_front(side->shape(), 2) != Shape{n, sw}) {
    throw Error("KV cache append: expected " + sn + " " + shape_str(Shape{n, sw}) + " for " +
                str(n) + " tokens, got " + shape_str(side->shape()));
  }
  std::vector<std::pair<const Tensor*, std::string>> checked{{&k, kn}, {&v, vn}};
  if (side != nullptr) checked.push_back({side, sn});
  for (const auto& [t, name] : checked) {
    if (const int64_t bad = first_non_finite(*t); bad >= 0) {
      throw Error(std::string("KV cache append: ") + name +
                  " holds a non-finite value (NaN or Inf) at flat index " + str(bad));
    }
  }
  if (n == 0) return;

  std::lock_guard lock(mutex_);
  Sequence& s = seq_locked(seq);
  const int64_t ps = page_size_;
  const int64_t old_len = s.length;
  const int64_t new_len = old_len + n;
  const int64_t logical = (new_len + ps - 1) / ps;

  // Which logical pages are resident once the tokens are in: any token of it kept.
  auto resident = [&](int64_t lp) {
    return kept_in(lp * ps, std::min(new_len, lp * ps + ps), new_len) > 0;
  };
  // All-or-nothing: count first, so a full cache leaves the sequence as it was.
  int64_t to_take = 0, to_release = 0;
  for (int64_t lp = 0; lp < logical; ++lp) {
    const bool has = lp < int64_t(s.pages.size()) && s.pages[size_t(lp)] >= 0;
    const bool keep = resident(lp);
    if (!has && keep && lp * ps + ps > old_len) ++to_take;
    if (has && !keep) ++to_release;
  }
  if (to_take > pages_available_locked() + to_release) {
    throw Error("KV cache is full: appending " + str(n) + " tokens needs " + str(to_take) +
                " more pages but only " + str(pages_available_locked() + to_release) + " of " +
                str(max_pages_) + " are left (free a sequence or allow more pages)");
  }
  ++generation_;
  for (int64_t lp = 0; lp < int64_t(s.pages.size()); ++lp) {
    int32_t& p = s.pages[size_t(lp)];
    if (p >= 0 && !resident(lp)) {
      release_page_locked(p);
      p = -1;
      ++pages_evicted_;
    }
  }
  while (int64_t(s.pages.size()) < logical) {
    const int64_t lp = int64_t(s.pages.size());
    if (resident(lp)) {
      s.pages.push_back(take_page_locked());
    } else {
      s.pages.push_back(-1);  // a window already past it: never stored
      ++pages_evicted_;
    }
  }

  const float* kp = k.data();
  const float* vp = v.data();
  for (int64_t t = 0; t < n; ++t) {
    const int64_t j = old_len + t;
    if (!keeps(j, new_len)) continue;
    const int32_t p = s.pages[size_t(j / ps)];
    page_written_[size_t(p)] = generation_;
    const int64_t slot = j % ps;
    for (int64_t g = 0; g < heads_; ++g) {
      std::memcpy(rows_mut(p, 0, g) + slot * kw, kp + (g * n + t) * kw, size_t(kw) * sizeof(float));
      std::memcpy(rows_mut(p, 1, g) + slot * vw, vp + (g * n + t) * vw, size_t(vw) * sizeof(float));
    }
  }
  if (side != nullptr) {
    const size_t at = s.side.size();
    s.side.insert(s.side.end(), side->data(), side->data() + n * sw);
    if (spec_.side_transform) spec_.side_transform(s.side.data() + at, n, sw);
  }
  s.length = new_len;
  if (spec_.mean_block > 0) complete_blocks_locked(s);
}

// The block means a selection gate reads, each computed once when its block fills (float64 sum,
// like the reference, so the gate ranks blocks identically).
void PagedKvCache::complete_blocks_locked(Sequence& s) {
  const int64_t bs = spec_.mean_block, ps = page_size_;
  const int64_t Hkv = problem_.shape.kv_heads;
  const int64_t full = s.length / bs;
  if (full <= s.blocks) return;
  // Part 0 (keys) always, part 1 (values) when the variant attends to the means too.
  for (int part = 0; part < (spec_.mean_values ? 2 : 1); ++part) {
    const int64_t D = width(part);
    std::vector<float>& means = part == 0 ? s.means : s.vmeans;
    means.resize(size_t(full * Hkv * D));
    std::vector<double> acc(static_cast<size_t>(D));
    for (int64_t c = s.blocks; c < full; ++c) {
      for (int64_t g = 0; g < Hkv; ++g) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = c * bs; j < (c + 1) * bs; ++j) {
          const float* row = rows(s.pages[size_t(j / ps)], part, g) + (j % ps) * D;
          for (int64_t d = 0; d < D; ++d) acc[size_t(d)] += row[d];
        }
        float* out = means.data() + (c * Hkv + g) * D;
        for (int64_t d = 0; d < D; ++d) out[d] = float(acc[size_t(d)] / double(bs));
      }
    }
  }
  s.blocks = full;
}

std::span<const int32_t> PagedKvCache::page_table(int64_t seq) const {
  std::lock_guard lock(mutex_);
  return seq_locked(seq).pages;
}

std::span<const float> PagedKvCache::block_means(int64_t seq) const {
  std::lock_guard lock(mutex_);
  return seq_locked(seq).means;
}

std::span<const float> PagedKvCache::block_value_means(int64_t seq) const {
  std::lock_guard lock(mutex_);
  return seq_locked(seq).vmeans;
}

std::span<const float> PagedKvCache::side_rows(int64_t seq) const {
  std::lock_guard lock(mutex_);
  return seq_locked(seq).side;
}

int64_t PagedKvCache::complete_blocks(int64_t seq) const {
  std::lock_guard lock(mutex_);
  return seq_locked(seq).blocks;
}

Tensor& PagedKvCache::state(int64_t seq) {
  std::lock_guard lock(mutex_);
  Sequence& s = seq_locked(seq);
  if (spec_.layout != CacheLayout::state) throw Error("KV cache: this variant keeps no state");
  return s.state;
}

const Tensor& PagedKvCache::state(int64_t seq) const {
  std::lock_guard lock(mutex_);
  const Sequence& s = seq_locked(seq);
  if (spec_.layout != CacheLayout::state) throw Error("KV cache: this variant keeps no state");
  return s.state;
}

void PagedKvCache::set_state(int64_t seq, Tensor state) {
  const ProblemShape& sh = problem_.shape;
  const Shape want{sh.heads, sh.head_dim, sh.v_head_dim};
  if (squeeze_front(state.shape(), 3) != want) {
    throw Error("KV cache: a state must have shape " + shape_str(want) + ", got " +
                shape_str(state.shape()));
  }
  if (const int64_t bad = first_non_finite(state); bad >= 0) {
    throw Error("KV cache: the state holds a non-finite value at flat index " + str(bad));
  }
  state.reshape(want);
  std::lock_guard lock(mutex_);
  Sequence& s = seq_locked(seq);
  if (spec_.layout != CacheLayout::state) throw Error("KV cache: this variant keeps no state");
  s.state = std::move(state);
  ++generation_;
}

void PagedKvCache::advance(int64_t seq, int64_t tokens) {
  if (spec_.layout != CacheLayout::state) {
    throw Error("KV cache: advance() is for a state cache; other variants append tokens");
  }
  if (tokens < 0) throw Error("KV cache: cannot advance by a negative count");
  std::lock_guard lock(mutex_);
  seq_locked(seq).length += tokens;
  ++generation_;
}

Inputs PagedKvCache::gather(int64_t seq) const {
  std::lock_guard lock(mutex_);
  const Sequence& s = seq_locked(seq);
  const int64_t L = s.length, ps = page_size_;
  Inputs out;
  if (spec_.layout == CacheLayout::state) return out;
  const bool shared = spec_.layout == CacheLayout::latent;
  const int64_t kw = width0_, vw = width1_, heads = heads_;
  Tensor k(shared ? Shape{1, L, kw} : Shape{1, heads, L, kw});
  Tensor v(shared ? Shape{1, L, vw} : Shape{1, heads, L, vw});
  for (int64_t j = 0; j < L; ++j) {
    const int32_t p = s.pages[size_t(j / ps)];
    if (p < 0 || !keeps(j, L)) continue;
    const int64_t slot = j % ps;
    for (int64_t g = 0; g < heads; ++g) {
      std::memcpy(k.data() + (g * L + j) * kw, rows(p, 0, g) + slot * kw,
                  size_t(kw) * sizeof(float));
      std::memcpy(v.data() + (g * L + j) * vw, rows(p, 1, g) + slot * vw,
                  size_t(vw) * sizeof(float));
    }
  }
  out.set(std::string(spec_.key_tensor), std::move(k));
  out.set(std::string(spec_.value_tensor), std::move(v));
  if (spec_.side_width > 0) {
    Tensor side({1, L, spec_.side_width});
    std::copy(s.side.begin(), s.side.end(), side.data());
    out.set(std::string(spec_.side_tensor), std::move(side));
  }
  return out;
}

uint64_t PagedKvCache::generation() const {
  std::lock_guard lock(mutex_);
  return generation_;
}

std::vector<int32_t> PagedKvCache::pages_written_since(uint64_t since) const {
  std::lock_guard lock(mutex_);
  std::vector<int32_t> out;
  for (size_t p = 0; p < page_written_.size(); ++p) {
    if (page_written_[p] > since) out.push_back(int32_t(p));
  }
  return out;
}

int64_t PagedKvCache::extra_bytes_locked(const Sequence& s) const {
  return int64_t((s.means.size() + s.vmeans.size() + s.side.size()) * sizeof(float)) +
         s.state.bytes();
}

KvCacheStats PagedKvCache::stats() const {
  AttentionProblem one = problem_;
  const double per_token = cost_of(one).kv_bytes_per_token;
  std::lock_guard lock(mutex_);
  KvCacheStats st;
  st.page_size = spec_.layout != CacheLayout::state ? page_size_ : 0;
  st.page_bytes = page_floats_ * int64_t(sizeof(float));
  st.pages_allocated = pages_allocated_;
  st.pages_free = int64_t(free_pages_.size());
  st.pages_used = pages_allocated_ - st.pages_free;
  st.max_pages = max_pages_;
  st.sequences = int64_t(sequences_.size());
  st.pages_evicted = pages_evicted_;
  st.bytes_per_token = per_token;
  int64_t extras = 0;
  for (const auto& [id, s] : sequences_) {
    st.tokens_seen += s->length;
    extras += extra_bytes_locked(*s);
    if (spec_.layout != CacheLayout::state) st.tokens_resident += kept_in(0, s->length, s->length);
  }
  st.bytes_used = st.pages_used * st.page_bytes + extras;
  st.bytes_allocated = st.pages_allocated * st.page_bytes + extras;
  if (st.pages_used > 0) {
    st.fragmentation = 1.0 - double(st.tokens_resident) / double(st.pages_used * page_size_);
  }
  return st;
}

std::vector<KvSequenceMap> PagedKvCache::page_map() const {
  std::lock_guard lock(mutex_);
  std::vector<KvSequenceMap> out;
  for (const auto& [id, s] : sequences_) {
    KvSequenceMap m;
    m.id = id;
    m.length = s->length;
    m.pages = s->pages;
    m.state_bytes = extra_bytes_locked(*s);
    for (size_t lp = 0; lp < s->pages.size(); ++lp) {
      const int64_t j0 = int64_t(lp) * page_size_;
      const int64_t fill =
          s->pages[lp] >= 0 ? kept_in(j0, std::min(s->length, j0 + page_size_), s->length) : 0;
      m.page_fill.push_back(fill);
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::optional<std::string> PagedKvCache::audit() const {
  std::lock_guard lock(mutex_);
  std::vector<int> owners(size_t(pages_allocated_), 0);
  for (const auto& [id, s] : sequences_) {
    const int64_t logical = (s->length + page_size_ - 1) / page_size_;
    if (spec_.layout != CacheLayout::state && int64_t(s->pages.size()) != logical) {
      return "sequence " + str(id) + " has " + str(int64_t(s->pages.size())) +
             " page-table entries for " + str(s->length) + " tokens (expected " + str(logical) +
             ")";
    }
    // The side stores keep pace with the tokens: a block mean per complete block, a side row per
    // token.
    if (spec_.mean_block > 0) {
      const int64_t blocks = s->length / spec_.mean_block;
      const auto per_block = [&](int64_t width) { return blocks * heads_ * width; };
      if (s->blocks != blocks || int64_t(s->means.size()) != per_block(width0_) ||
          (spec_.mean_values && int64_t(s->vmeans.size()) != per_block(width1_))) {
        return "sequence " + str(id) + " holds block means for " + str(s->blocks) +
               " blocks but has " + str(blocks) + " complete ones";
      }
    }
    if (spec_.side_width > 0 && int64_t(s->side.size()) != s->length * spec_.side_width) {
      return "sequence " + str(id) + " holds " + str(int64_t(s->side.size())) +
             " side values for " + str(s->length) + " tokens of " + str(spec_.side_width);
    }
    for (size_t lp = 0; lp < s->pages.size(); ++lp) {
      const int32_t p = s->pages[lp];
      if (p < -1 || p >= pages_allocated_) {
        return "sequence " + str(id) + " maps logical page " + str(int64_t(lp)) +
               " to a page that does not exist (" + str(p) + ")";
      }
      if (p >= 0 && ++owners[size_t(p)] > 1) {
        return "physical page " + str(p) + " is used twice (again by sequence " + str(id) + ")";
      }
      if (p < 0 && KeyMask::of(problem_).window <= 0) {
        return "sequence " + str(id) + " lost logical page " + str(int64_t(lp));
      }
    }
  }
  std::set<int32_t> free_set;
  for (int32_t p : free_pages_) {
    if (p < 0 || p >= pages_allocated_) return "free list holds a page that does not exist";
    if (!free_set.insert(p).second) return "page " + str(p) + " is on the free list twice";
    if (owners[size_t(p)] > 0) return "page " + str(p) + " is both free and used";
  }
  int64_t used = 0;
  for (int o : owners) used += o;
  if (used + int64_t(free_set.size()) != pages_allocated_) {
    return str(pages_allocated_ - used - int64_t(free_set.size())) +
           " pages are neither free nor used (lost)";
  }
  return std::nullopt;
}

}  // namespace attnscope
