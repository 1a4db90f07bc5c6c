// A paged KV cache (vLLM's block tables, FlashMLA's 64-token pages) that every backend's decode
// path reads through. One pool of fixed-size pages, a page table per sequence, and per variant:
//   dense/GQA/MQA  K and V of every kv head, page_size tokens a page;
//   swa            the same, as a ring: pages that left the window go back to the pool, pages
//                  holding sink tokens stay pinned;
//   mla            only the latent c_kv and the rotary key k_rope (Dc + Dr values a token, shared
//                  by all heads);
//   moba           dense pages plus the mean key of every complete block, computed once when the
//                  block fills (the gate reads only these);
//   nsa            dense pages plus the mean key and the mean value of every complete block (its
//                  compressed branch attends to them);
//   dsa            MLA's latent pages plus one index key per token, kept per sequence beside the
//                  pages (the lightning indexer scores them all);
//   gated_delta    no pages: one constant-size state [H, Dk, Dv] per sequence.
// The cache is host memory and the single source of truth; a device backend mirrors pages it has
// not seen yet (PagedKvCache::generation tells it which). Metadata is guarded by a mutex so the
// GUI can read stats() and page_map() from its thread while a decode runs on another.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "attnscope/inputs.hpp"
#include "attnscope/large_alloc.hpp"
#include "attnscope/problem.hpp"
#include "attnscope/tensor.hpp"
#include "attnscope/variant.hpp"

namespace attnscope {

struct KvCacheConfig {
  // Variant, heads, dims and variant params. batch, q_len and kv_len are ignored: sequences come
  // and go, each with its own length.
  AttentionProblem problem;
  int64_t page_size = 0;  // tokens a page; 0 = default (16; 64 for MLA, as FlashMLA)
  // Pool capacity in pages; appending past it throws Error("KV cache is full ..."). 0 = as many as
  // memory allows (the same budget problem validation uses), grown on demand.
  int64_t max_pages = 0;
};

// Accounting the views read. "Allocated" pages are the pool's reserved memory; "used" ones belong
// to a sequence; "free" ones are allocated and waiting for reuse.
struct KvCacheStats {
  int64_t page_size = 0;
  int64_t page_bytes = 0;  // bytes one page holds (0 for Gated DeltaNet)
  int64_t pages_allocated = 0;
  int64_t pages_used = 0;
  int64_t pages_free = 0;
  int64_t max_pages = 0;  // capacity (0 = memory-bound)
  int64_t sequences = 0;
  int64_t tokens_seen = 0;      // tokens appended over all live sequences
  int64_t tokens_resident = 0;  // of those, tokens still held in pages (SWA evicts the rest)
  int64_t pages_evicted = 0;    // pages SWA returned to the pool, over the cache's life
  double bytes_per_token = 0;   // cache bytes one more token adds (per the cost model)
  int64_t bytes_used = 0;       // pages_used * page_bytes + per-sequence extras (block means,
                                // side rows such as DSA's index keys, GDN state)
  int64_t bytes_allocated = 0;  // pages_allocated * page_bytes + extras
  // Internal fragmentation: the share of used page slots that hold no token (partly filled last
  // pages, the dead head of SWA's first live page). 0 when nothing is used.
  double fragmentation = 0;
};

// One sequence's pages for the live page map: logical page i holds tokens
// [i * page_size, (i + 1) * page_size); physical is -1 when evicted.
struct KvSequenceMap {
  int64_t id = 0;
  int64_t length = 0;  // tokens appended
  std::vector<int32_t> pages;
  std::vector<int64_t> page_fill;  // resident tokens in each logical page
  int64_t state_bytes = 0;         // storage beside the pages: GDN's state, block means, side rows
};

class PagedKvCache {
 public:
  explicit PagedKvCache(KvCacheConfig config);  // throws Error on an invalid problem/page_size
  ~PagedKvCache();
  PagedKvCache(const PagedKvCache&) = delete;
  PagedKvCache& operator=(const PagedKvCache&) = delete;

  // Unique per cache object over the process's life: device mirrors key on it, not the address.
  uint64_t uid() const { return uid_; }
  const AttentionProblem& problem() const { return problem_; }
  VariantId variant() const { return problem_.variant; }
  int64_t page_size() const { return page_size_; }
  int64_t page_floats() const { return page_floats_; }

  // A new empty sequence; returns its id (never reused).
  int64_t add_sequence();
  // Returns the sequence's pages to the pool. Throws Error for an unknown id.
  void free_sequence(int64_t seq);
  bool has_sequence(int64_t seq) const;
  std::vector<int64_t> sequence_ids() const;
  int64_t length(int64_t seq) const;  // tokens appended so far

  // Appends n tokens. Dense/SWA/MoBA/NSA: k [Hkv, n, Dk], v [Hkv, n, Dv] (a leading batch dim of
  // 1 is accepted). MLA: c_kv [n, Dc], k_rope [n, Dr] (leading 1 accepted). Shapes are checked,
  // values must be finite. Completes block means and evicts SWA pages as it goes. Not for Gated
  // DeltaNet (its state is written by set_state / the decode step), nor for a variant with a side
  // tensor (CacheSpec::side_tensor; use the overloads below). Throws Error when full.
  void append(int64_t seq, const Tensor& k, const Tensor& v);
  // The same with the side rows [n, side_width] (leading 1 accepted) of a variant that keeps them.
  void append(int64_t seq, const Tensor& k, const Tensor& v, const Tensor& side);
  // Appends the tensors CacheSpec names (key_tensor, value_tensor, side_tensor) from `tokens`.
  void append(int64_t seq, const Inputs& tokens);

  // --- reads for backends (no locking: one decoding thread owns the data) ---
  // Physical page table of a sequence (-1 where evicted), stable until the next append/free.
  std::span<const int32_t> page_table(int64_t seq) const;
  // The rows of one physical page for one part and kv head: part 0 is K (MLA: c_kv), part 1 is V
  // (MLA: k_rope); head < Hkv (MLA: 0). page_size rows of width(part) floats, contiguous. Storage
  // is head-major inside each ~4 MiB chunk, so one head's rows of consecutive physical pages are
  // contiguous too, and a CPU walk over a sequence streams instead of hopping between heads.
  const float* rows(int32_t physical, int part, int64_t head) const;
  int64_t width(int part) const { return part == 0 ? width0_ : width1_; }
  // One page packed as [Hkv][page_size][Dk] then [Hkv][page_size][Dv] (MLA: c_kv rows then k_rope
  // rows), page_floats() floats: the layout a device mirror keeps.
  void copy_page(int32_t physical, float* out) const;
  // MoBA, NSA: mean keys of the complete blocks, [blocks][Hkv][Dk] contiguous.
  std::span<const float> block_means(int64_t seq) const;
  // NSA (CacheSpec::mean_values): mean values of the complete blocks, [blocks][Hkv][Dv].
  std::span<const float> block_value_means(int64_t seq) const;
  // DSA (CacheSpec::side_tensor): the side rows of every token, [length][side_width], as stored
  // (after CacheSpec::side_transform). Stable until the next append/free of the sequence.
  std::span<const float> side_rows(int64_t seq) const;
  int64_t complete_blocks(int64_t seq) const;
  // Gated DeltaNet: the state [H, Dk, Dv] (zeros for a new sequence); mutable for the decode step.
  Tensor& state(int64_t seq);
  const Tensor& state(int64_t seq) const;
  void set_state(int64_t seq, Tensor state);  // checks shape [H, Dk, Dv] (leading 1 accepted)
  // Gated DeltaNet counts tokens without storing them; the decode step calls this.
  void advance(int64_t seq, int64_t tokens);

  // The sequence's keys and values read back through its page table as contiguous tensors in the
  // variant's run() layout with B = 1: k [1, Hkv, L, Dk] and v [1, Hkv, L, Dv], or c_kv [1, L, Dc]
  // and k_rope [1, L, Dr] for MLA, plus the side tensor [1, L, side_width] where the variant keeps
  // one (DSA's k_idx). Tokens SWA evicted read as zeros. The reference backend decodes
  // from this; tests compare it with what was appended.
  Inputs gather(int64_t seq) const;

  // Bumped whenever page contents or tables change; device mirrors compare it to skip uploads.
  uint64_t generation() const;
  // Physical pages written since generation `since` (for incremental device mirrors).
  std::vector<int32_t> pages_written_since(uint64_t since) const;

  // --- accounting (thread-safe, any thread) ---
  // Pages an append may still take: free ones plus what capacity allows allocating (cheap; a
  // decode step checks it before appending anything).
  int64_t pages_available() const;
  KvCacheStats stats() const;
  std::vector<KvSequenceMap> page_map() const;

  // Checks the invariants: every used page belongs to exactly one sequence slot, free + used =
  // allocated, no page is both free and used. Returns a sentence naming the first violation.
  std::optional<std::string> audit() const;

 private:
  struct Sequence;
  Sequence& seq_locked(int64_t seq);
  const Sequence& seq_locked(int64_t seq) const;
  int64_t pages_available_locked() const;
  int32_t take_page_locked();
  void release_page_locked(int32_t page);
  int64_t kept_in(int64_t j0, int64_t j1, int64_t length) const;
  bool keeps(int64_t token, int64_t length) const;
  void complete_blocks_locked(Sequence& s);
  void append_impl(int64_t seq, const Tensor& k, const Tensor& v, const Tensor* side);
  float* rows_mut(int32_t physical, int part, int64_t head);
  int64_t extra_bytes_locked(const Sequence& s) const;

  AttentionProblem problem_;
  uint64_t uid_ = 0;
  int64_t page_size_ = 16;
  int64_t page_floats_ = 0;
  CacheSpec spec_;                               // what the variant keeps (variant.hpp)
  int64_t heads_ = 0, width0_ = 0, width1_ = 0;  // kv heads a page stores, widths of K and V
  int64_t max_pages_ = 0;
  int64_t pages_per_chunk_ = 0;

  mutable std::mutex mutex_;
  // Pool storage; chunks never move. From large_alloc: huge pages, since decode streams them.
  std::vector<LargeFloats> chunks_;
  int64_t pages_allocated_ = 0;
  std::vector<int32_t> free_pages_;
  std::vector<uint64_t> page_written_;  // generation each physical page was last written at
  std::map<int64_t, std::unique_ptr<Sequence>> sequences_;
  int64_t next_id_ = 0;
  uint64_t generation_ = 1;
  int64_t pages_evicted_ = 0;
};

// Default page size for a variant: 64 for MLA (FlashMLA), 16 otherwise (vLLM).
int64_t default_page_size(VariantId variant);

}  // namespace attnscope
