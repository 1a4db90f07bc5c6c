// The computations behind each view, run on the worker thread over the engine: pooled maps through
// the map probe, block-selection routing statistics, variant comparisons and a recurrent state
// over time.
#pragma once

#include <functional>
#include <initializer_list>

#include "attnscope/backend.hpp"
#include "attnscope/cancel.hpp"
#include "attnscope/inputs.hpp"
#include "attnscope/probes.hpp"
#include "attnscope/problem.hpp"
#include "view_result.hpp"

namespace attnscope::gui {

// Runs a problem through the chosen backend; throws Error / Cancelled. With cache = true the worker
// keeps the result (and the inputs it came from) for the next request.
using InputsPtr = std::shared_ptr<const Inputs>;
using RunFn = std::function<std::shared_ptr<const RunResult>(const AttentionProblem&,
                                                             const InputsPtr&, bool cache)>;
// Announces a phase of an analysis, as [begin, end) of the analysis's own part of the progress
// bar ([0, 1]; the worker places that part after the inputs and the run).
using PhaseFn = std::function<void(const QString& what, double begin, double end)>;

struct AnalysisContext {
  // The backend that produced `run` and every runProblem result: maps are its attention_map, so a
  // CUDA run's maps are pooled on the GPU.
  Backend& backend;
  const AttentionProblem& problem;
  const Inputs& inputs;
  InputsPtr inputsPtr;  // the same inputs, shareable
  const RunResult& run;
  const ViewRequest& request;
  const CancelToken& cancel;
  RunFn runProblem;
  PhaseFn phase;
  // Inputs for a problem other than the workload's (compare view); same pattern and seed.
  std::function<InputsPtr(const AttentionProblem&)> inputsFor;
  // Shows a first, coarser answer while the exact one is computed (a zoom finer than the run's
  // map pyramid: its cells at once, then the probe). May be empty.
  std::function<void(const ViewResult&)> preview = {};
};

// How computeMap may answer: exactly as asked (the pyramid when it is fine enough, else the
// probe); only from the pyramid at whatever resolution its cells give (a quick preview; an empty
// MapImage when the run has no pyramid); or only through the probe, on its uniform bins (maps of
// two runs that are compared or differenced bin by bin: two pyramids' cells need not agree).
enum class MapDetail { exact, pyramidOnly, probeOnly };

// One map of the request's head selection (single head, mean/max over heads, kv-group mean),
// through backend.attention_map (the backend that produced `run`).
MapImage computeMap(Backend& backend, const AttentionProblem& problem, const Inputs& inputs,
                    const RunResult& run, const ViewRequest& request, const CancelToken& cancel,
                    Pool pool = Pool::max, MapDetail detail = MapDetail::exact);

// The analysis of ctx.request.view; nothing for the views that run their own work.
void analyze(const AnalysisContext& ctx, ViewResult& out);

void analyzeMap(const AnalysisContext& ctx, ViewResult& out);
void analyzeBlocks(const AnalysisContext& ctx, ViewResult& out);
void analyzeCompare(const AnalysisContext& ctx, ViewResult& out);
// The selection view of the variants whose selection is an output of their own (extra_index):
// a gated mixture of branches (MapKind::mixture; NSA, nsa_analysis.cpp), with the map view's
// overlay of its kv group's blocks; a lightning indexer's key choice (InputFamily::latent_indexed;
// DSA, dsa_analysis.cpp).
void analyzeBranchSelection(const AnalysisContext& ctx, ViewResult& out);
void branchSelectionOverlay(const AnalysisContext& ctx, ViewResult& out);
void analyzeIndexerSelection(const AnalysisContext& ctx, ViewResult& out);
// The state view (ViewKind::state), defined by the variant that has one (gated_delta_analysis.cpp).
void analyzeState(const AnalysisContext& ctx, ViewResult& out);

int clampHead(int h, const AttentionProblem& p);
// The named tensors of `in`.
Inputs subset(const Inputs& in, std::initializer_list<const char*> names);

// GQA K/V from MHA K/V: each group's kv head is the mean of its query heads' k (and v) heads.
Inputs meanPoolKv(const Inputs& mha, int64_t heads, int64_t kvHeads);

}  // namespace attnscope::gui
