// AttentionProblem: which variant, at which shape, with which knobs.
// Everything that runs attention takes one; validate() is the single gate for bad parameters.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace attnscope {

// The variants the engine knows. The registry (registry.hpp) is the one table that describes them;
// code outside the engine iterates the registry, never this enum.
enum class VariantId { dense, swa, mla, moba, gated_delta, nsa, dsa };

struct ProblemShape {
  int64_t batch = 1;
  int64_t heads = 8;        // query heads H
  int64_t kv_heads = 8;     // key/value heads Hkv (GQA/MQA); 1 for MLA's shared latent
  int64_t q_len = 256;      // Lq
  int64_t kv_len = 256;     // Lk (for Gated DeltaNet equal to q_len)
  int64_t head_dim = 64;    // Dk (MLA: nope_dim + rope_dim)
  int64_t v_head_dim = 64;  // Dv
};

struct SwaParams {
  int64_t window = 256;  // keys a query sees, itself included: j visible iff p - window < j <= p
  int64_t sinks = 0;     // keys j < sinks stay visible to every query (StreamingLLM)
};

struct MlaParams {
  int64_t kv_lora_rank = 512;  // Dc, width of the cached latent c_kv
  int64_t rope_dim = 64;       // Dr, the shared rotary key k_rope
  int64_t nope_dim = 128;      // Dn, the position-free part of q and k
  bool absorbed = false;       // compute in the absorbed (decode) form

  // Dn + Dr, the width of q and of the keys; throws Error when the sum overflows (knobs read from
  // flags or files can hold anything).
  int64_t q_head_dim() const;
};

struct MobaParams {
  int64_t block_size = 64;  // keys per block; the last block may be short
  int64_t top_k = 4;        // blocks per query, the query's own block included
};

// Native Sparse Attention as fla's naive_nsa computes it: compression and selection share one
// block length, and block means stand in for the paper's learned compression.
struct NsaParams {
  int64_t block_size = 64;   // BS: keys per block (the last may be short)
  int64_t block_count = 16;  // S: blocks each kv group selects, the forced ones included (>= 3)
  int64_t window = 512;      // keys of the window branch, self included; 0 turns the branch off
};

// DeepSeek Sparse Attention: MLA (its knobs in MlaParams) over the top_k keys a lightning indexer
// scores highest for each query.
struct DsaParams {
  int64_t top_k = 2048;          // keys each query attends to (all of its past when fewer)
  int64_t index_heads = 64;      // Hi, heads of the indexer
  int64_t index_head_dim = 128;  // Di, width of an index query and of the one index key a token has
  bool index_fp8 = false;  // round the indexer's inputs to e4m3 (a power-of-two scale per 128)
};

// The element type a device computes in. The host engine keeps fp32 tensors everywhere; a backend
// that honours bf16/fp16 rounds the inputs to it on upload, accumulates in fp32 and returns fp32
// o and lse (flash-attention's contract). Only the cuda backend's tensor-core path computes in
// bf16/fp16 (dense and SWA); every other backend and variant computes in fp32 and says so.
enum class Precision { fp32, bf16, fp16 };

// "fp32", "bf16", "fp16".
std::string_view precision_name(Precision precision);
// Exact, case-sensitive names as precision_name writes them; nullopt otherwise.
std::optional<Precision> parse_precision(std::string_view name);
// "fp32, bf16, fp16": for help texts and error messages.
std::string precision_names();
// Bytes per element a device moves in this precision (4 or 2): the element size for cost_of.
constexpr int element_bytes(Precision precision) {
  return precision == Precision::fp32 ? 4 : 2;
}

struct GatedDeltaParams {
  int64_t chunk_size = 64;  // chunk of the WY/UT form
  bool qk_l2norm = false;   // L2-normalize q and k per token before use
  bool recurrent = false;   // step-by-step recurrence instead of the chunked form
};

struct AttentionProblem {
  VariantId variant = VariantId::dense;
  ProblemShape shape;
  bool causal = false;
  std::optional<double> scale;            // softmax (or GDN query) scale; default from the variant
  Precision precision = Precision::fp32;  // element type the backend computes in (see Precision)
  SwaParams swa;
  MlaParams mla;
  MobaParams moba;
  GatedDeltaParams gated_delta;
  NsaParams nsa;
  DsaParams dsa;

  // Sensible defaults for a variant (causal where the variant requires it, MLA dims of
  // DeepSeek-V3).
  static AttentionProblem defaults(VariantId variant);

  // nullopt when valid, else one specific sentence naming what is wrong and what would be right.
  std::optional<std::string> validate() const;
  // Throws Error with validate()'s message.
  void check() const;

  double effective_scale() const;
  // Absolute key position of query row i under bottom-right causal alignment.
  int64_t query_position(int64_t i) const { return i + shape.kv_len - shape.q_len; }

  std::string describe() const;  // one line for logs and status bars
};

}  // namespace attnscope
