// The safetensors layout: an 8-byte little-endian header length, a JSON header mapping each tensor
// name to {dtype, shape, data_offsets [begin, end)} relative to the data that follows, and the
// data. Files come from users and the network, so every length and offset is checked before use.
#include "checkpoint/shard.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <system_error>

#include "attnscope/error.hpp"

namespace attnscope::checkpoint_detail {

using nlohmann::json;

namespace {

// A header this large is not a model file; refusing early bounds memory for hostile input.
constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw Error(path + ": " + problem);
}

std::string errno_text(int err) {
  return std::generic_category().message(err);
}

// Every dtype the safetensors format defines, with its element size: sizes let us check the byte
// ranges of tensors we never widen (GPT-2's BOOL mask buffers, integer position ids).
struct DtypeInfo {
  std::string_view name;
  int size;
  std::optional<StoredType> type;
};
constexpr std::array<DtypeInfo, 15> kDtypes = {{
    {"F32", 4, StoredType::f32},
    {"F16", 2, StoredType::f16},
    {"BF16", 2, StoredType::bf16},
    {"F64", 8, std::nullopt},
    {"I64", 8, std::nullopt},
    {"U64", 8, std::nullopt},
    {"I32", 4, std::nullopt},
    {"U32", 4, std::nullopt},
    {"I16", 2, std::nullopt},
    {"U16", 2, std::nullopt},
    {"I8", 1, std::nullopt},
    {"U8", 1, std::nullopt},
    {"BOOL", 1, std::nullopt},
    {"F8_E4M3", 1, std::nullopt},
    {"F8_E5M2", 1, std::nullopt},
}};

std::string printable(const std::string& name) {
  std::string s = "'";
  for (char c : name.substr(0, 100)) s += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
  if (name.size() > 100) s += "...";
  return s + "'";
}

bool to_i64(const json& j, int64_t& out) {
  if (j.is_number_unsigned()) {
    const uint64_t u = j.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    out = static_cast<int64_t>(u);
    return true;
  }
  if (j.is_number_integer()) {
    out = j.get<int64_t>();
    return true;
  }
  return false;
}

StoredTensor parse_entry(const std::string& path, const std::string& name, const json& v,
                         const unsigned char* data, uint64_t data_size) {
  const std::string what = "tensor " + printable(name);
  if (!v.is_object()) fail(path, what + ": header entry is not a JSON object");
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!v.contains(key)) fail(path, what + ": header entry has no '" + key + "'");
  }
  const json& jd = v.at("dtype");
  const json& js = v.at("shape");
  const json& jo = v.at("data_offsets");
  if (!jd.is_string()) fail(path, what + ": 'dtype' must be a string");
  if (!js.is_array()) fail(path, what + ": 'shape' must be an array of integers");
  if (!jo.is_array() || jo.size() != 2) {
    fail(path, what + ": 'data_offsets' must be an array of two integers [begin, end]");
  }
  StoredTensor t;
  t.name = name;
  t.dtype = jd.get<std::string>();
  const auto info = std::find_if(kDtypes.begin(), kDtypes.end(),
                                 [&](const DtypeInfo& d) { return d.name == t.dtype; });
  if (info == kDtypes.end()) {
    fail(path, what + " has unknown dtype " + printable(t.dtype) + " (supported: F32, F16, BF16)");
  }
  t.type = info->type;
  for (const json& d : js) {
    int64_t dim = 0;
    if (!to_i64(d, dim) || dim < 0) {
      fail(path, what + ": 'shape' must be an array of non-negative integers");
    }
    t.shape.push_back(dim);
  }
  int64_t expected = 0;
  try {
    t.numel = shape_numel(t.shape);
    expected = checked_mul(t.numel, info->size, "tensor byte size");
  } catch (const Error& err) {
    fail(path, what + ": " + err.what());
  }
  int64_t b = 0, e = 0;
  if (!to_i64(jo[0], b) || !to_i64(jo[1], e) || b < 0 || e < b) {
    fail(path, what + ": 'data_offsets' must be two integers 0 <= begin <= end");
  }
  if (static_cast<uint64_t>(e) > data_size) {
    fail(path, what + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                   "] reach beyond the " + std::to_string(data_size) +
                   "-byte data section (the file is truncated)");
  }
  if (e - b != expected) {
    fail(path, what + ": shape " + shape_str(t.shape) + " of " + t.dtype + " needs " +
                   std::to_string(expected) + " bytes but data_offsets span " +
                   std::to_string(e - b));
  }
  t.data = data + b;
  t.bytes = expected;
  return t;
}

}  // namespace

MappedFile::MappedFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, "cannot open the file (" + errno_text(errno) + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(path, "cannot read its size (" + errno_text(err) + ")");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      fail(path, "cannot map the file (" + errno_text(err) + ")");
    }
    data_ = static_cast<const unsigned char*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<unsigned char*>(data_), size_);
}

Shard open_shard(const std::string& path) {
  Shard shard;
  shard.path = path;
  auto file = std::make_shared<const MappedFile>(path);
  const uint64_t size = file->size();
  if (size < 8) {
    fail(path, "the file is truncated (" + std::to_string(size) +
                   " bytes; a safetensors file starts with an 8-byte header length)");
  }
  const unsigned char* base = file->data();
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(base[i]) << (8 * i);
  if (header_len > kMaxHeaderBytes) {
    fail(path, "header length " + std::to_string(header_len) +
                   " is over the 100 MB limit: not a safetensors file?");
  }
  if (header_len > size - 8) {
    fail(path, "header length " + std::to_string(header_len) + " exceeds the file size (" +
                   std::to_string(size) + " bytes): the file is truncated");
  }
  const std::string_view header(reinterpret_cast<const char*>(base + 8), header_len);
  // JSON keeps the last of two equal keys; a header naming one tensor twice is ambiguous.
  std::set<std::string, std::less<>> seen;
  std::string duplicate;
  const json::parser_callback_t note = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key && duplicate.empty() &&
        !seen.insert(parsed.get<std::string>()).second) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  json root;
  try {
    root = json::parse(header, note);
  } catch (const json::exception& e) {
    fail(path, std::string("the header is not valid JSON (") + e.what() +
                   "); the file is truncated or not a safetensors file");
  }
  if (!root.is_object()) fail(path, "the header is not a JSON object");
  if (!duplicate.empty()) fail(path, "the header names tensor " + printable(duplicate) + " twice");

  const unsigned char* data = base + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  for (const auto& [name, value] : root.items()) {
    if (name == "__metadata__") continue;
    shard.tensors.push_back(parse_entry(path, name, value, data, data_size));
  }
  shard.file = std::move(file);
  return shard;
}

void check_no_overlap(const Shard& shard) {
  // Overlapping ranges would alias one tensor's bytes into another: no writer produces them.
  std::vector<const StoredTensor*> order;
  for (const StoredTensor& t : shard.tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const StoredTensor* a, const StoredTensor* b) {
    return a->data != b->data ? a->data < b->data : a->bytes < b->bytes;
  });
  for (size_t i = 1; i < order.size(); ++i) {
    if (order[i]->data < order[i - 1]->data + order[i - 1]->bytes) {
      fail(shard.path, "the data of tensors " + printable(order[i - 1]->name) + " and " +
                           printable(order[i]->name) + " overlap");
    }
  }
}

}  // namespace attnscope::checkpoint_detail
