// AtlasView: the head atlas, a layers x heads grid coloured by one statistic per head (entropy,
// sink, local and distant mass, previous-token, induction and retrieval scores; docs/models.md),
// beside a sortable table of the same numbers. Clicking a cell or a row opens that head's map.
#pragma once

#include <QComboBox>
#include <QLabel>
#include <QStackedWidget>
#include <QTableWidget>

#include "heatmap_widget.hpp"
#include "view_base.hpp"
#include "views/model_views.hpp"
#include "views/stale_overlay.hpp"

namespace attnscope::gui {

class AtlasView : public ResultView {
  Q_OBJECT

 public:
  explicit AtlasView(QWidget* parent = nullptr);

  ViewKind kind() const override { return ViewKind::atlas; }
  void fillRequest(ViewRequest& r) const override;
  void showResult(const ViewResultPtr& result) override;
  void setWorkload(const Workload& w) override;
  void applySettings(const QJsonObject& s) override;
  QJsonObject exportData() const override;
  QString exportCsv() const override;
  void setColormap(ColormapId id) override { heatmap_->setColormap(id); }
  void showStale(const QString& label) override { stale_->setLabel(label); }
  QWidget* figure() override;

  QComboBox* statCombo() const { return statCombo_; }
  HeatmapWidget* heatmap() const { return heatmap_; }
  QTableWidget* table() const { return table_; }
  // The (layer, head) of the grid cell at a point of the heatmap; false outside it.
  bool cellAt(const QPoint& heatmapPos, int& layer, int& head) const;

 signals:
  void openModelRequested();
  void openHeadRequested(int layer, int head);

 protected:
  bool eventFilter(QObject* watched, QEvent* event) override;

 private:
  QComboBox* statCombo_;
  QLabel* note_;
  QStackedWidget* stack_;
  NeedModelPage* needModel_;
  QWidget* atlasPage_;
  HeatmapWidget* heatmap_;
  QTableWidget* table_;
  StaleOverlay* stale_;
};

}  // namespace attnscope::gui
