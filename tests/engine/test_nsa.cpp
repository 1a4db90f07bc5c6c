// Native Sparse Attention against its own float64 oracle, written here from VARIANTS.md ("Native
// Sparse Attention", fla's naive_nsa) with full [Lq, Lk] matrices: both backends on random shapes,
// the invariants that tie NSA to SWA and dense attention, the implicit map, bad inputs, the CLI.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "attnscope/error.hpp"
#include "attnscope/io.hpp"
#include "attnscope/probes.hpp"
#include "attnscope/registry.hpp"
#include "oracle.hpp"

using namespace attnscope;
using attnscope_tests::all_close;
using attnscope_tests::DTensor;
using attnscope_tests::Rng;
using attnscope_tests::same_indices;
namespace fs = std::filesystem;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct NsaCase {
  ProblemShape shape;
  int64_t block_size, block_count, window;
};

AttentionProblem make_problem(const NsaCase& c) {
  AttentionProblem p = AttentionProblem::defaults(VariantId::nsa);
  p.shape = c.shape;
  p.causal = true;
  p.nsa = {c.block_size, c.block_count, c.window};
  return p;
}

std::string describe(const AttentionProblem& p) {
  const ProblemShape& s = p.shape;
  return "nsa B=" + std::to_string(s.batch) + " H=" + std::to_string(s.heads) +
         " Hkv=" + std::to_string(s.kv_heads) + " Lq=" + std::to_string(s.q_len) +
         " Lk=" + std::to_string(s.kv_len) + " Dk=" + std::to_string(s.head_dim) +
         " Dv=" + std::to_string(s.v_head_dim) + " BS=" + std::to_string(p.nsa.block_size) +
         " S=" + std::to_string(p.nsa.block_count) + " W=" + std::to_string(p.nsa.window);
}

Inputs make_nsa_inputs(const AttentionProblem& p, uint64_t seed) {
  Rng rng(seed);
  const ProblemShape& s = p.shape;
  Inputs in;
  in.set("q", attnscope_tests::random_normal({s.batch, s.heads, s.q_len, s.head_dim}, rng));
  in.set("k", attnscope_tests::random_normal({s.batch, s.kv_heads, s.kv_len, s.head_dim}, rng));
  in.set("v", attnscope_tests::random_normal({s.batch, s.kv_heads, s.kv_len, s.v_head_dim}, rng));
  for (const char* g : {"g_cmp", "g_slc", "g_swa"}) {
    in.set(g, attnscope_tests::random_uniform({s.batch, s.heads, s.q_len}, rng, 0.0, 1.0));
  }
  return in;
}

void set_gates(Inputs& in, float cmp, float slc, float swa) {
  const Shape shape = in.at("g_cmp").shape();
  in.set("g_cmp", Tensor(shape, cmp));
  in.set("g_slc", Tensor(shape, slc));
  in.set("g_swa", Tensor(shape, swa));
}

// ---- The oracle: VARIANTS.md step by step, full matrices, float64 --------------------------

struct NsaOracle {
  DTensor o, lse_cmp, lse_slc, lse_swa;  // [B, H, Lq, Dv], [B, H, Lq] x 3
  IndexTensor selection;                 // [B, Hkv, Lq, S]
  DTensor map;                           // [B, H, Lq, Lk]: weight of v_j in o_i
  // Smallest relative gap between the weakest chosen and the strongest unchosen candidate block:
  // random cases are redrawn when fp32 could legitimately order them either way.
  double min_gap = kInf;
};

// Softmax of the entries of s where mask is true; returns lse (-inf, all 0, when none).
double masked_softmax(std::vector<double>& s, const std::vector<char>& mask) {
  double m = -kInf;
  for (size_t j = 0; j < s.size(); ++j) {
    if (mask[j]) m = std::max(m, s[j]);
  }
  if (m == -kInf) {
    std::fill(s.begin(), s.end(), 0.0);
    return -kInf;
  }
  double sum = 0;
  for (size_t j = 0; j < s.size(); ++j) {
    s[j] = mask[j] ? std::exp(s[j] - m) : 0.0;
    sum += s[j];
  }
  for (double& x : s) x /= sum;
  return m + std::log(sum);
}

NsaOracle nsa_oracle(const AttentionProblem& p, const Inputs& in) {
  const ProblemShape& sh = p.shape;
  const int64_t B = sh.batch, H = sh.heads, Hkv = sh.kv_heads, Lq = sh.q_len, Lk = sh.kv_len;
  const int64_t Dk = sh.head_dim, Dv = sh.v_head_dim, G = H / Hkv;
  const int64_t BS = p.nsa.block_size, S = p.nsa.block_count, W = p.nsa.window;
  const int64_t NB = (Lk + BS - 1) / BS;
  const double scale = 1.0 / std::sqrt(double(Dk));
  const DTensor q = attnscope_tests::to_double(in.at("q"));
  const DTensor k = attnscope_tests::to_double(in.at("k"));
  const DTensor v = attnscope_tests::to_double(in.at("v"));
  const DTensor gc = attnscope_tests::to_double(in.at("g_cmp"));
  const DTensor gs = attnscope_tests::to_double(in.at("g_slc"));
  const DTensor gw = attnscope_tests::to_double(in.at("g_swa"));
  NsaOracle r;
  r.o = DTensor({B, H, Lq, Dv});
  r.lse_cmp = DTensor({B, H, Lq});
  r.lse_slc = DTensor({B, H, Lq});
  r.lse_swa = DTensor({B, H, Lq});
  r.selection = IndexTensor({B, Hkv, Lq, S}, -1);
  r.map = DTensor({B, H, Lq, Lk});
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t kh = 0; kh < Hkv; ++kh) {
      // Block means over the real length.
      std::vector<std::vector<double>> km(NB, std::vector<double>(Dk)),
          vm(NB, std::vector<double>(Dv));
      for (int64_t c = 0; c < NB; ++c) {
        const int64_t len = std::min(Lk, (c + 1) * BS) - c * BS;
        for (int64_t j = c * BS; j < c * BS + len; ++j) {
          for (int64_t e = 0; e < Dk; ++e) km[c][e] += k.at({b, kh, j, e}) / double(len);
          for (int64_t e = 0; e < Dv; ++e) vm[c][e] += v.at({b, kh, j, e}) / double(len);
        }
      }
      auto visible = [&](int64_t i, int64_t c) { return (c + 1) * BS - 1 <= i + Lk - Lq; };
      // Compressed probabilities per head [G][Lq][NB] and the group score [Lq][NB].
      std::vector<std::vector<std::vector<double>>> pc(G);
      std::vector<std::vector<double>> score(Lq, std::vector<double>(NB, 0.0));
      for (int64_t g = 0; g < G; ++g) {
        const int64_t h = kh * G + g;
        pc[g].assign(Lq, std::vector<double>(NB));
        for (int64_t i = 0; i < Lq; ++i) {
          std::vector<char> mask(NB);
          for (int64_t c = 0; c < NB; ++c) {
            double dot = 0;
            for (int64_t e = 0; e < Dk; ++e) dot += q.at({b, h, i, e}) * km[c][e];
            pc[g][i][c] = dot * scale;
            mask[c] = visible(i, c);
          }
          r.lse_cmp.at({b, h, i}) = masked_softmax(pc[g][i], mask);
          for (int64_t c = 0; c < NB; ++c) score[i][c] += pc[g][i][c] / double(G);
        }
      }
      // Selection: forced blocks, then repeatedly the best unchosen visible block.
      std::vector<std::vector<char>> chosen(Lq, std::vector<char>(NB, 0));
      for (int64_t i = 0; i < Lq; ++i) {
        const int64_t pos = i + Lk - Lq;
        if (pos < 0) continue;
        const int64_t own = pos / BS;
        chosen[i][0] = chosen[i][own] = 1;
        if (own >= 1) chosen[i][own - 1] = 1;
        int64_t n = std::count(chosen[i].begin(), chosen[i].end(), 1);
        double weakest = kInf;
        while (n < S) {
          int64_t best = -1;
          for (int64_t c = 0; c < NB; ++c) {
            if (visible(i, c) && !chosen[i][c] && (best < 0 || score[i][c] > score[i][best])) {
              best = c;
            }
          }
          if (best < 0) break;
          chosen[i][best] = 1;
          weakest = std::min(weakest, score[i][best]);
          ++n;
        }
        for (int64_t c = 0; c < NB && weakest < kInf; ++c) {
          if (visible(i, c) && !chosen[i][c]) {
            r.min_gap = std::min(r.min_gap, (weakest - score[i][c]) / weakest);
          }
        }
        int64_t t = 0;
        for (int64_t c = 0; c < NB; ++c) {
          if (chosen[i][c]) r.selection.data()[((b * Hkv + kh) * Lq + i) * S + t++] = int32_t(c);
        }
      }
      // Selected and window branches per head over full [Lq, Lk] score rows, and the map.
      for (int64_t g = 0; g < G; ++g) {
        const int64_t h = kh * G + g;
        for (int64_t i = 0; i < Lq; ++i) {
          const int64_t pos = i + Lk - Lq;
          std::vector<double> s(Lk);
          for (int64_t j = 0; j < Lk; ++j) {
            double dot = 0;
            for (int64_t e = 0; e < Dk; ++e) dot += q.at({b, h, i, e}) * k.at({b, kh, j, e});
            s[j] = dot * scale;
          }
          std::vector<char> m_slc(Lk), m_swa(Lk);
          for (int64_t j = 0; j < Lk; ++j) {
            m_slc[j] = pos >= 0 && j <= pos && chosen[i][j / BS];
            m_swa[j] = W > 0 && j <= pos && j > pos - W;
          }
          std::vector<double> p_slc = s, p_swa = s;
          r.lse_slc.at({b, h, i}) = masked_softmax(p_slc, m_slc);
          r.lse_swa.at({b, h, i}) = masked_softmax(p_swa, m_swa);
          for (int64_t j = 0; j < Lk; ++j) {
            const double cmp = visible(i, j / BS) ? pc[g][i][j / BS] / double(BS) : 0.0;
            r.map.at({b, h, i, j}) =
                gs.at({b, h, i}) * p_slc[j] + gw.at({b, h, i}) * p_swa[j] + gc.at({b, h, i}) * cmp;
          }
          for (int64_t e = 0; e < Dv; ++e) {
            double acc = 0;
            for (int64_t c = 0; c < NB; ++c) acc += gc.at({b, h, i}) * pc[g][i][c] * vm[c][e];
            for (int64_t j = 0; j < Lk; ++j) {
              acc +=
                  (gs.at({b, h, i}) * p_slc[j] + gw.at({b, h, i}) * p_swa[j]) * v.at({b, kh, j, e});
            }
            r.o.at({b, h, i, e}) = acc;
          }
        }
      }
    }
  }
  return r;
}

void expect_matches(const RunResult& got, const NsaOracle& want, const std::string& backend) {
  SCOPED_TRACE(backend);
  EXPECT_TRUE(got.lse.empty());
  EXPECT_FALSE(got.selection.has_value());
  EXPECT_TRUE(all_close("o", got.o, want.o));
  EXPECT_TRUE(all_close("lse_cmp", got.extra.at("lse_cmp"), want.lse_cmp));
  EXPECT_TRUE(all_close("lse_slc", got.extra.at("lse_slc"), want.lse_slc));
  EXPECT_TRUE(all_close("lse_swa", got.extra.at("lse_swa"), want.lse_swa));
  EXPECT_TRUE(same_indices("selection", got.extra_index.at("selection"), want.selection));
}

// Runs both backends on the case and compares them with the oracle. Near ties are kept: the cpu
// path must re-decide them in float64. Inputs are redrawn only when two float64 computations
// could disagree (a gap near 1e-16), which random inputs practically never give.
void check_case(const NsaCase& c, uint64_t seed) {
  const AttentionProblem p = make_problem(c);
  SCOPED_TRACE(describe(p));
  Inputs in = make_nsa_inputs(p, seed);
  NsaOracle want = nsa_oracle(p, in);
  for (int tries = 0; want.min_gap < 1e-12 && tries < 20; ++tries) {
    in = make_nsa_inputs(p, seed + 1000 * (tries + 1));
    want = nsa_oracle(p, in);
  }
  for (const char* name : {"reference", "cpu"}) {
    expect_matches(make_backend(name)->run(p, in, {}, {}), want, name);
  }
}

}  // namespace

TEST(NsaBackends, MatchOracleOnChosenShapes) {
  const std::vector<NsaCase> cases = {
      {{1, 4, 2, 37, 37, 16, 8}, 4, 4, 6},      // GQA, short last block
      {{1, 4, 1, 50, 50, 8, 8}, 5, 3, 0},       // MQA, window off, only the forced blocks
      {{2, 3, 3, 30, 30, 8, 12}, 4, 5, 100},    // MHA, B = 2, window >= Lk
      {{1, 2, 1, 40, 40, 8, 8}, 4, 16, 3},      // block_count >= #blocks
      {{1, 4, 2, 13, 45, 8, 8}, 4, 4, 7},       // chunked prefill (Lq < Lk)
      {{1, 4, 2, 1, 61, 8, 8}, 8, 3, 5},        // one decode-like row
      {{1, 2, 1, 20, 12, 8, 8}, 4, 3, 4},       // Lq > Lk: rows before the first key
      {{1, 2, 2, 17, 17, 8, 8}, 1, 5, 2},       // one-key blocks
      {{1, 2, 1, 9, 9, 4, 4}, 16, 3, 1},        // a single, incomplete block; W = 1
      {{1, 8, 2, 150, 150, 32, 16}, 8, 6, 16},  // many candidate blocks
  };
  uint64_t seed = 11;
  for (const NsaCase& c : cases) check_case(c, seed++);
}

TEST(NsaBackends, MatchOracleOnRandomShapes) {
  Rng rng(20250219);
  auto pick = [&](int64_t lo, int64_t hi) {
    return lo + int64_t(rng.uniform() * double(hi - lo + 1));
  };
  for (int n = 0; n < 14; ++n) {
    const int64_t hkv = pick(1, 3), G = pick(1, 4);
    const int64_t lk = pick(1, 90),
                  lq = std::max<int64_t>(1, std::min<int64_t>(lk + 6, pick(1, 95)));
    NsaCase c{{pick(1, 2), hkv * G, hkv, lq, lk, pick(1, 3) * 4, pick(1, 12)},
              pick(1, 12),
              pick(3, 9),
              pick(0, 1) ? pick(0, 100) : 0};
    check_case(c, 100 + n);
  }
}

// Head width 128 (fp32 dot products of 128 terms) and 31 candidate blocks per late row: many rows
// whose fp32 group scores are too close to call, which the cpu path re-scores in float64.
TEST(NsaBackends, WideHeadsSelectExactlyAsTheReference) {
  check_case({{1, 8, 2, 256, 256, 128, 32}, 8, 8, 16}, 77);
}

// With enough blocks the per-row tiling of the cpu path splits the rows into several chunks.
TEST(NsaBackends, ManyHeadsAndSlotsSplitTheCpuRowsIntoChunks) {
  check_case({{1, 16, 1, 300, 300, 16, 64}, 4, 64, 20}, 7);
}

// Identical key blocks tie exactly in float64: both backends must give the lower block index.
// Copies one ulp apart in one key element differ only far below fp32's resolution of the scores:
// the float64 order decides, which the cpu path must re-score to see.
TEST(NsaBackends, ExactAndSubUlpTiesFollowFloat64) {
  for (int64_t Hkv : {1, 2})
    for (bool nudge : {false, true}) {
      const AttentionProblem p = make_problem({{1, 4, Hkv, 64, 64, 8, 8}, 4, 5, 4});
      SCOPED_TRACE(describe(p) + (nudge ? " nudged" : " exact"));
      Inputs in = make_nsa_inputs(p, 3);
      Tensor k = in.at("k");
      // Blocks 2..9 all copy block 1's keys: equal means, equal scores, equal probabilities.
      for (int64_t h = 0; h < Hkv; ++h) {
        float* kh = k.data() + h * 64 * 8;
        for (int64_t c = 2; c < 10; ++c) {
          std::copy(kh + 4 * 8, kh + 8 * 8, kh + c * 4 * 8);
          float& x = kh[c * 4 * 8 + (c % 8)];
          if (nudge) x = std::nextafter(x, c % 3 == 0 ? -1e30f : 1e30f);
        }
      }
      in.set("k", k);
      const NsaOracle want = nsa_oracle(p, in);
      for (const char* name : {"reference", "cpu"}) {
        expect_matches(make_backend(name)->run(p, in, {}, {}), want, name);
      }
    }
}

TEST(NsaInvariants, WindowGateAloneIsSlidingWindowAttention) {
  const AttentionProblem p = make_problem({{2, 4, 2, 33, 41, 8, 8}, 4, 4, 7});
  Inputs in = make_nsa_inputs(p, 5);
  set_gates(in, 0, 0, 1);
  AttentionProblem swa = AttentionProblem::defaults(VariantId::swa);
  swa.shape = p.shape;
  swa.causal = true;
  swa.swa = {7, 0};
  Inputs swa_in;
  for (const char* t : {"q", "k", "v"}) swa_in.set(t, in.at(t));
  for (const char* name : {"reference", "cpu"}) {
    SCOPED_TRACE(name);
    const RunResult got = make_backend(name)->run(p, in, {}, {});
    const RunResult want = make_backend(name)->run(swa, swa_in, {}, {});
    EXPECT_TRUE(all_close("o", got.o, want.o));
    EXPECT_TRUE(all_close("lse_swa", got.extra.at("lse_swa"), want.lse));
  }
}

TEST(NsaInvariants, SelectedGateWithEveryBlockIsCausalDense) {
  const AttentionProblem p = make_problem({{1, 6, 2, 29, 45, 8, 12}, 4, 12, 5});  // 12 blocks
  Inputs in = make_nsa_inputs(p, 9);
  set_gates(in, 0, 1, 0);
  AttentionProblem dense = AttentionProblem::defaults(VariantId::dense);
  dense.shape = p.shape;
  dense.causal = true;
  Inputs dense_in;
  for (const char* t : {"q", "k", "v"}) dense_in.set(t, in.at(t));
  for (const char* name : {"reference", "cpu"}) {
    SCOPED_TRACE(name);
    const RunResult got = make_backend(name)->run(p, in, {}, {});
    const RunResult want = make_backend(name)->run(dense, dense_in, {}, {});
    EXPECT_TRUE(all_close("o", got.o, want.o));
    EXPECT_TRUE(all_close("lse_slc", got.extra.at("lse_slc"), want.lse));
  }
}

TEST(NsaMap, TilesAndPooledMapMatchTheOracle) {
  for (const NsaCase& c :
       {NsaCase{{1, 4, 2, 37, 37, 8, 8}, 4, 4, 6}, NsaCase{{1, 2, 1, 20, 27, 8, 8}, 4, 3, 0},
        NsaCase{{1, 2, 1, 12, 9, 8, 8}, 2, 3, 3}}) {
    const AttentionProblem p = make_problem(c);
    SCOPED_TRACE(describe(p));
    const Inputs in = make_nsa_inputs(p, 21);
    const NsaOracle want = nsa_oracle(p, in);
    const ProblemShape& s = p.shape;
    for (const char* name : {"reference", "cpu"}) {
      SCOPED_TRACE(name);
      const RunResult res = make_backend(name)->run(p, in, {}, {});
      for (int64_t h = 0; h < s.heads; ++h) {
        // The whole map in odd tiles.
        DTensor want_h({s.q_len, s.kv_len});
        Tensor got_h({s.q_len, s.kv_len});
        for (int64_t i = 0; i < s.q_len; ++i) {
          for (int64_t j = 0; j < s.kv_len; ++j) want_h.at({i, j}) = want.map.at({0, h, i, j});
        }
        for (int64_t i0 = 0; i0 < s.q_len; i0 += 7) {
          for (int64_t j0 = 0; j0 < s.kv_len; j0 += 5) {
            const int64_t i1 = std::min(s.q_len, i0 + 7), j1 = std::min(s.kv_len, j0 + 5);
            std::vector<float> tile(static_cast<size_t>((i1 - i0) * (j1 - j0)));
            attention_tile(p, in, res, 0, h, i0, i1, j0, j1, tile.data());
            for (int64_t i = i0; i < i1; ++i) {
              for (int64_t j = j0; j < j1; ++j) {
                got_h.data()[i * s.kv_len + j] = tile[(i - i0) * (j1 - j0) + (j - j0)];
              }
            }
          }
        }
        EXPECT_TRUE(all_close("map tiles", got_h, want_h)) << "head " << h;
        // The pooled probe at full resolution is the same map, and never negative.
        MapRequest req;
        req.head = h;
        req.out_rows = s.q_len;
        req.out_cols = s.kv_len;
        req.pool = Pool::mean;
        EXPECT_TRUE(all_close("attention_map", attention_map(p, in, res, req), want_h));
        req.out_rows = 5, req.out_cols = 4, req.pool = Pool::max;
        const Tensor pooled = attention_map(p, in, res, req);
        for (float x : pooled.span()) EXPECT_GE(x, 0.0f);
        // Rows sum to the gates' total where every branch sees something.
        for (int64_t i = 0; i < s.q_len; ++i) {
          const int64_t row = h * s.q_len + i;
          if (!std::isfinite(res.extra.at("lse_cmp").data()[row]) ||
              !std::isfinite(res.extra.at("lse_swa").data()[row]))
            continue;
          double sum = 0, gates = 0;
          for (int64_t j = 0; j < s.kv_len; ++j) sum += got_h.data()[i * s.kv_len + j];
          for (const char* g : {"g_cmp", "g_slc", "g_swa"}) gates += in.at(g).data()[row];
          EXPECT_NEAR(sum, gates, 1e-5 * (1 + gates)) << "row " << i;
        }
      }
    }
  }
}

TEST(NsaErrors, BadInputsAndKnobsGiveClearErrors) {
  const AttentionProblem p = make_problem({{1, 2, 1, 8, 8, 4, 4}, 4, 3, 2});
  const Inputs good = make_nsa_inputs(p, 1);
  auto expect_error = [&](const AttentionProblem& pp, const Inputs& in, const std::string& needle) {
    for (const char* name : {"reference", "cpu"}) {
      try {
        make_backend(name)->run(pp, in, {}, {});
        ADD_FAILURE() << name << ": no error, expected one containing '" << needle << "'";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
            << name << ": " << e.what();
      }
    }
  };
  Inputs missing = good;
  missing.tensors.erase("g_slc");
  expect_error(p, missing, "g_slc");
  Inputs big = good;
  Tensor g = big.at("g_swa");
  g.data()[3] = 1.5f;
  big.set("g_swa", g);
  expect_error(p, big, "g_swa");
  Inputs nan = good;
  g = nan.at("g_cmp");
  g.data()[0] = std::nanf("");
  nan.set("g_cmp", g);
  expect_error(p, nan, "g_cmp");
  AttentionProblem bad = p;
  bad.nsa.block_count = 2;
  expect_error(bad, good, "block_count must be at least 3");
  bad = p;
  bad.nsa.window = -1;
  expect_error(bad, good, "window must be 0");
  bad = p;
  bad.nsa.block_size = 0;
  expect_error(bad, good, "block_size must be at least 1");
}

TEST(NsaCli, RunWritesEveryOutputOfBothBackends) {
  const AttentionProblem p = make_problem({{2, 4, 2, 21, 26, 8, 6}, 4, 4, 5});
  const Inputs in = make_nsa_inputs(p, 33);
  const fs::path dir = fs::path(ATTNSCOPE_TEST_TMP) / "nsa";
  fs::create_directories(dir);
  const std::string tag = std::to_string(getpid());
  const fs::path in_file = dir / ("in_" + tag + ".safetensors");
  io::save_safetensors(in_file.string(), in.tensors);
  for (const char* name : {"reference", "cpu"}) {
    SCOPED_TRACE(name);
    const fs::path out_file = dir / (std::string("out_") + name + "_" + tag + ".safetensors");
    const fs::path err_file = dir / (std::string("err_") + name + "_" + tag + ".txt");
    const std::string cmd = std::string(ATTNSCOPE_CLI_PATH) +
                            " run --variant nsa --block-size 4 --block-count 4 --window 5"
                            " --backend " +
                            name + " --inputs " + in_file.string() + " --out " + out_file.string() +
                            " >/dev/null 2>" + err_file.string();
    const int status = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << cmd;
    const TensorMap got = io::load_safetensors(out_file.string());
    const RunResult want = make_backend(name)->run(p, in, {}, {});
    EXPECT_EQ(got.count("lse"), 0u);
    auto same = [&](const char* what, const Tensor& want_t) {
      const Tensor& t = got.at(what);
      ASSERT_EQ(t.shape(), want_t.shape()) << what;
      for (int64_t i = 0; i < t.numel(); ++i) {
        ASSERT_EQ(t.data()[i], want_t.data()[i]) << what << " at " << i;
      }
    };
    same("o", want.o);
    for (const char* l : {"lse_cmp", "lse_slc", "lse_swa"}) same(l, want.extra.at(l));
    const IndexTensor& sel = want.extra_index.at("selection");
    const Tensor& sel_got = got.at("selection");  // written as int64, read back as exact floats
    ASSERT_EQ(sel_got.numel(), sel.numel());
    EXPECT_EQ(sel_got.shape(), sel.shape());
    for (int64_t i = 0; i < sel.numel(); ++i) {
      ASSERT_EQ(sel_got.data()[i], float(sel.data()[i])) << i;
    }
  }
}
