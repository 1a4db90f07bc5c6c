// AttentionProblem::validate(): every invalid combination gets a specific message, valid ones pass.
// The messages are what CLI and GUI users read, so the tests check their key words.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <thread>

#include "attnscope/error.hpp"
#include "attnscope/large_alloc.hpp"
#include "attnscope/mask.hpp"
#include "attnscope/problem.hpp"
#include "attnscope/problem_json.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/tensor.hpp"
#include "attnscope/workload.hpp"

using namespace attnscope;

namespace {

std::string why(const AttentionProblem& p) {
  return p.validate().value_or("<valid>");
}

}  // namespace

TEST(Problem, DefaultsOfEveryVariantAreValid) {
  for (const VariantInfo& v : variants()) {
    const AttentionProblem p = AttentionProblem::defaults(v.id);
    EXPECT_EQ(p.validate(), std::nullopt) << v.name << ": " << why(p);
    EXPECT_EQ(p.causal, v.causal_only) << v.name;
  }
}

TEST(Problem, SharedShapeRules) {
  AttentionProblem p = AttentionProblem::defaults(VariantId::dense);
  p.shape.heads = 8;
  p.shape.kv_heads = 3;
  EXPECT_NE(why(p).find("divisible by kv_heads"), std::string::npos) << why(p);
  p.shape.kv_heads = 0;
  EXPECT_NE(why(p).find("kv_heads must be at least 1"), std::string::npos) << why(p);
  p = AttentionProblem::defaults(VariantId::dense);
  p.shape.q_len = -5;
  EXPECT_NE(why(p).find("q_len"), std::string::npos) << why(p);
  p = AttentionProblem::defaults(VariantId::dense);
  p.scale = -1.0;
  EXPECT_NE(why(p).find("scale"), std::string::npos) << why(p);
  p.scale = std::numeric_limits<double>::quiet_NaN();
  EXPECT_NE(why(p).find("scale"), std::string::npos) << why(p);
}

TEST(Problem, VariantRules) {
  AttentionProblem p = AttentionProblem::defaults(VariantId::swa);
  p.swa.window = 0;
  EXPECT_NE(why(p).find("window must be at least 1"), std::string::npos) << why(p);
  p = AttentionProblem::defaults(VariantId::moba);
  p.moba.top_k = 0;
  EXPECT_NE(why(p).find("top_k"), std::string::npos) << why(p);
  p = AttentionProblem::defaults(VariantId::moba);
  p.moba.block_size = 0;
  EXPECT_NE(why(p).find("block_size"), std::string::npos) << why(p);
  p = AttentionProblem::defaults(VariantId::moba);
  p.causal = false;
  EXPECT_NE(why(p).find("only for causal"), std::string::npos) << why(p);
  p = AttentionProblem::defaults(VariantId::mla);
  p.shape.kv_heads = 8;
  EXPECT_NE(why(p).find("kv_heads must be 1"), std::string::npos) << why(p);
  p = AttentionProblem::defaults(VariantId::mla);
  p.shape.head_dim = 64;
  EXPECT_NE(why(p).find("nope_dim + rope_dim"), std::string::npos) << why(p);
  p = AttentionProblem::defaults(VariantId::gated_delta);
  p.shape.kv_len = p.shape.q_len + 1;
  EXPECT_NE(why(p).find("q_len must equal kv_len"), std::string::npos) << why(p);
  p = AttentionProblem::defaults(VariantId::gated_delta);
  p.gated_delta.chunk_size = 0;
  EXPECT_NE(why(p).find("chunk_size"), std::string::npos) << why(p);
}

TEST(Problem, SizesThatOverflowOrDoNotFitAreRejected) {
  AttentionProblem p = AttentionProblem::defaults(VariantId::dense);
  p.shape.q_len = int64_t{1} << 40;
  p.shape.kv_len = int64_t{1} << 40;
  p.shape.head_dim = int64_t{1} << 30;
  EXPECT_NE(why(p).find("too large"), std::string::npos) << why(p);
  p = AttentionProblem::defaults(VariantId::dense);
  p.shape.q_len = p.shape.kv_len = int64_t{1} << 28;  // 8 heads x 256M x 64 x 4 B = 512 GiB
  EXPECT_NE(why(p).find("memory"), std::string::npos) << why(p);
  EXPECT_THROW(p.check(), Error);
}

TEST(Problem, CausalIsBottomRightAligned) {
  AttentionProblem p = AttentionProblem::defaults(VariantId::dense);
  p.causal = true;
  p.shape.q_len = 2;
  p.shape.kv_len = 5;
  const KeyMask m = KeyMask::of(p);
  // Row 0 sits at key position 3, row 1 at 4 (the last key).
  EXPECT_TRUE(m.visible(0, 3));
  EXPECT_FALSE(m.visible(0, 4));
  EXPECT_TRUE(m.visible(1, 4));
  EXPECT_EQ(m.count(0), 4);
  EXPECT_EQ(m.count(1), 5);
}

TEST(Problem, WindowCountsItselfAndSinksStayVisible) {
  AttentionProblem p = AttentionProblem::defaults(VariantId::swa);
  p.shape.q_len = p.shape.kv_len = 10;
  p.swa.window = 1;
  KeyMask m = KeyMask::of(p);
  for (int64_t i = 0; i < 10; ++i) {
    for (int64_t j = 0; j < 10; ++j) EXPECT_EQ(m.visible(i, j), i == j) << i << "," << j;
    EXPECT_EQ(m.count(i), 1);
  }
  p.swa.window = 3;
  p.swa.sinks = 2;
  m = KeyMask::of(p);
  EXPECT_TRUE(m.visible(9, 7));
  EXPECT_FALSE(m.visible(9, 6));
  EXPECT_TRUE(m.visible(9, 1));   // sink
  EXPECT_TRUE(m.visible(9, 0));   // sink
  EXPECT_FALSE(m.visible(0, 1));  // a sink in the future stays invisible
  EXPECT_EQ(m.count(9), 5);
  EXPECT_EQ(m.count(0), 1);
  EXPECT_EQ(m.count(3), 4);  // window keys 1..3 plus sink 0 (sink 1 is in the window)
}

TEST(Registry, NamesAliasesAndBackends) {
  EXPECT_EQ(find_variant("mha")->id, VariantId::dense);
  EXPECT_EQ(find_variant("gqa")->id, VariantId::dense);
  EXPECT_EQ(find_variant("mqa")->id, VariantId::dense);
  EXPECT_EQ(find_variant("gated_delta")->id, VariantId::gated_delta);
  EXPECT_EQ(find_variant("nonsense"), nullptr);
  EXPECT_NE(find_backend("reference"), nullptr);
  try {
    make_backend("warp-drive");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("reference"), std::string::npos) << e.what();
  }
}

TEST(Problem, GatedDeltaValueRangesAreChecked) {
  // g is a log decay (<= 0) and beta a write strength in (0, 1) (docs/variants/gated_delta.md).
  // Outside those the state explodes: every backend must refuse with a message, not return a huge
  // "answer".
  AttentionProblem p = AttentionProblem::defaults(VariantId::gated_delta);
  p.shape = {1, 2, 2, 9, 9, 4, 4};
  const Inputs good = make_inputs(p, "random", 3);
  for (const BackendInfo& b : backends()) {
    if (!b.available().ok) continue;
    auto be = b.make();
    EXPECT_NO_THROW(be->run(p, good, {}, {})) << b.name;
    Inputs bad_g = good;
    bad_g.tensors.at("g").data()[5] = 0.25f;
    try {
      be->run(p, bad_g, {}, {});
      ADD_FAILURE() << b.name << " accepted g > 0";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("'g' must be <= 0"), std::string::npos) << e.what();
    }
    Inputs bad_beta = good;
    bad_beta.tensors.at("beta").data()[2] = 1.5f;
    try {
      be->run(p, bad_beta, {}, {});
      ADD_FAILURE() << b.name << " accepted beta > 1";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("'beta' must lie in [0, 1]"), std::string::npos)
          << e.what();
    }
  }
}

TEST(Registry, ReferenceCancelsInsideALongHead) {
  // One head of 4096 x 4096 takes seconds in float64 loops; cancellation must not wait for it.
  AttentionProblem p = AttentionProblem::defaults(VariantId::dense);
  p.shape = {1, 1, 1, 4096, 4096, 64, 64};
  const Inputs in = make_inputs(p, "random", 1);
  CancelToken cancel;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cancel.cancel();
  });
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(make_backend("reference")->run(p, in, {}, cancel), Cancelled);
  stopper.join();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.5);
}

// Big buffers come 2 MiB aligned (so the kernel can back them with huge pages); small ones from
// the ordinary heap. Both keep their contents and free cleanly (ASan checks the pairing).
TEST(LargeAlloc, BigBuffersAreHugePageAlignedAndSmallOnesAreOrdinary) {
  constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;
  const char* off = std::getenv("ATTNSCOPE_NO_HUGE_PAGES");
  if (off && *off && *off != '0') GTEST_SKIP() << "ATTNSCOPE_NO_HUGE_PAGES is set";
  for (std::size_t bytes : {std::size_t{1}, std::size_t{4096}, (std::size_t{2} << 20) - 4,
                            std::size_t{2} << 20, (std::size_t{5} << 20) + 12}) {
    void* p = attnscope::large_alloc(bytes);
    ASSERT_NE(p, nullptr);
    if (bytes >= (std::size_t{2} << 20)) {
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % kHuge, 0u) << bytes;
    }
    std::memset(p, 0x5a, bytes);
    EXPECT_EQ(static_cast<unsigned char*>(p)[bytes - 1], 0x5a);
    attnscope::large_free(p, bytes);
  }
  attnscope::Tensor big({3, 1024, 1024}, 1.5f);  // 12 MiB
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(big.data()) % kHuge, 0u);
  EXPECT_EQ(big.data()[big.numel() - 1], 1.5f);
  attnscope::Tensor copy = big;  // copies go through the same allocator
  EXPECT_EQ(copy.data()[12345], 1.5f);
  EXPECT_NE(copy.data(), big.data());
}

// Registering a backend (the CUDA library does it at start-up, possibly while another thread looks
// one up) must not move the entries find_backend handed out, nor race with backends().
TEST(Registry, LookupsStayValidWhileBackendsRegister) {
  const BackendInfo* reference = find_backend("reference");
  ASSERT_NE(reference, nullptr);
  const size_t before = backends().size();
  static std::deque<std::string> names;  // BackendInfo holds views: the names must outlive it
  for (int i = 0; i < 512; ++i) names.push_back("registry-test-" + std::to_string(i));
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done) {
      size_t seen = 0;
      for (const BackendInfo& b : backends()) seen += b.name.empty() ? 0 : 1;
      EXPECT_GE(seen, before);
      const BackendInfo* again = find_backend("reference");
      EXPECT_TRUE(again && again->name == "reference");
    }
  });
  for (const std::string& name : names) {
    register_backend({name, "a test entry", [] { return Support::no("a test entry"); },
                      [] { return std::unique_ptr<Backend>(); }});
  }
  done = true;
  reader.join();
  EXPECT_EQ(reference->name, "reference");  // taken before 512 registrations, still valid
  EXPECT_EQ(backends().size(), before + names.size());
}

namespace {

// The JSON schema with variants that share knobs (DSA lists MLA's latent widths) and files written
// before a variant existed.
TEST(ProblemJson, SharedKnobsLiveInTheirOwnersGroupAndOldFilesStillRead) {
  AttentionProblem mla = AttentionProblem::defaults(VariantId::mla);
  mla.mla.nope_dim = 96;
  mla.shape.head_dim = 96 + mla.mla.rope_dim;
  nlohmann::json j = problem_to_json(mla);
  ASSERT_TRUE(j.contains("dsa"));
  EXPECT_FALSE(j["dsa"].contains("nope_dim")) << j["dsa"].dump();
  EXPECT_TRUE(j["dsa"].contains("top_k"));
  AttentionProblem back;
  read_problem_json(j, back, "", true);
  EXPECT_EQ(back.mla.nope_dim, 96);  // not reset by a second group holding the same field

  AttentionProblem dsa = AttentionProblem::defaults(VariantId::dsa);
  dsa.mla.kv_lora_rank = 64;
  dsa.dsa.top_k = 33;
  dsa.dsa.index_fp8 = true;
  j = problem_to_json(dsa);
  back = AttentionProblem{};
  read_problem_json(j, back, "", true);
  EXPECT_EQ(back.variant, VariantId::dsa);
  EXPECT_EQ(back.mla.kv_lora_rank, 64);
  EXPECT_EQ(back.dsa.top_k, 33);
  EXPECT_TRUE(back.dsa.index_fp8);

  // A sweep file from before NSA existed has no "nsa" group: it reads, with NSA's defaults.
  j = problem_to_json(AttentionProblem::defaults(VariantId::dense));
  j.erase("nsa");
  back = AttentionProblem{};
  read_problem_json(j, back, "", true);
  EXPECT_EQ(back.nsa.block_count, NsaParams{}.block_count);
  // A DSA problem needs MLA's group too: its latent widths live there.
  j = problem_to_json(AttentionProblem::defaults(VariantId::dsa));
  j.erase("mla");
  try {
    read_problem_json(j, back, "", true);
    ADD_FAILURE() << "no error for DSA without MLA's group";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mla"), std::string::npos) << e.what();
  }
  // ...and a problem whose own group is missing is malformed.
  j = problem_to_json(AttentionProblem::defaults(VariantId::nsa));
  j.erase("nsa");
  try {
    read_problem_json(j, back, "", true);
    ADD_FAILURE() << "no error for a missing own group";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nsa"), std::string::npos) << e.what();
  }
}

}  // namespace
