// The attention-map view: asks the worker for exactly the visible region at the plot's pixel
// resolution, so a 512-token map and a zoomed 8x8 corner of a long one both render at full detail.
#include "attention_map_view.hpp"

#include <QGridLayout>
#include <QHBoxLayout>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>
#include <cmath>

#include "attnscope/mask.hpp"
#include "attnscope/registry.hpp"
#include "views/model_views.hpp"

namespace attnscope::gui {
namespace {
bool signedMap(const AttentionProblem& p) {
  return variant_info(p.variant).map_kind == MapKind::implicit;
}
}  // namespace

AttentionMapView::AttentionMapView(QWidget* parent) : ResultView(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  headCombo_ = new QComboBox;
  headCombo_->setToolTip(
      tr("Which head to show; mean/max aggregate all heads; a kv group averages "
         "the query heads that share one K/V head (GQA/MQA)."));
  gridCheck_ = new QCheckBox(tr("All heads"));
  gridCheck_->setToolTip(tr("Small multiples: every head side by side (up to 16)."));
  scaleCombo_ = new QComboBox;
  scaleCombo_->addItems({tr("linear"), tr("log")});
  scaleCombo_->setToolTip(
      tr("Log scale spans four decades below the maximum, so the small "
         "probabilities far from the strong entries stay visible."));
  fixedScaleCheck_ = new QCheckBox(tr("Fixed scale"));
  fixedScaleCheck_->setChecked(true);
  fixedScaleCheck_->setToolTip(
      tr("Keep the full view's colour scale while zooming, so colours compare across zoom "
         "levels; off: rescale to each view's own range."));
  colormapCombo_ = new QComboBox;
  colormapCombo_->addItems(Colormap::names());
  colormapCombo_->setToolTip(
      tr("Perceptually uniform colormaps: equal steps in value look equal."));
  overlayCheck_ = new QCheckBox(tr("Overlays"));
  overlayCheck_->setChecked(true);
  overlayCheck_->setToolTip(
      tr("Causal edge (dashed), window edge (orange), sinks (pink) and "
         "selected key blocks (red) of the shown head."));
  layerLabel_ = new QLabel(tr("Layer:"));
  layerCombo_ = new QComboBox;
  layerCombo_->setToolTip(tr("The model layer whose attention is shown."));
  batchLabel_ = new QLabel(tr("Batch:"));
  batchSpin_ = new QSpinBox;
  batchSpin_->setToolTip(tr("Which sequence of the batch to show."));
  auto* reset = new QPushButton(tr("Reset zoom"));
  reset->setToolTip(tr("Show the whole map (also: double-click, Ctrl+0)."));
  bar->addWidget(layerLabel_);
  bar->addWidget(layerCombo_);
  bar->addWidget(batchLabel_);
  bar->addWidget(batchSpin_);
  bar->addWidget(new QLabel(tr("Head:")));
  bar->addWidget(headCombo_);
  bar->addWidget(gridCheck_);
  bar->addWidget(new QLabel(tr("Scale:")));
  bar->addWidget(scaleCombo_);
  bar->addWidget(fixedScaleCheck_);
  bar->addWidget(colormapCombo_);
  bar->addWidget(overlayCheck_);
  bar->addWidget(reset);
  bar->addStretch();
  layout->addLayout(bar);

  stack_ = new QStackedWidget;
  heatmap_ = new HeatmapWidget;
  heatmap_->setScaleRange(ScaleRange::fixed);
  stack_->addWidget(heatmap_);
  gridPage_ = new QWidget;
  new QGridLayout(gridPage_);
  stack_->addWidget(gridPage_);
  layout->addWidget(stack_, 1);
  hoverLabel_ = new QLabel(tr("Wheel: zoom, drag: pan, double-click: reset. Hover for values."));
  hoverLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(hoverLabel_);

  connect(headCombo_, &QComboBox::currentIndexChanged, this, [this] { emit requestChanged(); });
  connect(layerCombo_, &QComboBox::currentIndexChanged, this, [this] { emit requestChanged(); });
  layerLabel_->hide();
  layerCombo_->hide();
  connect(batchSpin_, &QSpinBox::valueChanged, this, [this] { emit requestChanged(); });
  connect(gridCheck_, &QCheckBox::toggled, this, [this](bool on) {
    stack_->setCurrentIndex(on ? 1 : 0);
    emit requestChanged();
  });
  connect(scaleCombo_, &QComboBox::currentIndexChanged, this, [this](int i) {
    heatmap_->setScaleMode(i == 1 ? ScaleMode::log : ScaleMode::linear);
    for (auto* t : thumbs_) t->setScaleMode(i == 1 ? ScaleMode::log : ScaleMode::linear);
  });
  connect(fixedScaleCheck_, &QCheckBox::toggled, this, [this](bool on) {
    heatmap_->setScaleRange(on ? ScaleRange::fixed : ScaleRange::perView);
  });
  // Attention is heavy-tailed: on a linear scale a first look shows one bright diagonal and
  // darkness, so start on log (presets and the user can switch back).
  scaleCombo_->setCurrentIndex(1);
  connect(colormapCombo_, &QComboBox::currentIndexChanged, this,
          [this](int i) { setColormap(static_cast<ColormapId>(i)); });
  connect(overlayCheck_, &QCheckBox::toggled, heatmap_, &HeatmapWidget::setOverlaysVisible);
  connect(reset, &QPushButton::clicked, heatmap_, &HeatmapWidget::resetZoom);
  connect(heatmap_, &HeatmapWidget::viewRegionChanged, this, [this] { emit requestChanged(); });
  connect(heatmap_, &HeatmapWidget::hoverText, this, [this](const QString& t) {
    if (!t.isEmpty()) hoverLabel_->setText(t);
    emit hoverText(t);
  });
  rebuildHeadCombo();
}

void AttentionMapView::rebuildHeadCombo() {
  const QVariant current = headCombo_->currentData();
  const QSignalBlocker block(headCombo_);
  headCombo_->clear();
  const qint64 heads = workload_.problem.shape.heads, kv = workload_.problem.shape.kv_heads;
  for (int h = 0; h < heads; ++h) {
    headCombo_->addItem(tr("head %1").arg(h), QPoint(int(HeadMode::single), h));
  }
  headCombo_->addItem(tr("mean over heads"), QPoint(int(HeadMode::mean), 0));
  headCombo_->addItem(tr("max over heads"), QPoint(int(HeadMode::max), 0));
  if (kv > 0 && kv < heads) {
    for (int g = 0; g < kv; ++g) {
      headCombo_->addItem(tr("kv group %1 (mean)").arg(g), QPoint(int(HeadMode::group), g));
    }
  }
  const int idx = headCombo_->findData(current);
  headCombo_->setCurrentIndex(idx >= 0 ? idx : 0);
}

void AttentionMapView::setHeadSelection(HeadMode mode, int head, int group) {
  const int idx = headCombo_->findData(QPoint(int(mode), mode == HeadMode::group ? group : head));
  if (idx >= 0) headCombo_->setCurrentIndex(idx);
}

void AttentionMapView::setLayer(int layer) {
  if (layer >= 0 && layer < layerCombo_->count()) layerCombo_->setCurrentIndex(layer);
}

void AttentionMapView::setGrid(bool on) {
  gridCheck_->setChecked(on);
}

void AttentionMapView::setScaleMode(ScaleMode mode) {
  scaleCombo_->setCurrentIndex(mode == ScaleMode::log ? 1 : 0);
}

void AttentionMapView::setScaleRange(ScaleRange range) {
  fixedScaleCheck_->setChecked(range == ScaleRange::fixed);
}

void AttentionMapView::showStale(const QString& label) {
  heatmap_->setStale(label);
  for (auto* t : thumbs_) t->setStale(label);
}

void AttentionMapView::showHoverHelp() {
  hoverLabel_->setText(tr("Wheel: zoom, drag: pan, double-click: reset. Hover for values."));
}

void AttentionMapView::setColormap(ColormapId id) {
  {
    const QSignalBlocker block(colormapCombo_);
    colormapCombo_->setCurrentIndex(int(id));
  }
  heatmap_->setColormap(id);
  for (auto* t : thumbs_) t->setColormap(id);
}

void AttentionMapView::setWorkload(const Workload& w) {
  const bool shapeChanged = w.problem.shape.heads != workload_.problem.shape.heads ||
                            w.problem.shape.kv_heads != workload_.problem.shape.kv_heads;
  if (w.runKey() != workload_.runKey()) {
    // The value under the mouse belongs to the old problem.
    heatmap_->clearHover();
    showHoverHelp();
  }
  ViewBase::setWorkload(w);
  if (shapeChanged) rebuildHeadCombo();
  {
    const QSignalBlocker block(batchSpin_);
    batchSpin_->setRange(0, int(std::max<int64_t>(1, w.problem.shape.batch)) - 1);
  }
  batchSpin_->setVisible(w.problem.shape.batch > 1);
  batchLabel_->setVisible(w.problem.shape.batch > 1);
  if (w.model) refillLayers(layerCombo_, int(w.model->model.config().layers));
  layerLabel_->setVisible(bool(w.model));
  layerCombo_->setVisible(bool(w.model));
  // The extent, axes and title stay those of the drawn map until a result of this workload is
  // shown (showResult); fillRequest asks for the whole new map meanwhile.
}

void AttentionMapView::fillRequest(ViewRequest& r) const {
  r.view = kind();
  const QPoint sel = headCombo_->currentData().toPoint();
  r.headMode = static_cast<HeadMode>(sel.x());
  r.head = r.headMode == HeadMode::single ? sel.y() : 0;
  r.group = r.headMode == HeadMode::group ? sel.y() : 0;
  r.grid = gridCheck_->isChecked();
  r.batch = batchSpin_->value();
  r.layer = std::max(0, layerCombo_->currentIndex());
  r.region = heatmap_->viewRegion();
  const Region whole{0, workload_.problem.shape.q_len, 0, workload_.problem.shape.kv_len};
  if (heatmap_->extent() != whole) r.region = whole;  // a new length: the old zoom means nothing
  const QSize px = heatmap_->plotPixels();
  r.outRows = px.height();
  r.outCols = px.width();
}

MapOverlays AttentionMapView::overlaysFor(const ViewResult& r) const {
  const AttentionProblem& p = r.workload.problem;
  MapOverlays o;
  o.qLen = p.shape.q_len;
  o.kvLen = p.shape.kv_len;
  o.causal = p.causal;
  const KeyMask mask = KeyMask::of(p);
  if (mask.window > 0) {
    o.window = mask.window;
    o.sinks = mask.sinks;
  }
  if (r.selectionBlock > 0) {
    o.blockSize = r.selectionBlock;
    o.selection = r.selection;
    o.topK = r.topK;
  }
  return o;
}

void AttentionMapView::showResult(const ViewResultPtr& result) {
  ViewBase::showResult(result);
  if (result->maps.isEmpty()) {
    heatmap_->clearMap(result->note);
    return;
  }
  if (result->request.grid) {
    rebuildGrid(*result);
    if (!result->note.isEmpty()) hoverLabel_->setText(result->note);
    return;
  }
  const MapImage& m = result->maps.front();
  const AttentionProblem& p = result->workload.problem;
  // The extent follows the drawn result (a new length resets the zoom), never the edited workload.
  heatmap_->setExtent(p.shape.q_len, p.shape.kv_len);
  // Frames of one request (coarse, then exact) keep the scale; a new problem or head resets it.
  const QString key = QStringLiteral("%1|%2|%3|%4|%5|%6")
                          .arg(result->workload.runKey())
                          .arg(result->layer)
                          .arg(int(result->request.headMode))
                          .arg(result->request.head)
                          .arg(result->request.group)
                          .arg(result->request.batch);
  const bool newScale = key != scaleKey_;
  scaleKey_ = key;
  // An implicit attention matrix is signed: a diverging map shows its negative weights.
  heatmap_->setDiverging(signedMap(result->workload.problem));
  // Right before the new map, so that nothing rebuilds the old one into the fresh fixed range.
  if (newScale) heatmap_->resetScaleRange();
  const QString batch = result->workload.model ? tr("layer %1, ").arg(result->layer)
                        : result->workload.problem.shape.batch > 1
                            ? tr("batch %1, ").arg(result->request.batch)
                            : QString();
  // A model's map reads as text: token strings on the axes when few enough are in view.
  heatmap_->setAxisTokens(result->tokens, result->tokens);
  heatmap_->setTitle(tr("Attention map, %1%2 - %3").arg(batch, m.title, result->run.describe));
  heatmap_->setMap(m);
  heatmap_->setOverlays(overlaysFor(*result));
}

bool AttentionMapView::exportRequest(const Workload& current, QSize plotPixels,
                                     ViewRequest& out) const {
  if (!last_ || last_->request.grid || last_->maps.size() != 1 || !heatmap_->hasMap() ||
      !heatmap_->staleLabel().isEmpty() || last_->workload.runKey() != current.runKey() ||
      stack_->currentWidget() != heatmap_) {
    return false;
  }
  out = last_->request;
  out.region = heatmap_->viewRegion();  // what the axes show, even while a zoom is in flight
  out.outRows = std::max(1, plotPixels.height());
  out.outCols = std::max(1, plotPixels.width());
  return true;
}

void AttentionMapView::rebuildGrid(const ViewResult& r) {
  auto* grid = static_cast<QGridLayout*>(gridPage_->layout());
  while (thumbs_.size() > r.maps.size()) delete thumbs_.takeLast();
  const int n = int(r.maps.size());
  const int columns = std::max(1, int(std::ceil(std::sqrt(double(n)))));
  for (int h = 0; h < n; ++h) {
    if (h >= thumbs_.size()) {
      auto* t = new HeatmapWidget;
      t->setCompact(true);
      t->setInteractive(false);
      t->setColormap(static_cast<ColormapId>(colormapCombo_->currentIndex()));
      t->setScaleMode(scaleCombo_->currentIndex() == 1 ? ScaleMode::log : ScaleMode::linear);
      t->setDiverging(signedMap(r.workload.problem));
      connect(t, &HeatmapWidget::hoverText, hoverLabel_, [this](const QString& s) {
        if (!s.isEmpty()) hoverLabel_->setText(s);
      });
      thumbs_.append(t);
    }
    HeatmapWidget* t = thumbs_[h];
    grid->addWidget(t, h / std::max(1, columns), h % std::max(1, columns));
    t->setExtent(r.workload.problem.shape.q_len, r.workload.problem.shape.kv_len);
    t->setTitle(r.maps[h].title);
    t->setMap(r.maps[h]);
  }
}

void AttentionMapView::applySettings(const QJsonObject& s) {
  if (s.contains("head")) setHeadSelection(HeadMode::single, s.value("head").toInt(), 0);
  const QString agg = s.value("aggregate").toString();
  if (agg == "mean") setHeadSelection(HeadMode::mean, 0, 0);
  if (agg == "max") setHeadSelection(HeadMode::max, 0, 0);
  if (s.contains("group")) setHeadSelection(HeadMode::group, 0, s.value("group").toInt());
  if (s.contains("grid")) setGrid(s.value("grid").toBool());
  if (s.contains("scale")) {
    setScaleMode(s.value("scale").toString() == "log" ? ScaleMode::log : ScaleMode::linear);
  }
  if (s.contains("colormap")) setColormap(Colormap::fromName(s.value("colormap").toString()));
}

QJsonObject AttentionMapView::exportData() const {
  QJsonObject o{{"view", "map"}};
  if (!last_) return o;
  QJsonArray maps;
  for (const MapImage& m : last_->maps) maps.append(mapToJson(m));
  o["maps"] = maps;
  o["scale"] = scaleCombo_->currentText();
  o["colormap"] = colormapCombo_->currentText();
  if (last_->tokens && !last_->maps.isEmpty()) {
    // The tokens of the rows and columns in the exported region (a model's map), when it is
    // small enough to be read token by token.
    const MapImage& m = last_->maps.front();
    const QStringList& tokens = *last_->tokens;
    const auto slice = [&](qint64 a, qint64 b) {
      QJsonArray out;
      for (qint64 x = a; x < b && x < tokens.size(); ++x) out.append(tokens[x]);
      return out;
    };
    o["layer"] = last_->layer;
    if (m.region.rows() <= 4096 && m.region.cols() <= 4096) {
      o["row_tokens"] = slice(m.region.row0, m.region.row1);
      o["col_tokens"] = slice(m.region.col0, m.region.col1);
    }
  }
  return o;
}

QString AttentionMapView::exportCsv() const {
  QString s;
  if (last_) {
    for (const MapImage& m : last_->maps) s += mapToCsv(m);
  }
  return s;
}

}  // namespace attnscope::gui
