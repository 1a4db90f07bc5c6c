// The workload panel. It keeps derived fields consistent (MLA's head_dim = nope + rope with one
// latent kv head, Gated DeltaNet's kv_len = q_len) and leaves everything else to validate().
#include "workload_panel.hpp"

#include <QDragEnterEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QMimeData>
#include <QStandardItemModel>
#include <QVBoxLayout>

#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"

namespace attnscope::gui {
namespace {
QString qs(std::string_view s) {
  return QString::fromUtf8(s.data(), static_cast<qsizetype>(s.size()));
}
bool isTensorFile(const QString& path) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  return suffix == "safetensors" || suffix == "npy";
}
}  // namespace

WorkloadPanel::WorkloadPanel(QWidget* parent) : QWidget(parent) {
  registerOptionalBackends();
  setAcceptDrops(true);
  auto* layout = new QVBoxLayout(this);

  auto* variantBox = new QGroupBox(tr("Variant"));
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

  auto* shapeBox = new QGroupBox(tr("Shape"));
  auto* form = new QFormLayout(shapeBox);
  addSpin(form, "batch", tr("Batch B"), 1, 64,
          tr("Independent sequences; the views show batch 0."));
  addSpin(form, "heads", tr("Query heads H"), 1, 128,
          tr("Attention heads, each with its own queries and its own map."));
  addSpin(form, "kv_heads", tr("KV heads Hkv"), 1, 128,
          tr("Key/value heads: H = MHA, 1 = MQA, in between = GQA (H must be divisible by Hkv; "
             "each kv head serves H/Hkv query heads and the KV cache shrinks by that factor)."));
  addSpin(form, "q_len", tr("Query length Lq"), 1, 1 << 20,
          tr("Queries per sequence. Long sequences are fine: maps are probed in tiles, never held "
             "whole; the reference backend is slow beyond a few thousand tokens."));
  addSpin(form, "kv_len", tr("Key length Lk"), 1, 1 << 20,
          tr("Keys per sequence. With Lk > Lq the queries are the last Lq positions (causal mask "
             "aligned bottom-right, as in decoding with a cache)."));
  addSpin(form, "head_dim", tr("Head dim Dk"), 1, 1024,
          tr("Width of queries and keys; scores are scaled by 1/sqrt(Dk) unless a scale is set."));
  addSpin(form, "v_head_dim", tr("Value dim Dv"), 1, 1024, tr("Width of values and outputs."));
  causal_ = new QCheckBox(tr("Causal"));
  causal_->setToolTip(
      tr("Query at position p sees keys j <= p only (decoder). Off: bidirectional "
         "(encoder). SWA, MoBA and Gated DeltaNet are causal by definition."));
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

  swaGroup_ = new QGroupBox(tr("Sliding window"));
  auto* swaForm = new QFormLayout(swaGroup_);
  addSpin(swaForm, "window", tr("Window"), 1, 1 << 20,
          tr("Keys a query sees, itself included: j is visible iff p - window < j <= p."));
  addSpin(swaForm, "sinks", tr("Sinks"), 0, 1 << 16,
          tr("The first `sinks` keys stay visible to every query (StreamingLLM attention sinks), "
             "so the softmax keeps a place to put mass it has nowhere else to put."));
  layout->addWidget(swaGroup_);

  mlaGroup_ = new QGroupBox(tr("Multi-head latent attention"));
  auto* mlaForm = new QFormLayout(mlaGroup_);
  addSpin(mlaForm, "kv_lora_rank", tr("Latent rank Dc"), 1, 4096,
          tr("Width of the cached latent c_kv: the KV cache holds Dc + Dr values per token "
             "(576 in DeepSeek-V3) instead of 2·H·D."));
  addSpin(mlaForm, "rope_dim", tr("RoPE dim Dr"), 1, 512,
          tr("Width of the shared rotary key k_rope (decoupled RoPE); head_dim = nope + rope."));
  addSpin(mlaForm, "nope_dim", tr("NoPE dim Dn"), 1, 1024,
          tr("Position-free part of q and k, reconstructed from the latent by W_UK."));
  mlaAbsorbed_ = new QCheckBox(tr("Absorbed (decode) form"));
  mlaAbsorbed_->setToolTip(
      tr("Fold W_UK into the query and W_UV into the output so attention "
         "runs directly on the latent cache; same result, different cost."));
  mlaForm->addRow(mlaAbsorbed_);
  layout->addWidget(mlaGroup_);

  mobaGroup_ = new QGroupBox(tr("MoBA"));
  auto* mobaForm = new QFormLayout(mobaGroup_);
  addSpin(mobaForm, "block_size", tr("Block size"), 1, 1 << 16,
          tr("Keys per block; each block is summarized by the mean of its keys for routing."));
  addSpin(
      mobaForm, "top_k", tr("Top-k blocks"), 1, 4096,
      tr("Blocks each query attends to, its own (causal) block included; the rest is skipped."));
  layout->addWidget(mobaGroup_);

  gdnGroup_ = new QGroupBox(tr("Gated DeltaNet"));
  auto* gdnForm = new QFormLayout(gdnGroup_);
  addSpin(gdnForm, "chunk_size", tr("Chunk size"), 1, 4096,
          tr("Tokens per chunk of the chunked (WY/UT) form; the result does not depend on it."));
  gdnNorm_ = new QCheckBox(tr("L2-normalize q and k"));
  gdnNorm_->setToolTip(
      tr("Normalize q and k per token, as Gated DeltaNet models do; keeps the "
         "delta rule's update (I - beta k kᵀ) a contraction."));
  gdnRecurrent_ = new QCheckBox(tr("Recurrent form"));
  gdnRecurrent_->setToolTip(
      tr("Step token by token instead of the chunked form (slower, same "
         "result)."));
  gdnForm->addRow(gdnNorm_);
  gdnForm->addRow(gdnRecurrent_);
  layout->addWidget(gdnGroup_);

  auto* inputBox = new QGroupBox(tr("Inputs"));
  auto* inForm = new QFormLayout(inputBox);
  pattern_ = new QComboBox;
  for (const PatternInfo& p : patterns()) {
    pattern_->addItem(qs(p.name), qs(p.name));
    pattern_->setItemData(pattern_->count() - 1, qs(p.summary), Qt::ToolTipRole);
  }
  pattern_->setToolTip(tr("Synthetic inputs with planted structure (hover an entry for details)."));
  inForm->addRow(tr("Pattern"), pattern_);
  seed_ = new QSpinBox;
  seed_->setRange(0, 1 << 30);
  seed_->setToolTip(tr("Random seed: the same seed gives bit-identical inputs everywhere."));
  inForm->addRow(tr("Seed"), seed_);
  file_ = new QLineEdit;
  file_->setReadOnly(true);
  file_->setPlaceholderText(tr("drop a .safetensors / .npy here"));
  file_->setToolTip(
      tr("Tensors loaded from a file replace the pattern; the shape is read from "
         "them (names per variant: q, k, v, …; see `attnscope-cli info`)."));
  auto* browseButton = new QPushButton(tr("Open…"));
  clearFile_ = new QPushButton(tr("Clear"));
  auto* fileRow = new QHBoxLayout;
  fileRow->addWidget(file_, 1);
  fileRow->addWidget(browseButton);
  fileRow->addWidget(clearFile_);
  inForm->addRow(tr("File"), fileRow);
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
                          : tr("Unavailable: %1").arg(QString::fromStdString(s.why_not)));
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
         "fp32 (outputs stay fp32); only the cuda backend runs them, for dense/GQA/MQA/SWA with "
         "head dim 64 or 128. Elsewhere the run is refused with the reason, never computed in "
         "fp32 behind your back."));
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
  for (QCheckBox* c : {causal_, mlaAbsorbed_, gdnNorm_, gdnRecurrent_}) {
    connect(c, &QCheckBox::toggled, this, &WorkloadPanel::onEdited);
  }
  connect(scale_, &QDoubleSpinBox::valueChanged, this, &WorkloadPanel::onEdited);
  connect(pattern_, &QComboBox::currentIndexChanged, this, &WorkloadPanel::onEdited);
  connect(seed_, &QSpinBox::valueChanged, this, &WorkloadPanel::onEdited);
  connect(backend_, &QComboBox::currentIndexChanged, this, &WorkloadPanel::onEdited);
  connect(precision_, &QComboBox::currentIndexChanged, this, &WorkloadPanel::onEdited);
  connect(browseButton, &QPushButton::clicked, this, &WorkloadPanel::browse);
  connect(clearFile_, &QPushButton::clicked, this, [this] {
    workload_.file.clear();
    workload_.fileInputs.reset();
    writeWidgets();
    emit workloadEdited(workload_);
  });
  setWorkload(Workload::defaults());
}

QSpinBox* WorkloadPanel::addSpin(QFormLayout* form, const QString& name, const QString& label,
                                 int min, int max, const QString& tip) {
  auto* s = new QSpinBox;
  s->setRange(min, max);
  s->setToolTip(tip + tr("\nRange %1 to %2.").arg(min).arg(max));
  s->setKeyboardTracking(false);  // recompute when the number is complete, not per digit
  s->setAccelerated(true);
  s->setObjectName(name);
  form->addRow(label, s);
  spins_.insert(name, s);
  return s;
}

QSpinBox* WorkloadPanel::spin(const QString& name) const {
  return spins_.value(name);
}

void WorkloadPanel::setWorkload(const Workload& w) {
  workload_ = w;
  writeWidgets();
}

void WorkloadPanel::setError(const QString& message) {
  error_->setText(message);
}

QString WorkloadPanel::errorText() const {
  return error_->text();
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
  p.swa = {v("window"), v("sinks")};
  p.mla = {v("kv_lora_rank"), v("rope_dim"), v("nope_dim"), mlaAbsorbed_->isChecked()};
  p.moba = {v("block_size"), v("top_k")};
  p.gdn = {v("chunk_size"), gdnNorm_->isChecked(), gdnRecurrent_->isChecked()};
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
  const std::pair<const char*, int64_t> values[] = {{"batch", p.shape.batch},
                                                    {"heads", p.shape.heads},
                                                    {"kv_heads", p.shape.kv_heads},
                                                    {"q_len", p.shape.q_len},
                                                    {"kv_len", p.shape.kv_len},
                                                    {"head_dim", p.shape.head_dim},
                                                    {"v_head_dim", p.shape.v_head_dim},
                                                    {"window", p.swa.window},
                                                    {"sinks", p.swa.sinks},
                                                    {"kv_lora_rank", p.mla.kv_lora_rank},
                                                    {"rope_dim", p.mla.rope_dim},
                                                    {"nope_dim", p.mla.nope_dim},
                                                    {"block_size", p.moba.block_size},
                                                    {"top_k", p.moba.top_k},
                                                    {"chunk_size", p.gdn.chunk_size}};
  for (auto [name, value] : values) {
    spins_.value(name)->setValue(int(std::clamp<int64_t>(value, INT32_MIN, INT32_MAX)));
  }
  causal_->setChecked(p.causal);
  scale_->setValue(p.scale.value_or(0.0));
  mlaAbsorbed_->setChecked(p.mla.absorbed);
  gdnNorm_->setChecked(p.gdn.qk_l2norm);
  gdnRecurrent_->setChecked(p.gdn.recurrent);
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
  const VariantId id = workload_.problem.variant;
  const bool fromFile = !workload_.file.isEmpty();
  swaGroup_->setVisible(id == VariantId::swa);
  mlaGroup_->setVisible(id == VariantId::mla);
  mobaGroup_->setVisible(id == VariantId::moba);
  gdnGroup_->setVisible(id == VariantId::gated_delta);
  // The file fixes the shape; MLA and Gated DeltaNet derive some dims from others.
  for (const char* n : {"batch", "heads", "q_len", "v_head_dim"})
    spins_.value(n)->setEnabled(!fromFile);
  spins_.value("kv_heads")
      ->setEnabled(!fromFile && id != VariantId::mla && id != VariantId::gated_delta);
  spins_.value("kv_len")->setEnabled(!fromFile && id != VariantId::gated_delta);
  spins_.value("head_dim")->setEnabled(!fromFile && id != VariantId::mla);
  for (const char* n : {"kv_lora_rank", "rope_dim", "nope_dim"})
    spins_.value(n)->setEnabled(!fromFile);
  causal_->setEnabled(!variant_info(id).causal_only);
  pattern_->setEnabled(!fromFile);
  seed_->setEnabled(!fromFile);
  clearFile_->setEnabled(fromFile);
}

void WorkloadPanel::onEdited() {
  if (updating_) return;
  Workload w = workload_;
  readWidgets(w);
  AttentionProblem& p = w.problem;
  if (p.variant == VariantId::mla) {
    p.shape.kv_heads = 1;
    p.shape.head_dim = p.mla.nope_dim + p.mla.rope_dim;
  }
  if (p.variant == VariantId::gated_delta) {
    p.shape.kv_len = p.shape.q_len;
    p.shape.kv_heads = p.shape.heads;
  }
  if (variant_info(p.variant).causal_only) p.causal = true;
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
  Workload w = Workload::forVariant(id);
  AttentionProblem& p = w.problem;
  p.shape.batch = old.problem.shape.batch;
  p.shape.heads = old.problem.shape.heads;
  p.shape.q_len = old.problem.shape.q_len;
  p.shape.kv_len = id == VariantId::gated_delta ? p.shape.q_len : old.problem.shape.kv_len;
  if (id == VariantId::gated_delta) p.shape.kv_heads = p.shape.heads;
  if (id == VariantId::dense) p.shape.kv_heads = old.problem.shape.kv_heads;
  if (id == VariantId::moba || id == VariantId::swa) {
    p.shape.kv_heads =
        old.problem.shape.heads % std::max<int64_t>(1, old.problem.shape.kv_heads) == 0
            ? old.problem.shape.kv_heads
            : p.shape.heads;
    if (old.problem.variant == VariantId::mla) p.shape.kv_heads = p.shape.heads;
  }
  if (id != VariantId::mla && old.problem.variant != VariantId::mla) {
    p.shape.head_dim = old.problem.shape.head_dim;
    p.shape.v_head_dim = old.problem.shape.v_head_dim;
  }
  p.swa = old.problem.swa;
  p.moba = old.problem.moba;
  p.gdn = old.problem.gdn;
  p.causal = variant_info(id).causal_only ? true : old.problem.causal;
  p.precision = old.problem.precision;
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
    if (url.isLocalFile() && isTensorFile(url.toLocalFile())) {
      e->acceptProposedAction();
      return;
    }
  }
}

void WorkloadPanel::dropEvent(QDropEvent* e) {
  for (const QUrl& url : e->mimeData()->urls()) {
    if (url.isLocalFile() && isTensorFile(url.toLocalFile())) {
      emit loadFileRequested(url.toLocalFile());
      e->acceptProposedAction();
      return;
    }
  }
}

}  // namespace attnscope::gui
