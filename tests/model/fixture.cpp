#include "fixture.hpp"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include <gtest/gtest.h>

#include "tokenizer_fixtures.hpp"

namespace attnscope::test {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Box-Muller on a fixed engine: the same seed writes the same model on every platform.
class Normal {
 public:
  explicit Normal(uint64_t seed) : rng_(seed * 0x9E3779B97F4A7C15ull + 12345) {}
  double operator()() {
    const double u1 = (static_cast<double>(rng_() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }

 private:
  std::mt19937_64 rng_;
};

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

double f16_bits_to_double(uint16_t h) {
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (exp == 0) return sign * std::ldexp(mant, -24);
  if (exp == 31) return mant ? NAN : sign * INFINITY;
  return sign * std::ldexp(1024 + mant, exp - 25);
}

double bf16_bits_to_double(uint16_t b) {
  return static_cast<double>(std::bit_cast<float>(static_cast<uint32_t>(b) << 16));
}

template <class T>
void append(std::vector<uint8_t>& out, T value) {
  uint8_t raw[sizeof(T)];
  std::memcpy(raw, &value, sizeof(T));
  out.insert(out.end(), raw, raw + sizeof(T));
}

size_t dtype_size(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64") return 8;
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL") return 1;
  throw std::invalid_argument("fixture: unknown dtype " + dtype);
}

double decode_value(const uint8_t* p, const std::string& dtype) {
  if (dtype == "F64") {
    double v;
    std::memcpy(&v, p, 8);
    return v;
  }
  if (dtype == "F32") {
    float v;
    std::memcpy(&v, p, 4);
    return v;
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  if (dtype == "F16") return f16_bits_to_double(h);
  if (dtype == "BF16") return bf16_bits_to_double(h);
  throw std::invalid_argument("fixture: cannot decode " + dtype);
}

// The tensors of one model, in the order they are written.
struct Planned {
  std::string name;
  std::vector<int64_t> shape;
  double mean = 0, stddev = 0;  // values: mean + stddev * N(0, 1)
  std::vector<double> fixed;    // when set, these values instead (mask buffers)
};

double inv_sqrt(int64_t n) {
  return 1.0 / std::sqrt(static_cast<double>(n));
}

std::vector<Planned> plan_llama(const TinyModelSpec& s) {
  const int64_t d = s.hidden, dh = s.effective_head_dim(), h = s.heads, hkv = s.kv_heads;
  const int64_t inter = s.intermediate, v = s.vocab;
  const double in_d = inv_sqrt(d);
  // Projections are scaled so q.k / sqrt(Dh) has spread ~2: attention is far from uniform, so a
  // wrong RoPE, scale or mask moves the logits well beyond the tolerance.
  std::vector<Planned> p;
  // Small embeddings as real initializations have them: mean(x^2) ~ 2.5e-3 on the first norm's
  // input, where rms_norm_eps 1e-5 vs 1e-6 changes the logits by ~1e-3, well past the tolerance.
  p.push_back({"model.embed_tokens.weight", {v, d}, 0, 0.05, {}});
  for (int64_t l = 0; l < s.layers; ++l) {
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    const bool qkv_b = s.attention_bias || s.qkv_bias;
    p.push_back({pre + "input_layernorm.weight", {d}, 1.0, 0.2, {}});
    p.push_back({pre + "self_attn.q_proj.weight", {h * dh, d}, 0, 1.5 * in_d, {}});
    if (qkv_b) p.push_back({pre + "self_attn.q_proj.bias", {h * dh}, 0, 0.3, {}});
    p.push_back({pre + "self_attn.k_proj.weight", {hkv * dh, d}, 0, 1.5 * in_d, {}});
    if (qkv_b) p.push_back({pre + "self_attn.k_proj.bias", {hkv * dh}, 0, 0.3, {}});
    p.push_back({pre + "self_attn.v_proj.weight", {hkv * dh, d}, 0, in_d, {}});
    if (qkv_b) p.push_back({pre + "self_attn.v_proj.bias", {hkv * dh}, 0, 0.3, {}});
    p.push_back({pre + "self_attn.o_proj.weight", {d, h * dh}, 0, inv_sqrt(h * dh), {}});
    if (s.attention_bias) p.push_back({pre + "self_attn.o_proj.bias", {d}, 0, 0.3, {}});
    if (s.qk_norm) {
      p.push_back({pre + "self_attn.q_norm.weight", {dh}, 1.0, 0.3, {}});
      p.push_back({pre + "self_attn.k_norm.weight", {dh}, 1.0, 0.3, {}});
    }
    p.push_back({pre + "post_attention_layernorm.weight", {d}, 1.0, 0.2, {}});
    p.push_back({pre + "mlp.gate_proj.weight", {inter, d}, 0, in_d, {}});
    if (s.mlp_bias) p.push_back({pre + "mlp.gate_proj.bias", {inter}, 0, 0.3, {}});
    p.push_back({pre + "mlp.up_proj.weight", {inter, d}, 0, in_d, {}});
    if (s.mlp_bias) p.push_back({pre + "mlp.up_proj.bias", {inter}, 0, 0.3, {}});
    p.push_back({pre + "mlp.down_proj.weight", {d, inter}, 0, inv_sqrt(inter), {}});
    if (s.mlp_bias) p.push_back({pre + "mlp.down_proj.bias", {d}, 0, 0.3, {}});
  }
  p.push_back({"model.norm.weight", {d}, 1.0, 0.2, {}});
  if (!s.tied) p.push_back({"lm_head.weight", {v, d}, 0, in_d, {}});
  return p;
}

std::vector<Planned> plan_gpt2(const TinyModelSpec& s) {
  const int64_t d = s.hidden, inter = s.intermediate, pos = s.max_positions;
  const double in_d = inv_sqrt(d);
  const std::string root = s.gpt2_prefix ? "transformer." : "";
  std::vector<Planned> p;
  p.push_back({root + "wte.weight", {s.vocab, d}, 0, 0.3, {}});
  p.push_back({root + "wpe.weight", {pos, d}, 0, 0.3, {}});
  for (int64_t l = 0; l < s.layers; ++l) {
    const std::string pre = root + "h." + std::to_string(l) + ".";
    p.push_back({pre + "ln_1.weight", {d}, 1.0, 0.2, {}});
    p.push_back({pre + "ln_1.bias", {d}, 0, 0.1, {}});
    p.push_back({pre + "attn.c_attn.weight", {d, 3 * d}, 0, 1.5 * in_d, {}});
    p.push_back({pre + "attn.c_attn.bias", {3 * d}, 0, 0.3, {}});
    p.push_back({pre + "attn.c_proj.weight", {d, d}, 0, in_d, {}});
    p.push_back({pre + "attn.c_proj.bias", {d}, 0, 0.1, {}});
    if (s.gpt2_mask_buffers) {
      std::vector<double> tril(static_cast<size_t>(pos * pos), 0.0);
      for (int64_t i = 0; i < pos; ++i)
        for (int64_t j = 0; j <= i; ++j) tril[static_cast<size_t>(i * pos + j)] = 1.0;
      p.push_back({pre + "attn.bias", {1, 1, pos, pos}, 0, 0, std::move(tril)});
      p.push_back({pre + "attn.masked_bias", {}, 0, 0, {-1e4}});
    }
    p.push_back({pre + "ln_2.weight", {d}, 1.0, 0.2, {}});
    p.push_back({pre + "ln_2.bias", {d}, 0, 0.1, {}});
    // Pre-activations spread to |x| ~ 3, where gelu_new and erf gelu differ most (~5e-4).
    p.push_back({pre + "mlp.c_fc.weight", {d, inter}, 0, 2.5 * in_d, {}});
    p.push_back({pre + "mlp.c_fc.bias", {inter}, 0, 0.3, {}});
    p.push_back({pre + "mlp.c_proj.weight", {inter, d}, 0, 2 * inv_sqrt(inter), {}});
    p.push_back({pre + "mlp.c_proj.bias", {d}, 0, 0.1, {}});
  }
  p.push_back({root + "ln_f.weight", {d}, 1.0, 0.2, {}});
  p.push_back({root + "ln_f.bias", {d}, 0, 0.1, {}});
  return p;
}

std::string torch_dtype(const std::string& dtype) {
  if (dtype == "F16") return "float16";
  if (dtype == "BF16") return "bfloat16";
  return "float32";
}

std::string shard_name(int i, int n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", i + 1, n);
  return buf;
}

}  // namespace

double TinyModelSpec::effective_norm_eps() const {
  if (norm_eps) return *norm_eps;
  return model_type == "gpt2" ? 1e-5 : 1e-6;
}

const std::vector<double>& TinyModel::w(const std::string& name) const {
  auto it = weights.find(name);
  if (it == weights.end()) throw std::out_of_range("fixture: no weight " + name);
  return it->second;
}

uint16_t float_to_bf16_bits(float value) {
  const uint32_t x = std::bit_cast<uint32_t>(value);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

uint16_t float_to_f16_bits(float value) {
  const uint32_t x = std::bit_cast<uint32_t>(value);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t a = x & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00;
  if (a >= 0x477ff000u) return sign | 0x7c00;  // >= 65520 rounds to infinity
  if (a < 0x38800000u) {                       // below 2^-14: a subnormal half, units of 2^-24
    const float units = std::ldexp(std::bit_cast<float>(a), 24);
    return sign | static_cast<uint16_t>(std::nearbyint(units));  // FE_TONEAREST: ties to even
  }
  const uint32_t exp = (a >> 23) - 127 + 15, mant = a & 0x7fffffu;
  uint32_t h = (exp << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry moves into the exponent
  return sign | static_cast<uint16_t>(h);
}

RawTensor encode_tensor(std::string name, const std::string& dtype, std::vector<int64_t> shape,
                        std::span<const double> values) {
  RawTensor t{std::move(name), dtype, std::move(shape), {}};
  t.bytes.reserve(values.size() * dtype_size(dtype));
  for (double v : values) {
    if (dtype == "F64")
      append(t.bytes, v);
    else if (dtype == "F32")
      append(t.bytes, static_cast<float>(v));
    else if (dtype == "F16")
      append(t.bytes, float_to_f16_bits(static_cast<float>(v)));
    else if (dtype == "BF16")
      append(t.bytes, float_to_bf16_bits(static_cast<float>(v)));
    else if (dtype == "I64")
      append(t.bytes, static_cast<int64_t>(v));
    else if (dtype == "I32")
      append(t.bytes, static_cast<int32_t>(v));
    else if (dtype == "I16")
      append(t.bytes, static_cast<int16_t>(v));
    else if (dtype == "I8")
      append(t.bytes, static_cast<int8_t>(v));
    else if (dtype == "U8")
      append(t.bytes, static_cast<uint8_t>(v));
    else if (dtype == "BOOL")
      append(t.bytes, static_cast<uint8_t>(v != 0));
    else
      throw std::invalid_argument("fixture: unknown dtype " + dtype);
  }
  return t;
}

double round_to_dtype(double value, const std::string& dtype) {
  if (dtype == "F64") return value;
  const RawTensor t = encode_tensor("x", dtype, {1}, std::span<const double>(&value, 1));
  return decode_value(t.bytes.data(), dtype);
}

void write_safetensors(const std::string& path, const std::vector<RawTensor>& tensors,
                       const json& header_extra) {
  json header = json::object();
  uint64_t offset = 0;
  for (const RawTensor& t : tensors) {
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  header["__metadata__"] = {{"format", "pt"}};
  for (auto it = header_extra.begin(); it != header_extra.end(); ++it) header[it.key()] = *it;
  std::string text = header.dump();
  while (text.size() % 8 != 0) text += ' ';  // what the reference writer does: aligned payloads
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("fixture: cannot write " + path);
  const uint64_t len = text.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const RawTensor& t : tensors)
    out.write(reinterpret_cast<const char*>(t.bytes.data()),
              static_cast<std::streamsize>(t.bytes.size()));
}

json tiny_config(const TinyModelSpec& s) {
  json c;
  const std::string& mt = s.model_type;
  if (mt == "gpt2") {
    c = {{"architectures", {"GPT2LMHeadModel"}},
         {"model_type", "gpt2"},
         {"vocab_size", s.vocab},
         {"n_embd", s.hidden},
         {"n_layer", s.layers},
         {"n_head", s.heads},
         {"n_positions", s.max_positions},
         {"n_ctx", s.max_positions},
         {"activation_function", s.gpt2_activation},
         {"resid_pdrop", 0.1},
         {"embd_pdrop", 0.1},
         {"attn_pdrop", 0.1},
         {"initializer_range", 0.02},
         {"scale_attn_weights", true},
         {"scale_attn_by_inverse_layer_idx", false},
         {"reorder_and_upcast_attn", false},
         {"bos_token_id", 0},
         {"eos_token_id", 0},
         {"torch_dtype", torch_dtype(s.dtype)}};
    // n_inner null means 4 * n_embd: written as null then, to exercise the default.
    c["n_inner"] = s.intermediate == 4 * s.hidden ? json(nullptr) : json(s.intermediate);
    if (s.norm_eps) c["layer_norm_epsilon"] = *s.norm_eps;
    return c;
  }
  static const std::map<std::string, std::string> arch = {{"llama", "LlamaForCausalLM"},
                                                          {"mistral", "MistralForCausalLM"},
                                                          {"qwen2", "Qwen2ForCausalLM"},
                                                          {"qwen3", "Qwen3ForCausalLM"}};
  auto a = arch.find(mt);
  c = {{"architectures", {a == arch.end() ? std::string("SomethingForCausalLM") : a->second}},
       {"model_type", mt},
       {"vocab_size", s.vocab},
       {"hidden_size", s.hidden},
       {"intermediate_size", s.intermediate},
       {"num_hidden_layers", s.layers},
       {"num_attention_heads", s.heads},
       {"num_key_value_heads", s.kv_heads},
       {"max_position_embeddings", s.max_positions},
       {"hidden_act", "silu"},
       {"rope_theta", s.rope_theta},
       {"tie_word_embeddings", s.tied},
       {"initializer_range", 0.02},
       {"attention_dropout", 0.0},
       {"use_cache", true},
       {"bos_token_id", 1},
       {"eos_token_id", 2},
       {"torch_dtype", torch_dtype(s.dtype)},
       {"transformers_version", "4.51.0"}};
  if (s.norm_eps) c["rms_norm_eps"] = *s.norm_eps;
  // Qwen3's own default head_dim is 128, not hidden / heads: real Qwen3 configs always give it.
  if (s.head_dim > 0 || mt == "qwen3") c["head_dim"] = s.effective_head_dim();
  if (mt == "llama") {
    c["attention_bias"] = s.attention_bias;
    c["mlp_bias"] = s.mlp_bias;
    c["pretraining_tp"] = 1;
    c["rope_scaling"] = nullptr;
    if (s.llama3_rope)
      c["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", 8.0},
                           {"low_freq_factor", 1.0},
                           {"high_freq_factor", 4.0},
                           {"original_max_position_embeddings", 32}};
  } else if (mt == "mistral") {
    c["sliding_window"] = s.sliding_window ? json(*s.sliding_window) : json(nullptr);
  } else if (mt == "qwen2" || mt == "qwen3") {
    // Real Qwen configs carry a sliding_window that use_sliding_window = false switches off; a
    // window shorter than the test texts catches a reader that applies it anyway.
    c["use_sliding_window"] = false;
    c["sliding_window"] = 4;
    c["max_window_layers"] = s.layers;
    c["rope_scaling"] = nullptr;
    if (mt == "qwen3") c["attention_bias"] = false;
  }
  return c;
}

TinyModel write_tiny_model(const TinyModelSpec& spec, const std::string& dir) {
  fs::create_directories(dir);
  TinyModel m;
  m.dir = dir;
  m.spec = spec;
  m.config = tiny_config(spec);
  write_json((fs::path(dir) / "config.json").string(), m.config);

  const std::vector<Planned> plan = spec.model_type == "gpt2" ? plan_gpt2(spec) : plan_llama(spec);
  Normal normal(spec.seed);
  std::vector<RawTensor> raw;
  for (const Planned& p : plan) {
    std::vector<double> values = p.fixed;
    if (values.empty()) {
      values.resize(static_cast<size_t>(numel(p.shape)));
      for (double& v : values) v = p.mean + p.stddev * normal();
    }
    raw.push_back(encode_tensor(p.name, spec.dtype, p.shape, values));
    // Keep what a reader gets back from the stored bits, not the drawn values.
    const size_t es = dtype_size(spec.dtype);
    for (size_t i = 0; i < values.size(); ++i)
      values[i] = decode_value(raw.back().bytes.data() + i * es, spec.dtype);
    m.weights[p.name] = std::move(values);
    m.shapes[p.name] = p.shape;
  }

  const int n = std::max(1, spec.shards);
  if (n == 1) {
    m.shard_files = {"model.safetensors"};
    write_safetensors((fs::path(dir) / "model.safetensors").string(), raw);
    return m;
  }
  // Contiguous runs of tensors per shard, as save_pretrained splits by size.
  json weight_map = json::object();
  uint64_t total = 0;
  const size_t per = (raw.size() + static_cast<size_t>(n) - 1) / static_cast<size_t>(n);
  for (int i = 0; i < n; ++i) {
    const size_t b = std::min(raw.size(), static_cast<size_t>(i) * per);
    const size_t e = std::min(raw.size(), b + per);
    std::vector<RawTensor> part(raw.begin() + static_cast<std::ptrdiff_t>(b),
                                raw.begin() + static_cast<std::ptrdiff_t>(e));
    const std::string file = shard_name(i, n);
    for (const RawTensor& t : part) {
      weight_map[t.name] = file;
      total += t.bytes.size();
    }
    m.shard_files.push_back(file);
    write_safetensors((fs::path(dir) / file).string(), part);
  }
  write_json((fs::path(dir) / "model.safetensors.index.json").string(),
             {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}});
  return m;
}

void write_byte_level_tokenizer(const std::string& dir, int64_t vocab, bool bos) {
  if (vocab < 300)
    throw std::invalid_argument("fixture: a byte-level tokenizer needs vocab >= 300");
  // The tokenizer tests' builder (tokenizer_fixtures.hpp): the 256 byte symbols as ids 0..255,
  // then one token per merge. Merges in raw bytes, each one's parts existing before it.
  const std::vector<std::pair<std::string, std::string>> merges = {
      {" ", "t"}, {"h", "e"}, {" t", "he"}, {"i", "n"},  {"a", "n"},  {"e", "r"},
      {"o", "n"}, {" ", "a"}, {"r", "e"},   {" a", "n"}, {" ", "s"},  {"i", "s"},
      {"e", "n"}, {" ", "w"}, {"o", "u"},   {"t", "h"},  {"in", "g"}, {" ", "c"}};
  json t = testing::byte_level_json(merges);
  if (bos) {
    const auto id = static_cast<int32_t>(256 + merges.size());
    t["added_tokens"].push_back(testing::added_token(id, "<|bos|>", /*special=*/true));
    t["post_processor"] = testing::bos_template("<|bos|>", id);
  }
  fs::create_directories(dir);
  write_json((fs::path(dir) / "tokenizer.json").string(), t);
}

std::vector<int32_t> random_ids(int64_t count, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed * 0x2545F4914F6CDD1Dull + 7);
  std::vector<int32_t> ids(static_cast<size_t>(count));
  for (int32_t& id : ids) id = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  return ids;
}

std::string test_dir(const std::string& tag) {
  std::string name = "model";
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info())
    name = std::string(info->test_suite_name()) + "." + info->name();
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_') ch = '_';
  if (!tag.empty()) name += "_" + tag;
  const fs::path dir =
      fs::path(ATTNSCOPE_TEST_TMP) / "model" / (name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

void write_text(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("fixture: cannot write " + path);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("fixture: cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json read_json(const std::string& path) {
  return json::parse(read_text(path));
}

void write_json(const std::string& path, const json& value) {
  write_text(path, value.dump(2));
}

}  // namespace attnscope::test
