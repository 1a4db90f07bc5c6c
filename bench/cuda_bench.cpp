// GPU benchmarks of the cuda backend: every case is first validated against the float64 reference
// on a shrunken shape (through the same device-resident path that is timed), then timed with CUDA
// events on rotated device-resident inputs (kernels' timing.hpp). Google Benchmark-style JSON, so
// bench/compare.py pairs it with the PyTorch peer (bench/peers/torch_gpu.py) by case name.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "attnscope/cost.hpp"
#include "attnscope/cuda/backend.hpp"
#include "attnscope/cuda/device.hpp"
#include "attnscope/cuda/tensor_core.hpp"
#include "attnscope/cuda/timing.hpp"
#include "attnscope/decode.hpp"
#include "attnscope/error.hpp"
#include "attnscope/lowp.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/sweep.hpp"
#include "attnscope/workload.hpp"

using namespace attnscope;
using ojson = nlohmann::ordered_json;

namespace {

// ---- cases ---------------------------------------------------------------------------------

// A run case times Backend::run's device work for `problem`; a paged case times one decode step
// of `problem.shape.batch` sequences of `problem.shape.kv_len` tokens through the paged kernel.
struct Case {
  std::string name;
  AttentionProblem problem;
  bool paged = false;
  int64_t page_size = 0;
};

std::string num(int64_t x) {
  return std::to_string(x);
}

std::string prec(const AttentionProblem& p) {
  return std::string(precision_name(p.precision));
}

AttentionProblem dense(int64_t B, int64_t H, int64_t Hkv, int64_t Lq, int64_t Lk, int64_t D,
                       bool causal, Precision precision) {
  AttentionProblem p = AttentionProblem::defaults(VariantId::dense);
  p.shape = {B, H, Hkv, Lq, Lk, D, D};
  p.causal = causal;
  p.precision = precision;
  return p;
}

// Names: mode/variant/precision/then the shape, one field per segment (the peer parses them).
std::string dense_name(const AttentionProblem& p) {
  const ProblemShape& s = p.shape;
  return "prefill/dense/" + prec(p) + "/B" + num(s.batch) + "/H" + num(s.heads) + "/kv" +
         num(s.kv_heads) + "/D" + num(s.head_dim) + (p.causal ? "/causal" : "/full") + "/L" +
         num(s.q_len);
}

std::string decode_name(const AttentionProblem& p, bool paged, int64_t page) {
  const ProblemShape& s = p.shape;
  std::string n = std::string(paged ? "paged_decode/" : "decode/") +
                  std::string(variant_info(p.variant).name) + "/" + prec(p) + "/B" + num(s.batch) +
                  "/H" + num(s.heads);
  if (p.variant == VariantId::mla) {
    n += "/dc" + num(p.mla.kv_lora_rank) + "/dr" + num(p.mla.rope_dim) + "/dn" +
         num(p.mla.nope_dim) + "/dv" + num(s.v_head_dim);
  } else {
    n += "/kv" + num(s.kv_heads) + "/D" + num(s.head_dim);
  }
  n += "/ctx" + num(s.kv_len);
  if (paged) n += "/page" + num(page);
  return n;
}

AttentionProblem deepseek_v3_decode(int64_t B, int64_t ctx) {
  AttentionProblem p = AttentionProblem::defaults(VariantId::mla);  // DeepSeek-V3 widths
  p.shape = {B, 128, 1, 1, ctx, 192, 128};
  p.mla = {512, 64, 128, true};
  p.causal = true;
  return p;
}

std::vector<Case> make_cases(bool smoke, const std::vector<Precision>& precisions) {
  std::vector<Case> cases;
  auto add_run = [&](std::string name, const AttentionProblem& p) {
    cases.push_back({std::move(name), p, false, 0});
  };
  auto add_dense = [&](const AttentionProblem& p) { add_run(dense_name(p), p); };
  auto add_decode = [&](const AttentionProblem& p) { add_run(decode_name(p, false, 0), p); };
  auto add_paged = [&](const AttentionProblem& p, int64_t page) {
    cases.push_back({decode_name(p, true, page), p, true, page});
  };
  auto moba = [](int64_t H, int64_t L, int64_t block, int64_t top_k) {
    AttentionProblem p = AttentionProblem::defaults(VariantId::moba);
    p.shape = {1, H, H, L, L, 128, 128};
    p.moba = {block, top_k};
    return p;
  };
  auto moba_name = [](const AttentionProblem& p) {
    return "prefill/moba/" + prec(p) + "/B1/H" + num(p.shape.heads) + "/kv" +
           num(p.shape.kv_heads) + "/D" + num(p.shape.head_dim) + "/bs" + num(p.moba.block_size) +
           "/k" + num(p.moba.top_k) + "/L" + num(p.shape.q_len);
  };
  auto swa = [](int64_t H, int64_t L, int64_t D, int64_t window, int64_t sinks, Precision pr) {
    AttentionProblem p = AttentionProblem::defaults(VariantId::swa);
    p.shape = {1, H, H, L, L, D, D};
    p.swa = {window, sinks};
    p.causal = true;
    p.precision = pr;
    return p;
  };
  auto swa_name = [](const AttentionProblem& p) {
    return "prefill/swa/" + prec(p) + "/B1/H" + num(p.shape.heads) + "/kv" + num(p.shape.kv_heads) +
           "/D" + num(p.shape.head_dim) + "/W" + num(p.swa.window) + "/S" + num(p.swa.sinks) +
           "/L" + num(p.shape.q_len);
  };
  auto gated_delta = [](int64_t H, int64_t L, int64_t D, bool recurrent) {
    AttentionProblem p = AttentionProblem::defaults(VariantId::gated_delta);
    p.shape = {1, H, H, L, L, D, D};
    p.gated_delta.qk_l2norm = true;
    p.gated_delta.recurrent = recurrent;
    return p;
  };
  auto gated_delta_name = [](const AttentionProblem& p) {
    return "prefill/gated_delta/fp32/B1/H" + num(p.shape.heads) + "/D" + num(p.shape.head_dim) +
           (p.gated_delta.recurrent ? "/recurrent" : "/chunked") + "/L" + num(p.shape.q_len);
  };

  if (smoke) {
    for (Precision pr : precisions) {
      add_dense(dense(1, 4, 2, 96, 96, 64, true, pr));
      add_decode(dense(2, 8, 2, 1, 700, 64, true, pr));
      AttentionProblem w = swa(4, 200, 64, 37, 4, pr);
      add_run(swa_name(w), w);
    }
    add_paged(dense(2, 8, 2, 1, 700, 64, true, Precision::fp32), 16);
    AttentionProblem m = moba(4, 256, 16, 3);
    add_run(moba_name(m), m);
    AttentionProblem mla = deepseek_v3_decode(2, 300);
    mla.shape.heads = 4;
    add_decode(mla);
    add_paged(mla, 64);
    for (bool rec : {false, true})
      add_run(gated_delta_name(gated_delta(4, 128, 32, rec)), gated_delta(4, 128, 32, rec));
    return cases;
  }
  // The targets first, so they are timed whatever the budget cuts.
  for (Precision pr : precisions) {
    for (bool causal : {true, false}) add_dense(dense(1, 16, 16, 16384, 16384, 128, causal, pr));
  }
  for (Precision pr : precisions) {
    for (int64_t B : {1, 8}) {
      for (int64_t ctx : {4096, 32768, 131072}) add_decode(dense(B, 32, 8, 1, ctx, 128, true, pr));
    }
  }
  for (int64_t B : {1, 8}) {
    for (int64_t ctx : {4096, 32768, 131072}) {
      add_paged(dense(B, 32, 8, 1, ctx, 128, true, Precision::fp32), 16);
    }
  }
  for (int64_t L : {32768, 131072}) {
    const AttentionProblem m = moba(4, L, 128, 8);
    add_run(moba_name(m), m);
    add_dense(dense(1, 4, 4, L, L, 128, true, Precision::fp32));  // "our dense causal"
  }
  for (bool rec : {false, true})
    add_run(gated_delta_name(gated_delta(16, 16384, 128, rec)), gated_delta(16, 16384, 128, rec));
  // The sweeps.
  for (Precision pr : precisions) {
    for (bool causal : {true, false}) {
      for (int64_t L : {1024, 2048, 4096, 8192}) {
        add_dense(dense(1, 16, 16, L, L, 128, causal, pr));
      }
    }
    for (int64_t L : {4096, 16384}) add_dense(dense(1, 32, 8, L, L, 128, true, pr));  // GQA
    const AttentionProblem w = swa(16, 16384, 128, 4096, 4, pr);
    add_run(swa_name(w), w);
  }
  for (int64_t B : {1, 8}) {
    for (int64_t ctx : {4096, 32768}) {
      add_decode(deepseek_v3_decode(B, ctx));
      add_paged(deepseek_v3_decode(B, ctx), 64);
    }
  }
  return cases;
}

// ---- validation ----------------------------------------------------------------------------

// A copy of the problem the float64 reference checks in well under a second: one or two
// sequences, at most 2 kv heads with groups of at most 4 (MHA, GQA and MLA's one latent keep
// their kind), at most 160 query rows, short windows and blocks; the head dims are kept.
AttentionProblem shrink(AttentionProblem p) {
  ProblemShape& s = p.shape;
  s.batch = std::min<int64_t>(s.batch, 2);
  const int64_t group = std::min<int64_t>(s.heads / s.kv_heads, 4);  // MHA stays MHA
  s.kv_heads = std::min<int64_t>(s.kv_heads, 2);
  s.heads = s.kv_heads * group;
  const int64_t off = s.kv_len - s.q_len;
  s.q_len = std::min<int64_t>(s.q_len, 160);
  s.kv_len = std::min<int64_t>(s.q_len + std::min<int64_t>(off, 300), 460);
  if (p.variant == VariantId::gated_delta) s.kv_len = s.q_len;
  p.swa.window = std::min<int64_t>(p.swa.window, 37);
  p.moba.block_size = std::min<int64_t>(p.moba.block_size, 16);
  return p;
}

// MoBA inputs whose gates tie within 1e-3 may select other blocks in fp32 than in float64; such
// inputs are redrawn (as the CUDA tests do) rather than the comparison loosened.
double min_gate_gap(const AttentionProblem& p, const Inputs& in) {
  const ProblemShape& s = p.shape;
  const int64_t bs = p.moba.block_size, blocks = (s.kv_len + bs - 1) / bs, D = s.head_dim;
  double gap = std::numeric_limits<double>::infinity();
  std::vector<double> mean(static_cast<size_t>(blocks * D));
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t h = 0; h < s.heads; ++h) {
      const float* k =
          in.at("k").data() + (b * s.kv_heads + h / (s.heads / s.kv_heads)) * s.kv_len * D;
      std::fill(mean.begin(), mean.end(), 0.0);
      for (int64_t j = 0; j < s.kv_len; ++j) {
        for (int64_t d = 0; d < D; ++d) mean[size_t((j / bs) * D + d)] += k[j * D + d];
      }
      for (int64_t c = 0; c < blocks; ++c) {
        const double n = double(std::min(s.kv_len, (c + 1) * bs) - c * bs);
        for (int64_t d = 0; d < D; ++d) mean[size_t(c * D + d)] /= n;
      }
      for (int64_t i = 0; i < s.q_len; ++i) {
        const int64_t own = p.query_position(i) / bs;
        const int64_t ranked = std::min(p.moba.top_k - 1, own);
        if (p.query_position(i) < 0 || ranked == own || ranked == 0) continue;
        const float* q = in.at("q").data() + ((b * s.heads + h) * s.q_len + i) * D;
        std::vector<double> score(static_cast<size_t>(own), 0.0);
        for (int64_t c = 0; c < own; ++c) {
          for (int64_t d = 0; d < D; ++d)
            score[size_t(c)] += double(q[d]) * mean[size_t(c * D + d)];
        }
        std::sort(score.begin(), score.end(), std::greater<>());
        gap = std::min(gap, score[size_t(ranked - 1)] - score[size_t(ranked)]);
      }
    }
  }
  return gap;
}

// The fp32 rule of the CUDA tests: |got - want| <= 1e-5 (1 + |want|), -inf only where want is.
std::string fp32_mismatch(const char* what, const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape()) {
    return std::string(what) + " shape " + shape_str(got.shape()) + " vs " +
           shape_str(want.shape());
  }
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double g = got.data()[i], w = want.data()[i];
    const bool ok =
        (std::isinf(w) || std::isinf(g)) ? g == w : std::fabs(g - w) <= 1e-5 * (1 + std::fabs(w));
    if (!ok) {
      return std::string(what) + "[" + num(i) + "] = " + std::to_string(g) + ", want " +
             std::to_string(w);
    }
  }
  return "";
}

// The tensor-core rule of the CUDA tests (tests/lowp_check.hpp), o part: max|got - ref| <= twice
// the naive bf16/fp16 program's error + 1e-6, ref = float64 on the rounded inputs; lse must be
// -inf exactly where ref is.
std::string lowp_mismatch(const AttentionProblem& p, const Inputs& in, const RunResult& got) {
  const Inputs rounded = round_inputs(in, p.precision);
  AttentionProblem exact = p;
  exact.precision = Precision::fp32;
  const RunResult ref = make_backend("reference")->run(exact, rounded, {}, {});
  const RunResult naive = naive_lowp_reference(p, in);
  double naive_err = 0, err = 0;
  for (int64_t i = 0; i < ref.o.numel(); ++i) {
    naive_err = std::max(naive_err, std::fabs(double(naive.o.data()[i]) - ref.o.data()[i]));
    const double d = std::fabs(double(got.o.data()[i]) - ref.o.data()[i]);
    if (!(d <= 1e300)) return "o[" + num(i) + "] is not finite";
    err = std::max(err, d);
  }
  if (err > 2 * naive_err + 1e-6) {
    return "o error " + std::to_string(err) + " > 2 x naive error " + std::to_string(naive_err);
  }
  for (int64_t i = 0; i < ref.lse.numel(); ++i) {
    if (std::isinf(ref.lse.data()[i]) != std::isinf(got.lse.data()[i])) {
      return "lse[" + num(i) + "] = " + std::to_string(got.lse.data()[i]) + ", want " +
             std::to_string(ref.lse.data()[i]);
    }
  }
  return "";
}

// Runs the timed path once on reference-checkable inputs; "" when it matches.
std::string validate(const Case& c) {
  AttentionProblem p = shrink(c.problem);
  Inputs in;
  for (uint64_t seed = 99;; ++seed) {
    in = make_inputs(p, "random", seed);
    if (p.variant != VariantId::moba || min_gate_gap(p, in) >= 1e-3) break;
    if (seed > 150) return "no MoBA inputs without near-tied gates";
  }
  cuda::TimingOptions o;
  o.warmup = 0, o.min_reps = 1, o.max_reps = 1, o.target_seconds = 0;
  o.inputs = &in;
  const cuda::Timing t =
      c.paged ? cuda::time_paged_decode(p, p.shape.batch, p.shape.kv_len, c.page_size, o)
              : cuda::time_run(p, o);
  if (p.precision != Precision::fp32) return lowp_mismatch(p, in, t.output);
  AttentionProblem ref_problem = p;
  if (c.paged) ref_problem.causal = true, ref_problem.mla.absorbed = true;
  const RunResult want = make_backend("reference")->run(ref_problem, in, {}, {});
  std::string bad = fp32_mismatch("o", t.output.o, want.o);
  if (bad.empty() && want.lse.numel() > 0) bad = fp32_mismatch("lse", t.output.lse, want.lse);
  if (bad.empty() && want.final_state) {
    bad = fp32_mismatch("final_state", *t.output.final_state, *want.final_state);
  }
  return bad;
}

// ---- timing and output ----------------------------------------------------------------------

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double x = q * double(v.size() - 1);
  const size_t lo = size_t(std::floor(x)), hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (x - double(lo));
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

struct Options {
  bool smoke = false, list = false, validate = true, peak = true;
  std::string filter, out;
  double budget_s = 240, target_s = 0.5;
  std::vector<Precision> precisions{Precision::fp32, Precision::bf16};
};

int usage(const char* argv0) {
  std::cerr << "usage: " << argv0
            << " [--smoke] [--list] [--filter=REGEX] [--out=FILE.json] [--budget-s=S]\n"
               "       [--target-s=S] [--precision=fp32|bf16|fp16|both] [--no-validate] "
               "[--no-peak]\n";
  return 2;
}

void write_json(const Options& opt, const ojson& context, const ojson& benchmarks) {
  if (opt.out.empty()) return;
  std::ofstream f(opt.out);
  f << ojson{{"context", context}, {"benchmarks", benchmarks}}.dump(1) << "\n";
  if (!f) throw Error("cannot write " + opt.out);
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* flag) -> const char* {
      const size_t n = std::strlen(flag);
      return a.compare(0, n, flag) == 0 ? argv[i] + n : nullptr;
    };
    if (a == "--smoke") {
      opt.smoke = true, opt.peak = false, opt.budget_s = 120, opt.target_s = 0;
    } else if (a == "--list") {
      opt.list = true;
    } else if (a == "--no-validate") {
      opt.validate = false;
    } else if (a == "--no-peak") {
      opt.peak = false;
    } else if (const char* v = value("--filter=")) {
      opt.filter = v;
    } else if (const char* v = value("--out=")) {
      opt.out = v;
    } else if (const char* v = value("--budget-s=")) {
      opt.budget_s = std::atof(v);
    } else if (const char* v = value("--target-s=")) {
      opt.target_s = std::atof(v);
    } else if (const char* v = value("--precision=")) {
      if (std::strcmp(v, "both") == 0) {
        opt.precisions = {Precision::fp32, Precision::bf16};
      } else if (auto pr = parse_precision(v)) {
        opt.precisions = {*pr};
      } else {
        return usage(argv[0]);
      }
    } else {
      return usage(argv[0]);
    }
  }
  std::vector<Case> cases;
  try {
    const std::regex re(opt.filter.empty() ? ".*" : opt.filter);
    for (Case& c : make_cases(opt.smoke, opt.precisions)) {
      if (std::regex_search(c.name, re)) cases.push_back(std::move(c));
    }
  } catch (const std::regex_error& e) {
    std::cerr << "--filter: " << e.what() << "\n";
    return 2;
  }
  if (opt.list) {
    for (const Case& c : cases) std::cout << c.name << "\n";
    return 0;
  }

  ojson context = {{"date", utc_now()},
                   {"host", host_description()},
                   {"executable", argv[0]},
                   {"library_build_type", "release"},
                   {"attnscope_backend", "cuda"},
                   {"timing",
                    "CUDA events around each repetition's kernels; warm-up, then the median of "
                    "repetitions on device-resident inputs rotated over >= 3 sets (together >= 2x "
                    "the L2); validated against the float64 reference first"}};
  ojson benchmarks = ojson::array();
  const Support dev = cuda::device_available();
  if (!dev.ok) {
    std::cout << "attnscope_cuda_bench: no CUDA device (" << dev.why_not << "): nothing timed, "
              << (opt.out.empty() ? "no JSON written" : "empty JSON in " + opt.out) << "\n";
    context["device"] = "none: " + dev.why_not;
    write_json(opt, context, benchmarks);
    return 0;
  }
  const auto t_start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  };
  try {
    auto backend = cuda::make_cuda_backend();
    context["device"] = backend->device();
    std::cout << "device: " << backend->device() << "\n";
    if (opt.peak) {
      const DevicePeak peak = backend->measure_peak({});
      context["peak_gflops"] = peak.gflops;
      context["peak_gflops_what"] = peak.gemm;
      context["peak_gbps"] = peak.gbps;
      context["peak_gbps_what"] = peak.copy;
      std::printf("peaks: %.0f GFLOP/s (%s), %.0f GB/s (%s)\n", peak.gflops, peak.gemm.c_str(),
                  peak.gbps, peak.copy.c_str());
    }
  } catch (const std::exception& e) {
    std::cout << "attnscope_cuda_bench: device set-up failed: " << e.what() << "\n";
    write_json(opt, context, benchmarks);
    return 1;
  }

  int failures = 0, skipped = 0;
  std::printf("%-62s %10s %19s %9s %9s %4s  %s\n", "case", "median ms", "p25-p75 ms", "TFLOP/s",
              "GB/s", "sets", "path");
  for (const Case& c : cases) {
    if (elapsed() > opt.budget_s) {
      std::printf("%-62s skipped: the %.0f s budget is spent\n", c.name.c_str(), opt.budget_s);
      ++skipped;
      continue;
    }
    try {
      if (opt.validate) {
        if (const std::string bad = validate(c); !bad.empty()) {
          std::printf("%-62s VALIDATION FAILED: %s\n", c.name.c_str(), bad.c_str());
          ++failures;
          continue;
        }
      }
      cuda::TimingOptions o;
      o.target_seconds = opt.target_s;
      if (opt.smoke) o.warmup = 1, o.min_reps = 2, o.max_reps = 2;
      if (!opt.smoke) o.min_reps = 3;
      const AttentionProblem& p = c.problem;
      const cuda::Timing t =
          c.paged ? cuda::time_paged_decode(p, p.shape.batch, p.shape.kv_len, c.page_size, o)
                  : cuda::time_run(p, o);
      const Cost cost =
          c.paged ? decode_cost(p, std::vector<int64_t>(size_t(p.shape.batch), p.shape.kv_len))
                  : cost_of(p, element_bytes(p.precision));
      const double med = quantile(t.ms, 0.5), p25 = quantile(t.ms, 0.25),
                   p75 = quantile(t.ms, 0.75);
      const double lo = *std::min_element(t.ms.begin(), t.ms.end()),
                   hi = *std::max_element(t.ms.begin(), t.ms.end());
      const double gflops = cost.flops / (med * 1e-3) / 1e9, gbps = cost.bytes / (med * 1e-3) / 1e9;
      std::printf("%-62s %10.3f %9.3f-%-9.3f %9.2f %9.1f %4d  %s\n", c.name.c_str(), med, p25, p75,
                  gflops / 1e3, gbps, t.sets, t.path.c_str());
      std::fflush(stdout);
      benchmarks.push_back({{"name", c.name},
                            {"run_name", c.name},
                            {"run_type", "iteration"},
                            {"repetitions", 1},
                            {"repetition_index", 0},
                            {"threads", 1},
                            {"iterations", int64_t(t.ms.size())},
                            {"real_time", med},
                            {"cpu_time", med},
                            {"time_unit", "ms"},
                            {"GFLOPs", gflops},
                            {"GBps", gbps},
                            {"TFLOPs", gflops / 1e3},
                            {"flops", cost.flops},
                            {"bytes", cost.bytes},
                            {"min_ms", lo},
                            {"max_ms", hi},
                            {"p25_ms", p25},
                            {"p75_ms", p75},
                            {"input_sets", t.sets},
                            {"set_bytes", t.set_bytes},
                            {"path", t.path},
                            {"label", p.describe()}});
    } catch (const std::exception& e) {
      std::printf("%-62s FAILED: %s\n", c.name.c_str(), e.what());
      ++failures;
    }
  }
  context["elapsed_s"] = elapsed();
  write_json(opt, context, benchmarks);
  std::printf("%zu timed, %d failed, %d skipped by the budget, %.0f s\n", benchmarks.size(),
              failures, skipped, elapsed());
  return failures == 0 ? 0 : 1;
}
