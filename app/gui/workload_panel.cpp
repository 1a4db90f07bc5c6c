// The workload panel. It keeps derived fields consistent (whatever the variant's normalize_shape
// sets, and kv_len = q_len for a recurrent state) and leaves everything else to validate().
#include "workload_panel.hpp"

#include <QCoreApplication>
#include <QDragEnterEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QKeyEvent>
#include <QMimeData>
#include <QRegularExpression>
#include <QStandardItemModel>
#include <QTimer>
#include <QVBoxLayout>
#include <functional>

#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"
#include "wording.hpp"

namespace attnscope::gui {
namespace {
QString qs(std::string_view s) {
  return QString::fromUtf8(s.data(), static_cast<qsizetype>(s.size()));
}
bool isTensorFile(const QString& path) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  return suffix == "safetensors" || suffix == "npy";
}

// "a, b and c" of the variants that `pick` selects, each as `name` spells it.
template <class Pick, class Name>
QString variantList(Pick pick, Name name) {
  QStringList items;
  for (const VariantInfo& v : variants()) {
    if (pick(v)) items << name(v);
  }
  return joinAnd(items);
}

// Which dims of `p` its variant derives from others: the ones normalize_shape overwrites. Each is
// given two placeholder values; a derived dim comes back changed from at least one of them.
struct DerivedDims {
  bool kvHeads = false, headDim = false;
};
DerivedDims derivedDims(const AttentionProblem& p) {
  DerivedDims d;
  for (int64_t probe : {-1, -2}) {
    AttentionProblem q = p;
    q.shape.kv_heads = q.shape.head_dim = probe;
    try {
      normalize_shape(q);
    } catch (const std::exception&) {
      return {true, true};  // knobs beyond any width: nothing here is the user's to edit
    }
    d.kvHeads |= q.shape.kv_heads != probe;
    d.headDim |= q.shape.head_dim != probe;
  }
  return d;
}

// The variant's own shape rules on an edited problem: the dims it derives, one token sequence for a
// recurrent state, the causal mask where it is the only one.
void fixUp(AttentionProblem& p) {
  const VariantInfo& info = variant_info(p.variant);
  try {
    normalize_shape(p);
  } catch (const std::exception&) {
    // Widths beyond 64 bits cannot come from the fields' ranges; validate() names them if they do.
  }
  if (info.has_state) p.shape.kv_len = p.shape.q_len;
  if (info.causal_only) p.causal = true;
}

// A number field that refuses a value outside its range with the range shown, instead of
// clamping it: QSpinBox drops the digit that would pass the maximum (10^7 typed became 1,000,000)
// and silently restores the old value when one below the minimum loses focus (window 0). A typed
// number applies after a short pause or on Enter, never digit by digit.
class RangeSpinBox : public QSpinBox {
 public:
  RangeSpinBox() {
    pause_.setSingleShot(true);
    pause_.setInterval(700);
    connect(lineEdit(), &QLineEdit::textEdited, this, [this] {
      pause_.start();
      if (!outOfRange()) note({});
    });
    connect(&pause_, &QTimer::timeout, this, [this] {
      if (refuse(false)) return;
      QString text = lineEdit()->text();
      int pos = 0;
      if (validate(text, pos) == QValidator::Acceptable) interpretText();
    });
  }

  QString name;                                // the label, for the message
  std::function<void(const QString&)> onNote;  // shows (or, empty, clears) the refusal

  // The typed text when it is a whole number outside the range.
  std::optional<qint64> outOfRange() const {
    const QString text = cleanText();
    if (!wholeNumber().match(text).hasMatch()) return std::nullopt;
    const qint64 v = text.toLongLong();
    if (v >= minimum() && v <= maximum()) return std::nullopt;
    return v;
  }

  QValidator::State validate(QString& input, int& pos) const override {
    const QValidator::State state = QSpinBox::validate(input, pos);
    if (state != QValidator::Invalid) return state;
    // Let every digit in: a value past the maximum is refused by name, not cut short.
    return wholeNumber().match(input.trimmed()).hasMatch() ? QValidator::Intermediate
                                                           : QValidator::Invalid;
  }

 protected:
  void keyPressEvent(QKeyEvent* e) override {
    if (e->key() == Qt::Key_Return || e->key() == Qt::Key_Enter) {
      pause_.stop();
      // Keep the refused text in the field, beside its reason, for the user to correct.
      if (refuse(false)) {
        e->accept();
        return;
      }
    }
    QSpinBox::keyPressEvent(e);
  }
  void focusOutEvent(QFocusEvent* e) override {
    pause_.stop();
    refuse(true);  // then QSpinBox puts the value in force back into the field
    QSpinBox::focusOutEvent(e);
  }

 private:
  static const QRegularExpression& wholeNumber() {
    static const QRegularExpression re(QStringLiteral("^[+-]?[0-9]{1,18}$"));
    return re;
  }
  bool refuse(bool reverting) {
    const std::optional<qint64> v = outOfRange();
    if (!v) return false;
    QString text =
        QCoreApplication::translate("WorkloadPanel", "%1 is out of range: %2 is from %3 to %4")
            .arg(*v)
            .arg(name)
            .arg(minimum())
            .arg(maximum());
    if (reverting) text += QCoreApplication::translate("WorkloadPanel", " (%1 kept)").arg(value());
    note(text);
    return true;
  }
  void note(const QString& text) {
    if (onNote) onNote(text);
  }

  QTimer pause_;
};
}  // namespace

WorkloadPanel::WorkloadPanel(QWidget* parent) : QWidget(parent) {
  registerOptionalBackends();
  setAcceptDrops(true);
  auto* layout = new QVBoxLayout(this);

  auto* variantBox = variantBox_ = new QGroupBox(tr("Variant"));
  auto* vl = new QVBoxLayout(variantBox);
  variant_ = new QComboBox;
  for (const VariantInfo& v : variants()) {
    variant_->addItem(qs(v.title), qs(v.name));
    variant_->setItemData(variant_->count() - 1, qs(v.summary), Qt::ToolTipRole);
  }
  variantSummary_ = new QLabel;
  variantSummary_->setWordWrap(true);
  vl->addWidget(variant_);
  vl->addWidget(variantSummary_);
  layout->addWidget(variantBox);

  auto* shapeBox = shapeBox_ = new QGroupBox(tr("Shape"));
  auto* form = new QFormLayout(shapeBox);
  const auto dim = [&](const char* name, const QString& label, int min, int max,
                       const QString& tip) {
    spins_.insert(name, addSpin(form, name, label, min, max, tip));
  };
  dim("batch", tr("Batch B"), 1, 64, tr("Independent sequences; the views show batch 0."));
  dim("heads", tr("Query heads H"), 1, 128,
      tr("Attention heads, each with its own queries and its own map."));
  dim("kv_heads", tr("KV heads Hkv"), 1, 128,
      tr("Key/value heads: H = MHA, 1 = MQA, in between = GQA (H must be divisible by Hkv; "
         "each kv head serves H/Hkv query heads and the KV cache shrinks by that factor)."));
  dim("q_len", tr("Query length Lq"), 1, 1 << 20,
      tr("Queries per sequence. Long sequences are fine: maps are probed in tiles, never held "
         "whole; the reference backend is slow beyond a few thousand tokens."));
  dim("kv_len", tr("Key length Lk"), 1, 1 << 20,
      tr("Keys per sequence. With Lk > Lq the queries are the last Lq positions (causal mask "
         "aligned bottom-right, as in decoding with a cache)."));
  dim("head_dim", tr("Head dim Dk"), 1, 1024,
      tr("Width of queries and keys; scores are scaled by 1/sqrt(Dk) unless a scale is set."));
  dim("v_head_dim", tr("Value dim Dv"), 1, 1024, tr("Width of values and outputs."));
  causal_ = new QCheckBox(tr("Causal"));
  causal_->setToolTip(
      tr("Query at position p sees keys j <= p only (decoder). Off: bidirectional "
         "(encoder). %1 are causal by definition.")
          .arg(variantList([](const VariantInfo& v) { return v.causal_only; },
                           [](const VariantInfo& v) { return qs(v.short_title); })));
  form->addRow(causal_);
  scale_ = new QDoubleSpinBox;
  scale_->setRange(0, 100);
  scale_->setDecimals(4);
  scale_->setSingleStep(0.01);
  scale_->setSpecialValueText(tr("auto (1/√Dk)"));
  scale_->setToolTip(
      tr("Softmax temperature: scores are q·k × scale. 0 = the variant's default "
         "1/sqrt(Dk). Larger scales make the attention sharper."));
  form->addRow(tr("Scale"), scale_);
  layout->addWidget(shapeBox);

  for (const VariantInfo& v : variants()) {
    if (v.params.empty()) continue;
    auto* group = new QGroupBox(qs(v.short_title));
    auto* groupForm = new QFormLayout(group);
    for (const ParamSpec& spec : v.params) {
      KnobField field{&v, &spec};
      if (spec.type == ParamSpec::Type::boolean) {
        field.check = new QCheckBox(qs(spec.label));
        field.check->setToolTip(qs(spec.help));
        groupForm->addRow(field.check);
      } else {
        const auto bound = [](int64_t x) {
          return int(std::clamp<int64_t>(x, INT32_MIN, INT32_MAX));
        };
        field.spin = addSpin(groupForm, qs(spec.key), qs(spec.label), bound(spec.min),
                             bound(spec.max), qs(spec.help));
      }
      knobs_.append(field);
    }
    groups_.append({&v, group});
    layout->addWidget(group);
  }

  auto* inputBox = new QGroupBox(tr("Inputs"));
  auto* inForm = new QFormLayout(inputBox);
  pattern_ = new QComboBox;
  for (const PatternInfo& p : patterns()) {
    pattern_->addItem(qs(p.name), qs(p.name));
    pattern_->setItemData(pattern_->count() - 1, qs(p.summary), Qt::ToolTipRole);
  }
  pattern_->setToolTip(tr("Synthetic inputs with planted structure (hover an entry for details)."));
  inForm->addRow(tr("Pattern"), pattern_);
  seed_ = addSpin(inForm, QStringLiteral("seed"), tr("Seed"), 0, 1 << 30,
                  tr("Random seed: the same seed gives bit-identical inputs everywhere."));
  file_ = new QLineEdit;
  file_->setReadOnly(true);
  file_->setPlaceholderText(tr("drop a .safetensors / .npy here"));
  file_->setToolTip(
      tr("Tensors loaded from a file replace the pattern; the shape is read from "
         "them (names per variant: q, k, v, …; see `attnscope-cli info`)."));
  auto* browseButton = new QPushButton(tr("Open…"));
  clearFile_ = new QPushButton(tr("Clear"));
  clearFile_->setObjectName("clearFile");
  auto* fileRow = new QHBoxLayout;
  fileRow->addWidget(file_, 1);
  fileRow->addWidget(browseButton);
  fileRow->addWidget(clearFile_);
  inForm->addRow(tr("File"), fileRow);
  fileNote_ = new QLabel;
  fileNote_->setObjectName("fileNote");
  fileNote_->setWordWrap(true);
  fileNote_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  inForm->addRow(fileNote_);
  inForm->setRowVisible(fileNote_, false);
  modelBox_ = new ModelInputBox;
  inForm->addRow(tr("Model"), modelBox_);
  layout->addWidget(inputBox);

  auto* backendBox = new QGroupBox(tr("Backend"));
  auto* bl = new QVBoxLayout(backendBox);
  backend_ = new QComboBox;
  auto* model = new QStandardItemModel(backend_);
  for (const BackendInfo& b : backends()) {
    const Support s = b.available();
    auto* item = new QStandardItem(s.ok ? qs(b.name) : tr("%1 (unavailable)").arg(qs(b.name)));
    item->setData(qs(b.name), Qt::UserRole);
    item->setToolTip(s.ok ? qs(b.summary)
                          : backendUnavailableTip(qs(b.name), QString::fromStdString(s.why_not)));
    if (!s.ok) item->setFlags(item->flags() & ~(Qt::ItemIsEnabled | Qt::ItemIsSelectable));
    model->appendRow(item);
  }
  backend_->setModel(model);
  bl->addWidget(backend_);
  precision_ = new QComboBox;
  precision_->addItem(tr("fp32"), QStringLiteral("fp32"));
  precision_->addItem(tr("bf16 (tensor cores)"), QStringLiteral("bf16"));
  precision_->addItem(tr("fp16 (tensor cores)"), QStringLiteral("fp16"));
  precision_->setToolTip(
      tr("Element type the device computes in. bf16/fp16 round the inputs and accumulate in "
         "fp32 (outputs stay fp32); only the cuda backend runs them, for %1 with head dim 64 or "
         "128. Elsewhere the run is refused with the reason, never computed in fp32 behind your "
         "back.")
          .arg(variantList([](const VariantInfo& v) { return v.low_precision; },
                           [](const VariantInfo& v) { return midSentence(v.short_title); })));
  auto* precisionRow = new QFormLayout;
  precisionRow->addRow(tr("Precision"), precision_);
  bl->addLayout(precisionRow);
  layout->addWidget(backendBox);

  error_ = new QLabel;
  error_->setWordWrap(true);
  error_->setStyleSheet("color: #c0392b;");
  error_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(error_);
  layout->addStretch();

  connect(variant_, &QComboBox::currentIndexChanged, this, &WorkloadPanel::onVariantChanged);
  for (QSpinBox* s : spins_) connect(s, &QSpinBox::valueChanged, this, &WorkloadPanel::onEdited);
  connect(causal_, &QCheckBox::toggled, this, &WorkloadPanel::onEdited);
  for (const KnobField& k : knobs_) {
    if (k.spin) connect(k.spin, &QSpinBox::valueChanged, this, &WorkloadPanel::onEdited);
    if (k.check) connect(k.check, &QCheckBox::toggled, this, &WorkloadPanel::onEdited);
  }
  connect(scale_, &QDoubleSpinBox::valueChanged, this, &WorkloadPanel::onEdited);
  connect(pattern_, &QComboBox::currentIndexChanged, this, &WorkloadPanel::onEdited);
  connect(seed_, &QSpinBox::valueChanged, this, &WorkloadPanel::onEdited);
  connect(backend_, &QComboBox::currentIndexChanged, this, &WorkloadPanel::onEdited);
  connect(precision_, &QComboBox::currentIndexChanged, this, &WorkloadPanel::onEdited);
  connect(browseButton, &QPushButton::clicked, this, &WorkloadPanel::browse);
  connect(clearFile_, &QPushButton::clicked, this, &WorkloadPanel::clearFile);
  connect(modelBox_, &ModelInputBox::openRequested, this, [this](const QString& dir) {
    modelBox_->setOpening(dir);
    emit loadModelRequested(dir);
  });
  connect(modelBox_, &ModelInputBox::clearRequested, this, &WorkloadPanel::clearModel);
  connect(modelBox_, &ModelInputBox::textEdited, this, &WorkloadPanel::setModelText);
  setWorkload(Workload::defaults());
}

QSpinBox* WorkloadPanel::addSpin(QFormLayout* form, const QString& name, const QString& label,
                                 int min, int max, const QString& tip) {
  auto* s = new RangeSpinBox;
  s->setRange(min, max);
  s->setToolTip(tip + tr("\nRange %1 to %2.").arg(min).arg(max));
  s->setKeyboardTracking(false);  // recompute when the number is complete, not per digit
  s->setAccelerated(true);
  s->setObjectName(name);
  s->name = QString(label).remove(QLatin1Char('&'));
  form->addRow(label, s);
  // The field's own note row, under it: a refused value or the problem's objection to it.
  auto* note = new QLabel;
  note->setObjectName(name + QStringLiteral("Note"));
  note->setWordWrap(true);
  note->setStyleSheet("color: #c0392b;");
  note->setTextInteractionFlags(Qt::TextSelectableByMouse);
  form->addRow(note);
  form->setRowVisible(note, false);
  notes_.insert(s, note);
  s->onNote = [this, s](const QString& text) { showFieldNote(s, text); };
  return s;
}

void WorkloadPanel::showFieldNote(QSpinBox* spin, const QString& text) {
  QLabel* note = notes_.value(spin);
  if (!note) return;
  note->setText(text);
  if (auto* form = qobject_cast<QFormLayout*>(note->parentWidget()->layout())) {
    form->setRowVisible(note, !text.isEmpty());
  }
}

QString WorkloadPanel::fieldNote(const QString& name) const {
  const QLabel* note = notes_.value(spin(name));
  return note && !note->isHidden() ? note->text() : QString();
}

QSpinBox* WorkloadPanel::spin(const QString& name) const {
  if (QSpinBox* s = spins_.value(name)) return s;
  // A knob; where variants share its key, the selected variant's.
  QSpinBox* found = nullptr;
  for (const KnobField& k : knobs_) {
    if (!k.spin || qs(k.spec->key) != name) continue;
    if (!found || k.variant->id == workload_.problem.variant) found = k.spin;
  }
  return found;
}

void WorkloadPanel::setWorkload(const Workload& w) {
  // Another workload (a preset, settings): an objection to it is not about the field last edited.
  if (w.runKey() != workload_.runKey()) lastEdited_ = nullptr;
  if (w.file.isEmpty()) {
    beforeFile_.reset();
    setFileNote({});
  }
  if (!w.model) beforeModel_.reset();
  if (w.model != workload_.model) modelBox_->setModel(w.model);
  workload_ = w;
  writeWidgets();
}

void WorkloadPanel::setError(const QString& message, bool besideField) {
  for (QSpinBox* s : notes_.keys()) {
    // A refused value stays refused (its text is still in the field) until it is edited.
    if (!static_cast<RangeSpinBox*>(s)->outOfRange()) showFieldNote(s, {});
  }
  error_->clear();
  if (message.isEmpty()) return;
  if (besideField && lastEdited_ && lastEdited_->isVisibleTo(this)) {
    showFieldNote(lastEdited_, message);
  } else {
    error_->setText(message);
  }
}

QString WorkloadPanel::errorText() const {
  if (!error_->text().isEmpty()) return error_->text();
  for (const QLabel* note : notes_) {
    if (!note->isHidden() && !note->text().isEmpty()) return note->text();
  }
  return {};
}

void WorkloadPanel::applyFile(const Workload& fromFile) {
  if (workload_.model) {
    // Tensors replace the model as the inputs: back to the synthetic workload it replaced first.
    Workload back = beforeModel_ ? *beforeModel_ : Workload::defaults();
    back.backend = workload_.backend;
    workload_ = back;
  }
  beforeModel_.reset();
  modelBox_->setModel(nullptr);
  // A second file replaces the first: Clear still goes back to what was in force before either.
  if (!beforeFile_) beforeFile_ = workload_;
  Workload w = workload_;
  AttentionProblem& p = w.problem;
  const AttentionProblem& f = fromFile.problem;
  p.variant = f.variant;  // the variant the file's shape was read for
  p.shape = f.shape;
  for (const ParamSpec& spec : variant_info(p.variant).params) {
    if (spec.shape) spec.set(p, spec.get(f));
  }
  fixUp(p);
  w.file = fromFile.file;
  w.fileInputs = fromFile.fileInputs;
  QString note;
  if (p.validate() && !f.validate()) {
    // The settings in force do not fit the file's shape (a window or block size, say): the
    // file's own defaults for them, said, rather than a run that cannot start.
    Workload fitted = fromFile;
    fitted.backend = w.backend;
    fitted.pattern = w.pattern;
    fitted.seed = w.seed;
    fitted.problem.precision = p.precision;
    note = tr("The settings in force do not fit the file's shape (%1); the file's defaults are "
              "used for them.")
               .arg(guiWording(QString::fromStdString(*p.validate())));
    w = fitted;
  }
  workload_ = w;
  lastEdited_ = nullptr;
  writeWidgets();
  setFileNote(note);
}

void WorkloadPanel::setFileNote(const QString& text) {
  // Not an error (the file runs): kept apart from setError, which every result clears.
  fileNote_->setText(text);
  if (auto* form = qobject_cast<QFormLayout*>(fileNote_->parentWidget()->layout())) {
    form->setRowVisible(fileNote_, !text.isEmpty());
  }
}

void WorkloadPanel::clearFile() {
  Workload w = workload_;
  w.file.clear();
  w.fileInputs.reset();
  AttentionProblem& p = w.problem;
  if (beforeFile_ && beforeFile_->problem.variant == p.variant) {
    // Back to the shape in force before the file; settings edited since stay as edited.
    const AttentionProblem& before = beforeFile_->problem;
    p.shape = before.shape;
    for (const ParamSpec& spec : variant_info(p.variant).params) {
      if (spec.shape) spec.set(p, spec.get(before));
    }
    fixUp(p);
  }
  beforeFile_.reset();
  setFileNote({});
  workload_ = w;
  writeWidgets();
  emit workloadEdited(workload_);
}

void WorkloadPanel::readWidgets(Workload& w) const {
  AttentionProblem& p = w.problem;
  VariantId id = p.variant;
  variantFromName(variant_->currentData().toString(), id);
  p.variant = id;
  auto v = [this](const char* n) { return int64_t(spins_.value(n)->value()); };
  p.shape = {v("batch"),  v("heads"),    v("kv_heads"),  v("q_len"),
             v("kv_len"), v("head_dim"), v("v_head_dim")};
  p.causal = causal_->isChecked();
  p.scale = scale_->value() > 0 ? std::optional<double>(scale_->value()) : std::nullopt;
  for (const KnobField& k : knobs_) {
    k.spec->set(p, k.spin ? int64_t(k.spin->value()) : int64_t(k.check->isChecked()));
  }
  const QByteArray precision = precision_->currentData().toString().toUtf8();
  p.precision = parse_precision(std::string_view(precision.constData(), size_t(precision.size())))
                    .value_or(Precision::fp32);
  w.pattern = pattern_->currentData().toString();
  w.seed = quint64(seed_->value());
  w.backend = backend_->currentData(Qt::UserRole).toString();
}

void WorkloadPanel::writeWidgets() {
  updating_ = true;
  const AttentionProblem& p = workload_.problem;
  variant_->setCurrentIndex(std::max(0, variant_->findData(variantName(p.variant))));
  variantSummary_->setText(qs(variant_info(p.variant).summary));
  const auto toInt = [](int64_t value) {
    return int(std::clamp<int64_t>(value, INT32_MIN, INT32_MAX));
  };
  const std::pair<const char*, int64_t> values[] = {
      {"batch", p.shape.batch},          {"heads", p.shape.heads},   {"kv_heads", p.shape.kv_heads},
      {"q_len", p.shape.q_len},          {"kv_len", p.shape.kv_len}, {"head_dim", p.shape.head_dim},
      {"v_head_dim", p.shape.v_head_dim}};
  for (auto [name, value] : values) spins_.value(name)->setValue(toInt(value));
  for (const KnobField& k : knobs_) {
    if (k.spin) k.spin->setValue(toInt(k.spec->get(p)));
    if (k.check) k.check->setChecked(k.spec->get(p) != 0);
  }
  causal_->setChecked(p.causal);
  scale_->setValue(p.scale.value_or(0.0));
  precision_->setCurrentIndex(std::max(
      0, precision_->findData(QString::fromUtf8(precision_name(p.precision).data(),
                                                qsizetype(precision_name(p.precision).size())))));
  pattern_->setCurrentIndex(std::max(0, pattern_->findData(workload_.pattern)));
  seed_->setValue(int(workload_.seed));
  const QString backend = resolvedBackend(workload_);
  for (int i = 0; i < backend_->count(); ++i) {
    if (backend_->itemData(i, Qt::UserRole).toString() == backend) backend_->setCurrentIndex(i);
  }
  file_->setText(workload_.file);
  updateEnabled();
  updating_ = false;
}

void WorkloadPanel::updateEnabled() {
  const AttentionProblem& p = workload_.problem;
  const VariantInfo& info = variant_info(p.variant);
  const bool fromFile = !workload_.file.isEmpty();
  // A model decides the problem (each layer's own attention): nothing of it is the user's to edit.
  const bool fromModel = bool(workload_.model);
  variantBox_->setVisible(!fromModel);
  shapeBox_->setVisible(!fromModel);
  for (const auto& [variant, group] : groups_) group->setVisible(!fromModel && variant == &info);
  precision_->setEnabled(!fromModel);
  file_->setEnabled(!fromModel);
  // The file fixes the shape; the variant derives some dims from others.
  const DerivedDims derived = derivedDims(p);
  for (const char* n : {"batch", "heads", "q_len", "v_head_dim"})
    spins_.value(n)->setEnabled(!fromFile);
  spins_.value("kv_heads")->setEnabled(!fromFile && !derived.kvHeads);
  spins_.value("kv_len")->setEnabled(!fromFile && !info.has_state);
  spins_.value("head_dim")->setEnabled(!fromFile && !derived.headDim);
  for (const KnobField& k : knobs_) {
    if (k.spin && k.spec->shape) k.spin->setEnabled(!fromFile);
  }
  causal_->setEnabled(!info.causal_only);
  pattern_->setEnabled(!fromFile && !fromModel);
  seed_->setEnabled(!fromFile && !fromModel);
  clearFile_->setEnabled(fromFile);
}

void WorkloadPanel::tokenizeInto(Workload& w, const QString& text) {
  w.text.reset();
  w.textError.clear();
  if (text.trimmed().isEmpty()) {
    modelBox_->setTextNote(tr("Type or open a text for the model to read."), false);
    return;
  }
  try {
    w.text = ModelText::make(*w.model, text);
    w.problem = w.model->model.attention_problem(w.text->length());
    QString note = tr("%n token(s)", nullptr, int(w.text->length()));
    if (w.text->length() > w.model->contextLength()) {
      // RoPE models run past their context (GPT-2 cannot; make() refused it): say so.
      note += tr(", beyond the model's context of %1: positions past it are extrapolated")
                  .arg(w.model->contextLength());
    }
    modelBox_->setTextNote(note, false);
  } catch (const std::exception& e) {
    w.textError = guiWording(QString::fromStdString(e.what()));
    modelBox_->setTextNote(w.textError, true);
  }
}

void WorkloadPanel::applyModel(const std::shared_ptr<const LoadedModel>& model) {
  if (!beforeModel_ && !workload_.model) beforeModel_ = workload_;
  Workload w = workload_;
  w.model = model;
  w.file.clear();
  w.fileInputs.reset();
  beforeFile_.reset();
  setFileNote({});
  w.problem = model->model.attention_problem(1);
  w.problem.precision = Precision::fp32;
  modelBox_->setModel(model);
  tokenizeInto(w, modelBox_->text());
  workload_ = w;
  lastEdited_ = nullptr;
  writeWidgets();
  emit workloadEdited(workload_);
}

void WorkloadPanel::modelFailed(const QString& dir, const QString& message) {
  // With a model open, it stays in use and stays shown; the failure goes to the status line.
  if (workload_.model) {
    modelBox_->setModel(workload_.model);
  } else {
    modelBox_->setFailure(dir, message);
  }
}

void WorkloadPanel::clearModel() {
  modelBox_->setModel(nullptr);
  if (!workload_.model) return;
  Workload w = beforeModel_ ? *beforeModel_ : Workload::defaults();
  w.backend = workload_.backend;
  beforeModel_.reset();
  workload_ = w;
  writeWidgets();
  emit workloadEdited(workload_);
}

void WorkloadPanel::setModelText(const QString& text) {
  if (modelBox_->text() != text) modelBox_->setText(text);
  if (!workload_.model) return;
  // The same text again (a pause after undoing an edit): the same tokens, no new forward.
  if (workload_.text && workload_.text->text == text) return;
  Workload w = workload_;
  tokenizeInto(w, text);
  workload_ = w;
  writeWidgets();
  emit workloadEdited(workload_);
}

void WorkloadPanel::onEdited() {
  if (updating_) return;
  lastEdited_ = qobject_cast<QSpinBox*>(sender());
  Workload w = workload_;
  if (w.model) {
    // The model decides the problem; only the backend is the user's here.
    w.backend = backend_->currentData(Qt::UserRole).toString();
    workload_ = w;
    emit workloadEdited(workload_);
    return;
  }
  readWidgets(w);
  fixUp(w.problem);
  workload_ = w;
  writeWidgets();
  emit workloadEdited(workload_);
}

void WorkloadPanel::onVariantChanged() {
  if (updating_) return;
  VariantId id = VariantId::dense;
  if (!variantFromName(variant_->currentData().toString(), id)) return;
  // Start from the variant's defaults, keep the user's batch, heads, length, inputs and backend.
  const Workload old = workload_;
  const AttentionProblem& was = old.problem;
  Workload w = Workload::forVariant(id);
  AttentionProblem& p = w.problem;
  p.shape.batch = was.shape.batch;
  p.shape.heads = was.shape.heads;
  p.shape.q_len = was.shape.q_len;
  p.shape.kv_len = was.shape.kv_len;
  // The user's kv grouping carries over where it was theirs and still divides the heads; dims the
  // old or the new variant derives are the new variant's.
  const DerivedDims derivedBefore = derivedDims(was), derivedNow = derivedDims(p);
  const int64_t kvHeads = was.shape.kv_heads;
  p.shape.kv_heads = !derivedBefore.kvHeads && kvHeads > 0 && was.shape.heads % kvHeads == 0
                         ? kvHeads
                         : p.shape.heads;
  if (!derivedBefore.headDim && !derivedNow.headDim) {
    p.shape.head_dim = was.shape.head_dim;
    p.shape.v_head_dim = was.shape.v_head_dim;
  }
  // Knobs carry over, except those of a variant whose knobs are widths: those must fit the shape
  // the variant's defaults start from.
  for (const VariantInfo& v : variants()) {
    if (sets_widths(v)) continue;
    for (const ParamSpec& spec : v.params) spec.set(p, spec.get(was));
  }
  p.causal = was.causal;
  p.precision = was.precision;
  fixUp(p);
  w.pattern = old.pattern;
  w.seed = old.seed;
  w.backend = old.backend;
  if (!old.file.isEmpty() && old.fileInputs) {
    // Re-read the shape from the loaded tensors under the new variant's rules.
    try {
      variant_info(id).infer_shape(*old.fileInputs, p);
      w.file = old.file;
      w.fileInputs = old.fileInputs;
      setError({});
    } catch (const std::exception& e) {
      setError(tr("The loaded file does not fit %1: %2. Using the pattern instead.")
                   .arg(variant_->currentText(), QString::fromStdString(e.what())));
    }
  }
  workload_ = w;
  writeWidgets();
  emit workloadEdited(workload_);
}

void WorkloadPanel::browse() {
  const QString path = QFileDialog::getOpenFileName(
      this, tr("Open tensors"), {}, tr("Tensors (*.safetensors *.npy);;All files (*)"));
  if (!path.isEmpty()) emit loadFileRequested(path);
}

void WorkloadPanel::dragEnterEvent(QDragEnterEvent* e) {
  for (const QUrl& url : e->mimeData()->urls()) {
    if (url.isLocalFile() &&
        (isTensorFile(url.toLocalFile()) || ModelInputBox::isModelFolder(url.toLocalFile()))) {
      e->acceptProposedAction();
      return;
    }
  }
}

void WorkloadPanel::dropEvent(QDropEvent* e) {
  for (const QUrl& url : e->mimeData()->urls()) {
    if (url.isLocalFile() && ModelInputBox::isModelFolder(url.toLocalFile())) {
      modelBox_->setOpening(url.toLocalFile());
      emit loadModelRequested(url.toLocalFile());
      e->acceptProposedAction();
      return;
    }
    if (url.isLocalFile() && isTensorFile(url.toLocalFile())) {
      emit loadFileRequested(url.toLocalFile());
      e->acceptProposedAction();
      return;
    }
  }
}

}  // namespace attnscope::gui
