// CompareView: the same inputs through two variants side by side (dense vs MoBA / SWA, MHA vs GQA,
// bidirectional vs causal), their difference map, relative output error and attention-mass recall.
#pragma once

#include <QComboBox>
#include <QLabel>

#include "heatmap_widget.hpp"
#include "view_base.hpp"
#include "views/stale_overlay.hpp"

namespace attnscope::gui {

class CompareView : public ResultView {
  Q_OBJECT

 public:
  explicit CompareView(QWidget* parent = nullptr);

  ViewKind kind() const override { return ViewKind::compare; }
  void fillRequest(ViewRequest& r) const override;
  void showResult(const ViewResultPtr& result) override;
  void setWorkload(const Workload& w) override;
  void applySettings(const QJsonObject& s) override;
  QJsonObject exportData() const override;
  QString exportCsv() const override;
  void setColormap(ColormapId id) override;
  void showStale(const QString& label) override { stale_->setLabel(label); }
  void setPair(const ComparePair& pair);

 private:
  StaleOverlay* stale_;
  QComboBox* pairCombo_;
  QComboBox* headCombo_;
  QComboBox* scaleCombo_;
  QLabel* summary_;
  HeatmapWidget* a_;
  HeatmapWidget* b_;
  HeatmapWidget* diff_;
};

}  // namespace attnscope::gui
