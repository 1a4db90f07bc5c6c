// GatedDeltaView: Gated DeltaNet's implicit attention next to softmax attention on the same q, k,
// v, the state norm ||S_t|| over time, and the per-token gate exp(g_t) and write strength beta_t.
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

class GatedDeltaView : public ResultView {
  Q_OBJECT

 public:
  explicit GatedDeltaView(QWidget* parent = nullptr);

  ViewKind kind() const override { return ViewKind::state; }
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
  QLabel* note_;
  HeatmapWidget* implicit_;
  HeatmapWidget* softmax_;
  QLineSeries* normSeries_;
  QLineSeries* gateSeries_;
  QLineSeries* betaSeries_;
  QLineSeries* retainedSeries_;
  QValueAxis* normX_;
  QValueAxis* normY_;
  QValueAxis* gateX_;
};

}  // namespace attnscope::gui
