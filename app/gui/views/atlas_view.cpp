// The head atlas. The grid is a map like any other (HeatmapWidget), with layers as rows and heads
// as columns; its numbers are the worker's, computed exactly from each layer's own q and k.
#include "views/atlas_view.hpp"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonArray>
#include <QMouseEvent>
#include <QSplitter>
#include <QVBoxLayout>
#include <cmath>

#include "attnscope/head_stats.hpp"

namespace attnscope::gui {
namespace {
QString qs(std::string_view s) {
  return QString::fromUtf8(s.data(), static_cast<qsizetype>(s.size()));
}

// A table cell that sorts by its number, not its text.
class NumberItem : public QTableWidgetItem {
 public:
  explicit NumberItem(double v)
      : QTableWidgetItem(std::isnan(v) ? QStringLiteral("–") : QString::number(v, 'g', 5)), v_(v) {
    setData(Qt::UserRole, v);
    setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
  }
  bool operator<(const QTableWidgetItem& other) const override {
    const double w = other.data(Qt::UserRole).toDouble();
    if (std::isnan(v_)) return false;
    if (std::isnan(w)) return true;
    return v_ < w;
  }

 private:
  double v_;
};
}  // namespace

AtlasView::AtlasView(QWidget* parent) : ResultView(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  statCombo_ = new QComboBox;
  for (HeadStat s : all_head_stats()) {
    statCombo_->addItem(qs(head_stat_title(s)), qs(head_stat_key(s)));
  }
  statCombo_->setToolTip(
      tr("What each head is measured by. Induction and retrieval run the model on a sequence "
         "of their own (repeated random tokens; a needle in a haystack), the others on your "
         "text."));
  bar->addWidget(new QLabel(tr("Statistic:")));
  bar->addWidget(statCombo_);
  bar->addStretch();
  layout->addLayout(bar);

  stack_ = new QStackedWidget;
  needModel_ = new NeedModelPage(
      tr("<b>The head atlas</b> colours every head of every layer by what it does: attention "
         "sinks, previous-token heads, induction heads, retrieval heads."));
  atlasPage_ = new QWidget;
  auto* split = new QSplitter(Qt::Horizontal, atlasPage_);
  auto* pageLayout = new QVBoxLayout(atlasPage_);
  pageLayout->setContentsMargins(0, 0, 0, 0);
  pageLayout->addWidget(split);
  heatmap_ = new HeatmapWidget;
  heatmap_->setInteractive(false);
  heatmap_->setKeepAspect(false);
  heatmap_->setMaskZeros(false);
  heatmap_->setZeroBased(false);
  heatmap_->setAxisTitles(tr("layer"), tr("head"), tr("value"));
  heatmap_->installEventFilter(this);
  heatmap_->setToolTip(tr("Click a head to open its attention map."));
  table_ = new QTableWidget(0, 3);
  table_->setHorizontalHeaderLabels({tr("layer"), tr("head"), tr("value")});
  // Layer by layer to start with (a header's default indicator would sort descending).
  table_->horizontalHeader()->setSortIndicator(0, Qt::AscendingOrder);
  table_->setSortingEnabled(true);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->verticalHeader()->hide();
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setSectionResizeMode(1, QHeaderView::ResizeToContents);
  table_->setToolTip(tr("Sort by a column; double-click a head to open its attention map."));
  table_->setMinimumWidth(240);
  split->addWidget(heatmap_);
  split->addWidget(table_);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 1);
  stack_->addWidget(needModel_);
  stack_->addWidget(atlasPage_);
  layout->addWidget(stack_, 1);
  note_ = new QLabel;
  note_->setObjectName("atlasNote");
  note_->setWordWrap(true);
  note_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(note_);

  connect(statCombo_, &QComboBox::currentIndexChanged, this, [this] { emit requestChanged(); });
  connect(needModel_, &NeedModelPage::openModelRequested, this, &AtlasView::openModelRequested);
  connect(heatmap_, &HeatmapWidget::hoverText, this, &ViewBase::hoverText);
  connect(table_, &QTableWidget::cellDoubleClicked, this, [this](int row, int) {
    emit openHeadRequested(table_->item(row, 0)->data(Qt::UserRole).toInt(),
                           table_->item(row, 1)->data(Qt::UserRole).toInt());
  });
  stale_ = new StaleOverlay(this);
  setWorkload(workload_);
}

QWidget* AtlasView::figure() {
  return stack_->currentWidget() == atlasPage_ ? static_cast<QWidget*>(heatmap_) : needModel_;
}

void AtlasView::setWorkload(const Workload& w) {
  ResultView::setWorkload(w);
  stack_->setCurrentWidget(w.model ? atlasPage_ : static_cast<QWidget*>(needModel_));
  statCombo_->setEnabled(bool(w.model));
  if (!w.model) note_->clear();
}

void AtlasView::fillRequest(ViewRequest& r) const {
  r.view = ViewKind::atlas;
  r.stat = statCombo_->currentData().toString();
}

void AtlasView::showResult(const ViewResultPtr& result) {
  ResultView::showResult(result);
  const ViewResult& r = *result;
  if (r.atlas.isEmpty()) {
    heatmap_->clearMap(r.note.isEmpty() ? tr("no statistics") : r.note);
    table_->setRowCount(0);
    note_->setText(r.note);
    return;
  }
  MapImage m;
  m.rows = r.atlasLayers;
  m.cols = r.atlasHeads;
  m.region = {0, m.rows, 0, m.cols};
  m.title = r.atlasTitle;
  m.values.resize(m.rows * m.cols);
  for (int x = 0; x < m.values.size(); ++x) m.values[x] = float(r.atlas[x]);
  heatmap_->setExtent(m.rows, m.cols);
  heatmap_->setTitle(r.atlasTitle);
  heatmap_->setAxisTitles(tr("layer"), tr("head"), QString(r.request.stat).replace('_', ' '));
  heatmap_->setMap(m);

  const bool sorting = table_->isSortingEnabled();
  table_->setSortingEnabled(false);
  table_->setRowCount(m.rows * m.cols);
  table_->setHorizontalHeaderLabels({tr("layer"), tr("head"), r.atlasTitle});
  for (int l = 0; l < m.rows; ++l) {
    for (int h = 0; h < m.cols; ++h) {
      const int row = l * m.cols + h;
      auto* layer = new NumberItem(l);
      layer->setData(Qt::UserRole, l);
      auto* head = new NumberItem(h);
      head->setData(Qt::UserRole, h);
      table_->setItem(row, 0, layer);
      table_->setItem(row, 1, head);
      table_->setItem(row, 2, new NumberItem(r.atlas[row]));
    }
  }
  table_->setSortingEnabled(sorting);
  note_->setText(r.note);
}

bool AtlasView::cellAt(const QPoint& pos, int& layer, int& head) const {
  if (!heatmap_->hasMap()) return false;
  const QRectF plot = heatmap_->plotArea();
  if (!plot.contains(pos)) return false;
  const MapImage& m = heatmap_->map();
  layer = std::clamp(int((pos.y() - plot.top()) / plot.height() * m.rows), 0, m.rows - 1);
  head = std::clamp(int((pos.x() - plot.left()) / plot.width() * m.cols), 0, m.cols - 1);
  return true;
}

bool AtlasView::eventFilter(QObject* watched, QEvent* event) {
  if (watched == heatmap_ && event->type() == QEvent::MouseButtonRelease) {
    auto* e = static_cast<QMouseEvent*>(event);
    int layer = 0, head = 0;
    if (e->button() == Qt::LeftButton && cellAt(e->position().toPoint(), layer, head)) {
      emit openHeadRequested(layer, head);
      return true;
    }
  }
  return ResultView::eventFilter(watched, event);
}

void AtlasView::applySettings(const QJsonObject& s) {
  if (s.contains("stat")) {
    const int i = statCombo_->findData(s.value("stat").toString());
    if (i >= 0) statCombo_->setCurrentIndex(i);
  }
}

QJsonObject AtlasView::exportData() const {
  QJsonObject o;
  if (!last_ || last_->atlas.isEmpty()) return o;
  const ViewResult& r = *last_;
  QJsonArray rows;
  for (int l = 0; l < r.atlasLayers; ++l) {
    QJsonArray heads;
    for (int h = 0; h < r.atlasHeads; ++h) {
      const double v = r.atlas[l * r.atlasHeads + h];
      heads.append(std::isnan(v) ? QJsonValue() : QJsonValue(v));
    }
    rows.append(heads);
  }
  o["statistic"] = r.request.stat;
  o["title"] = r.atlasTitle;
  o["tokens"] = r.atlasTokens;
  o["note"] = r.note;
  o["layers"] = r.atlasLayers;
  o["heads"] = r.atlasHeads;
  o["values_by_layer"] = rows;  // values_by_layer[layer][head]
  return o;
}

QString AtlasView::exportCsv() const {
  if (!last_ || last_->atlas.isEmpty()) return {};
  const ViewResult& r = *last_;
  QString s = QStringLiteral("# %1, measured on %2 tokens\nlayer,head,%3\n")
                  .arg(r.atlasTitle)
                  .arg(r.atlasTokens)
                  .arg(r.request.stat);
  for (int l = 0; l < r.atlasLayers; ++l) {
    for (int h = 0; h < r.atlasHeads; ++h) {
      const double v = r.atlas[l * r.atlasHeads + h];
      s += QStringLiteral("%1,%2,%3\n")
               .arg(l)
               .arg(h)
               .arg(std::isnan(v) ? QString() : QString::number(v, 'g', 10));
    }
  }
  return s;
}

}  // namespace attnscope::gui
