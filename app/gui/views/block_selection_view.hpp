// BlockSelectionView ("Selection"): what a sparse variant chooses for each query to read. A block
// router's routing (VariantInfo::selection: how often each key block is chosen per query block,
// the gate scores with the chosen top-k, the dense mass routing keeps) on the view's own page; a
// mixture of branches and a lightning indexer on theirs (branch_selection_page.hpp,
// indexer_selection_page.hpp).
#pragma once

#include <QComboBox>
#include <QLabel>
#include <QStackedWidget>

#include "heatmap_widget.hpp"
#include "view_base.hpp"
#include "views/branch_selection_page.hpp"
#include "views/indexer_selection_page.hpp"
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
  void showRouting(const ViewResult& r);

  StaleOverlay* stale_;
  QStackedWidget* pages_;
  BranchSelectionPage* branches_;
  IndexerSelectionPage* indexer_;
  QComboBox* headCombo_;
  QLabel* summary_;
  HeatmapWidget* counts_;
  HeatmapWidget* gates_;
  QChartView* chartView_;
  QLineSeries* recallSeries_;
  QValueAxis* axisX_;
};

}  // namespace attnscope::gui
