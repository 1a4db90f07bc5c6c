// KeyMask construction: only sliding-window attention has a window and sinks; every other
// variant's mask is plain (bottom-right) causal or nothing. MoBA adds its block routing on top.
#include "attnscope/mask.hpp"

namespace attnscope {

KeyMask KeyMask::of(const AttentionProblem& p) {
  KeyMask m;
  m.causal = p.causal;
  m.offset = p.shape.kv_len - p.shape.q_len;
  m.kv_len = p.shape.kv_len;
  if (p.variant == VariantId::swa) {
    m.window = p.swa.window;
    m.sinks = p.swa.sinks;
  }
  return m;
}

}  // namespace attnscope
