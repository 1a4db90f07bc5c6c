// What variant modules share: tensor-shape checks, the q/k/v layout of the softmax variants, the
// closed-form counts behind the cost model, and the ParamSpec accessors. Private to the engine.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/cancel.hpp"
#include "attnscope/cost.hpp"
#include "attnscope/inputs.hpp"
#include "attnscope/mask.hpp"
#include "attnscope/variant.hpp"
#include "core/counts.hpp"

namespace attnscope::module {

using counts::capped_ramp_sum;
using counts::dense_pairs;
using counts::first_position;
using counts::i128;
using counts::saturate;
using counts::touched_keys;
using counts::triangle;

// Shape reading helpers: they throw Error naming the tensor.
const Tensor& require(const Inputs& in, const char* name, int rank, const char* layout);
void require_dim(const Tensor& t, const char* name, int axis, int64_t expected, const char* what);

// PyTorch SDPA's layout: q [B, H, Lq, Dk], k [B, Hkv, Lk, Dk], v [B, Hkv, Lk, Dv].
std::vector<TensorSpec> qkv_inputs(const AttentionProblem& p);
void qkv_infer(const Inputs& in, AttentionProblem& p);
std::optional<std::string> no_value_rules(const Inputs&);

// Softmax over every visible key of q/k/v (dense, sliding window): flops, bytes, cache. A window
// keeps a ring of window + sinks keys in the cache.
void masked_softmax_cost(const AttentionProblem& p, double element_bytes, Cost& c);
// Paged K and V of every kv head.
CacheSpec kv_cache(const AttentionProblem& p);

}  // namespace attnscope::module

// The parts every module defines: its oracle and map tile (reference.cpp), its fast CPU path
// (cpu.cpp) and its descriptor (<name>.cpp), declared once here for the module's own header.
#define ATTNSCOPE_MODULE_PARTS(name)                                                           \
  namespace reference {                                                                        \
  RunResult name##_run(const AttentionProblem&, const Inputs&, const CancelToken&);            \
  void name##_map_tile(const AttentionProblem&, const Inputs&, const RunResult&, int64_t b,    \
                       int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* out); \
  }                                                                                            \
  namespace cpu {                                                                              \
  RunResult run_##name(const Context& c);                                                      \
  }                                                                                            \
  namespace variant_modules {                                                                  \
  VariantInfo name();                                                                          \
  }

// A ParamSpec's accessors for the knob p.<group>.<field> (integer or bool).
#define ATTNSCOPE_PARAM_ACCESS(group, field)                                          \
  .get = [](const AttentionProblem& p) -> int64_t { return int64_t(p.group.field); }, \
  .set = [](AttentionProblem& p, int64_t v) { p.group.field = decltype(p.group.field)(v); }
