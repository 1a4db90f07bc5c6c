// One safetensors file, memory-mapped read-only: its header parsed and every tensor's byte range
// checked against the file, so later reads never leave the mapping. Weights are not touched here;
// the kernel pages them in when a tensor is widened.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attnscope/checkpoint.hpp"
#include "attnscope/tensor.hpp"

namespace attnscope::checkpoint_detail {

// A read-only private mapping of a whole file; unmapped on destruction.
class MappedFile {
 public:
  // Throws Error naming the path when it cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  const unsigned char* data_ = nullptr;
  uint64_t size_ = 0;
};

struct StoredTensor {
  std::string name;
  std::string dtype;               // as the header spells it ("BF16")
  std::optional<StoredType> type;  // nullopt: a dtype we do not widen (I64, BOOL, F8_E4M3, ...)
  Shape shape;
  int64_t numel = 0;
  const unsigned char* data = nullptr;  // inside the shard's mapping
  int64_t bytes = 0;
};

struct Shard {
  std::string path;
  std::shared_ptr<const MappedFile> file;
  std::vector<StoredTensor> tensors;  // in header order
};

// Maps `path` and parses and checks its header. Throws Error naming the file (truncated file,
// header or data range beyond the end, invalid JSON, unknown dtype).
Shard open_shard(const std::string& path);
// Throws Error naming the file and two tensors whose byte ranges overlap. Separate from
// open_shard so that a tensor's unsupported dtype is reported before its placement.
void check_no_overlap(const Shard& shard);

// Bytes per element of a stored type.
constexpr int stored_size(StoredType t) {
  return t == StoredType::f32 ? 4 : 2;
}

// Widens `count` elements starting at element `first` of `tensor` to fp32 into `out`; big ranges
// are split over the thread pool. The tensor's dtype must be widenable (checked by the caller).
void widen(const StoredTensor& tensor, int64_t first, int64_t count, float* out);

}  // namespace attnscope::checkpoint_detail
