// Workload defaults and JSON: the one place that names every parameter, so presets, settings and
// exports agree on the spelling and a figure can be reproduced from its exported configuration.
#include "workload.hpp"

#include <QJsonDocument>

#include <mutex>

#include "attnscope/registry.hpp"
#ifdef ATTNSCOPE_WITH_CUDA
#include "attnscope/cuda/backend.hpp"
#endif

namespace attnscope::gui {

QString variantName(VariantId id) {
  return QString::fromUtf8(variant_info(id).name.data(),
                           static_cast<qsizetype>(variant_info(id).name.size()));
}

bool variantFromName(const QString& name, VariantId& out) {
  const QByteArray utf8 = name.toUtf8();
  const VariantInfo* info = find_variant(std::string_view(utf8.constData(), size_t(utf8.size())));
  if (!info) return false;
  out = info->id;
  return true;
}

void registerOptionalBackends() {
  static std::once_flag once;
  std::call_once(once, [] {
#ifdef ATTNSCOPE_WITH_CUDA
    cuda::register_cuda_backend();
#endif
  });
}

QString preferredBackend() {
  // Asked on every request: decide once per session, since probing a device (CUDA init) can take
  // far longer than the UI may stall.
  static const QString preferred = [] {
    registerOptionalBackends();
    for (const BackendInfo& b : backends()) {
      if (b.name != "reference" && b.available().ok) {
        return QString::fromUtf8(b.name.data(), static_cast<qsizetype>(b.name.size()));
      }
    }
    return QStringLiteral("reference");
  }();
  return preferred;
}

QString resolvedBackend(const Workload& w) {
  return w.backend.isEmpty() ? preferredBackend() : w.backend;
}

Workload Workload::forVariant(VariantId id) {
  Workload w;
  AttentionProblem& p = w.problem;
  p = AttentionProblem::defaults(id);
  p.shape.batch = 1;
  p.shape.heads = 4;
  p.shape.kv_heads = id == VariantId::mla ? 1 : 4;
  p.shape.q_len = 512;
  p.shape.kv_len = 512;
  p.swa.window = 64;
  p.moba.block_size = 64;
  p.moba.top_k = 3;
  p.gdn.chunk_size = 64;
  if (id == VariantId::mla) {
    // DeepSeek-V3's ratios at a quarter of the width, so the reference answers quickly.
    p.mla.kv_lora_rank = 128;
    p.mla.rope_dim = 16;
    p.mla.nope_dim = 32;
    p.shape.head_dim = p.mla.nope_dim + p.mla.rope_dim;
    p.shape.v_head_dim = 32;
  } else {
    p.shape.head_dim = 64;
    p.shape.v_head_dim = 64;
  }
  if (id == VariantId::moba || id == VariantId::swa || id == VariantId::gated_delta) {
    p.causal = true;
  }
  return w;
}

Workload Workload::defaults() {
  Workload w = forVariant(VariantId::dense);
  w.problem.causal = true;
  return w;
}

QJsonObject Workload::toJson() const {
  const AttentionProblem& p = problem;
  QJsonObject o;
  o["variant"] = variantName(p.variant);
  o["batch"] = qint64(p.shape.batch);
  o["heads"] = qint64(p.shape.heads);
  o["kv_heads"] = qint64(p.shape.kv_heads);
  o["q_len"] = qint64(p.shape.q_len);
  o["kv_len"] = qint64(p.shape.kv_len);
  o["head_dim"] = qint64(p.shape.head_dim);
  o["v_head_dim"] = qint64(p.shape.v_head_dim);
  o["causal"] = p.causal;
  o["precision"] = QString::fromUtf8(precision_name(p.precision).data(),
                                     qsizetype(precision_name(p.precision).size()));
  o["scale"] = p.scale ? QJsonValue(*p.scale) : QJsonValue(QJsonValue::Null);
  o["effective_scale"] = p.effective_scale();
  o["swa"] = QJsonObject{{"window", qint64(p.swa.window)}, {"sinks", qint64(p.swa.sinks)}};
  o["mla"] = QJsonObject{{"kv_lora_rank", qint64(p.mla.kv_lora_rank)},
                         {"rope_dim", qint64(p.mla.rope_dim)},
                         {"nope_dim", qint64(p.mla.nope_dim)},
                         {"absorbed", p.mla.absorbed}};
  o["moba"] =
      QJsonObject{{"block_size", qint64(p.moba.block_size)}, {"top_k", qint64(p.moba.top_k)}};
  o["gated_delta"] = QJsonObject{{"chunk_size", qint64(p.gdn.chunk_size)},
                                 {"qk_l2norm", p.gdn.qk_l2norm},
                                 {"recurrent", p.gdn.recurrent}};
  if (file.isEmpty()) {
    o["pattern"] = pattern;
    o["seed"] = QString::number(seed);  // string: JSON numbers lose 64-bit seeds
  } else {
    o["file"] = file;
  }
  o["backend"] = resolvedBackend(*this);
  o["describe"] = QString::fromStdString(p.describe());
  return o;
}

namespace {
void readInt(const QJsonObject& o, const char* key, int64_t& out) {
  if (o.contains(QLatin1String(key))) out = o.value(QLatin1String(key)).toInteger(out);
}
void readBool(const QJsonObject& o, const char* key, bool& out) {
  if (o.contains(QLatin1String(key))) out = o.value(QLatin1String(key)).toBool(out);
}
}  // namespace

QString Workload::fromJson(const QJsonObject& o, Workload& out) {
  VariantId id = VariantId::dense;
  if (o.contains("variant") && !variantFromName(o.value("variant").toString(), id)) {
    return QStringLiteral("unknown variant '%1' (known: %2)")
        .arg(o.value("variant").toString(), QString::fromStdString(variant_names()));
  }
  Workload w = forVariant(id);
  AttentionProblem& p = w.problem;
  readInt(o, "batch", p.shape.batch);
  readInt(o, "heads", p.shape.heads);
  readInt(o, "kv_heads", p.shape.kv_heads);
  readInt(o, "q_len", p.shape.q_len);
  readInt(o, "kv_len", p.shape.kv_len);
  readInt(o, "head_dim", p.shape.head_dim);
  readInt(o, "v_head_dim", p.shape.v_head_dim);
  readBool(o, "causal", p.causal);
  if (o.contains("precision")) {
    const QByteArray name = o.value("precision").toString().toUtf8();
    const auto precision = parse_precision(std::string_view(name.constData(), size_t(name.size())));
    if (!precision) {
      return QStringLiteral("unknown precision '%1' (known: %2)")
          .arg(QString::fromUtf8(name), QString::fromStdString(precision_names()));
    }
    p.precision = *precision;
  }
  if (o.value("scale").isDouble()) p.scale = o.value("scale").toDouble();
  const QJsonObject swa = o.value("swa").toObject();
  readInt(swa, "window", p.swa.window);
  readInt(swa, "sinks", p.swa.sinks);
  const QJsonObject mla = o.value("mla").toObject();
  readInt(mla, "kv_lora_rank", p.mla.kv_lora_rank);
  readInt(mla, "rope_dim", p.mla.rope_dim);
  readInt(mla, "nope_dim", p.mla.nope_dim);
  readBool(mla, "absorbed", p.mla.absorbed);
  const QJsonObject moba = o.value("moba").toObject();
  readInt(moba, "block_size", p.moba.block_size);
  readInt(moba, "top_k", p.moba.top_k);
  const QJsonObject gdn = o.value("gated_delta").toObject();
  readInt(gdn, "chunk_size", p.gdn.chunk_size);
  readBool(gdn, "qk_l2norm", p.gdn.qk_l2norm);
  readBool(gdn, "recurrent", p.gdn.recurrent);
  if (p.variant == VariantId::mla) p.shape.head_dim = p.mla.nope_dim + p.mla.rope_dim;
  if (o.contains("pattern")) w.pattern = o.value("pattern").toString();
  if (o.contains("seed")) {
    const QJsonValue s = o.value("seed");
    w.seed = s.isString() ? s.toString().toULongLong() : quint64(s.toInteger(1));
  }
  if (o.contains("backend")) w.backend = o.value("backend").toString();
  out = w;
  return {};
}

QString Workload::inputsKey() const {
  // Inputs depend on the variant's tensor set and shape, the pattern and the seed (or the file).
  QJsonObject o = toJson();
  o.remove("backend");
  o.remove("describe");
  // Kept: causal, scale and the variant knobs, in case a pattern plants structure that uses them.
  if (!file.isEmpty()) {
    o["file_ptr"] = QString::number(reinterpret_cast<quintptr>(fileInputs.get()));
  }
  return QString::fromUtf8(QJsonDocument(o).toJson(QJsonDocument::Compact));
}

QString Workload::runKey() const {
  QJsonObject o = toJson();
  if (!file.isEmpty()) {
    o["file_ptr"] = QString::number(reinterpret_cast<quintptr>(fileInputs.get()));
  }
  return QString::fromUtf8(QJsonDocument(o).toJson(QJsonDocument::Compact));
}

}  // namespace attnscope::gui
