// Tests of tensor file I/O: .safetensors and .npy round trips, dtype conversions, malformed files.
// Input files come from users and other tools, so every way a file can be broken must be an Error.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "attnscope/error.hpp"
#include "attnscope/io.hpp"

namespace attnscope {
namespace {

namespace fs = std::filesystem;

// A fresh path under the test tmp dir; each test passes its own name so files never collide.
std::string tmp_file(const std::string& name) {
  const fs::path dir = fs::path(ATTNSCOPE_TEST_TMP) / "io";
  fs::create_directories(dir);
  const fs::path p = dir / name;
  std::error_code ec;
  fs::remove_all(p, ec);
  return p.string();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string le(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
  return s;
}

std::string u16s(std::initializer_list<uint16_t> vals) {
  std::string s;
  for (uint16_t v : vals) s += le(v, 2);
  return s;
}

// A .safetensors file from a literal JSON header and raw data bytes.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  return le(header.size(), 8) + header + data;
}

// A .npy file from a dict literal, padded the way numpy pads (data at a multiple of 64).
std::string npy_bytes(int major, const std::string& dict, const std::string& data) {
  const size_t pre = major == 1 ? 10 : 12;
  const size_t total = (pre + dict.size() + 1 + 63) / 64 * 64;
  const std::string header = dict + std::string(total - pre - dict.size() - 1, ' ') + "\n";
  return std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0' +
         le(header.size(), major == 1 ? 2 : 4) + header + data;
}

// Runs `fn`, which must throw attnscope::Error, and returns its message ("" if it did not throw).
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The message must name the problem (`word`) and the file, and be a single line.
void expect_load_error(const std::string& path, const std::string& word) {
  const std::string msg = error_of([&] { io::load_tensors(path); });
  EXPECT_NE(msg.find(word), std::string::npos)
      << "message: '" << msg << "', wanted '" << word << "'";
  EXPECT_NE(msg.find(fs::path(path).filename().string()), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

bool same_bits(float a, float b) {
  return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
}

Tensor make_tensor(Shape shape, std::vector<float> vals) {
  Tensor t(std::move(shape));
  EXPECT_EQ(static_cast<size_t>(t.numel()), vals.size());
  std::copy(vals.begin(), vals.end(), t.data());
  return t;
}

void expect_bit_equal(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) {
    EXPECT_TRUE(same_bits(a.data()[i], b.data()[i]))
        << "index " << i << ": " << a.data()[i] << " vs " << b.data()[i];
  }
}

// Awkward values that a lossy path would change: -0, NaN with a payload, inf, a subnormal.
std::vector<float> awkward_values() {
  return {1.5f,
          -0.0f,
          std::bit_cast<float>(0x7FC01234u),
          std::numeric_limits<float>::infinity(),
          -std::numeric_limits<float>::infinity(),
          std::numeric_limits<float>::denorm_min(),
          std::numeric_limits<float>::max(),
          -3.25e-7f};
}

TEST(SafetensorsIo, RoundTripF32AndI64IsBitExact) {
  const std::string path = tmp_file("roundtrip.safetensors");
  TensorMap tensors;
  tensors.emplace("q", make_tensor({2, 4}, awkward_values()));
  tensors.emplace("scalar", make_tensor({}, {42.0f}));
  tensors.emplace("empty", Tensor(Shape{0, 3}));
  std::map<std::string, IndexTensor, std::less<>> index;
  IndexTensor sel(Shape{2, 3});
  const int32_t sel_vals[] = {0, 5, -1, 16777216, 7, std::numeric_limits<int32_t>::min()};
  std::copy(std::begin(sel_vals), std::end(sel_vals), sel.data());
  index.emplace("block_idx", sel);
  io::save_safetensors(path, tensors, index);

  const TensorMap back = io::load_safetensors(path);
  ASSERT_EQ(back.size(), 4u);
  for (const auto& [name, t] : tensors) expect_bit_equal(back.at(name), t);
  const Tensor& idx = back.at("block_idx");
  ASSERT_EQ(idx.shape(), sel.shape());
  for (int64_t i = 0; i < idx.numel(); ++i)
    EXPECT_EQ(idx.data()[i], static_cast<float>(sel_vals[i]));

  // The index tensor is widened to I64 on disk, as torch.topk produces.
  const std::string bytes = read_bytes(path);
  EXPECT_NE(bytes.find("\"I64\""), std::string::npos);
}

TEST(SafetensorsIo, HeaderIsSortedAlignedAndSpacePadded) {
  const std::string path = tmp_file("layout.safetensors");
  TensorMap tensors;
  tensors.emplace("zeta", make_tensor({1}, {1.0f}));
  tensors.emplace("alpha", make_tensor({3}, {2.0f, 3.0f, 4.0f}));
  io::save_safetensors(path, tensors);

  const std::string bytes = read_bytes(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_EQ(bytes.size(), 8 + n + 16);
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.front(), '{');
  EXPECT_LT(header.find("\"alpha\""), header.find("\"zeta\""));
  const size_t close = header.rfind('}');
  EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos);
  // Data in name order: alpha (12 bytes) then zeta; 1.0f is 0x3F800000 little-endian.
  EXPECT_EQ(bytes.substr(8 + n + 12, 4), std::string("\x00\x00\x80\x3F", 4));
  EXPECT_NE(header.find("\"data_offsets\":[0,12]"), std::string::npos) << header;
}

TEST(SafetensorsIo, SaveOverwritesExistingFile) {
  const std::string path = tmp_file("overwrite.safetensors");
  write_bytes(path, "old contents that are not a safetensors file");
  TensorMap tensors;
  tensors.emplace("x", make_tensor({2}, {1.0f, 2.0f}));
  io::save_safetensors(path, tensors);
  expect_bit_equal(io::load_safetensors(path).at("x"), tensors.at("x"));
}

TEST(SafetensorsIo, LoadsF16IncludingSubnormalsInfAndNan) {
  const std::string path = tmp_file("f16.safetensors");
  const std::string data = u16s({0x3C00, 0xC000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x7C00, 0xFC00,
                                 0x8000, 0x3555, 0x7E00, 0x8001});
  write_bytes(path, safetensors_bytes(
                        R"({"h":{"dtype":"F16","shape":[3,4],"data_offsets":[0,24]}})", data));
  const Tensor t = io::load_safetensors(path).at("h");
  ASSERT_EQ(t.shape(), (Shape{3, 4}));
  const float* v = t.data();
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], -2.0f);
  EXPECT_EQ(v[2], std::ldexp(1.0f, -24));     // smallest subnormal
  EXPECT_EQ(v[3], std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(v[4], std::ldexp(1.0f, -14));     // smallest normal
  EXPECT_EQ(v[5], 65504.0f);                  // largest finite
  EXPECT_EQ(v[6], std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[7], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(same_bits(v[8], -0.0f));
  EXPECT_EQ(v[9], 0.333251953125f);  // 0x3555 = 1365 * 2^-12
  EXPECT_TRUE(std::isnan(v[10]));
  EXPECT_EQ(v[11], -std::ldexp(1.0f, -24));
}

TEST(SafetensorsIo, LoadsBF16) {
  const std::string path = tmp_file("bf16.safetensors");
  const std::string data = u16s({0x3F80, 0xC000, 0x4049, 0x7F80, 0xFF80, 0x0001, 0x7FC0, 0x8000});
  write_bytes(
      path, safetensors_bytes(R"({"b":{"dtype":"BF16","shape":[8],"data_offsets":[0,16]}})", data));
  const Tensor t = io::load_safetensors(path).at("b");
  const float* v = t.data();
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], -2.0f);
  EXPECT_EQ(v[2], 3.140625f);
  EXPECT_EQ(v[3], std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[4], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[5], std::ldexp(1.0f, -133));  // a bf16 subnormal stays an fp32 subnormal
  EXPECT_TRUE(std::isnan(v[6]));
  EXPECT_TRUE(same_bits(v[7], -0.0f));
}

TEST(SafetensorsIo, LoadsF64RoundedToNearest) {
  const std::string path = tmp_file("f64.safetensors");
  std::string data;
  for (double d : {0.1, -2.5, 1e300, 1e-300}) data += le(std::bit_cast<uint64_t>(d), 8);
  write_bytes(path, safetensors_bytes(
                        R"({"d":{"dtype":"F64","shape":[2,2],"data_offsets":[0,32]}})", data));
  const Tensor t = io::load_safetensors(path).at("d");
  EXPECT_EQ(t.data()[0], 0.1f);
  EXPECT_EQ(t.data()[1], -2.5f);
  EXPECT_EQ(t.data()[2], std::numeric_limits<float>::infinity());
  EXPECT_EQ(t.data()[3], 0.0f);
}

TEST(SafetensorsIo, LoadsExactIntegersBoolAndMetadata) {
  const std::string path = tmp_file("ints.safetensors");
  const std::string data = le(static_cast<uint32_t>(-7), 4) + le(16777216, 4) +    // I32 [0,8)
                           le(1ull << 40, 8) + le(static_cast<uint64_t>(-3), 8) +  // I64 [8,24)
                           le(static_cast<uint16_t>(-300), 2) +                    // I16 [24,26)
                           std::string("\xFE", 1) +                                // I8 [26,27)
                           std::string("\xFF", 1) +                                // U8 [27,28)
                           std::string("\x00\x01\x02", 3);                         // BOOL [28,31)
  const std::string header = R"({"__metadata__":{"format":"pt"},)"
                             R"("i32":{"dtype":"I32","shape":[2],"data_offsets":[0,8]},)"
                             R"("i64":{"dtype":"I64","shape":[2],"data_offsets":[8,24]},)"
                             R"("i16":{"dtype":"I16","shape":[],"data_offsets":[24,26]},)"
                             R"("i8":{"dtype":"I8","shape":[1],"data_offsets":[26,27]},)"
                             R"("u8":{"dtype":"U8","shape":[1],"data_offsets":[27,28]},)"
                             R"("mask":{"dtype":"BOOL","shape":[3],"data_offsets":[28,31]}})";
  write_bytes(path, safetensors_bytes(header, data));
  const TensorMap m = io::load_safetensors(path);
  ASSERT_EQ(m.size(), 6u);  // __metadata__ is not a tensor
  EXPECT_EQ(m.at("i32").data()[0], -7.0f);
  EXPECT_EQ(m.at("i32").data()[1], 16777216.0f);
  EXPECT_EQ(m.at("i64").data()[0], 1099511627776.0f);
  EXPECT_EQ(m.at("i64").data()[1], -3.0f);
  EXPECT_EQ(m.at("i16").data()[0], -300.0f);
  EXPECT_EQ(m.at("i8").data()[0], -2.0f);
  EXPECT_EQ(m.at("u8").data()[0], 255.0f);
  EXPECT_EQ(m.at("mask").data()[0], 0.0f);
  EXPECT_EQ(m.at("mask").data()[1], 1.0f);
  EXPECT_EQ(m.at("mask").data()[2], 1.0f);
}

TEST(SafetensorsIo, RejectsIntegersNotExactInFp32) {
  const std::string p32 = tmp_file("inexact32.safetensors");
  write_bytes(p32, safetensors_bytes(R"({"i":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})",
                                     le(16777217, 4)));
  expect_load_error(p32, "not exactly representable");
  const std::string p64 = tmp_file("inexact64.safetensors");
  write_bytes(p64, safetensors_bytes(R"({"i":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})",
                                     le(std::numeric_limits<int64_t>::max(), 8)));
  expect_load_error(p64, "not exactly representable");
}

TEST(SafetensorsIo, RejectsMissingFileAndDirectory) {
  expect_load_error(tmp_file("does_not_exist.safetensors"), "not found");
  const std::string dir = tmp_file("a_directory.safetensors");
  fs::create_directories(dir);
  expect_load_error(dir, "not a regular file");
}

TEST(SafetensorsIo, RejectsTruncatedFiles) {
  const std::string p = tmp_file("short.safetensors");
  write_bytes(p, "\x10\x00\x00");
  expect_load_error(p, "truncated");
  // Header length claims more bytes than the file holds.
  write_bytes(p, le(64, 8) + "{}");
  expect_load_error(p, "truncated");
  // Data buffer cut short: offsets run past the end.
  write_bytes(p, safetensors_bytes(R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                                   std::string(10, '\0')));
  expect_load_error(p, "out of range");
}

TEST(SafetensorsIo, RejectsOversizedHeader) {
  const std::string p = tmp_file("oversized.safetensors");
  write_bytes(p, le(1ull << 40, 8) + "{}");
  expect_load_error(p, "oversized header");
  write_bytes(p, le(~0ull, 8) + "{}");
  expect_load_error(p, "oversized header");
}

TEST(SafetensorsIo, RejectsInvalidJsonAndNonObjects) {
  const std::string p = tmp_file("badjson.safetensors");
  write_bytes(p, safetensors_bytes(R"({"x": {"dtype": "F32", )", ""));
  expect_load_error(p, "invalid JSON");
  write_bytes(p, safetensors_bytes("[1, 2, 3]", ""));
  expect_load_error(p, "not a JSON object");
  write_bytes(p, safetensors_bytes(R"({"x": 5})", ""));
  expect_load_error(p, "not a JSON object");
  write_bytes(p, safetensors_bytes(R"({"__metadata__": {"k": 1}})", ""));
  expect_load_error(p, "__metadata__");
}

TEST(SafetensorsIo, RejectsMissingOrMistypedFields) {
  const std::string p = tmp_file("fields.safetensors");
  const std::string data(8, '\0');
  write_bytes(p, safetensors_bytes(R"({"x":{"shape":[2],"data_offsets":[0,8]}})", data));
  expect_load_error(p, "missing 'dtype'");
  write_bytes(p, safetensors_bytes(R"({"x":{"dtype":"F32","data_offsets":[0,8]}})", data));
  expect_load_error(p, "missing 'shape'");
  write_bytes(p, safetensors_bytes(R"({"x":{"dtype":"F32","shape":[2]}})", data));
  expect_load_error(p, "missing 'data_offsets'");
  write_bytes(p, safetensors_bytes(R"({"x":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", data));
  expect_load_error(p, "'dtype' must be a string");
  write_bytes(
      p, safetensors_bytes(R"({"x":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", data));
  expect_load_error(p, "'shape' must be an array of integers");
  write_bytes(p,
              safetensors_bytes(R"({"x":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", data));
  expect_load_error(p, "'shape' must be an array of integers");
  write_bytes(p,
              safetensors_bytes(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", data));
  expect_load_error(p, "data_offsets");
  write_bytes(
      p, safetensors_bytes(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", data));
  expect_load_error(p, "non-negative");
}

TEST(SafetensorsIo, RejectsBadShapes) {
  const std::string p = tmp_file("shapes.safetensors");
  write_bytes(p, safetensors_bytes(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})",
                                   std::string(8, '\0')));
  expect_load_error(p, "negative");
  write_bytes(p,
              safetensors_bytes(
                  R"({"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
                  std::string(8, '\0')));
  expect_load_error(p, "too large");
  // numel fits int64 but numel * 4 bytes does not.
  write_bytes(p, safetensors_bytes(
                     R"({"x":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]}})",
                     std::string(8, '\0')));
  expect_load_error(p, "too large");
}

TEST(SafetensorsIo, RejectsShapeByteCountMismatch) {
  const std::string p = tmp_file("mismatch.safetensors");
  write_bytes(p, safetensors_bytes(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                                   std::string(8, '\0')));
  expect_load_error(p, "shape/byte-count mismatch");
  write_bytes(p, safetensors_bytes(R"({"x":{"dtype":"BF16","shape":[2],"data_offsets":[0,8]}})",
                                   std::string(8, '\0')));
  expect_load_error(p, "shape/byte-count mismatch");
}

TEST(SafetensorsIo, RejectsBadOffsets) {
  const std::string p = tmp_file("offsets.safetensors");
  const std::string data(16, '\0');
  write_bytes(p,
              safetensors_bytes(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", data));
  expect_load_error(p, "begin > end");
  write_bytes(
      p, safetensors_bytes(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})", data));
  expect_load_error(p, "out of range");
  write_bytes(
      p, safetensors_bytes(
             R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551608,0]}})", data));
  expect_load_error(p, "data_offsets");
  write_bytes(p, safetensors_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                                   R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                                   data));
  expect_load_error(p, "overlap");
}

TEST(SafetensorsIo, RejectsUnknownDtypeNamingIt) {
  const std::string p = tmp_file("dtype.safetensors");
  write_bytes(
      p, safetensors_bytes(R"({"weights":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})",
                           std::string(2, '\0')));
  expect_load_error(p, "unsupported dtype 'F8_E4M3'");
  expect_load_error(p, "'weights'");
}

// Every prefix of a valid file, and every single-byte corruption of its header, must either load
// or throw Error: never crash, hang or read out of bounds (run under ASan to make that visible).
TEST(SafetensorsIo, TruncationAndCorruptionNeverCrash) {
  const std::string good = tmp_file("fuzz_src.safetensors");
  TensorMap tensors;
  tensors.emplace("a", make_tensor({2, 2}, {1, 2, 3, 4}));
  tensors.emplace("b", make_tensor({3}, {5, 6, 7}));
  io::save_safetensors(good, tensors);
  const std::string bytes = read_bytes(good);
  const std::string p = tmp_file("fuzz.safetensors");
  for (size_t len = 0; len < bytes.size(); ++len) {
    write_bytes(p, bytes.substr(0, len));
    EXPECT_THROW(io::load_safetensors(p), Error) << "prefix of " << len << " bytes";
  }
  for (size_t i = 0; i < bytes.size() - 28; ++i) {
    for (unsigned char c : {'\0', '"', '9', '-', '}', '\xFF'}) {
      std::string bad = bytes;
      bad[i] = static_cast<char>(c);
      write_bytes(p, bad);
      try {
        io::load_safetensors(p);
      } catch (const Error&) {
      }
    }
  }
}

TEST(SafetensorsIo, FailedSaveThrowsAndLeavesNoFile) {
  TensorMap tensors;
  tensors.emplace("x", make_tensor({2}, {1.0f, 2.0f}));
  const std::string missing_dir = tmp_file("no_such_dir");
  const std::string p1 = (fs::path(missing_dir) / "out.safetensors").string();
  const std::string msg = error_of([&] { io::save_safetensors(p1, tensors); });
  EXPECT_NE(msg.find("cannot write"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(p1));
  EXPECT_FALSE(fs::exists(missing_dir));

  // The target is a non-empty directory: writing the temp file works, the rename fails, and the
  // temp file must be cleaned up.
  const std::string target = tmp_file("occupied.safetensors");
  fs::create_directories(fs::path(target) / "child");
  EXPECT_THROW(io::save_safetensors(target, tensors), Error);
  for (const auto& entry : fs::directory_iterator(fs::path(target).parent_path())) {
    EXPECT_EQ(entry.path().filename().string().find("occupied.safetensors.tmp"), std::string::npos)
        << "left behind: " << entry.path();
  }
}

TEST(SafetensorsIo, RejectsUnwritableTensorSets) {
  const std::string p = tmp_file("names.safetensors");
  TensorMap tensors;
  tensors.emplace("x", make_tensor({1}, {1.0f}));
  std::map<std::string, IndexTensor, std::less<>> index;
  index.emplace("x", IndexTensor(Shape{1}));
  EXPECT_NE(error_of([&] { io::save_safetensors(p, tensors, index); }).find("both"),
            std::string::npos);
  TensorMap reserved;
  reserved.emplace("__metadata__", make_tensor({1}, {1.0f}));
  EXPECT_THROW(io::save_safetensors(p, reserved), Error);
  TensorMap empty;
  empty.emplace("e", Tensor());
  EXPECT_THROW(io::save_safetensors(p, empty), Error);
  EXPECT_FALSE(fs::exists(p));
}

TEST(NpyIo, RoundTripIsBitExact) {
  const std::string path = tmp_file("roundtrip.npy");
  const Tensor t = make_tensor({2, 2, 2}, awkward_values());
  io::save_npy(path, t);
  expect_bit_equal(io::load_npy(path), t);

  for (const Shape& shape : {Shape{}, Shape{5}, Shape{0}, Shape{1, 0, 3}}) {
    const std::string p = tmp_file("shape" + std::to_string(shape.size()) + ".npy");
    const Tensor s(shape, 0.5f);
    io::save_npy(p, s);
    expect_bit_equal(io::load_npy(p), s);
  }
}

// The bytes numpy 1.24 writes for np.save(f, np.array([[1.5, -2, 0.25], [3, 4, 5]], '<f4')):
// the header length (0x76 = 118) and layout are numpy's, so saving must reproduce them exactly.
TEST(NpyIo, SaveMatchesNumpyByteForByte) {
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  const std::string expected = std::string("\x93NUMPY\x01\x00\x76\x00", 10) + dict +
                               std::string(118 - dict.size() - 1, ' ') + "\n" +
                               std::string(
                                   "\x00\x00\xc0?\x00\x00\x00\xc0\x00\x00\x80>"
                                   "\x00\x00@@\x00\x00\x80@\x00\x00\xa0@",
                                   24);
  const std::string path = tmp_file("numpy_ref.npy");
  io::save_npy(path, make_tensor({2, 3}, {1.5f, -2.0f, 0.25f, 3.0f, 4.0f, 5.0f}));
  const std::string bytes = read_bytes(path);
  EXPECT_EQ(bytes, expected);
  EXPECT_EQ((bytes.size() - 24) % 64, 0u);

  write_bytes(path, expected);
  const Tensor t = io::load_npy(path);
  ASSERT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.at({1, 2}), 5.0f);
}

TEST(NpyIo, LoadsOtherDtypesAndVersions) {
  const std::string p = tmp_file("dtypes.npy");
  // Version 2.0 with f2 (as np.lib.format.write_array(..., version=(2, 0)) writes).
  write_bytes(p, npy_bytes(2, "{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }",
                           u16s({0x3C00, 0xC000, 0x7BFF, 0x0001})));
  Tensor t = io::load_npy(p);
  ASSERT_EQ(t.shape(), (Shape{4}));
  EXPECT_EQ(t.data()[0], 1.0f);
  EXPECT_EQ(t.data()[1], -2.0f);
  EXPECT_EQ(t.data()[2], 65504.0f);
  EXPECT_EQ(t.data()[3], std::ldexp(1.0f, -24));

  // Version 3.0 with i8.
  write_bytes(p, npy_bytes(3, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 1), }",
                           le(7, 8) + le(static_cast<uint64_t>(-9), 8)));
  t = io::load_npy(p);
  ASSERT_EQ(t.shape(), (Shape{2, 1}));
  EXPECT_EQ(t.data()[1], -9.0f);

  // A 0-d f8 scalar, double-quoted keys and Python 2 'L' suffixes are all valid headers.
  write_bytes(p, npy_bytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
                           le(std::bit_cast<uint64_t>(3.5), 8)));
  t = io::load_npy(p);
  EXPECT_TRUE(t.shape().empty());
  EXPECT_EQ(t.data()[0], 3.5f);
  write_bytes(p, npy_bytes(1, R"({"shape": (1L, 2L), "fortran_order": False, "descr": "<i4"})",
                           le(1, 4) + le(static_cast<uint32_t>(-1), 4)));
  t = io::load_npy(p);
  ASSERT_EQ(t.shape(), (Shape{1, 2}));
  EXPECT_EQ(t.data()[1], -1.0f);

  write_bytes(p, npy_bytes(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }",
                           std::string("\x01\x00\x01", 3)));
  t = io::load_npy(p);
  EXPECT_EQ(t.data()[0], 1.0f);
  EXPECT_EQ(t.data()[1], 0.0f);

  write_bytes(p, npy_bytes(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }",
                           le(16777217, 4)));
  expect_load_error(p, "not exactly representable");
}

TEST(NpyIo, RejectsFortranOrderAndBigEndian) {
  const std::string p = tmp_file("layout.npy");
  write_bytes(p, npy_bytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
                           std::string(16, '\0')));
  expect_load_error(p, "Fortran-order arrays are not supported");
  write_bytes(p, npy_bytes(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
                           std::string(8, '\0')));
  expect_load_error(p, "big-endian");
  write_bytes(p, npy_bytes(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }",
                           std::string(16, '\0')));
  expect_load_error(p, "unsupported dtype '<c8'");
}

TEST(NpyIo, RejectsTruncatedAndOversizedData) {
  const std::string p = tmp_file("truncated.npy");
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }";
  write_bytes(p, npy_bytes(1, dict, std::string(12, '\0')));
  expect_load_error(p, "truncated");
  write_bytes(p, npy_bytes(1, dict, std::string(20, '\0')));
  expect_load_error(p, "trailing bytes");
  write_bytes(p, std::string("\x93NUMPY\x01\x00", 8));
  expect_load_error(p, "truncated");
  write_bytes(p, std::string("\x93NUMPY\x01\x00\xff\x7f{}", 12));
  expect_load_error(p, "truncated");
  write_bytes(p, std::string("\x93NUMPY\x02\x00\xff\xff\xff\x7f", 12));
  expect_load_error(p, "oversized header");
  // numel * 4 overflows int64: must be an Error, not an allocation attempt.
  write_bytes(p, npy_bytes(1,
                           "{'descr': '<f4', 'fortran_order': False, "
                           "'shape': (4611686018427387904,), }",
                           ""));
  expect_load_error(p, "too large");
}

TEST(NpyIo, RejectsMalformedHeaders) {
  const std::string p = tmp_file("header.npy");
  const std::string data(8, '\0');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'"},
      {"{'descr': '<f4', 'shape': (2,)}", "missing key 'fortran_order'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", "unexpected key"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", "duplicate"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", "True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", "negative"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2)}", "not a tuple"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [2]}", "expected '('"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", "too large"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}", "structured"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", "expected ',' or '}'"},
      {"{'descr': '<f4 , 'fortran_order': False, 'shape': (2,)}", "malformed .npy header"},
      {"not a dict", "malformed .npy header"},
  };
  for (const auto& [dict, word] : cases) {
    SCOPED_TRACE(dict);
    write_bytes(p, npy_bytes(1, dict, data));
    expect_load_error(p, word);
  }
  write_bytes(p, "PK\x03\x04 this is a zip, not a .npy file");
  expect_load_error(p, "bad magic");
  write_bytes(p, std::string("\x93NUMPY\x04\x00\x00\x00\x00\x00", 12));
  expect_load_error(p, "format version 4.0");
}

TEST(NpyIo, TruncationNeverCrashes) {
  const std::string src = tmp_file("fuzz_src.npy");
  io::save_npy(src, make_tensor({3}, {1, 2, 3}));
  const std::string bytes = read_bytes(src);
  const std::string p = tmp_file("fuzz.npy");
  for (size_t len = 0; len < bytes.size(); ++len) {
    write_bytes(p, bytes.substr(0, len));
    EXPECT_THROW(io::load_npy(p), Error) << "prefix of " << len << " bytes";
  }
}

TEST(NpyIo, FailedSaveThrowsAndLeavesNoFile) {
  const std::string dir = tmp_file("npy_missing_dir");
  const std::string p = (fs::path(dir) / "x.npy").string();
  EXPECT_THROW(io::save_npy(p, make_tensor({1}, {1.0f})), Error);
  EXPECT_FALSE(fs::exists(dir));
  const std::string q = tmp_file("default.npy");
  EXPECT_THROW(io::save_npy(q, Tensor()), Error);
  EXPECT_FALSE(fs::exists(q));
}

TEST(TensorsIo, LoadTensorsDispatchesOnExtension) {
  const std::string npy = tmp_file("Attn_Weights.NPY");
  io::save_npy(npy, make_tensor({2}, {1.0f, 2.0f}));
  const TensorMap a = io::load_tensors(npy);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a.begin()->first, "Attn_Weights");
  EXPECT_EQ(a.begin()->second.data()[1], 2.0f);

  const std::string st = tmp_file("model.SafeTensors");
  TensorMap m;
  m.emplace("k", make_tensor({1}, {3.0f}));
  io::save_safetensors(st, m);
  EXPECT_EQ(io::load_tensors(st).at("k").data()[0], 3.0f);

  const std::string txt = tmp_file("weights.pt");
  write_bytes(txt, "x");
  const std::string msg = error_of([&] { io::load_tensors(txt); });
  EXPECT_NE(msg.find(".safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find(".npy"), std::string::npos) << msg;
  EXPECT_NE(msg.find("weights.pt"), std::string::npos) << msg;
}

}  // namespace
}  // namespace attnscope
