// CPU benchmarks: the sweeps of docs/benchmarks.md over the registry's variants on the `cpu`
// backend. Every configuration is first validated against the float64 reference on a shrunken
// shape, then timed; the SGEMM and triad roofline are measured in the same process (JSON context).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "attnscope/cost.hpp"
#include "attnscope/cpu_backend.hpp"
#include "attnscope/decode.hpp"
#include "attnscope/kv_cache.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"
#include "roofline.hpp"

using namespace attnscope;

namespace {

int g_threads = 0;
int64_t g_page_size = 0;  // paged decode; 0 = the cache's default (16; 64 for MLA)

// A shrunken copy of the problem the reference can check in well under a second.
AttentionProblem shrink(AttentionProblem p) {
  p.shape.batch = 1;
  p.shape.heads = std::min<int64_t>(p.shape.heads, 4 * (p.shape.heads / p.shape.kv_heads));
  p.shape.kv_heads = std::min(p.shape.kv_heads, p.shape.heads);
  const int64_t off = p.shape.kv_len - p.shape.q_len;
  p.shape.q_len = std::min<int64_t>(p.shape.q_len, 160);
  p.shape.kv_len = std::min<int64_t>(p.shape.q_len + std::min<int64_t>(off, 300), 460);
  if (p.variant == VariantId::gated_delta) p.shape.kv_len = p.shape.q_len;
  p.swa.window = std::min<int64_t>(p.swa.window, 37);
  p.moba.block_size = std::min<int64_t>(p.moba.block_size, 16);
  return p;
}

// Validates before timing (docs/benchmarks.md, Method): |cpu - ref| <= 1e-5 (1 + |ref|).
void validate(const AttentionProblem& full, const std::string& name) {
  const AttentionProblem p = shrink(full);
  const Inputs in = make_inputs(p, "random", 99);
  const RunResult want = make_backend("reference")->run(p, in, {}, {});
  const RunResult got = make_backend("cpu")->run(p, in, {}, {});
  for (int64_t i = 0; i < want.o.numel(); ++i) {
    const double w = want.o.data()[i], g = got.o.data()[i];
    if (!(std::fabs(g - w) <= 1e-5 * (1 + std::fabs(w)))) {
      std::cerr << "VALIDATION FAILED for " << name << " (" << p.describe() << ") at " << i << ": "
                << g << " vs " << w << "\n";
      std::exit(1);
    }
  }
}

void run_problem(benchmark::State& state, const AttentionProblem& p, const std::string& name) {
  validate(p, name);
  const Inputs in = make_inputs(p, "random", 1);
  CpuOptions options;
  options.threads = g_threads;
  auto backend = make_cpu_backend(options);
  // Warm-up (pool, scratch, page faults); its counters describe the work the backend chose to do
  // (e.g. MLA's absorbed or naive form).
  const Counters c = backend->run(p, in, {}, {}).counters;
  for (auto _ : state) {
    RunResult r = backend->run(p, in, {}, {});
    benchmark::DoNotOptimize(r.o.data());
  }
  state.counters["GFLOPs"] =
      benchmark::Counter(c.flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GBps"] =
      benchmark::Counter(c.bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(p.describe());
}

void add(const std::string& name, const AttentionProblem& p) {
  benchmark::RegisterBenchmark(name.c_str(),
                               [p, name](benchmark::State& s) { run_problem(s, p, name); })
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

// Decode through the paged KV cache: a cache holding `ctx` tokens of each of the problem's batch
// sequences, then one step per iteration (each appends a token, so the context grows by the
// iteration count, a rounding error next to ctx). Side by side with the flat decode of the same
// shape, it prices the page walk.
void run_paged(benchmark::State& state, AttentionProblem p, int64_t ctx) {
  CpuOptions options;
  options.threads = g_threads;
  auto backend = make_cpu_backend(options);
  PagedKvCache cache(KvCacheConfig{p, g_page_size, 0});
  AttentionProblem full = p;
  full.shape.batch = 1;
  full.shape.q_len = 1;
  full.shape.kv_len = ctx;
  const Inputs prompt = make_inputs(full, "random", 1);  // every sequence holds the same tokens
  const bool mla = p.variant == VariantId::mla;
  DecodeStep step;
  for (int64_t b = 0; b < p.shape.batch; ++b) {
    step.sequences.push_back(cache.add_sequence());
    cache.append(step.sequences.back(), prompt.at(mla ? "c_kv" : "k"),
                 prompt.at(mla ? "k_rope" : "v"));
  }
  AttentionProblem one = full;
  one.shape.batch = p.shape.batch;
  one.shape.kv_len = 1;
  step.inputs = make_inputs(one, "random", 2);
  const Counters c = decode_step(*backend, cache, step).counters;  // warm-up
  for (auto _ : state) {
    RunResult r = decode_step(*backend, cache, step);
    benchmark::DoNotOptimize(r.o.data());
  }
  state.counters["GFLOPs"] =
      benchmark::Counter(c.flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GBps"] =
      benchmark::Counter(c.bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(one.describe() + " ctx=" + std::to_string(ctx) +
                 " page=" + std::to_string(cache.page_size()));
}

void add_paged(const std::string& name, const AttentionProblem& p, int64_t ctx) {
  benchmark::RegisterBenchmark(name.c_str(),
                               [p, ctx](benchmark::State& s) { run_paged(s, p, ctx); })
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

AttentionProblem dense(int64_t H, int64_t Hkv, int64_t Lq, int64_t Lk, int64_t D, bool causal) {
  AttentionProblem p = AttentionProblem::defaults(VariantId::dense);
  p.shape = {1, H, Hkv, Lq, Lk, D, D};
  p.causal = causal;
  return p;
}

void register_all(bool smoke) {
  if (smoke) {
    add("smoke/dense", dense(4, 2, 96, 96, 32, true));
    add("smoke/decode", dense(8, 2, 1, 700, 32, true));
    add_paged("smoke/paged_decode", dense(8, 2, 1, 700, 32, true), 700);
    for (const VariantInfo& v : variants()) {
      AttentionProblem p = AttentionProblem::defaults(v.id);
      p.shape = {1, 4, 4, 128, 128, 32, 32};
      p.mla = {64, 16, 16, p.mla.absorbed};
      p.swa.window = 32;
      p.moba = {16, 3};
      p.nsa = {16, 4, 32};
      p.dsa = {32, 4, 16, false};
      normalize_shape(p);  // a shared latent: one kv head, head_dim nope + rope
      add("smoke/" + std::string(v.name), p);
    }
    return;
  }
  for (int64_t hkv : {8, 2}) {
    for (int64_t d : {64, 128}) {
      for (bool causal : {false, true}) {
        for (int64_t L : {512, 1024, 2048, 4096, 8192, 16384}) {
          add("dense/Hkv" + std::to_string(hkv) + "/D" + std::to_string(d) +
                  (causal ? "/causal" : "/full") + "/L" + std::to_string(L),
              dense(8, hkv, L, L, d, causal));
        }
      }
    }
  }
  // GQA prefill at a Llama-style group (the issue #18 shapes).
  for (bool causal : {false, true}) {
    for (int64_t L : {2048, 4096, 8192}) {
      add(std::string("dense/H32kv8/D128/") + (causal ? "causal" : "full") + "/L" +
              std::to_string(L),
          dense(32, 8, L, L, 128, causal));
    }
  }
  // Decode: batch 1 (no B in the name, as in earlier runs) and batch 8, flat and paged.
  for (int64_t batch : {1, 8}) {
    const std::string b = batch == 1 ? "" : "B" + std::to_string(batch) + "/";
    for (int64_t ctx : {4096, 32768, 131072}) {
      if (batch > 1 && ctx == 4096) continue;
      AttentionProblem p = dense(32, 8, 1, ctx, 128, true);
      p.shape.batch = batch;
      add("decode/" + b + "H32kv8/D128/ctx" + std::to_string(ctx), p);
      add_paged("paged_decode/" + b + "H32kv8/D128/ctx" + std::to_string(ctx), p, ctx);
    }
  }
  for (int64_t L : {8192, 16384}) {
    AttentionProblem p = AttentionProblem::defaults(VariantId::swa);
    p.shape = {1, 8, 8, L, L, 128, 128};
    p.swa = {4096, 0};
    add("swa/W4096/D128/L" + std::to_string(L), p);
  }
  add("moba/dense_causal_baseline/D128/L32768", dense(8, 8, 32768, 32768, 128, true));
  for (int64_t L : {8192, 32768}) {
    for (int64_t bs : {64, 128}) {
      for (int64_t k : {4, 8}) {
        AttentionProblem p = AttentionProblem::defaults(VariantId::moba);
        p.shape = {1, 8, 8, L, L, 128, 128};
        p.moba = {bs, k};
        add("moba/B" + std::to_string(bs) + "/k" + std::to_string(k) + "/D128/L" +
                std::to_string(L),
            p);
      }
    }
  }
  for (int64_t ctx : {4096, 32768}) {
    AttentionProblem p = AttentionProblem::defaults(VariantId::mla);  // DeepSeek-V3 shapes
    p.shape = {1, 128, 1, 1, ctx, 192, 128};
    p.causal = true;
    add("mla_decode/deepseek_v3/ctx" + std::to_string(ctx), p);
    add_paged("mla_paged_decode/deepseek_v3/ctx" + std::to_string(ctx), p, ctx);
  }
  for (bool recurrent : {false, true}) {
    AttentionProblem p = AttentionProblem::defaults(VariantId::gated_delta);
    p.shape = {1, 8, 8, 8192, 8192, 128, 128};
    p.gated_delta.qk_l2norm = true;
    p.gated_delta.recurrent = recurrent;
    add(std::string("gdn/") + (recurrent ? "recurrent" : "chunked") + "/D128/L8192", p);
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool smoke = false, no_roofline = false;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--smoke") == 0) {
      smoke = no_roofline = true;
    } else if (std::strcmp(argv[i], "--no-roofline") == 0) {
      no_roofline = true;
    } else if (std::strncmp(argv[i], "--page-size=", 12) == 0) {
      g_page_size = std::atoll(argv[i] + 12);
    } else if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      g_threads = std::atoi(argv[i] + 10);
    } else {
      args.push_back(argv[i]);
    }
  }
  if (g_threads <= 0) g_threads = cpu_default_threads();
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  benchmark::AddCustomContext("attnscope_threads", std::to_string(g_threads));
  benchmark::AddCustomContext("attnscope_page_size", std::to_string(g_page_size));
  if (!no_roofline) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f", bench::sgemm_gflops(g_threads));
    benchmark::AddCustomContext("sgemm_gflops", buf);
    benchmark::AddCustomContext("sgemm_provider", bench::sgemm_provider(g_threads));
    std::snprintf(buf, sizeof buf, "%.1f", bench::triad_gbps(g_threads));
    benchmark::AddCustomContext("triad_gbps", buf);
    const DevicePeak& peak = bench::roofline_peak(g_threads);  // measured once, above
    std::snprintf(buf, sizeof buf, "%.1f", peak.cache_gbps);
    benchmark::AddCustomContext("cache_triad_gbps", buf);
    benchmark::AddCustomContext("roofline_reliable", peak.reliable ? "true" : "false");
    benchmark::AddCustomContext("roofline_contention", peak.contention);
  }
  register_all(smoke);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
