// AttentionMapView: one head's attention map (or an aggregate over heads), zoomable at full detail
// through the map probe, with mask and MoBA overlays; or a small-multiples grid of every head.
#pragma once

#include <QCheckBox>
#include <QComboBox>
#include <QLabel>
#include <QSpinBox>
#include <QStackedWidget>

#include "heatmap_widget.hpp"
#include "view_base.hpp"

namespace attnscope::gui {

class AttentionMapView : public ResultView {
  Q_OBJECT

 public:
  explicit AttentionMapView(QWidget* parent = nullptr);

  ViewKind kind() const override { return ViewKind::map; }
  void fillRequest(ViewRequest& r) const override;
  void showResult(const ViewResultPtr& result) override;
  void setWorkload(const Workload& w) override;
  void applySettings(const QJsonObject& s) override;
  QJsonObject exportData() const override;
  QString exportCsv() const override;
  void zoomIn() override { heatmap_->zoomBy(0.5); }
  void zoomOut() override { heatmap_->zoomBy(2.0); }
  void resetZoom() override { heatmap_->resetZoom(); }
  void setColormap(ColormapId id) override;
  void showStale(const QString& label) override;
  QWidget* figure() override { return stack_->currentWidget(); }  // the plot, not the toolbar

  HeatmapWidget* heatmap() const { return heatmap_; }
  void setHeadSelection(HeadMode mode, int head, int group);
  void setGrid(bool on);
  void setScaleMode(ScaleMode mode);
  void setScaleRange(ScaleRange range);
  // A figure export at `plotPixels` output pixels re-probes the drawn map on that grid (the same
  // problem, head and region): valid when one map of the current workload is drawn and current.
  bool exportRequest(const Workload& current, QSize plotPixels, ViewRequest& out) const;
  void setBatch(int b) { batchSpin_->setValue(b); }
  // A model workload's layer (the picker is shown only for one).
  void setLayer(int layer);
  QComboBox* layerCombo() const { return layerCombo_; }
  QComboBox* headCombo() const { return headCombo_; }

 private:
  void rebuildHeadCombo();
  void rebuildGrid(const ViewResult& r);
  MapOverlays overlaysFor(const ViewResult& r) const;
  void showHoverHelp();

  QComboBox* headCombo_;
  QLabel* layerLabel_;
  QComboBox* layerCombo_;
  QSpinBox* batchSpin_;
  QLabel* batchLabel_;
  QCheckBox* gridCheck_;
  QComboBox* scaleCombo_;
  QCheckBox* fixedScaleCheck_;
  QString scaleKey_;  // problem, head and batch of the drawn map: a new one resets the fixed scale
  QComboBox* colormapCombo_;
  QCheckBox* overlayCheck_;
  QLabel* hoverLabel_;
  QStackedWidget* stack_;
  HeatmapWidget* heatmap_;
  QWidget* gridPage_;
  QList<HeatmapWidget*> thumbs_;
};

}  // namespace attnscope::gui
