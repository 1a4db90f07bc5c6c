// Workload defaults and JSON. The problem's keys are the engine's one schema (problem_json.hpp), so
// presets, settings, exports and sweep files agree on the spelling and a figure can be reproduced
// from its exported configuration; the workload adds its inputs and backend.
#include "workload.hpp"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QObject>
#include <QRegularExpression>

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>

#include "attnscope/error.hpp"
#include "attnscope/problem_json.hpp"
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

QString midSentence(std::string_view title) {
  QString s = QString::fromUtf8(title.data(), static_cast<qsizetype>(title.size()));
  // Only a title with no other capital is a common phrase; "MoBA" and "Gated DeltaNet" are names.
  const bool plain = std::none_of(s.begin() + std::min<qsizetype>(1, s.size()), s.end(),
                                  [](QChar c) { return c.isUpper(); });
  if (plain && !s.isEmpty()) s[0] = s[0].toLower();
  return s;
}

QString joinAnd(QStringList items) {
  if (items.size() < 2) return items.join(QString());
  const QString last = items.takeLast();
  return QObject::tr("%1 and %2").arg(items.join(QStringLiteral(", ")), last);
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

namespace {

// nlohmann <-> Qt through JSON text: both keep 64-bit integers exact. Qt accepts a lone UTF-16
// surrogate ("\ud800") in a string and writes it back as bytes that are not UTF-8, which nlohmann
// refuses: that is the file's fault, so it is an Error like any other bad field.
nlohmann::json toNlohmann(const QJsonObject& o) {
  try {
    return nlohmann::json::parse(QJsonDocument(o).toJson(QJsonDocument::Compact).toStdString());
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("the workload holds text JSON cannot carry (such as an unpaired "
                            "UTF-16 surrogate): ") +
                e.what());
  }
}

QJsonObject toQt(const nlohmann::ordered_json& j) {
  return QJsonDocument::fromJson(QByteArray::fromStdString(j.dump())).object();
}

// resources/explorer/defaults.json: the explorer's starting sizes, as data rather than per-variant
// code.
const QJsonObject& explorerDefaults() {
  static const QJsonObject defaults = [] {
    QFile f(QStringLiteral(":/explorer/defaults.json"));
    if (!f.open(QIODevice::ReadOnly)) qFatal("attnscope: the explorer defaults are not built in");
    return QJsonDocument::fromJson(f.readAll()).object();
  }();
  return defaults;
}

}  // namespace

Workload Workload::forVariant(VariantId id) {
  Workload w;
  AttentionProblem& p = w.problem;
  p = AttentionProblem::defaults(id);
  const QJsonObject& d = explorerDefaults();
  read_problem_json(toNlohmann(d.value("workload").toObject()), p, "", false);
  const QJsonValue own = d.value("variants").toObject().value(variantName(id));
  if (own.isObject()) read_problem_json(toNlohmann(own.toObject()), p, "", false);
  normalize_shape(p);
  return w;
}

AttentionProblem whatIfDefaults(VariantId id) {
  AttentionProblem p = AttentionProblem::defaults(id);
  QJsonObject knobs = explorerDefaults().value("what_if").toObject();
  knobs.remove("about");
  read_problem_json(toNlohmann(knobs), p, "", false);
  return p;
}

Workload Workload::defaults() {
  Workload w = forVariant(VariantId::dense);
  w.problem.causal = true;
  return w;
}

QJsonObject Workload::toJson() const {
  const AttentionProblem& p = problem;
  QJsonObject o = toQt(problem_to_json(p));
  o["effective_scale"] = p.effective_scale();
  if (model) {
    o["model"] = model->dir;
    if (text) {
      o["text_sha256"] = text->sha256;
      o["tokens"] = text->length();
    }
  } else if (file.isEmpty()) {
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

// Readers for the workload's own keys (the problem's are the engine's, read_problem_json). An
// absent key keeps `out`; a present key of the wrong type is an error, never silently the default.
QString readString(const QJsonObject& o, const char* key, QString& out) {
  if (!o.contains(QLatin1String(key))) return {};
  const QJsonValue v = o.value(QLatin1String(key));
  if (!v.isString()) {
    return QStringLiteral("'%1' must be a string, got %2").arg(QLatin1String(key), jsonText(v));
  }
  out = v.toString();
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
  // The variant first: its explorer defaults are what the object's keys override.
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
  try {
    QJsonObject problem = o;
    problem.remove("variant");  // "gqa" and other aliases are the GUI's to resolve
    read_problem_json(toNlohmann(problem), p, "", false);
    // The query width is what the knobs imply; other dims stay as written, so validate() still
    // names an inconsistent file.
    AttentionProblem implied = p;
    normalize_shape(implied);
    p.shape.head_dim = implied.shape.head_dim;
  } catch (const Error& e) {
    return QString::fromStdString(e.what());
  }
  for (const QString& e : {
           readString(o, "pattern", w.pattern),
           readSeed(o, w.seed),
           readString(o, "backend", w.backend),
       }) {
    if (!e.isEmpty()) return e;
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
  if (model) {
    o["model_ptr"] = QString::number(reinterpret_cast<quintptr>(model.get()));
    o["text_ptr"] = QString::number(reinterpret_cast<quintptr>(text.get()));
  }
  return QString::fromUtf8(QJsonDocument(o).toJson(QJsonDocument::Compact));
}

QString Workload::runKey() const {
  QJsonObject o = toJson();
  if (!file.isEmpty()) {
    o["file_ptr"] = QString::number(reinterpret_cast<quintptr>(fileInputs.get()));
  }
  if (model) {
    o["model_ptr"] = QString::number(reinterpret_cast<quintptr>(model.get()));
    o["text_ptr"] = QString::number(reinterpret_cast<quintptr>(text.get()));
  }
  return QString::fromUtf8(QJsonDocument(o).toJson(QJsonDocument::Compact));
}

}  // namespace attnscope::gui
