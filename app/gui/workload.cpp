// Workload defaults and JSON: the one place that names every parameter, so presets, settings and
// exports agree on the spelling and a figure can be reproduced from its exported configuration.
#include "workload.hpp"

#include <QJsonArray>
#include <QJsonDocument>
#include <QRegularExpression>

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

// The value as JSON text, shortened, for messages: 64.5, 1e+300, "abc", [1,2].
QString jsonText(const QJsonValue& v) {
  QString text = QString::fromUtf8(QJsonDocument(QJsonArray{v}).toJson(QJsonDocument::Compact));
  text = text.mid(1, text.size() - 2);
  if (text.size() > 60) text = text.left(57) + QStringLiteral("...");
  return text;
}

// Readers for one key of `o` (named `name` in messages, e.g. "mla.nope_dim"). An absent key keeps
// `out`; a present key of the wrong type is an error, never silently the default.
QString readInt(const QJsonObject& o, const char* key, const QString& name, int64_t& out) {
  if (!o.contains(QLatin1String(key))) return {};
  const QJsonValue v = o.value(QLatin1String(key));
  // toInteger() gives the default for anything that is not a number with an exact 64-bit integer
  // value (64.5, 1e300, a string, ...): two different defaults tell those apart from the value.
  const qint64 a = v.toInteger(0), b = v.toInteger(1);
  if (!v.isDouble() || a != b) {
    return QStringLiteral("'%1' must be an integer, got %2").arg(name, jsonText(v));
  }
  out = a;
  return {};
}

QString readBool(const QJsonObject& o, const char* key, const QString& name, bool& out) {
  if (!o.contains(QLatin1String(key))) return {};
  const QJsonValue v = o.value(QLatin1String(key));
  if (!v.isBool()) {
    return QStringLiteral("'%1' must be true or false, got %2").arg(name, jsonText(v));
  }
  out = v.toBool();
  return {};
}

QString readString(const QJsonObject& o, const char* key, QString& out) {
  if (!o.contains(QLatin1String(key))) return {};
  const QJsonValue v = o.value(QLatin1String(key));
  if (!v.isString()) {
    return QStringLiteral("'%1' must be a string, got %2").arg(QLatin1String(key), jsonText(v));
  }
  out = v.toString();
  return {};
}

// A nested object ("swa", "mla", ...): absent is empty, anything but an object is an error.
QString readObject(const QJsonObject& o, const char* key, QJsonObject& out) {
  out = {};
  if (!o.contains(QLatin1String(key))) return {};
  const QJsonValue v = o.value(QLatin1String(key));
  if (!v.isObject()) {
    return QStringLiteral("'%1' must be an object, got %2").arg(QLatin1String(key), jsonText(v));
  }
  out = v.toObject();
  return {};
}

// The seed: a decimal string (toJson writes strings, as JSON numbers lose 64-bit values) or, as
// older and hand-written files have it, a non-negative JSON integer.
QString readSeed(const QJsonObject& o, quint64& out) {
  if (!o.contains(QLatin1String("seed"))) return {};
  const QJsonValue v = o.value(QLatin1String("seed"));
  const QString why =
      QStringLiteral("'seed' must be a whole number from 0 to 18446744073709551615, got %1")
          .arg(jsonText(v));
  if (v.isString()) {
    static const QRegularExpression digits(QStringLiteral("^[0-9]{1,20}$"));
    const QString text = v.toString();
    bool ok = false;
    const quint64 seed = digits.match(text).hasMatch() ? text.toULongLong(&ok, 10) : 0;
    if (!ok) return why;
    out = seed;
    return {};
  }
  const qint64 a = v.toInteger(0), b = v.toInteger(1);
  if (!v.isDouble() || a != b || a < 0) return why;
  out = quint64(a);
  return {};
}

}  // namespace

QString Workload::fromJson(const QJsonObject& o, Workload& out) {
  VariantId id = VariantId::dense;
  if (o.contains("variant")) {
    QString name;
    if (QString e = readString(o, "variant", name); !e.isEmpty()) return e;
    if (!variantFromName(name, id)) {
      return QStringLiteral("unknown variant '%1' (known: %2)")
          .arg(name, QString::fromStdString(variant_names()));
    }
  }
  Workload w = forVariant(id);
  AttentionProblem& p = w.problem;
  QJsonObject swa, mla, moba, gdn;
  // Every reader runs in turn; the first error is the answer.
  const auto name = [](const char* group, const char* key) {
    return QStringLiteral("%1.%2").arg(QLatin1String(group), QLatin1String(key));
  };
  for (const QString& e : {
           readInt(o, "batch", QStringLiteral("batch"), p.shape.batch),
           readInt(o, "heads", QStringLiteral("heads"), p.shape.heads),
           readInt(o, "kv_heads", QStringLiteral("kv_heads"), p.shape.kv_heads),
           readInt(o, "q_len", QStringLiteral("q_len"), p.shape.q_len),
           readInt(o, "kv_len", QStringLiteral("kv_len"), p.shape.kv_len),
           readInt(o, "head_dim", QStringLiteral("head_dim"), p.shape.head_dim),
           readInt(o, "v_head_dim", QStringLiteral("v_head_dim"), p.shape.v_head_dim),
           readBool(o, "causal", QStringLiteral("causal"), p.causal),
           readObject(o, "swa", swa),
           readObject(o, "mla", mla),
           readObject(o, "moba", moba),
           readObject(o, "gated_delta", gdn),
       }) {
    if (!e.isEmpty()) return e;
  }
  if (o.contains("precision")) {
    QString text;
    if (QString e = readString(o, "precision", text); !e.isEmpty()) return e;
    const QByteArray utf8 = text.toUtf8();
    const auto precision = parse_precision(std::string_view(utf8.constData(), size_t(utf8.size())));
    if (!precision) {
      return QStringLiteral("unknown precision '%1' (known: %2)")
          .arg(text, QString::fromStdString(precision_names()));
    }
    p.precision = *precision;
  }
  // null (what toJson writes for "no explicit scale") keeps the default 1/sqrt(head_dim).
  if (o.contains("scale") && !o.value("scale").isNull()) {
    if (!o.value("scale").isDouble()) {
      return QStringLiteral("'scale' must be a number or null, got %1")
          .arg(jsonText(o.value("scale")));
    }
    p.scale = o.value("scale").toDouble();
  }
  for (const QString& e : {
           readInt(swa, "window", name("swa", "window"), p.swa.window),
           readInt(swa, "sinks", name("swa", "sinks"), p.swa.sinks),
           readInt(mla, "kv_lora_rank", name("mla", "kv_lora_rank"), p.mla.kv_lora_rank),
           readInt(mla, "rope_dim", name("mla", "rope_dim"), p.mla.rope_dim),
           readInt(mla, "nope_dim", name("mla", "nope_dim"), p.mla.nope_dim),
           readBool(mla, "absorbed", name("mla", "absorbed"), p.mla.absorbed),
           readInt(moba, "block_size", name("moba", "block_size"), p.moba.block_size),
           readInt(moba, "top_k", name("moba", "top_k"), p.moba.top_k),
           readInt(gdn, "chunk_size", name("gated_delta", "chunk_size"), p.gdn.chunk_size),
           readBool(gdn, "qk_l2norm", name("gated_delta", "qk_l2norm"), p.gdn.qk_l2norm),
           readBool(gdn, "recurrent", name("gated_delta", "recurrent"), p.gdn.recurrent),
           readString(o, "pattern", w.pattern),
           readSeed(o, w.seed),
           readString(o, "backend", w.backend),
       }) {
    if (!e.isEmpty()) return e;
  }
  if (p.variant == VariantId::mla) {
    // MLA's query/key width is its two parts; a file may carry any 64-bit values, so the sum is
    // checked (signed overflow is undefined behaviour, not a wrapped number).
    int64_t sum = 0;
    if (__builtin_add_overflow(p.mla.nope_dim, p.mla.rope_dim, &sum)) {
      return QStringLiteral("'mla.nope_dim' + 'mla.rope_dim' overflows (%1 + %2)")
          .arg(p.mla.nope_dim)
          .arg(p.mla.rope_dim);
    }
    p.shape.head_dim = sum;
  }
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
