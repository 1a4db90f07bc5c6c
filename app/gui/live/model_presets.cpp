// The model table. Shapes come from each model's published config.json (Hugging Face) or paper;
// every cache number the KV view shows is cost_of of these per-layer problems times the layers.
#include "live/model_presets.hpp"

#include <QObject>
#include <algorithm>
#include <cmath>

#include "attnscope/registry.hpp"

namespace attnscope::gui {
namespace {

AttentionProblem layer(VariantId v, int64_t heads, int64_t kvHeads, int64_t headDim,
                       int64_t vHeadDim) {
  AttentionProblem p = AttentionProblem::defaults(v);
  p.shape.batch = 1;
  p.shape.heads = heads;
  p.shape.kv_heads = kvHeads;
  p.shape.head_dim = headDim;
  p.shape.v_head_dim = vHeadDim;
  p.causal = true;  // decoder models
  return p;
}

QVector<ModelPreset> buildPresets() {
  QVector<ModelPreset> out;
  {
    ModelPreset m;
    m.name = QStringLiteral("llama-3-8b");
    m.title = QStringLiteral("Llama-3-8B");
    m.source = QStringLiteral(
        "meta-llama/Meta-Llama-3-8B config.json: num_hidden_layers 32, num_attention_heads 32, "
        "num_key_value_heads 8, hidden_size 4096 (head_dim 128)");
    m.notes = QStringLiteral(
        "GQA: 4 query heads share each K/V head; 2 x 8 x 128 = 2048 cached "
        "values per token per layer.");
    m.groups = {{QStringLiteral("attention (GQA)"), 32, layer(VariantId::dense, 32, 8, 128, 128)}};
    out.append(m);
  }
  {
    ModelPreset m;
    m.name = QStringLiteral("mistral-7b");
    m.title = QStringLiteral("Mistral-7B (v0.1)");
    m.source = QStringLiteral(
        "mistralai/Mistral-7B-v0.1 config.json: num_hidden_layers 32, num_attention_heads 32, "
        "num_key_value_heads 8, head_dim 128, sliding_window 4096");
    m.notes = QStringLiteral(
        "Sliding window of 4096 tokens in every layer, no sinks: the cache "
        "is a ring that stops growing at 4096 tokens.");
    AttentionProblem p = layer(VariantId::swa, 32, 8, 128, 128);
    p.swa.window = 4096;
    p.swa.sinks = 0;
    m.groups = {{QStringLiteral("sliding-window attention (GQA)"), 32, p}};
    out.append(m);
  }
  {
    ModelPreset m;
    m.name = QStringLiteral("deepseek-v3");
    m.title = QStringLiteral("DeepSeek-V3");
    m.source = QStringLiteral(
        "deepseek-ai/DeepSeek-V3 config.json: num_hidden_layers 61, num_attention_heads 128, "
        "kv_lora_rank 512, qk_rope_head_dim 64, qk_nope_head_dim 128, v_head_dim 128");
    m.notes = QStringLiteral(
        "MLA caches the latent c_kv (512) and the shared rotary key (64): "
        "576 values per token per layer, for all 128 heads. The MTP module "
        "is not counted.");
    AttentionProblem p = layer(VariantId::mla, 128, 1, 128 + 64, 128);
    p.mla.kv_lora_rank = 512;
    p.mla.rope_dim = 64;
    p.mla.nope_dim = 128;
    p.mla.absorbed = true;
    m.groups = {{QStringLiteral("multi-head latent attention"), 61, p}};
    out.append(m);
  }
  {
    ModelPreset m;
    m.name = QStringLiteral("deepseek-v3.2-exp");
    m.title = QStringLiteral("DeepSeek-V3.2-Exp (DSA)");
    m.source = QStringLiteral(
        "deepseek-ai/DeepSeek-V3.2-Exp config.json: num_hidden_layers 61, num_attention_heads "
        "128, kv_lora_rank 512, qk_rope_head_dim 64, qk_nope_head_dim 128, v_head_dim 128, "
        "index_n_heads 64, index_head_dim 128, index_topk 2048");
    m.notes = QStringLiteral(
        "V3's latent (512 + 64 values per token) plus one index key per token for the lightning "
        "indexer: 128 values, which the released model caches in FP8 (128 bytes and a 4-byte "
        "scale). Attention reads 2048 latent rows per query whatever the context.");
    AttentionProblem p = layer(VariantId::dsa, 128, 1, 128 + 64, 128);
    p.mla.kv_lora_rank = 512;
    p.mla.rope_dim = 64;
    p.mla.nope_dim = 128;
    p.mla.absorbed = true;
    p.dsa.top_k = 2048;
    p.dsa.index_heads = 64;
    p.dsa.index_head_dim = 128;
    p.dsa.index_fp8 = true;
    m.groups = {{QStringLiteral("DeepSeek sparse attention"), 61, p}};
    out.append(m);
  }
  {
    ModelPreset m;
    m.name = QStringLiteral("nsa-27b-paper");
    m.title = QStringLiteral("NSA paper's 27B model");
    m.source = QStringLiteral(
        "Yuan et al. 2025 (arXiv 2502.11089), section 4.1: 30 layers, 64 attention heads in 4 GQA "
        "groups, d_k 192, d_v 128; selection blocks of 64, 16 selected blocks, window 512 "
        "(compression blocks of 32 with stride 16 in the paper; attnscope ties them to 64)");
    m.notes = QStringLiteral(
        "NSA keeps every key and value (the selection may pick any past block) plus one mean key "
        "and one mean value per complete block of 64 and KV head.");
    AttentionProblem p = layer(VariantId::nsa, 64, 4, 192, 128);
    p.nsa.block_size = 64;
    p.nsa.block_count = 16;
    p.nsa.window = 512;
    m.groups = {{QStringLiteral("native sparse attention (GQA)"), 30, p}};
    out.append(m);
  }
  {
    ModelPreset m;
    m.name = QStringLiteral("llama-8b-1m-moba");
    m.title = QStringLiteral("Llama-8B-1M-MoBA");
    m.source = QStringLiteral(
        "MoBA paper (Lu et al. 2025, arXiv 2502.13189): Llama-3.1-8B continued to 1M tokens with "
        "block size 4096, top-k 12 (95.31% sparsity at 1M); layer-wise hybrid with the last 3 "
        "layers full attention. Shape: 32 layers, 32 heads, 8 KV heads, head_dim 128");
    m.notes = QStringLiteral(
        "MoBA keeps every key and value (same cache as dense GQA) plus one "
        "mean key per complete block and KV head for the gate.");
    AttentionProblem p = layer(VariantId::moba, 32, 8, 128, 128);
    p.moba.block_size = 4096;
    p.moba.top_k = 12;
    m.groups = {
        {QStringLiteral("MoBA (GQA)"), 29, p},
        {QStringLiteral("full attention (GQA)"), 3, layer(VariantId::dense, 32, 8, 128, 128)}};
    out.append(m);
  }
  {
    ModelPreset m;
    m.name = QStringLiteral("qwen3-next-80b-a3b");
    m.title = QStringLiteral("Qwen3-Next-80B-A3B (GDN hybrid)");
    m.source = QStringLiteral(
        "Qwen/Qwen3-Next-80B-A3B-Instruct config.json: num_hidden_layers 48, "
        "full_attention_interval 4 (12 x (3 Gated DeltaNet + 1 gated attention)); attention: "
        "num_attention_heads 16, num_key_value_heads 2, head_dim 256; Gated DeltaNet: "
        "linear_num_value_heads 32, linear_num_key_heads 16, linear_key_head_dim 128, "
        "linear_value_head_dim 128");
    m.notes = QStringLiteral(
        "36 Gated DeltaNet layers hold a constant fp32 state of 32 heads x 128 x 128 (q/k heads "
        "are shared by two value heads); only the 12 attention layers grow with the context. The "
        "short-convolution state (kernel 4) of the DeltaNet layers is not in the cost model.");
    m.groups = {
        {QStringLiteral("gated attention (GQA)"), 12, layer(VariantId::dense, 16, 2, 256, 256)},
        {QStringLiteral("Gated DeltaNet"), 36, layer(VariantId::gated_delta, 32, 32, 128, 128)}};
    out.append(m);
  }
  return out;
}

}  // namespace

ModelPreset modelPresetFromCheckpoint(const Checkpoint& ck, const QString& folderName) {
  const ModelConfig& c = ck.config();
  // Weights can mix types (fp32 norms next to bf16 matrices): the type of most elements is the
  // dtype the checkpoint was saved in, which a serving engine keeps its cache in too.
  double count[3] = {0, 0, 0};
  for (const std::string& name : ck.names()) {
    count[int(ck.stored_type(name))] += double(shape_numel(ck.shape(name)));
  }
  const auto most = StoredType(std::max_element(count, count + 3) - count);
  ModelPreset m;
  m.name = QString::fromLatin1(kThisModelPreset);
  m.title = QObject::tr("this model: %1").arg(folderName);
  m.contextLength = c.max_positions;
  m.elementBytes = most == StoredType::f32 ? 4 : 2;
  m.storedType = most == StoredType::f32   ? QStringLiteral("F32")
                 : most == StoredType::f16 ? QStringLiteral("F16")
                                           : QStringLiteral("BF16");
  // The forward slides the window only over texts longer than it; a window that the context never
  // exceeds never bites, so such a model caches like a dense one.
  const bool windowed = c.window && (c.max_positions <= 0 || *c.window < c.max_positions);
  AttentionProblem p = layer(windowed ? VariantId::swa : VariantId::dense, c.heads, c.kv_heads,
                             c.head_dim, c.head_dim);
  if (windowed) {
    p.swa.window = *c.window;
    p.swa.sinks = 0;
  }
  const QString kind = c.kv_heads == c.heads ? QStringLiteral("MHA") : QStringLiteral("GQA");
  m.source = QObject::tr(
                 "%1/config.json: %2 layers, %3 heads, %4 kv heads, head_dim %5%6, "
                 "context %7; weights stored as %8")
                 .arg(ck.dir().empty() ? folderName : QString::fromStdString(ck.dir()))
                 .arg(c.layers)
                 .arg(c.heads)
                 .arg(c.kv_heads)
                 .arg(c.head_dim)
                 .arg(c.window ? QObject::tr(", sliding_window %1").arg(*c.window) : QString())
                 .arg(c.max_positions)
                 .arg(m.storedType);
  m.notes = (windowed ? QObject::tr("Sliding window of %1 tokens in every layer, no sinks, as "
                                    "attnscope's forward runs it: the cache stops growing at %1 "
                                    "tokens.")
                            .arg(*c.window)
                      : QObject::tr("Every layer dense causal %1, as attnscope's forward runs it.")
                            .arg(kind)) +
            QObject::tr(
                " Element: %1 bytes, the stored weights' type (%2); the Element box "
                "follows it when this entry is picked.")
                .arg(m.elementBytes)
                .arg(m.storedType);
  m.groups = {{windowed ? QObject::tr("sliding-window attention (%1)").arg(kind)
                        : QObject::tr("attention (%1)").arg(kind),
               int(c.layers), p}};
  return m;
}

int ModelPreset::layers() const {
  int n = 0;
  for (const ModelLayerGroup& g : groups) n += g.layers;
  return n;
}

const QVector<ModelPreset>& modelPresets() {
  static const QVector<ModelPreset> presets = buildPresets();
  return presets;
}

const ModelPreset* findModelPreset(const QString& name) {
  for (const ModelPreset& m : modelPresets()) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

AttentionProblem problemForVariant(const AttentionProblem& base, VariantId variant) {
  AttentionProblem p = base;
  p.variant = variant;
  // A base whose knobs set its widths (MLA's shared latent) expands to MHA: the naive MLA is MHA.
  if (sets_widths(variant_info(base.variant)) && variant != base.variant)
    p.shape.kv_heads = p.shape.heads;
  if (p.shape.kv_heads <= 0 || p.shape.heads % p.shape.kv_heads != 0) {
    p.shape.kv_heads = p.shape.heads;
  }
  normalize_shape(p);  // the variant's own kv heads and widths
  if (variant_info(variant).causal_only) p.causal = true;
  return p;
}

Cost costAtContext(const AttentionProblem& p, int64_t tokens, int elementBytes) {
  AttentionProblem q = p;
  q.shape.q_len = tokens;
  q.shape.kv_len = tokens;
  return cost_of(q, elementBytes);
}

double modelKvCacheBytes(const ModelPreset& m, int64_t tokens, int elementBytes) {
  double total = 0;
  for (const ModelLayerGroup& g : m.groups) {
    total += g.layers * costAtContext(g.problem, tokens, elementBytes).kv_cache_bytes;
  }
  return total;
}

double modelKvBytesPerToken(const ModelPreset& m, int elementBytes) {
  double total = 0;
  for (const ModelLayerGroup& g : m.groups) {
    total += g.layers * costAtContext(g.problem, 1, elementBytes).kv_bytes_per_token;
  }
  return total;
}

QVector<int64_t> kvContextLengths() {
  QVector<int64_t> out;
  for (int64_t n = 1024; n <= (int64_t(1) << 20); n *= 2) {
    out.append(n);
    if (n < (int64_t(1) << 20)) out.append(n + n / 2);
  }
  return out;
}

QString humanBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int i = 0;
  while (std::abs(bytes) >= 1024 && i < 5) {
    bytes /= 1024;
    ++i;
  }
  return QStringLiteral("%1 %2")
      .arg(bytes, 0, 'f', i == 0 ? 0 : (bytes < 10 ? 2 : 1))
      .arg(units[i]);
}

}  // namespace attnscope::gui
