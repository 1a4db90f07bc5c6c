// Pieces shared by the .safetensors and .npy readers/writers (defined in io_safetensors.cpp):
// element decoding, the file-size check and the atomic writer. Private to the engine.
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <ostream>
#include <string>

#include "attnscope/io.hpp"

namespace attnscope::io::detail {

enum class RawType { F32, F64, F16, BF16, I8, I16, I32, I64, U8, Bool };
int raw_size(RawType t);
// Reads `count` little-endian elements of type t and converts them to fp32; throws Error with ctx.
void read_converted(std::istream& in, RawType t, int64_t count, float* out, const std::string& ctx);
uint64_t checked_file_size(const std::string& path);
// Writes through a temporary file renamed into place, so a failure never leaves a partial file;
// with a batch the rename waits for batch->commit().
void write_atomically(const std::string& path, const std::function<void(std::ostream&)>& body,
                      OutputBatch* batch = nullptr);
void write_f32_le(std::ostream& out, const float* data, int64_t n);

}  // namespace attnscope::io::detail
