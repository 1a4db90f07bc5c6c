// The float64 oracle: each variant as the most literal reading of its docs/variants/ page (and
// docs/conventions.md), full matrices.
// Deliberately slow, sharing nothing with the engine (not even mask.hpp), so that it can judge it.
#include "oracle.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace attnscope_tests {

namespace {

using Mat = std::vector<std::vector<double>>;  // [rows][cols]
using BoolMat = std::vector<std::vector<bool>>;

Mat zeros(int64_t rows, int64_t cols) {
  return Mat(static_cast<size_t>(rows), std::vector<double>(static_cast<size_t>(cols), 0.0));
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (size_t d = 0; d < a.size(); ++d) s += a[d] * b[d];
  return s;
}

// Rows [b, h, :, :] of a rank-4 fp32 tensor as a float64 matrix.
Mat head_matrix(const Tensor& t, int64_t b, int64_t h) {
  const int64_t rows = t.dim(2), cols = t.dim(3);
  Mat m = zeros(rows, cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) m[r][c] = t.at({b, h, r, c});
  return m;
}

// Softmax attention of one head from its already-scaled scores [Lq][Lk] and visibility mask.
// Writes o [Lq, Dv], lse [Lq] and P [Lq, Lk] of head (b, h) into the result.
void softmax_head(const Mat& scores, const BoolMat& visible, const Mat& values, int64_t b,
                  int64_t h, OracleResult& out) {
  const int64_t lq = static_cast<int64_t>(scores.size());
  const int64_t lk = static_cast<int64_t>(values.size());
  const int64_t dv = out.o.shape[3];
  for (int64_t i = 0; i < lq; ++i) {
    // The largest visible score, for a stable exp; none visible means a fully masked row.
    double m = kNegInf;
    for (int64_t j = 0; j < lk; ++j)
      if (visible[i][j]) m = std::max(m, scores[i][j]);
    if (m == kNegInf) {
      out.lse.at({b, h, i}) = kNegInf;  // o and P rows stay 0
      continue;
    }
    double sum = 0.0;
    for (int64_t j = 0; j < lk; ++j)
      if (visible[i][j]) sum += std::exp(scores[i][j] - m);
    const double lse = m + std::log(sum);
    out.lse.at({b, h, i}) = lse;
    for (int64_t j = 0; j < lk; ++j) {
      if (!visible[i][j]) continue;
      const double p = std::exp(scores[i][j] - lse);
      out.attention.at({b, h, i, j}) = p;
      for (int64_t e = 0; e < dv; ++e) out.o.at({b, h, i, e}) += p * values[j][e];
    }
  }
}

// scores[i][j] = scale * q_i . k_j
Mat scaled_scores(const Mat& q, const Mat& k, double scale) {
  Mat s = zeros(static_cast<int64_t>(q.size()), static_cast<int64_t>(k.size()));
  for (size_t i = 0; i < q.size(); ++i)
    for (size_t j = 0; j < k.size(); ++j) s[i][j] = scale * dot(q[i], k[j]);
  return s;
}

// Dense and SWA visibility: bottom-right causal, then the window and the sinks on top.
BoolMat plain_mask(const AttentionProblem& p) {
  const int64_t lq = p.shape.q_len, lk = p.shape.kv_len;
  BoolMat vis(static_cast<size_t>(lq), std::vector<bool>(static_cast<size_t>(lk), false));
  const bool windowed = p.variant == VariantId::swa;
  for (int64_t i = 0; i < lq; ++i) {
    const int64_t pos = i + lk - lq;  // absolute key position of query row i
    for (int64_t j = 0; j < lk; ++j) {
      bool v = true;
      if (p.causal || windowed) v = j <= pos;
      if (windowed && v) v = (j > pos - p.swa.window) || (j < p.swa.sinks);
      vis[i][j] = v;
    }
  }
  return vis;
}

// MoBA's routing for one head: fills the selection and returns the key mask it implies.
BoolMat moba_mask(const AttentionProblem& p, const Mat& q, const Mat& k, int64_t b, int64_t h,
                  OracleResult& out) {
  const int64_t lq = p.shape.q_len, lk = p.shape.kv_len;
  const int64_t bs = p.moba.block_size, top_k = p.moba.top_k;
  const int64_t n_blocks = (lk + bs - 1) / bs;
  const size_t dk = k.empty() ? 0 : k[0].size();

  // Gate keys: the mean of each block's keys over the block's real length.  kbar [n_blocks][Dk]
  Mat kbar = zeros(n_blocks, static_cast<int64_t>(dk));
  for (int64_t c = 0; c < n_blocks; ++c) {
    const int64_t j0 = c * bs, j1 = std::min(lk, j0 + bs);
    for (int64_t j = j0; j < j1; ++j)
      for (size_t d = 0; d < dk; ++d) kbar[c][d] += k[j][d];
    for (size_t d = 0; d < dk; ++d) kbar[c][d] /= static_cast<double>(j1 - j0);
  }

  BoolMat vis(static_cast<size_t>(lq), std::vector<bool>(static_cast<size_t>(lk), false));
  for (int64_t i = 0; i < lq; ++i) {
    const int64_t pos = i + lk - lq;
    if (pos < 0) continue;  // sees no key at all: selection stays -1, row fully masked
    const int64_t own = pos / bs;

    // Rank the complete past blocks by unscaled gate score, ties to the lower index.
    std::vector<std::pair<double, int64_t>> past;  // (score, block)
    for (int64_t c = 0; c < own; ++c) past.emplace_back(dot(q[i], kbar[c]), c);
    std::stable_sort(past.begin(), past.end(),
                     [](const auto& a, const auto& x) { return a.first > x.first; });
    const int64_t take = std::min<int64_t>(top_k - 1, static_cast<int64_t>(past.size()));
    if (take > 0 && take < static_cast<int64_t>(past.size()))
      out.min_gate_gap = std::min(out.min_gate_gap, past[take - 1].first - past[take].first);

    std::vector<int64_t> chosen = {own};
    for (int64_t r = 0; r < take; ++r) chosen.push_back(past[r].second);
    std::sort(chosen.begin(), chosen.end());
    for (size_t r = 0; r < chosen.size(); ++r)
      out.selection->at({b, h, i, static_cast<int64_t>(r)}) = static_cast<int32_t>(chosen[r]);

    // Selected past blocks are seen whole; the own block only up to the query itself.
    for (int64_t c : chosen) {
      const int64_t j0 = c * bs, j1 = std::min(lk, j0 + bs);
      for (int64_t j = j0; j < j1; ++j) vis[i][j] = (c < own) || (j <= pos);
    }
  }
  return vis;
}

void run_softmax_family(const AttentionProblem& p, const Inputs& in, OracleResult& out) {
  const auto& s = p.shape;
  const Tensor& q = in.at("q");
  const Tensor& k = in.at("k");
  const Tensor& v = in.at("v");
  const int64_t group = s.heads / s.kv_heads;  // query heads per kv head
  const double scale = p.scale.value_or(1.0 / std::sqrt(static_cast<double>(s.head_dim)));
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t hk = h / group;          // contiguous groups, as repeat_interleave
      const Mat qh = head_matrix(q, b, h);   // [Lq][Dk]
      const Mat kh = head_matrix(k, b, hk);  // [Lk][Dk]
      const Mat vh = head_matrix(v, b, hk);  // [Lk][Dv]
      const BoolMat vis =
          p.variant == VariantId::moba ? moba_mask(p, qh, kh, b, h, out) : plain_mask(p);
      softmax_head(scaled_scores(qh, kh, scale), vis, vh, b, h, out);
    }
  }
}

// MLA in its naive form: expand each head's keys and values from the latent, then dense attention.
// (The absorbed form is the same function reassociated, so the oracle has only this one.)
void run_mla(const AttentionProblem& p, const Inputs& in, OracleResult& out) {
  const auto& s = p.shape;
  const int64_t dc = p.mla.kv_lora_rank, dr = p.mla.rope_dim, dn = p.mla.nope_dim;
  const int64_t dv = s.v_head_dim, lk = s.kv_len;
  const Tensor& q = in.at("q");            // [B, H, Lq, Dn + Dr]
  const Tensor& c_kv = in.at("c_kv");      // [B, Lk, Dc]
  const Tensor& k_rope = in.at("k_rope");  // [B, Lk, Dr]
  const Tensor& w_uk = in.at("w_uk");      // [H, Dn, Dc]
  const Tensor& w_uv = in.at("w_uv");      // [H, Dv, Dc]
  const double scale = p.scale.value_or(1.0 / std::sqrt(static_cast<double>(dn + dr)));
  const BoolMat vis = plain_mask(p);
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t h = 0; h < s.heads; ++h) {
      Mat kh = zeros(lk, dn + dr);  // [Lk][Dn + Dr] = [c_kv w_uk_h^T ; k_rope]
      Mat vh = zeros(lk, dv);       // [Lk][Dv] = c_kv w_uv_h^T
      for (int64_t j = 0; j < lk; ++j) {
        for (int64_t n = 0; n < dn; ++n)
          for (int64_t c = 0; c < dc; ++c)
            kh[j][n] += static_cast<double>(c_kv.at({b, j, c})) * w_uk.at({h, n, c});
        for (int64_t r = 0; r < dr; ++r) kh[j][dn + r] = k_rope.at({b, j, r});
        for (int64_t e = 0; e < dv; ++e)
          for (int64_t c = 0; c < dc; ++c)
            vh[j][e] += static_cast<double>(c_kv.at({b, j, c})) * w_uv.at({h, e, c});
      }
      softmax_head(scaled_scores(head_matrix(q, b, h), kh, scale), vis, vh, b, h, out);
    }
  }
}

// Gated DeltaNet: the recurrence exactly as docs/variants/gated_delta.md writes it, and the
// implicit attention.
void run_gated_delta(const AttentionProblem& p, const Inputs& in, OracleResult& out) {
  const auto& s = p.shape;
  const int64_t len = s.q_len, dk = s.head_dim, dv = s.v_head_dim;
  const Tensor& q = in.at("q");        // [B, H, L, Dk]
  const Tensor& k = in.at("k");        // [B, H, L, Dk]
  const Tensor& v = in.at("v");        // [B, H, L, Dv]
  const Tensor& g = in.at("g");        // [B, H, L]
  const Tensor& beta = in.at("beta");  // [B, H, L]
  const Tensor* init = in.has("initial_state") ? &in.at("initial_state") : nullptr;
  const double scale = p.scale.value_or(1.0 / std::sqrt(static_cast<double>(dk)));

  auto l2norm = [](std::vector<double>& x) {
    double ss = 0.0;
    for (double e : x) ss += e * e;
    const double inv = 1.0 / std::sqrt(ss + 1e-6);
    for (double& e : x) e *= inv;
  };

  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t h = 0; h < s.heads; ++h) {
      // Per-token vectors in float64, normalized first, then q scaled (that order, per the spec).
      Mat qh = head_matrix(q, b, h);        // [L][Dk]
      Mat kh = head_matrix(k, b, h);        // [L][Dk]
      const Mat vh = head_matrix(v, b, h);  // [L][Dv]
      for (int64_t t = 0; t < len; ++t) {
        if (p.gated_delta.qk_l2norm) {
          l2norm(qh[t]);
          l2norm(kh[t]);
        }
        for (double& e : qh[t]) e *= scale;
      }

      Mat st = zeros(dk, dv);  // state S [Dk][Dv]
      if (init)
        for (int64_t d = 0; d < dk; ++d)
          for (int64_t e = 0; e < dv; ++e) st[d][e] = init->at({b, h, d, e});

      for (int64_t t = 0; t < len; ++t) {
        const double alpha = std::exp(static_cast<double>(g.at({b, h, t})));
        const double bt = beta.at({b, h, t});
        // S = exp(g_t) S
        for (auto& row : st)
          for (double& e : row) e *= alpha;
        // u_t = beta_t (v_t - S^T k_t)   [Dv]
        std::vector<double> u(static_cast<size_t>(dv), 0.0);
        for (int64_t e = 0; e < dv; ++e) {
          double sk = 0.0;
          for (int64_t d = 0; d < dk; ++d) sk += st[d][e] * kh[t][d];
          u[e] = bt * (vh[t][e] - sk);
        }
        // S = S + k_t u_t^T
        for (int64_t d = 0; d < dk; ++d)
          for (int64_t e = 0; e < dv; ++e) st[d][e] += kh[t][d] * u[e];
        // o_t = S^T q_t
        for (int64_t e = 0; e < dv; ++e) {
          double o = 0.0;
          for (int64_t d = 0; d < dk; ++d) o += st[d][e] * qh[t][d];
          out.o.at({b, h, t, e}) = o;
        }
      }
      for (int64_t d = 0; d < dk; ++d)
        for (int64_t e = 0; e < dv; ++e) out.final_state->at({b, h, d, e}) = st[d][e];

      // Implicit attention. The step is S_t = M_t S_{t-1} + beta_t k_t v_t^T with
      // M_t = exp(g_t) (I - beta_t k_t k_t^T) (symmetric), hence
      //   A[i][j] = beta_j q_i^T M_i M_{i-1} ... M_{j+1} k_j.
      // Walk j down from i, carrying w = M_{j+1} ... M_i q_i.
      for (int64_t i = 0; i < len; ++i) {
        std::vector<double> w = qh[i];
        for (int64_t j = i; j >= 0; --j) {
          const double bj = beta.at({b, h, j});
          out.attention.at({b, h, i, j}) = bj * dot(w, kh[j]);
          const double kw = dot(kh[j], w);
          const double aj = std::exp(static_cast<double>(g.at({b, h, j})));
          for (int64_t d = 0; d < dk; ++d) w[d] = aj * (w[d] - bj * kh[j][d] * kw);
        }
      }
    }
  }
}

}  // namespace

// --- DTensor -----------------------------------------------------------------------------------

DTensor::DTensor(Shape s, double fill) : shape(std::move(s)) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  data.assign(static_cast<size_t>(n), fill);
}

int64_t DTensor::offset(std::initializer_list<int64_t> idx) const {
  int64_t off = 0;
  size_t d = 0;
  for (int64_t i : idx) off = off * shape[d++] + i;
  return off;
}

// --- The oracle --------------------------------------------------------------------------------

OracleResult oracle_run(const AttentionProblem& p, const Inputs& in) {
  const auto& s = p.shape;
  OracleResult out;
  out.o = DTensor({s.batch, s.heads, s.q_len, s.v_head_dim});
  out.attention = DTensor({s.batch, s.heads, s.q_len, s.kv_len});
  switch (p.variant) {
    case VariantId::dense:
    case VariantId::swa:
    case VariantId::moba:
      out.lse = DTensor({s.batch, s.heads, s.q_len});
      if (p.variant == VariantId::moba)
        out.selection = IndexTensor({s.batch, s.heads, s.q_len, p.moba.top_k}, -1);
      run_softmax_family(p, in, out);
      break;
    case VariantId::mla:
      out.lse = DTensor({s.batch, s.heads, s.q_len});
      run_mla(p, in, out);
      break;
    case VariantId::gated_delta:
      out.final_state = DTensor({s.batch, s.heads, s.head_dim, s.v_head_dim});
      run_gated_delta(p, in, out);
      break;
    case VariantId::nsa:
    case VariantId::dsa:
      // Their oracles live beside their tests (test_nsa.cpp, test_dsa.cpp).
      throw std::logic_error("oracle_run: no oracle here for this variant");
  }
  return out;
}

// --- Random inputs -----------------------------------------------------------------------------

double Rng::uniform() {
  // 53 random bits -> [0, 1)
  return static_cast<double>(gen_() >> 11) * (1.0 / 9007199254740992.0);
}

double Rng::normal() {
  // Box-Muller; 1 - u keeps the log's argument in (0, 1].
  const double u1 = 1.0 - uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

Tensor random_normal(const Shape& shape, Rng& rng, double stddev) {
  Tensor t(shape);
  for (float& x : t.span()) x = static_cast<float>(stddev * rng.normal());
  return t;
}

Tensor random_uniform(const Shape& shape, Rng& rng, double lo, double hi) {
  Tensor t(shape);
  for (float& x : t.span()) x = static_cast<float>(lo + (hi - lo) * rng.uniform());
  return t;
}

Inputs random_inputs(const AttentionProblem& p, uint64_t seed, bool initial_state) {
  const auto& s = p.shape;
  Rng rng(seed);
  Inputs in;
  switch (p.variant) {
    case VariantId::dense:
    case VariantId::swa:
    case VariantId::moba:
      in.set("q", random_normal({s.batch, s.heads, s.q_len, s.head_dim}, rng));
      in.set("k", random_normal({s.batch, s.kv_heads, s.kv_len, s.head_dim}, rng));
      in.set("v", random_normal({s.batch, s.kv_heads, s.kv_len, s.v_head_dim}, rng));
      break;
    case VariantId::mla: {
      const int64_t dc = p.mla.kv_lora_rank, dr = p.mla.rope_dim, dn = p.mla.nope_dim;
      // Up-projections scaled by 1/sqrt(Dc) so expanded keys have unit-size entries, as trained
      // weights would; otherwise the softmax saturates and tests see only argmax.
      const double wstd = 1.0 / std::sqrt(static_cast<double>(dc));
      in.set("q", random_normal({s.batch, s.heads, s.q_len, dn + dr}, rng));
      in.set("c_kv", random_normal({s.batch, s.kv_len, dc}, rng));
      in.set("k_rope", random_normal({s.batch, s.kv_len, dr}, rng));
      in.set("w_uk", random_normal({s.heads, dn, dc}, rng, wstd));
      in.set("w_uv", random_normal({s.heads, s.v_head_dim, dc}, rng, wstd));
      break;
    }
    case VariantId::gated_delta: {
      const int64_t len = s.q_len;
      in.set("q", random_normal({s.batch, s.heads, len, s.head_dim}, rng));
      Tensor k = random_normal({s.batch, s.heads, len, s.head_dim}, rng);
      if (!p.gated_delta.qk_l2norm) {
        // Unit keys keep (I - beta k k^T) a contraction, so fp32 stays meaningful over 150 steps.
        const int64_t dk = s.head_dim;
        for (int64_t r = 0; r < k.numel() / dk; ++r) {
          float* row = k.data() + r * dk;
          double ss = 0.0;
          for (int64_t d = 0; d < dk; ++d) ss += static_cast<double>(row[d]) * row[d];
          const double inv = 1.0 / std::sqrt(ss);
          for (int64_t d = 0; d < dk; ++d) row[d] = static_cast<float>(row[d] * inv);
        }
      }
      in.set("k", std::move(k));
      in.set("v", random_normal({s.batch, s.heads, len, s.v_head_dim}, rng));
      // g = log(sigmoid(x)) with x ~ N(1, 1): mostly mild decay, occasionally strong.
      Tensor g({s.batch, s.heads, len});
      for (float& x : g.span())
        x = static_cast<float>(-std::log1p(std::exp(-(1.0 + rng.normal()))));
      in.set("g", std::move(g));
      Tensor beta({s.batch, s.heads, len});
      for (float& x : beta.span()) x = static_cast<float>(1.0 / (1.0 + std::exp(-rng.normal())));
      in.set("beta", std::move(beta));
      if (initial_state)
        in.set("initial_state",
               random_normal({s.batch, s.heads, s.head_dim, s.v_head_dim}, rng, 0.5));
      break;
    }
    case VariantId::nsa:
    case VariantId::dsa:
      throw std::logic_error("random_inputs: this variant's tests make their own inputs");
  }
  return in;
}

// --- Tensor plumbing ---------------------------------------------------------------------------

DTensor to_double(const Tensor& t) {
  DTensor d(t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) d.data[static_cast<size_t>(i)] = t.data()[i];
  return d;
}

namespace {
// Splits a shape around `dim` into (outer count, dim size, inner count) for strided copies.
void split_at(const Shape& s, int dim, int64_t& outer, int64_t& mid, int64_t& inner) {
  outer = 1;
  inner = 1;
  for (int i = 0; i < dim; ++i) outer *= s[static_cast<size_t>(i)];
  mid = s[static_cast<size_t>(dim)];
  for (size_t i = static_cast<size_t>(dim) + 1; i < s.size(); ++i) inner *= s[i];
}
}  // namespace

Tensor slice_dim(const Tensor& t, int dim, int64_t lo, int64_t hi) {
  int64_t outer, mid, inner;
  split_at(t.shape(), dim, outer, mid, inner);
  Shape shape = t.shape();
  shape[static_cast<size_t>(dim)] = hi - lo;
  Tensor r(shape);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t m = lo; m < hi; ++m)
      for (int64_t i = 0; i < inner; ++i)
        r.data()[(o * (hi - lo) + (m - lo)) * inner + i] = t.data()[(o * mid + m) * inner + i];
  return r;
}

Tensor repeat_interleave(const Tensor& t, int dim, int64_t times) {
  int64_t outer, mid, inner;
  split_at(t.shape(), dim, outer, mid, inner);
  Shape shape = t.shape();
  shape[static_cast<size_t>(dim)] = mid * times;
  Tensor r(shape);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t m = 0; m < mid * times; ++m)
      for (int64_t i = 0; i < inner; ++i)
        r.data()[(o * mid * times + m) * inner + i] = t.data()[(o * mid + m / times) * inner + i];
  return r;
}

std::string index_str(const Shape& shape, int64_t flat) {
  std::vector<int64_t> idx(shape.size(), 0);
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] > 0 ? flat % shape[d] : 0;
    flat = shape[d] > 0 ? flat / shape[d] : 0;
  }
  std::string s = "[";
  for (size_t d = 0; d < idx.size(); ++d) {
    if (d) s += ", ";
    s += std::to_string(idx[d]);
  }
  return s + "]";
}

// --- Comparisons -------------------------------------------------------------------------------

namespace {

std::string shape_text(const Shape& s) {
  std::string r = "[";
  for (size_t d = 0; d < s.size(); ++d) {
    if (d) r += ", ";
    r += std::to_string(s[d]);
  }
  return r + "]";
}

std::string num(double x) {
  std::ostringstream os;
  os.precision(9);
  os << x;
  return os.str();
}

// Shared element loop: `want_at(i)` is the expected value of flat element i.
template <class WantAt>
::testing::AssertionResult compare(std::string_view what, const Tensor& got,
                                   const Shape& want_shape, WantAt want_at) {
  if (got.shape() != want_shape)
    return ::testing::AssertionFailure() << what << ": shape " << shape_text(got.shape())
                                         << ", expected " << shape_text(want_shape);
  int64_t bad = 0, worst = -1;
  double worst_excess = 0.0;  // error / allowed error of the worst element
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double g = got.data()[i];
    const double w = want_at(i);
    double excess;
    if (std::isnan(g) || std::isnan(w)) {
      excess = std::numeric_limits<double>::infinity();
    } else if (std::isinf(w) || std::isinf(g)) {
      excess = (g == w) ? 0.0 : std::numeric_limits<double>::infinity();
    } else {
      excess = std::abs(g - w) / (kTol * (1.0 + std::abs(w)));
    }
    if (excess > 1.0) ++bad;
    if (excess > worst_excess) {
      worst_excess = excess;
      worst = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  const double g = got.data()[worst], w = want_at(worst);
  const std::string why =
      std::isfinite(g) && std::isfinite(w)
          ? "|diff| " + num(std::abs(g - w)) + " vs allowed " + num(kTol * (1 + std::abs(w)))
          : std::string("NaN never passes; +-inf must match exactly");
  return ::testing::AssertionFailure()
         << what << ": " << bad << " of " << got.numel() << " elements off; worst at "
         << index_str(want_shape, worst) << ": got " << num(g) << ", expected " << num(w) << " ("
         << why << ")";
}

}  // namespace

::testing::AssertionResult all_close(std::string_view what, const Tensor& got,
                                     const DTensor& want) {
  return compare(what, got, want.shape,
                 [&](int64_t i) { return want.data[static_cast<size_t>(i)]; });
}

::testing::AssertionResult all_close(std::string_view what, const Tensor& got, const Tensor& want) {
  return compare(what, got, want.shape(),
                 [&](int64_t i) { return static_cast<double>(want.data()[i]); });
}

::testing::AssertionResult same_indices(std::string_view what, const IndexTensor& got,
                                        const IndexTensor& want) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << what << ": shape " << shape_text(got.shape())
                                         << ", expected " << shape_text(want.shape());
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < got.numel(); ++i) {
    if (got.data()[i] != want.data()[i]) {
      if (first < 0) first = i;
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  // Show the whole last-dim row around the first mismatch: a selection is read as a set.
  const int64_t row_len = want.shape().empty() ? 1 : want.shape().back();
  const int64_t row0 = first - first % row_len;
  std::string g = "{", w = "{";
  for (int64_t i = row0; i < row0 + row_len; ++i) {
    if (i > row0) {
      g += ", ";
      w += ", ";
    }
    g += std::to_string(got.data()[i]);
    w += std::to_string(want.data()[i]);
  }
  return ::testing::AssertionFailure()
         << what << ": " << bad << " of " << got.numel() << " entries differ; first at "
         << index_str(want.shape(), first) << ": row got " << g << "}, expected " << w << "}";
}

::testing::AssertionResult no_nan(std::string_view what, const Tensor& t, bool allow_neg_inf) {
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float x = t.data()[i];
    if (std::isnan(x) || (std::isinf(x) && !(allow_neg_inf && x < 0)))
      return ::testing::AssertionFailure()
             << what << ": non-finite " << x << " at " << index_str(t.shape(), i);
  }
  return ::testing::AssertionSuccess();
}

std::string describe_case(const AttentionProblem& p) {
  static const char* names[] = {"dense", "swa", "mla", "moba", "gated_delta", "nsa", "dsa"};
  const auto& s = p.shape;
  std::ostringstream os;
  os << names[static_cast<int>(p.variant)] << " B=" << s.batch << " H=" << s.heads
     << " Hkv=" << s.kv_heads << " Lq=" << s.q_len << " Lk=" << s.kv_len << " Dk=" << s.head_dim
     << " Dv=" << s.v_head_dim << (p.causal ? " causal" : " non-causal");
  if (p.scale) os << " scale=" << *p.scale;
  switch (p.variant) {
    case VariantId::swa:
      os << " window=" << p.swa.window << " sinks=" << p.swa.sinks;
      break;
    case VariantId::mla:
      os << " Dc=" << p.mla.kv_lora_rank << " Dn=" << p.mla.nope_dim << " Dr=" << p.mla.rope_dim
         << (p.mla.absorbed ? " absorbed" : " naive");
      break;
    case VariantId::moba:
      os << " block=" << p.moba.block_size << " top_k=" << p.moba.top_k;
      break;
    case VariantId::gated_delta:
      os << " chunk=" << p.gated_delta.chunk_size
         << (p.gated_delta.recurrent ? " recurrent" : " chunked")
         << (p.gated_delta.qk_l2norm ? " l2norm" : "");
      break;
    default:
      break;
  }
  return os.str();
}

}  // namespace attnscope_tests
