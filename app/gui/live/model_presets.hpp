// Model presets for the KV cache view: real models' per-layer attention shapes (where each number
// comes from is in `source`), and the KV-cache curves the view plots, all read from cost_of.
#pragma once

#include <QString>
#include <QVector>

#include "attnscope/checkpoint.hpp"
#include "attnscope/cost.hpp"
#include "attnscope/problem.hpp"

namespace attnscope::gui {

// Layers that share one attention shape. A hybrid model has several groups.
struct ModelLayerGroup {
  QString role;  // "attention (GQA)", "Gated DeltaNet", …
  int layers = 0;
  AttentionProblem problem;  // one layer, batch 1 (lengths are set per context length)
};

struct ModelPreset {
  QString name;    // "llama-3-8b": stable, for exports and settings
  QString title;   // "Llama-3-8B"
  QString source;  // where the numbers come from
  QString notes;   // modelling choices and what the cost model leaves out
  QVector<ModelLayerGroup> groups;
  // Set only for a preset built from a loaded checkpoint: the context its config allows (marked on
  // the charts) and the element size of its stored weights (what the Element box follows).
  int64_t contextLength = 0;
  int elementBytes = 0;
  QString storedType;  // "BF16"
  int layers() const;
  // The attention layers: the shape the per-variant curves of the KV view use.
  const ModelLayerGroup& primary() const { return groups.front(); }
};

const QVector<ModelPreset>& modelPresets();

// The stable name of the preset built from the workload's model ("this model: <folder>").
inline constexpr const char* kThisModelPreset = "this-model";

// The loaded model as a preset: every layer the attention its forward runs (dense causal GQA at
// its kv heads and head_dim; SWA with its window when the window is shorter than its context, as
// Mistral's), element size from the type holding most of its stored weight elements.
ModelPreset modelPresetFromCheckpoint(const Checkpoint& ck, const QString& folderName);
const ModelPreset* findModelPreset(const QString& name);

// `base` turned into one layer of `variant` at the same shape: heads, dims and every variant's
// knobs are kept; kv heads follow the variant's rule (MLA 1, Gated DeltaNet = heads; an MLA base
// becomes MHA with Dk = nope + rope). Causal where the variant requires it.
AttentionProblem problemForVariant(const AttentionProblem& base, VariantId variant);

// cost_of of `p` holding a context of `tokens` (Lq = Lk = tokens; batch as in p).
Cost costAtContext(const AttentionProblem& p, int64_t tokens, int elementBytes);

// Whole-model KV cache of one sequence: sum over groups of layers x the group's cost_of.
double modelKvCacheBytes(const ModelPreset& m, int64_t tokens, int elementBytes);
// Cache bytes one more token adds, all layers (cost_of's kv_bytes_per_token x layers).
double modelKvBytesPerToken(const ModelPreset& m, int elementBytes);

// Context lengths the KV charts sample: powers of two from 1K to 1M tokens, with midpoints.
QVector<int64_t> kvContextLengths();

// "1.50 GiB", "576 B": binary prefixes for memory.
QString humanBytes(double bytes);

}  // namespace attnscope::gui
