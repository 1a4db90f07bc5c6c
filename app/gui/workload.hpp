// Workload: everything that determines a run (problem, input pattern + seed or a loaded file,
// backend) as one copyable value, with JSON round-trips for presets, QSettings and exports.
#pragma once

#include <QJsonObject>
#include <QMetaType>
#include <QString>
#include <QStringList>
#include <memory>
#include <string_view>

#include "attnscope/inputs.hpp"
#include "attnscope/problem.hpp"
#include "model_text.hpp"

namespace attnscope::gui {

struct Workload {
  AttentionProblem problem = AttentionProblem::defaults(VariantId::dense);
  QString pattern = QStringLiteral("local");
  quint64 seed = 1;
  QString backend;  // empty: the preferred available backend
  // A loaded tensor file replaces pattern + seed; the inputs are shared, never copied per request.
  QString file;
  std::shared_ptr<const Inputs> fileInputs;
  // A model folder replaces both: the run is the model's forward on `text`, and each layer's
  // attention is the problem (the model's own shape; `problem` is set to it for the cost model and
  // the status bar). `text` is null until a text has been given.
  std::shared_ptr<const LoadedModel> model;
  std::shared_ptr<const ModelText> text;
  QString textError;  // why the text in the box is not `text` (empty, too long, …), if it is not

  // Modest defaults so the reference backend answers in about a second.
  static Workload defaults();
  static Workload forVariant(VariantId id);

  QJsonObject toJson() const;  // every parameter, plus describe() for humans
  // Starts from defaults(variant) and overrides what the object names; unknown keys are ignored.
  // Returns an error message for an unknown variant name, empty on success.
  static QString fromJson(const QJsonObject& o, Workload& out);

  // Identity of the inputs / of the run, for the worker's caches.
  QString inputsKey() const;
  QString runKey() const;
};

QString variantName(VariantId id);
// The What-if view's starting knobs for replacing a model's attention with `id`: the engine's
// defaults with resources/explorer/defaults.json's "what_if" section on top.
AttentionProblem whatIfDefaults(VariantId id);
bool variantFromName(const QString& name, VariantId& out);
// A variant's title inside a sentence: "Sliding window" -> "sliding window"; "MoBA", "Gated
// DeltaNet" stay.
QString midSentence(std::string_view title);
// "a", "a and b", "a, b and c".
QString joinAnd(QStringList items);
// Adds backends that live outside the engine library (the CUDA kernels in CUDA builds) to the
// registry; idempotent, called before anything lists backends.
void registerOptionalBackends();
// First available backend other than "reference", else "reference".
QString preferredBackend();
QString resolvedBackend(const Workload& w);

}  // namespace attnscope::gui

Q_DECLARE_METATYPE(attnscope::gui::Workload)
