// KeyMask construction: plain (bottom-right) causal or nothing, plus the window and sinks a
// variant's mask hook adds. A selection (block routing) comes on top, in the variant's own code.
#include "attnscope/mask.hpp"

#include "attnscope/variant.hpp"

namespace attnscope {

KeyMask KeyMask::of(const AttentionProblem& p) {
  KeyMask m;
  m.causal = p.causal;
  m.offset = p.shape.kv_len - p.shape.q_len;
  m.kv_len = p.shape.kv_len;
  if (auto mask = variant_info(p.variant).mask) mask(p, m);
  return m;
}

}  // namespace attnscope
