// Seeded synthetic workloads: every variant's inputs with a planted structure (local band,
// induction stripes, sinks, a needle), so the views show something real and tests can check it.
#include "attnscope/workload.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <random>
#include <string>

#include <Eigen/Core>

#include "attnscope/error.hpp"
#include "attnscope/parallel.hpp"
#include "attnscope/variant.hpp"

// Bit-identical tensors on every compiler need plain IEEE double arithmetic with no fused
// multiply-adds. GCC never contracts in ISO mode (-std=c++20, which the build sets); Clang would.
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

namespace attnscope {
namespace {

// ---------------------------------------------------------------------------------------------
// Portable math. libm's log/exp/sin/cos may differ in the last bit between libraries, which would
// break "same seed, same tensors everywhere"; these use only +, -, *, /, sqrt and exact scaling.
// Double accuracy is far more than the float outputs need.

constexpr double kPi = 3.14159265358979323846;
constexpr double kLn2 = 0.69314718055994530942;
constexpr double kSqrtHalf = 0.70710678118654752440;

// Series coefficients, folded at compile time (constant folding rounds exactly like the hardware),
// so the hot loops multiply instead of divide.
template <int N, class F>
constexpr std::array<double, N> table(F f) {
  std::array<double, N> t{};
  for (int i = 0; i < N; ++i) t[static_cast<size_t>(i)] = f(i);
  return t;
}
constexpr auto kAtanhCoef = table<9>([](int i) { return 1.0 / (2 * i + 1); });
constexpr auto kExpCoef = table<13>([](int i) { return i == 0 ? 1.0 : 1.0 / i; });
constexpr auto kSinCoef =
    table<8>([](int n) { return n == 0 ? 1.0 : 1.0 / ((2 * n) * (2 * n + 1)); });
constexpr auto kCosCoef =
    table<8>([](int n) { return n == 0 ? 1.0 : 1.0 / ((2 * n - 1) * (2 * n)); });

double det_log(double x) {  // x > 0 and finite
  int e = 0;
  double m = std::frexp(x, &e);
  if (m < kSqrtHalf) {
    m *= 2.0;
    --e;
  }
  // log(m) = 2 atanh(s) with |s| <= 0.172, so the odd series converges fast.
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  double poly = kAtanhCoef.back();
  for (size_t k = kAtanhCoef.size() - 1; k-- > 0;) poly = poly * s2 + kAtanhCoef[k];
  return 2.0 * s * poly + static_cast<double>(e) * kLn2;
}

double det_exp(double x) {  // |x| well below 700
  const double k = std::floor(x / kLn2 + 0.5);
  const double r = x - k * kLn2;  // |r| <= 0.35
  double poly = 1.0;
  for (size_t n = kExpCoef.size() - 1; n >= 1; --n) poly = 1.0 + poly * r * kExpCoef[n];
  return std::ldexp(poly, static_cast<int>(k));
}

void det_sincos(double x, double& sin_x, double& cos_x) {
  const double k = std::floor(x * (2.0 / kPi) + 0.5);
  const double r = x - k * (kPi / 2.0);  // |r| <= pi/4
  const double r2 = r * r;
  double s = 1.0, c = 1.0;
  for (size_t n = kSinCoef.size() - 1; n >= 1; --n) {
    s = 1.0 - r2 * kSinCoef[n] * s;
    c = 1.0 - r2 * kCosCoef[n] * c;
  }
  s *= r;
  switch (static_cast<int64_t>(k) & 3) {
    case 0:
      sin_x = s, cos_x = c;
      break;
    case 1:
      sin_x = c, cos_x = -s;
      break;
    case 2:
      sin_x = -s, cos_x = -c;
      break;
    default:
      sin_x = -c, cos_x = s;
      break;
  }
}

double sigmoid(double x) {
  return 1.0 / (1.0 + det_exp(-x));
}

// ---------------------------------------------------------------------------------------------
// Random streams. std::mt19937_64 and its seeding are fully specified by the standard;
// std::normal_distribution is not, hence Box–Muller on top.

uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

constexpr uint64_t tag_of(std::string_view name) {  // FNV-1a: a stable id per tensor
  uint64_t h = 0xCBF29CE484222325ULL;
  for (char ch : name) h = (h ^ static_cast<unsigned char>(ch)) * 0x100000001B3ULL;
  return h;
}

uint64_t stream_key(uint64_t seed, uint64_t tag, int64_t a, int64_t b, int64_t c) {
  uint64_t h = splitmix(seed);
  for (uint64_t v :
       {tag, static_cast<uint64_t>(a), static_cast<uint64_t>(b), static_cast<uint64_t>(c)}) {
    h = splitmix(h ^ v);
  }
  return h;
}

class Normal {
 public:
  explicit Normal(uint64_t key) : eng_(key) {}

  double uniform() { return static_cast<double>(eng_() >> 11) * 0x1p-53; }  // [0, 1)

  double operator()() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = static_cast<double>((eng_() >> 11) + 1) * 0x1p-53;  // (0, 1]: log is finite
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * det_log(u1));
    double s = 0, c = 0;
    det_sincos(2.0 * kPi * u2, s, c);
    spare_ = r * s;
    has_spare_ = true;
    return r * c;
  }

 private:
  std::mt19937_64 eng_;
  double spare_ = 0;
  bool has_spare_ = false;
};

// Noise addressed by (tensor, a, b, absolute row): every run of 64 rows has its own stream, so a
// decode step (Lq = 1) draws exactly the noise that row has in prefill without replaying the rows
// before it, and the keys do not depend on Lq at all.
class RowNoise {
 public:
  RowNoise(uint64_t seed, std::string_view tensor, int64_t a, int64_t b, int64_t width)
      : seed_(seed), tag_(tag_of(tensor)), a_(a), b_(b), width_(width) {}

  void row(int64_t r, double* out) {
    const int64_t chunk = r >= 0 ? r / kRows : -((-r + kRows - 1) / kRows);
    if (!gen_ || r != next_ || chunk != chunk_) {
      gen_.emplace(stream_key(seed_, tag_, a_, b_, chunk));
      chunk_ = chunk;
      for (int64_t n = (r - chunk * kRows) * width_; n > 0; --n) (*gen_)();
    }
    for (int64_t d = 0; d < width_; ++d) out[d] = (*gen_)();
    next_ = r + 1;
  }

 private:
  static constexpr int64_t kRows = 64;
  uint64_t seed_, tag_;
  int64_t a_, b_, width_;
  std::optional<Normal> gen_;
  int64_t chunk_ = 0, next_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Patterns.

enum class Pattern { random, local, periodic, sinks, needle };

const std::vector<PatternInfo> kPatterns = {
    {"random", "I.i.d. standard normal inputs: no structure, a baseline for every view."},
    {"local",
     "Rotary-style positional codes make each query attend to a band of nearby keys, its width "
     "varying per head."},
    {"periodic",
     "A sequence repeating with a fixed period makes induction stripes: each query attends to the "
     "keys right after earlier copies of its token."},
    {"sinks",
     "The first 4 keys share a direction with every query and take most of each row's mass "
     "(StreamingLLM's attention sinks), over weak local structure."},
    {"needle",
     "Noise plus one strong key 10% into the sequence that the last quarter of queries seek, with "
     "a distinctive value: a block router should find it, a short sliding window cannot."},
};

Pattern parse_pattern(std::string_view name) {
  for (size_t i = 0; i < kPatterns.size(); ++i) {
    if (kPatterns[i].name == name) return static_cast<Pattern>(i);
  }
  std::string names;
  for (const auto& p : kPatterns) names += (names.empty() ? "" : ", ") + std::string(p.name);
  throw Error("unknown workload pattern '" + std::string(name) + "'; valid patterns: " + names);
}

constexpr int64_t kSinks = 4;
constexpr double kSeekerNoise = 0.4;  // needle seekers' noise, relative to everyone else's

// Where the planted structure lives and how dot products turn into logits; the amplitudes below
// are chosen as logits (q·k·scale), so they mean the same at every head width.
struct Calib {
  int64_t d;           // width of the subspace carrying the structure (Dk, or MLA's Dr)
  int64_t noise_dims;  // dims of the whole head whose noise enters q·k (Dk, or Dn + Dr)
  double scale;        // softmax scale of the full q·k
  int64_t kv_len;
  int64_t dv;  // width of value content (Dv, or MLA's Dc: values come from the latent)
  double sigma_q, sigma_k;
  bool unit_rows = false;  // rows get rescaled afterwards (Gated DeltaNet): only directions count
};

double noise_level(Pattern p) {
  switch (p) {
    case Pattern::random:
      return 1.0;
    case Pattern::local:
      return 0.5;
    case Pattern::periodic:
      return 0.3;
    case Pattern::sinks:
      return 0.5;
    case Pattern::needle:
      return 1.0;
  }
  return 1.0;
}

// Peaks must beat ~ln(Lk) nats of competing noise mass to stay visible in long rows.
double peak_logit(int64_t kv_len) {
  return std::max(8.0, 2.0 + det_log(static_cast<double>(kv_len)));
}

int64_t period_of(int64_t kv_len) {
  return std::clamp<int64_t>(kv_len / 8, 8, 64);
}
int64_t needle_pos(int64_t kv_len) {
  return kv_len / 10;
}
bool needle_seeker(int64_t p, int64_t kv_len) {
  return p >= kv_len - std::max<int64_t>(1, kv_len / 4);
}
int64_t pos_mod(int64_t a, int64_t m) {
  return ((a % m) + m) % m;
}

// Per (batch, kv head) draws shared by the query heads of a GQA group, so the group sees one
// structure while each head keeps its own noise.
struct Ctx {
  std::vector<double> freq, phase;  // rotary-style pairs (local, and sinks' weak band)
  double local_amp = 0;
  int64_t period = 0;
  std::vector<double> emb, bos, val_emb;  // periodic: unit token codes, value content per token
  double emb_amp = 0;
  std::vector<double> dir;  // sinks / needle direction (unit)
  double q_amp = 0, k_amp = 0;
};

std::vector<double> unit_vector(Normal& rng, int64_t d) {
  std::vector<double> v(static_cast<size_t>(d));
  double n2 = 0;
  for (double& x : v) {
    x = rng();
    n2 += x * x;
  }
  const double inv = 1.0 / std::sqrt(std::max(n2, 1e-300));
  for (double& x : v) x *= inv;
  return v;
}

void make_local(Ctx& c, const Calib& k, Normal& rng, double peak) {
  const int64_t pairs = k.d / 2;
  if (pairs == 0) return;
  // Cauchy-distributed frequencies make sum_m cos(w_m (p - j)) ~ M exp(-|p - j| / width) (the
  // Cauchy characteristic function): a band with a sharp peak on the diagonal, so the argmax stays
  // there even in broad heads. Stratified draws keep the few pairs of a small head close to that
  // mean. The width varies per head, so the map shows sharp and broad heads side by side.
  const double w_max = std::max(8.0, static_cast<double>(k.kv_len) / 32.0);
  const double width = det_exp(det_log(2.0) + rng.uniform() * (det_log(w_max) - det_log(2.0)));
  for (int64_t m = 0; m < pairs; ++m) {
    const double u = (static_cast<double>(m) + rng.uniform()) / static_cast<double>(pairs);
    double s = 0, co = 0;
    det_sincos(0.5 * kPi * u, s, co);  // |Cauchy| = tan(pi u / 2)
    double w = s / std::max(co, 1e-300) / width;
    w -= 2.0 * kPi * std::floor(w / (2.0 * kPi));  // positions are integers: only w mod 2 pi counts
    c.freq.push_back(w);
    c.phase.push_back(2.0 * kPi * rng.uniform());
  }
  c.local_amp = std::sqrt(peak / (k.scale * static_cast<double>(pairs)));
}

Ctx make_ctx(Pattern pat, const Calib& k, Normal& rng) {
  Ctx c;
  switch (pat) {
    case Pattern::random:
      break;
    case Pattern::local:
      make_local(c, k, rng, peak_logit(k.kv_len));
      break;
    case Pattern::periodic: {
      c.period = period_of(k.kv_len);
      for (int64_t t = 0; t < c.period; ++t) {
        const auto e = unit_vector(rng, k.d);
        c.emb.insert(c.emb.end(), e.begin(), e.end());
      }
      c.bos = unit_vector(rng, k.d);
      for (int64_t i = 0; i < c.period * k.dv; ++i) c.val_emb.push_back(rng());
      c.emb_amp = std::sqrt(peak_logit(k.kv_len) / k.scale);
      break;
    }
    case Pattern::sinks: {
      make_local(c, k, rng, 3.0);
      c.dir = unit_vector(rng, k.d);
      const double sink = std::max(6.0, 3.0 + det_log(static_cast<double>(k.kv_len)));
      c.q_amp = c.k_amp = std::sqrt(sink / k.scale);
      break;
    }
    case Pattern::needle: {
      c.dir = unit_vector(rng, k.d);
      // The needle must win MoBA's gate, where its key is averaged with 63 noise keys: that mean
      // keeps 1/64 of the needle but 1/8 of the noise, so the gate margin is the needle logit over
      // 8 noise-logit stds. A logit of 48 with seekers' noise at kSeekerNoise puts the needle's
      // block ~15 stds above the other blocks, which survives the max over thousands of them.
      const double noise_logit =
          k.sigma_q * k.sigma_k * std::sqrt(static_cast<double>(k.noise_dims)) * k.scale;
      c.q_amp = k.sigma_q * std::sqrt(static_cast<double>(k.noise_dims));
      // Rescaled rows lose the needle key's magnitude, so seekers point closer to it instead.
      if (k.unit_rows) c.q_amp *= 3.0;
      c.k_amp = 48.0 * noise_logit / (c.q_amp * k.scale);
      break;
    }
  }
  return c;
}

void local_code(const Ctx& c, int64_t d, int64_t pos, double* out) {
  std::fill(out, out + d, 0.0);
  for (size_t m = 0; m < c.freq.size(); ++m) {
    double s = 0, co = 0;
    det_sincos(c.freq[m] * static_cast<double>(pos) + c.phase[m], s, co);
    out[2 * m] = c.local_amp * co;
    out[2 * m + 1] = c.local_amp * s;
  }
}

void remove_component(double* x, const double* dir, int64_t d) {
  double dot = 0;
  for (int64_t i = 0; i < d; ++i) dot += x[i] * dir[i];
  for (int64_t i = 0; i < d; ++i) x[i] -= dot * dir[i];
}

// One query (is_query) or key row at absolute position `pos`: `noise` (d normals, may be altered)
// in, structure plus scaled noise out.
void qk_row(Pattern pat, const Ctx& c, const Calib& k, bool is_query, int64_t pos, double* noise,
            double* out) {
  const int64_t d = k.d;
  double sigma = is_query ? k.sigma_q : k.sigma_k;
  switch (pat) {
    case Pattern::random:
      std::fill(out, out + d, 0.0);
      break;
    case Pattern::local:
      local_code(c, d, pos, out);
      break;
    case Pattern::periodic: {
      // Token slots repeat every `period`; keys carry the previous token (what an induction head's
      // previous-token head writes), queries their own token.
      const double* e = nullptr;
      if (is_query) {
        e = &c.emb[static_cast<size_t>(pos_mod(pos, c.period) * d)];
      } else {
        e = pos == 0 ? c.bos.data() : &c.emb[static_cast<size_t>(pos_mod(pos - 1, c.period) * d)];
      }
      for (int64_t i = 0; i < d; ++i) out[i] = c.emb_amp * e[i];
      break;
    }
    case Pattern::sinks: {
      // The band is kept orthogonal to the sink direction so the two do not leak into each other.
      local_code(c, d, pos, out);
      remove_component(out, c.dir.data(), d);
      const double a = is_query ? c.q_amp : (pos < kSinks ? c.k_amp : 0.0);
      for (int64_t i = 0; i < d; ++i) out[i] += a * c.dir[static_cast<size_t>(i)];
      break;
    }
    case Pattern::needle: {
      // Noise is kept off the needle direction, so only seekers meet the needle and no other key
      // meets the seekers through it.
      remove_component(noise, c.dir.data(), d);
      double a = 0;
      if (is_query && needle_seeker(pos, k.kv_len)) {
        a = c.q_amp;
        sigma *= kSeekerNoise;
      }
      if (!is_query && pos == needle_pos(k.kv_len)) a = c.k_amp;
      for (int64_t i = 0; i < d; ++i) out[i] = a * c.dir[static_cast<size_t>(i)];
      break;
    }
  }
  for (int64_t i = 0; i < d; ++i) out[i] += sigma * noise[i];
}

// Value row (width k.dv) at key position `pos`. For MLA this is the latent c_kv, which the values
// come from.
void value_row(Pattern pat, const Ctx& c, const Calib& k, int64_t pos, const double* noise,
               double* out) {
  const int64_t dv = k.dv;
  for (int64_t i = 0; i < dv; ++i) out[i] = noise[i];
  if (pat == Pattern::periodic) {
    // Values name the token at their position, so an induction hit outputs the next token.
    const double* e = &c.val_emb[static_cast<size_t>(pos_mod(pos, c.period) * dv)];
    for (int64_t i = 0; i < dv; ++i) out[i] = e[i] + 0.3 * noise[i];
  } else if (pat == Pattern::sinks && pos < kSinks) {
    // Real sinks carry near-zero values: attending to them is a no-op.
    for (int64_t i = 0; i < dv; ++i) out[i] *= 0.1;
  } else if (pat == Pattern::needle && pos == needle_pos(k.kv_len)) {
    std::fill(out, out + dv, 4.0);  // stands out in the output of every row that finds it
  }
}

void store(const double* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]);
}

void rescale_to(double* x, int64_t n, double norm) {
  double n2 = 0;
  for (int64_t i = 0; i < n; ++i) n2 += x[i] * x[i];
  if (n2 <= 0) return;
  const double f = norm / std::sqrt(n2);
  for (int64_t i = 0; i < n; ++i) x[i] *= f;
}

// Tasks i in [0, n) on the engine's pool. Every task owns its streams and output rows, so the
// result does not depend on how tasks land on threads.
template <class F>
void parallel_for(int64_t n, const F& task) {
  ThreadPool::global().parallel_for(n, default_threads(), [&](int64_t i, int) { task(i); });
}

// ---------------------------------------------------------------------------------------------
// Layouts.

struct Dims {
  int64_t batch, heads, kv_heads, q_len, kv_len, dk, dv;
};

// q [B,H,Lq,Dk], k [B,Hkv,Lk,Dk], v [B,Hkv,Lk,Dv]. For a gated delta rule (`gated`) the rule needs
// keys of norm ~1 (its step I - beta k k^T is a contraction only while beta |k|^2 < 2): random keys
// are N(0, 1/Dk), structured rows are rescaled to unit keys and queries of norm sqrt(Dk), which
// keeps each row's direction (the structure) and the output scale of the random case.
void make_qkv(Pattern pat, uint64_t seed, const Dims& s, double scale, bool gated, Inputs& out) {
  const int64_t group = s.heads / s.kv_heads;
  const double sigma = noise_level(pat);
  const Calib calib{s.dk, s.dk, scale, s.kv_len, s.dv, sigma, sigma, gated};

  std::vector<Ctx> ctx;
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t g = 0; g < s.kv_heads; ++g) {
      Normal rng(stream_key(seed, tag_of("context"), b, g, 0));
      ctx.push_back(make_ctx(pat, calib, rng));
    }
  }
  const size_t width = static_cast<size_t>(std::max(s.dk, s.dv));

  Tensor q({s.batch, s.heads, s.q_len, s.dk});
  parallel_for(s.batch * s.heads, [&](int64_t bh) {
    const int64_t b = bh / s.heads, h = bh % s.heads;
    const Ctx& c = ctx[static_cast<size_t>(b * s.kv_heads + h / group)];
    std::vector<double> noise(width), row(width);
    RowNoise rn(seed, "q", b, h, s.dk);
    float* qp = q.data() + bh * s.q_len * s.dk;
    for (int64_t i = 0; i < s.q_len; ++i, qp += s.dk) {
      const int64_t p = i + s.kv_len - s.q_len;
      rn.row(p, noise.data());
      qk_row(pat, c, calib, true, p, noise.data(), row.data());
      if (gated && pat != Pattern::random) rescale_to(row.data(), s.dk, std::sqrt(double(s.dk)));
      store(row.data(), s.dk, qp);
    }
  });

  Tensor k({s.batch, s.kv_heads, s.kv_len, s.dk});
  Tensor v({s.batch, s.kv_heads, s.kv_len, s.dv});
  parallel_for(s.batch * s.kv_heads, [&](int64_t bg) {
    const int64_t b = bg / s.kv_heads, g = bg % s.kv_heads;
    const Ctx& c = ctx[static_cast<size_t>(bg)];
    std::vector<double> noise(width), row(width);
    RowNoise kn(seed, "k", b, g, s.dk);
    RowNoise vn(seed, "v", b, g, s.dv);
    float* kp = k.data() + bg * s.kv_len * s.dk;
    float* vp = v.data() + bg * s.kv_len * s.dv;
    for (int64_t j = 0; j < s.kv_len; ++j, kp += s.dk, vp += s.dv) {
      kn.row(j, noise.data());
      qk_row(pat, c, calib, false, j, noise.data(), row.data());
      if (gated) {
        if (pat == Pattern::random) {
          for (size_t i = 0; i < static_cast<size_t>(s.dk); ++i) row[i] /= std::sqrt(double(s.dk));
        } else {
          rescale_to(row.data(), s.dk, 1.0);
        }
      }
      store(row.data(), s.dk, kp);
      vn.row(j, noise.data());
      value_row(pat, c, calib, j, noise.data(), row.data());
      store(row.data(), s.dv, vp);
    }
  });
  out.set("q", std::move(q));
  out.set("k", std::move(k));
  out.set("v", std::move(v));
}

// Gated DeltaNet's gates, independent of the pattern. Each head gets its own typical decay (as
// GDN's per-head A_log does): exp(g) = sigmoid(x) with x around 2.5..6.5, i.e. retention mostly
// 0.9..0.999 per step, slow forgetting. beta = sigmoid(N(0,1)).
void make_gates(uint64_t seed, int64_t batch, int64_t heads, int64_t len, Inputs& out) {
  Tensor g({batch, heads, len});
  Tensor beta({batch, heads, len});
  parallel_for(batch * heads, [&](int64_t bh) {
    const int64_t b = bh / heads, h = bh % heads;
    Normal head_rng(stream_key(seed, tag_of("decay"), b, h, 0));
    const double mean = 2.5 + 4.0 * head_rng.uniform();
    RowNoise rn(seed, "gates", b, h, 2);
    float* gp = g.data() + bh * len;
    float* bp = beta.data() + bh * len;
    double z[2];
    for (int64_t t = 0; t < len; ++t) {
      rn.row(t, z);
      const double x = std::clamp(mean + 0.7 * z[0], -4.0, 12.0);
      const double log_sig = -det_log(1.0 + det_exp(-x));  // log(sigmoid(x)) < 0
      gp[t] = std::min(static_cast<float>(log_sig), 0.0f);
      bp[t] = static_cast<float>(sigmoid(std::clamp(z[1], -8.0, 8.0)));
    }
  });
  out.set("g", std::move(g));
  out.set("beta", std::move(beta));
}

void require_positive(int64_t value, const char* what);

// Branch gates as a model makes them, sigmoid(Linear(hidden)): per (batch, head) a bias drawn once
// plus N(0, 1) per token, so each head leans on its own mix of branches, row by row. The gates are
// the variant's [B, H, Lq] inputs, by the names its specs give.
void make_branch_gates(uint64_t seed, const AttentionProblem& pr, Inputs& out) {
  const ProblemShape& s = pr.shape;
  for (const TensorSpec& spec : variant_info(pr.variant).inputs(pr)) {
    if (spec.shape != Shape{s.batch, s.heads, s.q_len}) continue;
    const std::string_view name = spec.name;
    Tensor g(spec.shape);
    parallel_for(s.batch * s.heads, [&](int64_t bh) {
      const int64_t b = bh / s.heads, h = bh % s.heads;
      Normal head_rng(stream_key(seed, tag_of(name), b, h, -1));
      const double bias = head_rng();
      RowNoise rn(seed, name, b, h, 1);
      float* gp = g.data() + bh * s.q_len;
      double z;
      for (int64_t t = 0; t < s.q_len; ++t) {
        rn.row(t + s.kv_len - s.q_len, &z);  // by position, as q's rows
        gp[t] = static_cast<float>(sigmoid(std::clamp(bias + z, -12.0, 12.0)));
      }
    });
    out.set(spec.name, std::move(g));
  }
}

// A lightning indexer as training would make it: DeepSeek trains the indexer to reproduce the
// attention's own distribution, so here its keys and queries are the attention's, through one
// random projection R [Di, Dc + Dr] (entries N(0, 1/Di)): k_idx_t = R [c_kv_t ; k_rope_t] and, for
// index head j, q_idx = R [w_ukᵀ q_nope ; q_rope] of attention head j·H/Hi, with positive
// weights near 1/Hi. Then q_idx · k_idx ≈ the head's raw score (Johnson–Lindenstrauss: the
// projection's noise shrinks as Di grows), and the top-k by the indexer approximates the top-k by
// the attention averaged over those heads — a good but imperfect indexer, as a trained one is.
// Widths from the specs; the latent tensors must already be in `out`.
void make_indexer(uint64_t seed, const AttentionProblem& pr, Inputs& out) {
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Strided = Eigen::Map<const RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;
  int64_t Hi = 0, Di = 0;
  for (const TensorSpec& t : variant_info(pr.variant).inputs(pr)) {
    if (t.name == "q_idx") Hi = t.shape[1], Di = t.shape[3];
  }
  require_positive(Hi, "the indexer's heads (index_heads)");
  require_positive(Di, "the indexer's width (index_head_dim)");
  const Tensor& q = out.at("q");            // [B, H, Lq, Dn + Dr]
  const Tensor& c_kv = out.at("c_kv");      // [B, Lk, Dc]
  const Tensor& k_rope = out.at("k_rope");  // [B, Lk, Dr]
  const Tensor& w_uk = out.at("w_uk");      // [H, Dn, Dc]
  const int64_t B = pr.shape.batch, H = pr.shape.heads, Lq = pr.shape.q_len, Lk = pr.shape.kv_len;
  const int64_t Dc = c_kv.dim(2), Dr = k_rope.dim(2), Dn = w_uk.dim(1), Dl = Dc + Dr;

  RowMajor R(Di, Dl);  // [Di, Dc + Dr]
  {
    std::vector<double> row(static_cast<size_t>(Dl));
    RowNoise rn(seed, "index_projection", 0, 0, Dl);
    const double f = 1.0 / std::sqrt(static_cast<double>(Di));
    for (int64_t d = 0; d < Di; ++d) {
      rn.row(d, row.data());
      for (int64_t e = 0; e < Dl; ++e) R(d, e) = static_cast<float>(f * row[size_t(e)]);
    }
  }
  Tensor q_idx({B, Hi, Lq, Di});
  Tensor k_idx({B, Lk, Di});
  // Weights near 1/Hi, positive, a little uneven per token and head (as learned ones are).
  Tensor w_idx({B, Lq, Hi});
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> row(static_cast<size_t>(Hi));
    RowNoise wn(seed, "w_idx", b, 0, Hi);
    for (int64_t i = 0; i < Lq; ++i) {
      wn.row(i + Lk - Lq, row.data());
      for (int64_t j = 0; j < Hi; ++j) {
        const double w = (1.0 + 0.1 * std::clamp(row[size_t(j)], -3.0, 3.0)) / double(Hi);
        w_idx.data()[(b * Lq + i) * Hi + j] = static_cast<float>(w);
      }
    }
  }
  for (int64_t b = 0; b < B; ++b) {
    RowMajor latent(Lk, Dl);  // [c_kv | k_rope]
    latent.leftCols(Dc) = Eigen::Map<const RowMajor>(c_kv.data() + b * Lk * Dc, Lk, Dc);
    latent.rightCols(Dr) = Eigen::Map<const RowMajor>(k_rope.data() + b * Lk * Dr, Lk, Dr);
    Eigen::Map<RowMajor>(k_idx.data() + b * Lk * Di, Lk, Di).noalias() = latent * R.transpose();
  }
  parallel_for(B * Hi, [&](int64_t bj) {
    const int64_t b = bj / Hi, j = bj % Hi, h = j * H / Hi;
    const float* qh = q.data() + (b * H + h) * Lq * (Dn + Dr);
    const Strided q_nope(qh, Lq, Dn, Eigen::OuterStride<>(Dn + Dr));
    const Strided q_rope(qh + Dn, Lq, Dr, Eigen::OuterStride<>(Dn + Dr));
    RowMajor absorbed(Lq, Dl);  // [w_ukᵀ q_nope | q_rope]
    absorbed.leftCols(Dc).noalias() =
        q_nope * Eigen::Map<const RowMajor>(w_uk.data() + h * Dn * Dc, Dn, Dc);
    absorbed.rightCols(Dr) = q_rope;
    Eigen::Map<RowMajor>(q_idx.data() + bj * Lq * Di, Lq, Di).noalias() = absorbed * R.transpose();
  });
  out.set("q_idx", std::move(q_idx));
  out.set("k_idx", std::move(k_idx));
  out.set("w_idx", std::move(w_idx));
}

void require_positive(int64_t value, const char* what) {
  if (value <= 0) {
    throw Error(std::string("workload: ") + what + " must be positive (got " +
                std::to_string(value) + ")");
  }
}

// A latent cache (MLA): the structure goes where it lives physically, position in q's rotary part
// and k_rope (shared by all heads, so one context per batch entry), content in the latent c_kv.
// Up-projections are N(0, 1/Dc), so effective keys and values have O(1) entries. The widths come
// from the variant's tensor specs: c_kv [B, Lk, Dc], k_rope [B, Lk, Dr] and w_uk [H, Dn, Dc].
void make_latent(Pattern pat, uint64_t seed, const AttentionProblem& pr, double scale,
                 Inputs& out) {
  int64_t Dc = 0, Dr = 0, Dn = 0;
  for (const TensorSpec& t : variant_info(pr.variant).inputs(pr)) {
    if (t.name == "c_kv") Dc = t.shape[2];
    if (t.name == "k_rope") Dr = t.shape[2];
    if (t.name == "w_uk") Dn = t.shape[1];
  }
  require_positive(Dc, "the latent width (kv_lora_rank)");
  require_positive(Dr, "the rotary width (rope_dim)");
  require_positive(Dn, "the position-free width (nope_dim)");
  const int64_t B = pr.shape.batch, H = pr.shape.heads, Lq = pr.shape.q_len, Lk = pr.shape.kv_len;
  const int64_t Dv = pr.shape.v_head_dim, Dq = Dn + Dr;
  const double sigma = noise_level(pat);
  const Calib calib{Dr, Dq, scale, Lk, Dc, sigma, sigma};
  const size_t width = static_cast<size_t>(std::max(Dq, Dc));

  auto projection = [&](const char* name, int64_t rows) {
    Tensor w({H, rows, Dc});
    const double f = 1.0 / std::sqrt(static_cast<double>(Dc));
    parallel_for(H, [&](int64_t h) {
      std::vector<double> noise(width);
      RowNoise rn(seed, name, h, 0, Dc);
      float* wp = w.data() + h * rows * Dc;
      for (int64_t r = 0; r < rows; ++r, wp += Dc) {
        rn.row(r, noise.data());
        for (int64_t i = 0; i < Dc; ++i)
          wp[i] = static_cast<float>(f * noise[static_cast<size_t>(i)]);
      }
    });
    return w;
  };
  Tensor w_uk = projection("w_uk", Dn);
  Tensor w_uv = projection("w_uv", Dv);

  std::vector<Ctx> ctx;
  for (int64_t b = 0; b < B; ++b) {
    Normal rng(stream_key(seed, tag_of("context"), b, 0, 0));
    ctx.push_back(make_ctx(pat, calib, rng));
  }

  Tensor c_kv({B, Lk, Dc});
  Tensor k_rope({B, Lk, Dr});
  parallel_for(B, [&](int64_t b) {
    const Ctx& c = ctx[static_cast<size_t>(b)];
    std::vector<double> noise(width), row(width);
    RowNoise cn(seed, "c_kv", b, 0, Dc);
    RowNoise kn(seed, "k_rope", b, 0, Dr);
    float* cp = c_kv.data() + b * Lk * Dc;
    float* kp = k_rope.data() + b * Lk * Dr;
    for (int64_t t = 0; t < Lk; ++t, cp += Dc, kp += Dr) {
      cn.row(t, noise.data());
      value_row(pat, c, calib, t, noise.data(), row.data());
      store(row.data(), Dc, cp);
      kn.row(t, noise.data());
      qk_row(pat, c, calib, false, t, noise.data(), row.data());
      store(row.data(), Dr, kp);
    }
  });

  // The needle's latent is large, so its no-position key w_uk_h c_n is too: queries are kept off
  // it (else early rows would hit the needle by chance), and the seekers also match it by content.
  std::vector<double> needle_dir;  // per (b, h): unit direction of w_uk_h c_n, Dn wide
  std::vector<double> needle_len;  // per (b, h): its length
  if (pat == Pattern::needle) {
    const int64_t n = needle_pos(Lk);
    needle_dir.resize(static_cast<size_t>(B * H * Dn));
    needle_len.resize(static_cast<size_t>(B * H));
    parallel_for(B * H, [&](int64_t bh) {
      const int64_t b = bh / H, h = bh % H;
      const float* cn = c_kv.data() + (b * Lk + n) * Dc;
      double* dir = &needle_dir[static_cast<size_t>(bh * Dn)];
      for (int64_t d = 0; d < Dn; ++d) {
        const float* w = w_uk.data() + (h * Dn + d) * Dc;
        double a = 0;
        for (int64_t i = 0; i < Dc; ++i) a += static_cast<double>(w[i]) * cn[i];
        dir[d] = a;
      }
      double n2 = 0;
      for (int64_t d = 0; d < Dn; ++d) n2 += dir[d] * dir[d];
      const double len = std::max(std::sqrt(n2), 1e-300);
      for (int64_t d = 0; d < Dn; ++d) dir[d] /= len;
      needle_len[static_cast<size_t>(bh)] = len;
    });
  }

  Tensor q({B, H, Lq, Dq});
  parallel_for(B * H, [&](int64_t bh) {
    const int64_t b = bh / H, h = bh % H;
    std::vector<double> noise(width), row(width);
    RowNoise rn(seed, "q", b, h, Dq);
    float* qp = q.data() + bh * Lq * Dq;
    for (int64_t i = 0; i < Lq; ++i, qp += Dq) {
      const int64_t p = i + Lk - Lq;
      rn.row(p, noise.data());
      // c_kv stays unit-scale for the values' sake, so the no-position part's share of the
      // noise logit (sigma_q * sigma_k) sits in q alone.
      const bool seeker = pat == Pattern::needle && needle_seeker(p, Lk);
      const double nope_sigma = sigma * sigma * (seeker ? kSeekerNoise : 1.0);
      for (size_t d = 0; d < static_cast<size_t>(Dn); ++d) row[d] = nope_sigma * noise[d];
      if (pat == Pattern::needle) {
        const double* dir = &needle_dir[static_cast<size_t>(bh * Dn)];
        remove_component(row.data(), dir, Dn);
        if (seeker) {
          // A content match worth 8 logits on top of the rotary one.
          const double a = 8.0 / (needle_len[static_cast<size_t>(bh)] * scale);
          for (int64_t d = 0; d < Dn; ++d) row[static_cast<size_t>(d)] += a * dir[d];
        }
      }
      qk_row(pat, ctx[static_cast<size_t>(b)], calib, true, p, noise.data() + Dn, row.data() + Dn);
      store(row.data(), Dq, qp);
    }
  });

  out.set("q", std::move(q));
  out.set("c_kv", std::move(c_kv));
  out.set("k_rope", std::move(k_rope));
  out.set("w_uk", std::move(w_uk));
  out.set("w_uv", std::move(w_uv));
}

}  // namespace

const std::vector<PatternInfo>& patterns() {
  return kPatterns;
}

Inputs make_inputs(const AttentionProblem& problem, std::string_view pattern, uint64_t seed) {
  const Pattern pat = parse_pattern(pattern);
  const ProblemShape& s = problem.shape;
  require_positive(s.batch, "batch");
  require_positive(s.heads, "heads");
  require_positive(s.q_len, "q_len");
  require_positive(s.kv_len, "kv_len");
  require_positive(s.v_head_dim, "v_head_dim");
  if (problem.scale && !(*problem.scale > 0 && std::isfinite(*problem.scale))) {
    throw Error("workload: scale must be positive and finite (got " +
                std::to_string(*problem.scale) + ")");
  }

  Inputs out;
  const double scale = problem.effective_scale();
  // q, k, v in the GQA layout, for the families that start with them.
  const auto qkv = [&] {
    require_positive(s.kv_heads, "kv_heads");
    require_positive(s.head_dim, "head_dim");
    if (s.heads % s.kv_heads != 0) {
      throw Error("workload: heads (" + std::to_string(s.heads) +
                  ") must be a multiple of kv_heads (" + std::to_string(s.kv_heads) + ")");
    }
    make_qkv(pat, seed, {s.batch, s.heads, s.kv_heads, s.q_len, s.kv_len, s.head_dim, s.v_head_dim},
             scale, false, out);
  };
  switch (variant_info(problem.variant).input_family) {
    case InputFamily::qkv:
      qkv();
      break;
    case InputFamily::latent:
      make_latent(pat, seed, problem, scale, out);
      break;
    case InputFamily::latent_indexed:
      make_latent(pat, seed, problem, scale, out);
      make_indexer(seed, problem, out);
      break;
    case InputFamily::gated_qkv: {
      require_positive(s.head_dim, "head_dim");
      if (s.kv_len != s.q_len) {
        throw Error("workload: " + std::string(variant_info(problem.variant).name) +
                    " needs kv_len == q_len (got q_len " + std::to_string(s.q_len) + ", kv_len " +
                    std::to_string(s.kv_len) + ")");
      }
      make_qkv(pat, seed, {s.batch, s.heads, s.heads, s.q_len, s.kv_len, s.head_dim, s.v_head_dim},
               scale, true, out);
      make_gates(seed, s.batch, s.heads, s.q_len, out);
      break;
    }
    case InputFamily::qkv_branch_gates:
      qkv();
      make_branch_gates(seed, problem, out);
      break;
  }
  return out;
}

}  // namespace attnscope
