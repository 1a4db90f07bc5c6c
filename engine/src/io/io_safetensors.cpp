// Reading and writing .safetensors files, plus the low-level helpers the .npy code shares.
// Files come from users and other tools, so every size and offset is validated before it is
// trusted.
#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#ifdef _WIN32
#include <process.h>
#else
#include <unistd.h>
#endif

#include "attnscope/error.hpp"
#include "attnscope/io.hpp"
#include "io/io_detail.hpp"

namespace attnscope::io {

// Shared with io_npy.cpp, which declares the same signatures: the engine keeps them out of the
// public io.hpp because they are implementation details of the two readers.
namespace detail {

constexpr int raw_size_of(RawType t) {
  switch (t) {
    case RawType::F64:
    case RawType::I64:
      return 8;
    case RawType::F32:
    case RawType::I32:
      return 4;
    case RawType::F16:
    case RawType::BF16:
    case RawType::I16:
      return 2;
    case RawType::I8:
    case RawType::U8:
    case RawType::Bool:
      return 1;
  }
  return 1;
}

int raw_size(RawType t) {
  return raw_size_of(t);
}

const char* raw_name(RawType t) {
  switch (t) {
    case RawType::F32:
      return "F32";
    case RawType::F64:
      return "F64";
    case RawType::F16:
      return "F16";
    case RawType::BF16:
      return "BF16";
    case RawType::I8:
      return "I8";
    case RawType::I16:
      return "I16";
    case RawType::I32:
      return "I32";
    case RawType::I64:
      return "I64";
    case RawType::U8:
      return "U8";
    case RawType::Bool:
      return "BOOL";
  }
  return "?";
}

// IEEE binary16 -> binary32. Every half value is exactly representable in fp32, so this is exact;
// NaN payloads are kept (shifted into the top of the fp32 mantissa) so quiet NaNs stay quiet.
float f16_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits = 0;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // Subnormal half: value = mant * 2^-24. Shift the leading 1 up to the implicit-bit position;
    // each shift lowers the exponent by one, starting from that of 2^-14.
    int e = -14;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --e;
    }
    mant &= 0x3FFu;
    bits = sign | (static_cast<uint32_t>(e + 127) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

// bfloat16 is the top half of an fp32, so widening is a shift (exact for every value).
float bf16_bits_to_float(uint16_t b) {
  return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}

namespace {

// Little-endian decode by bytes, so the readers do not depend on the host's byte order.
template <class U>
U load_le(const unsigned char* p) {
  U v = 0;
  for (size_t i = 0; i < sizeof(U); ++i) v |= static_cast<U>(static_cast<U>(p[i]) << (8 * i));
  return v;
}

template <class U>
void store_le(unsigned char* p, U v) {
  for (size_t i = 0; i < sizeof(U); ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

// An integer converts to fp32 only if it survives the round trip; the 2^63 guard avoids the
// undefined float -> int64 cast for values that round up to exactly 2^63.
bool int_fits_float(int64_t v) {
  const float f = static_cast<float>(v);
  if (f >= 9.2233720368547758e18f) return false;
  return static_cast<int64_t>(f) == v;
}

std::string errno_text() {
  return std::generic_category().message(errno);
}

}  // namespace

// One element of wire type T as fp32; integers must round-trip exactly or the load fails.
template <RawType T>
float decode_one(const unsigned char* p, const std::string& ctx, int64_t index) {
  if constexpr (T == RawType::F32) return std::bit_cast<float>(load_le<uint32_t>(p));
  if constexpr (T == RawType::F64) {
    return static_cast<float>(std::bit_cast<double>(load_le<uint64_t>(p)));
  }
  if constexpr (T == RawType::F16) return f16_bits_to_float(load_le<uint16_t>(p));
  if constexpr (T == RawType::BF16) return bf16_bits_to_float(load_le<uint16_t>(p));
  if constexpr (T == RawType::Bool) return p[0] != 0 ? 1.0f : 0.0f;
  if constexpr (T == RawType::U8) return static_cast<float>(p[0]);
  if constexpr (T == RawType::I8) return static_cast<float>(static_cast<int8_t>(p[0]));
  if constexpr (T == RawType::I16) {
    return static_cast<float>(static_cast<int16_t>(load_le<uint16_t>(p)));
  }
  if constexpr (T == RawType::I32 || T == RawType::I64) {
    const int64_t iv = T == RawType::I32
                           ? static_cast<int64_t>(static_cast<int32_t>(load_le<uint32_t>(p)))
                           : static_cast<int64_t>(load_le<uint64_t>(p));
    if (!int_fits_float(iv)) {
      throw Error(ctx + ": " + raw_name(T) + " value " + std::to_string(iv) + " at index " +
                  std::to_string(index) + " is not exactly representable in fp32");
    }
    return static_cast<float>(iv);
  }
}

template <RawType T>
void convert_chunk(const unsigned char* src, int64_t n, float* dst, const std::string& ctx,
                   int64_t base) {
  constexpr int64_t kSize = raw_size_of(T);
  for (int64_t i = 0; i < n; ++i) dst[i] = decode_one<T>(src + i * kSize, ctx, base + i);
}

// Streams `count` elements of type `t` into `out`, in bounded chunks so that converting a large
// F64 tensor does not need a second full-size buffer. The type switch sits outside the loops.
void read_converted(std::istream& in, RawType t, int64_t count, float* out,
                    const std::string& ctx) {
  const int64_t size = raw_size(t);
  constexpr int64_t kChunkElems = 1 << 16;
  std::vector<unsigned char> buf(static_cast<size_t>(std::min(count, kChunkElems) * size));
  for (int64_t done = 0; done < count;) {
    const int64_t n = std::min(kChunkElems, count - done);
    in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(n * size));
    if (in.gcount() != static_cast<std::streamsize>(n * size)) {
      throw Error(ctx + ": file is truncated (data ends before the expected " +
                  std::to_string(count * size) + " bytes)");
    }
    const unsigned char* src = buf.data();
    float* dst = out + done;
    switch (t) {
      case RawType::F32:
        convert_chunk<RawType::F32>(src, n, dst, ctx, done);
        break;
      case RawType::F64:
        convert_chunk<RawType::F64>(src, n, dst, ctx, done);
        break;
      case RawType::F16:
        convert_chunk<RawType::F16>(src, n, dst, ctx, done);
        break;
      case RawType::BF16:
        convert_chunk<RawType::BF16>(src, n, dst, ctx, done);
        break;
      case RawType::I8:
        convert_chunk<RawType::I8>(src, n, dst, ctx, done);
        break;
      case RawType::I16:
        convert_chunk<RawType::I16>(src, n, dst, ctx, done);
        break;
      case RawType::I32:
        convert_chunk<RawType::I32>(src, n, dst, ctx, done);
        break;
      case RawType::I64:
        convert_chunk<RawType::I64>(src, n, dst, ctx, done);
        break;
      case RawType::U8:
        convert_chunk<RawType::U8>(src, n, dst, ctx, done);
        break;
      case RawType::Bool:
        convert_chunk<RawType::Bool>(src, n, dst, ctx, done);
        break;
    }
    done += n;
  }
}

// Size of a regular file, or Error naming it ("not found", "not a regular file", ...).
uint64_t checked_file_size(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    throw Error("cannot load '" + path + "': file not found or not accessible" +
                (ec ? " (" + ec.message() + ")" : std::string()));
  }
  if (!fs::is_regular_file(st)) throw Error("cannot load '" + path + "': not a regular file");
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) throw Error("cannot load '" + path + "': cannot read its size (" + ec.message() + ")");
  return static_cast<uint64_t>(size);
}

// Writes through "<path>.tmp-<pid>" and renames over `path`, so readers never see a half-written
// file and a failure (full disk, bad directory, exception in `body`) leaves nothing behind.
void write_atomically(const std::string& path, const std::function<void(std::ostream&)>& body,
                      OutputBatch* batch) {
  namespace fs = std::filesystem;
#ifdef _WIN32
  const long pid = static_cast<long>(_getpid());
#else
  const long pid = static_cast<long>(getpid());
#endif
  const std::string tmp = path + ".tmp-" + std::to_string(pid);
  auto discard = [&] {
    std::error_code ignored;
    fs::remove(tmp, ignored);
  };
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) {
    const std::string why = errno_text();
    discard();
    throw Error("cannot write '" + path + "': cannot create a temporary file there (" + why + ")");
  }
  try {
    body(out);
    out.flush();
    if (!out) throw Error("cannot write '" + path + "': write failed (" + errno_text() + ")");
    out.close();
    if (out.fail()) throw Error("cannot write '" + path + "': close failed (" + errno_text() + ")");
    if (batch) {
      batch->stage(tmp, path);
      return;
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) {
      throw Error("cannot write '" + path + "': cannot rename the temporary file (" + ec.message() +
                  ")");
    }
  } catch (...) {
    if (out.is_open()) out.close();
    discard();
    throw;
  }
}

// Encodes `n` values little-endian in bounded chunks (one stream write per chunk).
template <class Wire, class Src>
void write_le(std::ostream& out, const Src* data, int64_t n) {
  constexpr int64_t kChunkElems = 1 << 16;
  std::vector<unsigned char> buf(static_cast<size_t>(std::min(n, kChunkElems)) * sizeof(Wire));
  for (int64_t done = 0; done < n;) {
    const int64_t m = std::min(kChunkElems, n - done);
    for (int64_t i = 0; i < m; ++i) {
      Wire w;
      if constexpr (std::is_same_v<Src, float>) {
        w = std::bit_cast<uint32_t>(data[done + i]);
      } else {
        w = static_cast<Wire>(static_cast<int64_t>(data[done + i]));
      }
      store_le<Wire>(buf.data() + static_cast<size_t>(i) * sizeof(Wire), w);
    }
    out.write(reinterpret_cast<const char*>(buf.data()),
              static_cast<std::streamsize>(m * static_cast<int64_t>(sizeof(Wire))));
    done += m;
  }
}

void write_f32_le(std::ostream& out, const float* data, int64_t n) {
  write_le<uint32_t>(out, data, n);
}

}  // namespace detail

namespace {

using detail::RawType;
using json = nlohmann::json;

// A header this large is not a real model file; refusing early bounds memory for hostile input.
constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;

struct Entry {
  std::string name;
  RawType type;
  Shape shape;
  int64_t numel;
  uint64_t begin;
  uint64_t end;
};

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw Error("cannot load '" + path + "': " + problem);
}

bool parse_dtype(const std::string& s, RawType& t) {
  static const std::array<std::pair<std::string_view, RawType>, 10> kTypes = {{
      {"F32", RawType::F32},
      {"F16", RawType::F16},
      {"BF16", RawType::BF16},
      {"F64", RawType::F64},
      {"I64", RawType::I64},
      {"I32", RawType::I32},
      {"I16", RawType::I16},
      {"I8", RawType::I8},
      {"U8", RawType::U8},
      {"BOOL", RawType::Bool},
  }};
  for (const auto& [name, type] : kTypes) {
    if (s == name) {
      t = type;
      return true;
    }
  }
  return false;
}

// JSON integers arrive as signed or unsigned; anything else (floats, strings) is a type error.
bool json_to_i64(const json& j, int64_t& out) {
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

// A printable, bounded rendering of a tensor name for messages (names come from the file).
std::string quoted(const std::string& name) {
  std::string s = "'";
  for (char c : name.substr(0, 80)) {
    s += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
  }
  if (name.size() > 80) s += "...";
  return s + "'";
}

Entry parse_entry(const std::string& path, const std::string& name, const json& v,
                  uint64_t buffer_size) {
  const std::string what = "tensor " + quoted(name);
  if (!v.is_object()) fail(path, what + ": header entry is not a JSON object");
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!v.contains(key)) fail(path, what + ": header entry is missing '" + key + "'");
  }
  const json& jd = v.at("dtype");
  const json& js = v.at("shape");
  const json& jo = v.at("data_offsets");
  if (!jd.is_string()) fail(path, what + ": 'dtype' must be a string");
  if (!js.is_array()) fail(path, what + ": 'shape' must be an array of integers");
  if (!jo.is_array() || jo.size() != 2) {
    fail(path, what + ": 'data_offsets' must be an array of two integers [begin, end]");
  }

  Entry e;
  e.name = name;
  const std::string dtype = jd.get<std::string>();
  if (!parse_dtype(dtype, e.type)) {
    fail(path, what + ": unsupported dtype " + quoted(dtype) +
                   " (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)");
  }
  for (const json& d : js) {
    int64_t dim = 0;
    if (!json_to_i64(d, dim)) fail(path, what + ": 'shape' must be an array of integers");
    if (dim < 0)
      fail(path, what + ": shape has a negative dimension (" + std::to_string(dim) + ")");
    e.shape.push_back(dim);
  }
  try {
    e.numel = shape_numel(e.shape);
    checked_mul(e.numel, detail::raw_size(e.type), "tensor byte size");
  } catch (const Error& err) {
    fail(path, what + ": " + err.what());
  }

  int64_t b = 0;
  int64_t en = 0;
  if (!json_to_i64(jo[0], b) || !json_to_i64(jo[1], en) || b < 0 || en < 0) {
    fail(path, what + ": 'data_offsets' must be two non-negative integers");
  }
  e.begin = static_cast<uint64_t>(b);
  e.end = static_cast<uint64_t>(en);
  if (e.begin > e.end) {
    fail(path, what + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(en) +
                   "] have begin > end");
  }
  if (e.end > buffer_size) {
    fail(path, what + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(en) +
                   "] are out of range of the " + std::to_string(buffer_size) +
                   "-byte data buffer (file truncated?)");
  }
  const uint64_t expected = static_cast<uint64_t>(e.numel) * detail::raw_size(e.type);
  if (e.end - e.begin != expected) {
    fail(path, what + ": shape/byte-count mismatch: shape " + shape_str(e.shape) + " of " + dtype +
                   " needs " + std::to_string(expected) + " bytes, data_offsets span " +
                   std::to_string(e.end - e.begin));
  }
  return e;
}

void check_metadata(const std::string& path, const json& m) {
  if (!m.is_object()) fail(path, "'__metadata__' must be a JSON object of strings");
  for (const auto& [k, v] : m.items()) {
    if (!v.is_string()) fail(path, "'__metadata__' value for " + quoted(k) + " is not a string");
  }
}

}  // namespace

TensorMap load_safetensors(const std::string& path) {
  const uint64_t file_size = detail::checked_file_size(path);
  if (file_size < 8) {
    fail(path, "file is truncated (" + std::to_string(file_size) +
                   " bytes; a safetensors file starts with an 8-byte header length)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open the file (" + detail::errno_text() + ")");

  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  if (in.gcount() != 8) fail(path, "file is truncated (cannot read the header length)");
  const uint64_t header_len = detail::load_le<uint64_t>(len_bytes);
  if (header_len > kMaxHeaderBytes) {
    fail(path, "oversized header (" + std::to_string(header_len) +
                   " bytes; the limit is 100 MB): not a safetensors file?");
  }
  if (header_len > file_size - 8) {
    fail(path, "header length " + std::to_string(header_len) + " exceeds the file size (" +
                   std::to_string(file_size) + " bytes): file is truncated");
  }

  std::string header(static_cast<size_t>(header_len), '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  if (in.gcount() != static_cast<std::streamsize>(header_len)) {
    fail(path, "file is truncated (header ends early)");
  }
  json root;
  // JSON objects keep the last of two equal keys; a header naming one tensor twice is ambiguous
  // (which bytes are "q"?), so the first repeated top-level name is an error.
  std::set<std::string, std::less<>> names;
  std::string duplicate;
  const json::parser_callback_t note_names = [&](int depth, json::parse_event_t event,
                                                 json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key && duplicate.empty() &&
        !names.insert(parsed.get<std::string>()).second) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  try {
    root = json::parse(header, note_names);
  } catch (const json::exception& e) {
    // nlohmann's message names the byte position; it is a single line.
    fail(path, std::string("header is invalid JSON (") + e.what() + ")");
  }
  if (!root.is_object()) fail(path, "header is not a JSON object");
  if (!duplicate.empty()) fail(path, "header names tensor '" + duplicate + "' twice");

  const uint64_t data_start = 8 + header_len;
  const uint64_t buffer_size = file_size - data_start;
  std::vector<Entry> entries;
  for (const auto& [name, value] : root.items()) {
    if (name == "__metadata__") {
      check_metadata(path, value);
      continue;
    }
    entries.push_back(parse_entry(path, name, value, buffer_size));
  }

  // Overlapping ranges would alias one tensor's bytes into another: no writer produces them.
  std::vector<const Entry*> by_offset;
  for (const Entry& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const Entry& prev = *by_offset[i - 1];
    const Entry& cur = *by_offset[i];
    if (cur.begin < prev.end) {
      fail(path, "data_offsets of tensors " + quoted(prev.name) + " and " + quoted(cur.name) +
                     " overlap");
    }
  }

  // Each tensor's byte range was checked against the file, so the allocations below are bounded
  // by a small multiple of the file size.
  TensorMap out;
  for (const Entry* e : by_offset) {
    Tensor t(e->shape);
    in.clear();
    in.seekg(static_cast<std::streamoff>(data_start + e->begin));
    if (!in) fail(path, "cannot seek to the data of tensor " + quoted(e->name));
    detail::read_converted(in, e->type, e->numel, t.data(),
                           "cannot load '" + path + "': tensor " + quoted(e->name));
    out.insert_or_assign(e->name, std::move(t));
  }
  return out;
}

void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const std::map<std::string, IndexTensor, std::less<>>& index_tensors,
                      OutputBatch* batch) {
  auto fail_write = [&](const std::string& problem) {
    throw Error("cannot write '" + path + "': " + problem);
  };
  // One sorted list across both maps: data is laid out in name order, like the header.
  struct Item {
    const std::string* name;
    const Tensor* f32;
    const IndexTensor* i64;
  };
  std::vector<Item> items;
  for (const auto& [name, t] : tensors) items.push_back({&name, &t, nullptr});
  for (const auto& [name, t] : index_tensors) {
    if (tensors.find(name) != tensors.end()) {
      fail_write("tensor name " + quoted(name) + " is used by both a data and an index tensor");
    }
    items.push_back({&name, nullptr, &t});
  }
  std::sort(items.begin(), items.end(),
            [](const Item& a, const Item& b) { return *a.name < *b.name; });

  json header = json::object();
  uint64_t offset = 0;
  for (const Item& it : items) {
    if (*it.name == "__metadata__")
      fail_write("'__metadata__' is reserved and cannot name a tensor");
    const Shape& shape = it.f32 ? it.f32->shape() : it.i64->shape();
    const int64_t numel = it.f32 ? it.f32->numel() : it.i64->numel();
    // A default-constructed tensor has shape [] (one element) but no data: not writable.
    if (shape_numel(shape) != numel) {
      fail_write("tensor " + quoted(*it.name) + " has shape " + shape_str(shape) + " but " +
                 std::to_string(numel) + " elements");
    }
    const uint64_t bytes = static_cast<uint64_t>(numel) * (it.f32 ? 4u : 8u);
    header[*it.name] = {{"dtype", it.f32 ? "F32" : "I64"},
                        {"shape", shape},
                        {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception&) {
    fail_write("a tensor name is not valid UTF-8");
  }
  // The reference writer pads the header with spaces to a multiple of 8 so the data is aligned.
  text.append((8 - text.size() % 8) % 8, ' ');

  detail::write_atomically(
      path,
      [&](std::ostream& out) {
        unsigned char len[8];
        detail::store_le<uint64_t>(len, text.size());
        out.write(reinterpret_cast<const char*>(len), 8);
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        for (const Item& it : items) {
          if (it.f32) {
            detail::write_le<uint32_t>(out, it.f32->data(), it.f32->numel());
          } else {
            detail::write_le<uint64_t>(out, it.i64->data(), it.i64->numel());
          }
        }
      },
      batch);
}

TensorMap load_tensors(const std::string& path) {
  const std::filesystem::path p(path);
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == ".safetensors") return load_safetensors(path);
  if (ext == ".npy") {
    TensorMap out;
    out.emplace(p.stem().string(), load_npy(path));
    return out;
  }
  throw Error("cannot load '" + path + "': unsupported file extension '" + ext +
              "' (supported: .safetensors, .npy)");
}

}  // namespace attnscope::io
