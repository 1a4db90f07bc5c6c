// Reading and writing named tensors: .safetensors (Hugging Face) and .npy (NumPy).
// Everything becomes fp32 on the host (F16/BF16/F64 converted on load); malformed files throw
// Error.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "attnscope/inputs.hpp"
#include "attnscope/tensor.hpp"

namespace attnscope::io {

// Several output files that succeed or fail together. A writer given a batch leaves its file under
// a temporary name beside the target; commit() renames them all into place. A batch destroyed
// before commit() removes them, so a command that fails halfway (a full disk, a bad folder for the
// second file) leaves every existing file exactly as it was.
class OutputBatch {
 public:
  OutputBatch() = default;
  OutputBatch(const OutputBatch&) = delete;
  OutputBatch& operator=(const OutputBatch&) = delete;
  ~OutputBatch();
  void commit();
  // For the writers: `tmp` holds the finished contents of `path`. Throws Error when `path` is
  // already part of the batch (two outputs with one name would silently keep only the last).
  void stage(const std::string& tmp, const std::string& path);

 private:
  std::vector<std::pair<std::string, std::string>> staged_;  // (temporary, target)
};

// Checks before any work that `path` can be written: not empty, not a folder, and its folder
// exists. Throws Error naming `what` (e.g. "--out") and the path.
void check_output_path(const std::string& path, const std::string& what);

// Loads every tensor of a .safetensors file. F32, F16, BF16 and F64 become fp32; integer tensors
// (I64, I32, I16, I8, U8) are converted to fp32 only if exactly representable; BOOL becomes 0/1.
// "__metadata__" is validated and dropped. Anything malformed (truncated, oversized or invalid
// header, offsets out of range or overlapping, byte count != shape x dtype) throws Error.
TensorMap load_safetensors(const std::string& path);

// Writes F32 tensors and I64 index tensors (MoBA selection, as torch.topk returns int64).
// Writes to a temporary file and renames, so a failed write never leaves a partial file.
// With a batch, the file is staged and appears only at batch->commit().
void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const std::map<std::string, IndexTensor, std::less<>>& index_tensors = {},
                      OutputBatch* batch = nullptr);

// .npy (format 1.0/2.0/3.0): loads little-endian f4/f8/f2, i4/i8 (when exact) and b1 C-order
// arrays as fp32. Saves version 1.0 '<f4' with the data 64-byte aligned, as numpy does.
Tensor load_npy(const std::string& path);
void save_npy(const std::string& path, const Tensor& t, OutputBatch* batch = nullptr);

// Loads either format by extension: .npy becomes one tensor named after the file stem.
TensorMap load_tensors(const std::string& path);

// Writes `text` to `path` through a temporary file renamed into place (JSON reports, caches), so
// a failed write never leaves a partial file; throws Error naming the path.
void save_text(const std::string& path, const std::string& text);

}  // namespace attnscope::io
