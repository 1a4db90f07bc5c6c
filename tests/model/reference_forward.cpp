#include "reference_forward.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace attnscope::test {
namespace {

using Vec = std::vector<double>;

size_t at(int64_t i) {
  return static_cast<size_t>(i);
}

// y[t, o] = sum_i x[t, i] * W[o, i] (+ b[o]): nn.Linear, W stored [out, in].
Vec linear(const Vec& x, int64_t rows, int64_t in, const Vec& w, int64_t out, const Vec* b) {
  if (w.size() != at(in * out)) throw std::logic_error("reference: linear weight size");
  Vec y(at(rows * out), 0.0);
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double s = b ? (*b)[at(o)] : 0.0;
      for (int64_t i = 0; i < in; ++i) s += x[at(t * in + i)] * w[at(o * in + i)];
      y[at(t * out + o)] = s;
    }
  return y;
}

// y[t, o] = sum_i x[t, i] * W[i, o] + b[o]: GPT-2's Conv1D, W stored [in, out].
Vec conv1d(const Vec& x, int64_t rows, int64_t in, const Vec& w, int64_t out, const Vec& b) {
  if (w.size() != at(in * out)) throw std::logic_error("reference: conv1d weight size");
  Vec y(at(rows * out), 0.0);
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double s = b[at(o)];
      for (int64_t i = 0; i < in; ++i) s += x[at(t * in + i)] * w[at(i * out + o)];
      y[at(t * out + o)] = s;
    }
  return y;
}

// Each row of `width` values: x / sqrt(mean(x^2) + eps) * w.
Vec rmsnorm(const Vec& x, int64_t width, const Vec& w, double eps) {
  Vec y(x.size());
  for (size_t r = 0; r < x.size() / at(width); ++r) {
    double ms = 0;
    for (int64_t i = 0; i < width; ++i) ms += x[r * at(width) + at(i)] * x[r * at(width) + at(i)];
    const double inv = 1.0 / std::sqrt(ms / static_cast<double>(width) + eps);
    for (int64_t i = 0; i < width; ++i)
      y[r * at(width) + at(i)] = x[r * at(width) + at(i)] * inv * w[at(i)];
  }
  return y;
}

// Each row: (x - mean) / sqrt(biased var + eps) * w + b.
Vec layernorm(const Vec& x, int64_t width, const Vec& w, const Vec& b, double eps) {
  Vec y(x.size());
  for (size_t r = 0; r < x.size() / at(width); ++r) {
    const double* row = &x[r * at(width)];
    double mean = 0, var = 0;
    for (int64_t i = 0; i < width; ++i) mean += row[i];
    mean /= static_cast<double>(width);
    for (int64_t i = 0; i < width; ++i) var += (row[i] - mean) * (row[i] - mean);
    var /= static_cast<double>(width);
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t i = 0; i < width; ++i)
      y[r * at(width) + at(i)] = (row[i] - mean) * inv * w[at(i)] + b[at(i)];
  }
  return y;
}

// [L, heads * dh] (token-major, as projections give it) -> [heads, L, dh].
Vec split_heads(const Vec& x, int64_t L, int64_t heads, int64_t dh, int64_t stride, int64_t col0) {
  Vec y(at(heads * L * dh));
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t t = 0; t < L; ++t)
      for (int64_t e = 0; e < dh; ++e)
        y[at((h * L + t) * dh + e)] = x[at(t * stride + col0 + h * dh + e)];
  return y;
}

// rotate_half RoPE in place on [heads, L, dh], position = token index.
void rope(Vec& x, int64_t heads, int64_t L, int64_t dh, const Vec& inv_freq) {
  const int64_t half = dh / 2;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t t = 0; t < L; ++t) {
      double* row = &x[at((h * L + t) * dh)];
      for (int64_t i = 0; i < half; ++i) {
        const double angle = static_cast<double>(t) * inv_freq[at(i)];
        const double c = std::cos(angle), s = std::sin(angle);
        const double x1 = row[i], x2 = row[i + half];
        row[i] = x1 * c - x2 * s;
        row[i + half] = x2 * c + x1 * s;
      }
    }
}

// Causal softmax attention with GQA (query head h reads kv head h / (H / Hkv)); `window` > 0
// keeps key j for query i iff i - window < j <= i. Fills layer.o and layer.lse; returns o as
// [L, H * dh] for the output projection.
Vec attention(ReferenceLayer& layer, int64_t L, int64_t H, int64_t Hkv, int64_t dh,
              int64_t window) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  const int64_t group = H / Hkv;
  layer.o.assign(at(H * L * dh), 0.0);
  layer.lse.assign(at(H * L), 0.0);
  Vec merged(at(L * H * dh), 0.0);
  Vec scores(at(L));
  for (int64_t h = 0; h < H; ++h) {
    const int64_t g = h / group;
    for (int64_t i = 0; i < L; ++i) {
      const int64_t j0 = window > 0 ? std::max<int64_t>(0, i - window + 1) : 0;
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = j0; j <= i; ++j) {
        double s = 0;
        for (int64_t e = 0; e < dh; ++e)
          s += layer.q[at((h * L + i) * dh + e)] * layer.k[at((g * L + j) * dh + e)];
        scores[at(j)] = s * scale;
        mx = std::max(mx, scores[at(j)]);
      }
      double sum = 0;
      for (int64_t j = j0; j <= i; ++j) sum += std::exp(scores[at(j)] - mx);
      layer.lse[at(h * L + i)] = mx + std::log(sum);
      for (int64_t j = j0; j <= i; ++j) {
        const double p = std::exp(scores[at(j)] - mx) / sum;
        for (int64_t e = 0; e < dh; ++e)
          layer.o[at((h * L + i) * dh + e)] += p * layer.v[at((g * L + j) * dh + e)];
      }
      for (int64_t e = 0; e < dh; ++e)
        merged[at(i * H * dh + h * dh + e)] = layer.o[at((h * L + i) * dh + e)];
    }
  }
  return merged;
}

double silu(double x) {
  return x / (1.0 + std::exp(-x));
}

double gelu_tanh(double x) {
  const double c = std::sqrt(2.0 / M_PI);
  return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
}

double gelu_erf(double x) {
  return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}

void add_into(Vec& x, const Vec& y) {
  for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
}

const Vec* optional_weight(const TinyModel& m, const std::string& name) {
  return m.has(name) ? &m.w(name) : nullptr;
}

// Embedding rows [L, d] of `table` ([rows, d]).
Vec gather(const Vec& table, std::span<const int32_t> ids, int64_t d) {
  Vec x(at(static_cast<int64_t>(ids.size()) * d));
  for (size_t t = 0; t < ids.size(); ++t) std::copy_n(&table[at(ids[t] * d)], d, &x[t * at(d)]);
  return x;
}

Vec llama_body(const TinyModel& m, std::span<const int32_t> ids, ReferenceResult& r) {
  const TinyModelSpec& s = m.spec;
  const int64_t L = r.tokens, d = s.hidden, H = r.heads, Hkv = r.kv_heads, dh = r.head_dim;
  const double eps = s.effective_norm_eps();
  const Vec inv_freq = reference_inv_freq(s);
  const int64_t window = s.model_type == "mistral" && s.sliding_window ? *s.sliding_window : 0;
  Vec x = gather(m.w("model.embed_tokens.weight"), ids, d);
  for (int64_t l = 0; l < s.layers; ++l) {
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    const auto W = [&](const std::string& n) -> const Vec& { return m.w(pre + n); };
    const auto B = [&](const std::string& n) { return optional_weight(m, pre + n); };
    const Vec h = rmsnorm(x, d, W("input_layernorm.weight"), eps);
    const Vec q = linear(h, L, d, W("self_attn.q_proj.weight"), H * dh, B("self_attn.q_proj.bias"));
    const Vec k =
        linear(h, L, d, W("self_attn.k_proj.weight"), Hkv * dh, B("self_attn.k_proj.bias"));
    const Vec v =
        linear(h, L, d, W("self_attn.v_proj.weight"), Hkv * dh, B("self_attn.v_proj.bias"));
    ReferenceLayer layer;
    layer.q = split_heads(q, L, H, dh, H * dh, 0);
    layer.k = split_heads(k, L, Hkv, dh, Hkv * dh, 0);
    layer.v = split_heads(v, L, Hkv, dh, Hkv * dh, 0);
    if (s.qk_norm) {  // Qwen3: per-head RMSNorm over head_dim, before RoPE
      layer.q = rmsnorm(layer.q, dh, W("self_attn.q_norm.weight"), eps);
      layer.k = rmsnorm(layer.k, dh, W("self_attn.k_norm.weight"), eps);
    }
    rope(layer.q, H, L, dh, inv_freq);
    rope(layer.k, Hkv, L, dh, inv_freq);
    const Vec a = attention(layer, L, H, Hkv, dh, window);
    add_into(x, linear(a, L, H * dh, W("self_attn.o_proj.weight"), d, B("self_attn.o_proj.bias")));
    const Vec h2 = rmsnorm(x, d, W("post_attention_layernorm.weight"), eps);
    const int64_t I = s.intermediate;
    const Vec gate = linear(h2, L, d, W("mlp.gate_proj.weight"), I, B("mlp.gate_proj.bias"));
    Vec up = linear(h2, L, d, W("mlp.up_proj.weight"), I, B("mlp.up_proj.bias"));
    for (size_t i = 0; i < up.size(); ++i) up[i] *= silu(gate[i]);
    add_into(x, linear(up, L, I, W("mlp.down_proj.weight"), d, B("mlp.down_proj.bias")));
    r.layers.push_back(std::move(layer));
  }
  r.hidden = rmsnorm(x, d, m.w("model.norm.weight"), eps);
  return s.tied ? m.w("model.embed_tokens.weight") : m.w("lm_head.weight");
}

Vec gpt2_body(const TinyModel& m, std::span<const int32_t> ids, ReferenceResult& r) {
  const TinyModelSpec& s = m.spec;
  const int64_t L = r.tokens, d = s.hidden, H = r.heads, dh = r.head_dim;
  const double eps = s.effective_norm_eps();
  const std::string root = s.gpt2_prefix ? "transformer." : "";
  if (L > s.max_positions) throw std::logic_error("reference: gpt2 text past n_positions");
  Vec x = gather(m.w(root + "wte.weight"), ids, d);
  const Vec& wpe = m.w(root + "wpe.weight");
  for (int64_t t = 0; t < L; ++t)
    for (int64_t i = 0; i < d; ++i) x[at(t * d + i)] += wpe[at(t * d + i)];
  const bool tanh_gelu = s.gpt2_activation == "gelu_new";
  for (int64_t l = 0; l < s.layers; ++l) {
    const std::string pre = root + "h." + std::to_string(l) + ".";
    const auto W = [&](const std::string& n) -> const Vec& { return m.w(pre + n); };
    const Vec h = layernorm(x, d, W("ln_1.weight"), W("ln_1.bias"), eps);
    const Vec qkv = conv1d(h, L, d, W("attn.c_attn.weight"), 3 * d, W("attn.c_attn.bias"));
    ReferenceLayer layer;
    layer.q = split_heads(qkv, L, H, dh, 3 * d, 0);
    layer.k = split_heads(qkv, L, H, dh, 3 * d, d);
    layer.v = split_heads(qkv, L, H, dh, 3 * d, 2 * d);
    const Vec a = attention(layer, L, H, H, dh, 0);
    add_into(x, conv1d(a, L, d, W("attn.c_proj.weight"), d, W("attn.c_proj.bias")));
    const Vec h2 = layernorm(x, d, W("ln_2.weight"), W("ln_2.bias"), eps);
    const int64_t I = s.intermediate;
    Vec f = conv1d(h2, L, d, W("mlp.c_fc.weight"), I, W("mlp.c_fc.bias"));
    for (double& e : f) e = tanh_gelu ? gelu_tanh(e) : gelu_erf(e);
    add_into(x, conv1d(f, L, I, W("mlp.c_proj.weight"), d, W("mlp.c_proj.bias")));
    r.layers.push_back(std::move(layer));
  }
  r.hidden = layernorm(x, d, m.w(root + "ln_f.weight"), m.w(root + "ln_f.bias"), eps);
  return m.w(root + "wte.weight");  // GPT-2's head is always the token embedding
}

}  // namespace

std::vector<double> reference_inv_freq(const TinyModelSpec& s) {
  const int64_t dh = s.effective_head_dim();
  std::vector<double> inv(at(dh / 2));
  for (int64_t i = 0; i < dh / 2; ++i)
    inv[at(i)] = std::pow(s.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(dh));
  if (!s.llama3_rope) return inv;
  // The values tiny_config writes: factor 8, low 1, high 4, original 32.
  const double factor = 8, low = 1, high = 4, orig = 32;
  const double lo_wavelen = orig / low, hi_wavelen = orig / high;
  for (double& f : inv) {
    const double wavelen = 2 * M_PI / f;
    if (wavelen < hi_wavelen) continue;
    if (wavelen > lo_wavelen) {
      f /= factor;
    } else {
      const double smooth = (orig / wavelen - low) / (high - low);
      f = (1 - smooth) * f / factor + smooth * f;
    }
  }
  return inv;
}

ReferenceResult reference_forward(const TinyModel& m, std::span<const int32_t> ids) {
  const TinyModelSpec& s = m.spec;
  ReferenceResult r;
  r.tokens = static_cast<int64_t>(ids.size());
  r.vocab = s.vocab;
  r.hidden_size = s.hidden;
  r.heads = s.heads;
  r.kv_heads = s.effective_kv_heads();
  r.head_dim = s.effective_head_dim();
  for (int32_t id : ids)
    if (id < 0 || id >= s.vocab) throw std::logic_error("reference: id out of range");
  const Vec head = s.model_type == "gpt2" ? gpt2_body(m, ids, r) : llama_body(m, ids, r);
  r.logits = linear(r.hidden, r.tokens, s.hidden, head, s.vocab, nullptr);
  const int64_t V = s.vocab;
  double total = 0;
  for (int64_t t = 0; t + 1 < r.tokens; ++t) {
    const double* row = &r.logits[at(t * V)];
    const double mx = *std::max_element(row, row + V);
    double sum = 0;
    for (int64_t j = 0; j < V; ++j) sum += std::exp(row[j] - mx);
    r.nll.push_back(mx + std::log(sum) - row[ids[at(t + 1)]]);
    total += r.nll.back();
  }
  r.perplexity = r.nll.empty() ? std::numeric_limits<double>::quiet_NaN()
                               : std::exp(total / static_cast<double>(r.nll.size()));
  return r;
}

}  // namespace attnscope::test
