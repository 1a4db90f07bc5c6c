// Reading and writing NumPy .npy files (format versions 1.0, 2.0 and 3.0).
// The header is a Python dict literal; it is parsed here by a small strict parser, never evaluated.
#include <cctype>
#include <cstdint>
#include <fstream>
#include <functional>
#include <istream>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "attnscope/error.hpp"
#include "attnscope/io.hpp"
#include "io/io_detail.hpp"

namespace attnscope::io {

namespace {

using detail::RawType;

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
// Real headers for the dtypes we accept are a few hundred bytes; this bounds hostile input.
constexpr uint64_t kMaxHeaderBytes = 1u << 20;

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw Error("cannot load '" + path + "': " + problem);
}

struct Header {
  RawType type = RawType::F32;
  std::string descr;
  Shape shape;
};

// Strict recursive-descent parser for the three-key dict numpy writes, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& path) : s_(text), path_(path) {}

  Header parse() {
    std::optional<std::string> descr;
    std::optional<bool> fortran;
    std::optional<Shape> shape;
    expect('{');
    while (true) {
      skip_ws();
      if (peek() == '}') {
        ++pos_;
        break;
      }
      const std::string key = parse_string();
      expect(':');
      if (key == "descr") {
        if (descr) bad("duplicate key 'descr'");
        skip_ws();
        if (peek() != '\'' && peek() != '"') {
          bad("'descr' is not a simple dtype string (structured dtypes are not supported)");
        }
        descr = parse_string();
      } else if (key == "fortran_order") {
        if (fortran) bad("duplicate key 'fortran_order'");
        fortran = parse_bool();
      } else if (key == "shape") {
        if (shape) bad("duplicate key 'shape'");
        shape = parse_shape();
      } else {
        bad("unexpected key '" + printable(key) + "'");
      }
      skip_ws();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != '}') {
        bad("expected ',' or '}'");
      }
    }
    skip_ws();
    if (pos_ != s_.size()) bad("unexpected text after the dict");
    if (!descr) bad("missing key 'descr'");
    if (!fortran) bad("missing key 'fortran_order'");
    if (!shape) bad("missing key 'shape'");
    if (*fortran) {
      fail(path_, "Fortran-order arrays are not supported; save with np.ascontiguousarray");
    }
    Header h;
    h.descr = *descr;
    h.type = dtype_of(*descr);
    h.shape = std::move(*shape);
    return h;
  }

 private:
  [[noreturn]] void bad(const std::string& what) {
    fail(path_, "malformed .npy header: " + what + " at offset " + std::to_string(pos_));
  }

  static std::string printable(std::string_view v) {
    std::string out;
    for (char c : v.substr(0, 40)) out += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
    return out;
  }

  // Only little-endian (or byte-order-free) plain dtypes; the rest say how to convert in numpy.
  RawType dtype_of(const std::string& d) {
    if (d == "<f4") return RawType::F32;
    if (d == "<f8") return RawType::F64;
    if (d == "<f2") return RawType::F16;
    if (d == "<i4") return RawType::I32;
    if (d == "<i8") return RawType::I64;
    if (d == "|b1") return RawType::Bool;
    if (!d.empty() && d[0] == '>') {
      fail(path_, "big-endian dtype '" + printable(d) +
                      "' is not supported; convert with arr.astype(arr.dtype.newbyteorder('<'))");
    }
    fail(path_,
         "unsupported dtype '" + printable(d) + "' (supported: <f4, <f8, <f2, <i4, <i8, |b1)");
  }

  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }

  void skip_ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }

  void expect(char c) {
    skip_ws();
    if (peek() != c) bad(std::string("expected '") + c + "'");
    ++pos_;
  }

  // Python str literal without escapes: numpy never writes any for the keys and dtypes we accept.
  std::string parse_string() {
    skip_ws();
    const char q = peek();
    if (q != '\'' && q != '"') bad("expected a quoted string");
    ++pos_;
    const size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != q) {
      if (s_[pos_] == '\\' || s_[pos_] == '\n') bad("unsupported character in a string");
      ++pos_;
    }
    if (pos_ >= s_.size()) bad("unterminated string");
    return std::string(s_.substr(start, pos_++ - start));
  }

  bool parse_bool() {
    skip_ws();
    if (s_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (s_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    bad("'fortran_order' must be True or False");
  }

  // (), (n,) and (a, b, ...) with an optional trailing comma; Python 2 files may add 'L' suffixes.
  Shape parse_shape() {
    Shape shape;
    bool trailing_comma = false;
    expect('(');
    while (true) {
      skip_ws();
      if (peek() == ')') {
        ++pos_;
        break;
      }
      if (peek() == '-') bad("negative dimension in 'shape'");
      if (!std::isdigit(static_cast<unsigned char>(peek()))) bad("'shape' must be a tuple of ints");
      int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        const int digit = peek() - '0';
        if (v > (std::numeric_limits<int64_t>::max() - digit) / 10) {
          bad("dimension in 'shape' is too large");
        }
        v = v * 10 + digit;
        ++pos_;
      }
      if (peek() == 'L') ++pos_;
      shape.push_back(v);
      skip_ws();
      trailing_comma = peek() == ',';
      if (trailing_comma) {
        ++pos_;
      } else if (peek() != ')') {
        bad("expected ',' or ')' in 'shape'");
      }
    }
    // "(3)" is the int 3 in Python, not a tuple; numpy rejects it too.
    if (shape.size() == 1 && !trailing_comma) bad("'shape' (n) is not a tuple; expected (n,)");
    return shape;
  }

  std::string_view s_;
  const std::string& path_;
  size_t pos_ = 0;
};

}  // namespace

Tensor load_npy(const std::string& path) {
  const uint64_t file_size = detail::checked_file_size(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open the file");

  unsigned char pre[12] = {};
  if (file_size < 10) {
    fail(path, "file is truncated (" + std::to_string(file_size) +
                   " bytes; too short for a .npy preamble)");
  }
  in.read(reinterpret_cast<char*>(pre), 8);
  if (in.gcount() != 8) fail(path, "file is truncated (cannot read the .npy preamble)");
  if (std::string_view(reinterpret_cast<const char*>(pre), kMagicLen) !=
      std::string_view(kMagic, kMagicLen)) {
    fail(path, "not a .npy file (bad magic bytes)");
  }
  const int major = pre[6];
  const int minor = pre[7];
  uint64_t header_len = 0;
  uint64_t header_start = 0;
  if (major == 1 && minor == 0) {
    in.read(reinterpret_cast<char*>(pre + 8), 2);
    if (in.gcount() != 2) fail(path, "file is truncated (cannot read the header length)");
    header_len = static_cast<uint64_t>(pre[8]) | static_cast<uint64_t>(pre[9]) << 8;
    header_start = 10;
  } else if ((major == 2 || major == 3) && minor == 0) {
    in.read(reinterpret_cast<char*>(pre + 8), 4);
    if (in.gcount() != 4) fail(path, "file is truncated (cannot read the header length)");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= static_cast<uint64_t>(pre[8 + i]) << (8 * i);
    header_start = 12;
  } else {
    fail(path, "unsupported .npy format version " + std::to_string(major) + "." +
                   std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)");
  }
  if (header_len > kMaxHeaderBytes) {
    fail(path, "oversized header (" + std::to_string(header_len) + " bytes)");
  }
  if (header_len > file_size - header_start) {
    fail(path, "file is truncated (header length " + std::to_string(header_len) +
                   " exceeds the file size " + std::to_string(file_size) + ")");
  }
  std::string text(static_cast<size_t>(header_len), '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_len));
  if (in.gcount() != static_cast<std::streamsize>(header_len)) {
    fail(path, "file is truncated (header ends early)");
  }

  const Header h = HeaderParser(text, path).parse();
  int64_t numel = 0;
  int64_t bytes = 0;
  try {
    numel = shape_numel(h.shape);
    bytes = checked_mul(numel, detail::raw_size(h.type), "array byte size");
  } catch (const Error& e) {
    fail(path, e.what());
  }
  const uint64_t available = file_size - header_start - header_len;
  if (static_cast<uint64_t>(bytes) > available) {
    fail(path, "file is truncated: shape " + shape_str(h.shape) + " of '" + h.descr + "' needs " +
                   std::to_string(bytes) + " data bytes, the file has " +
                   std::to_string(available));
  }
  if (static_cast<uint64_t>(bytes) < available) {
    fail(path, "data size mismatch: shape " + shape_str(h.shape) + " of '" + h.descr + "' needs " +
                   std::to_string(bytes) + " data bytes, the file has " +
                   std::to_string(available) + " (trailing bytes)");
  }
  Tensor t(h.shape);
  detail::read_converted(in, h.type, numel, t.data(), "cannot load '" + path + "'");
  return t;
}

void save_npy(const std::string& path, const Tensor& t, OutputBatch* batch) {
  // A default-constructed tensor has shape () (one element) but no data: not writable.
  if (shape_numel(t.shape()) != t.numel()) {
    throw Error("cannot write '" + path + "': tensor has shape " + shape_str(t.shape()) + " but " +
                std::to_string(t.numel()) + " elements");
  }
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < t.shape().size(); ++i) {
    if (i) dict += ", ";
    dict += std::to_string(t.shape()[i]);
  }
  if (t.shape().size() == 1) dict += ",";  // (n,) is a tuple, (n) would not be
  dict += "), }";
  // numpy aligns the data to 64 bytes: preamble (10) + dict + spaces + '\n'.
  const size_t total = (10 + dict.size() + 1 + 63) / 64 * 64;
  const size_t header_len = total - 10;
  if (header_len > 0xFFFF) {
    throw Error("cannot write '" + path + "': shape " + shape_str(t.shape()) +
                " is too long for a version 1.0 .npy header");
  }
  dict.append(header_len - dict.size() - 1, ' ');
  dict += '\n';

  detail::write_atomically(
      path,
      [&](std::ostream& out) {
        out.write(kMagic, kMagicLen);
        const char pre[4] = {1, 0, static_cast<char>(header_len & 0xFF),
                             static_cast<char>((header_len >> 8) & 0xFF)};
        out.write(pre, 4);
        out.write(dict.data(), static_cast<std::streamsize>(dict.size()));
        detail::write_f32_le(out, t.data(), t.numel());
      },
      batch);
}

}  // namespace attnscope::io
