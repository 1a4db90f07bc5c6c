// Reading and writing named tensors: .safetensors (Hugging Face) and .npy (NumPy).
// Everything becomes fp32 on the host (F16/BF16/F64 converted on load); malformed files throw
// Error.
#pragma once

#include <string>

#include "attnscope/inputs.hpp"
#include "attnscope/tensor.hpp"

namespace attnscope::io {

// Loads every tensor of a .safetensors file. F32, F16, BF16 and F64 become fp32; integer tensors
// (I64, I32, I16, I8, U8) are converted to fp32 only if exactly representable; BOOL becomes 0/1.
// "__metadata__" is validated and dropped. Anything malformed (truncated, oversized or invalid
// header, offsets out of range or overlapping, byte count != shape x dtype) throws Error.
TensorMap load_safetensors(const std::string& path);

// Writes F32 tensors and I64 index tensors (MoBA selection, as torch.topk returns int64).
// Writes to a temporary file and renames, so a failed write never leaves a partial file.
void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const std::map<std::string, IndexTensor, std::less<>>& index_tensors = {});

// .npy (format 1.0/2.0/3.0): loads little-endian f4/f8/f2, i4/i8 (when exact) and b1 C-order
// arrays as fp32. Saves version 1.0 '<f4' with the data 64-byte aligned, as numpy does.
Tensor load_npy(const std::string& path);
void save_npy(const std::string& path, const Tensor& t);

// Loads either format by extension: .npy becomes one tensor named after the file stem.
TensorMap load_tensors(const std::string& path);

// Writes `text` to `path` through a temporary file renamed into place (JSON reports, caches), so
// a failed write never leaves a partial file; throws Error naming the path.
void save_text(const std::string& path, const std::string& text);

}  // namespace attnscope::io
