// BlockSelectionView: MoBA's routing made visible: how often each key block is chosen per query
// block, the gate scores with the chosen top-k, and how much dense attention mass routing keeps.
#pragma once

#include <QComboBox>
#include <QLabel>

#include "heatmap_widget.hpp"
#include "view_base.hpp"
#include "views/stale_overlay.hpp"

class QChartView;
class QLineSeries;
class QValueAxis;

namespace attnscope::gui {

class BlockSelectionView : public ResultView {
  Q_OBJECT

 public:
  explicit BlockSelectionView(QWidget* parent = nullptr);

  ViewKind kind() const override { return ViewKind::blocks; }
  void fillRequest(ViewRequest& r) const override;
  void showResult(const ViewResultPtr& result) override;
  void setWorkload(const Workload& w) override;
  void applySettings(const QJsonObject& s) override;
  QJsonObject exportData() const override;
  QString exportCsv() const override;
  void setColormap(ColormapId id) override;
  void showStale(const QString& label) override { stale_->setLabel(label); }

 private:
  StaleOverlay* stale_;
  QComboBox* headCombo_;
  QLabel* summary_;
  HeatmapWidget* counts_;
  HeatmapWidget* gates_;
  QChartView* chartView_;
  QLineSeries* recallSeries_;
  QValueAxis* axisX_;
};

}  // namespace attnscope::gui
