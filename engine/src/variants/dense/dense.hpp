// The dense module's entry points that other softmax modules reuse: the masked-softmax reference
// (its KeyMask covers windows and sinks) and the cpu flash path.
#pragma once

#include "variants/module.hpp"

namespace attnscope {

ATTNSCOPE_MODULE_PARTS(dense)

}  // namespace attnscope
