// WhatIfView: what would this model lose on this text with another attention (SWA, MoBA, …) in
// every layer: perplexity and KL against dense, the recall of dense attention mass per head, and a
// sweep of one knob against sparsity (model/include/attnscope/whatif.hpp).
#pragma once

#include <QCheckBox>
#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QMap>
#include <QSpinBox>
#include <QStackedWidget>
#include <QVector>
#include <QWidget>

#include "heatmap_widget.hpp"
#include "view_base.hpp"
#include "views/model_views.hpp"
#include "views/stale_overlay.hpp"

class QChart;
class QChartView;
class QHBoxLayout;
class QScatterSeries;

namespace attnscope::gui {

class WhatIfView : public ResultView {
  Q_OBJECT

 public:
  explicit WhatIfView(QWidget* parent = nullptr);

  ViewKind kind() const override { return ViewKind::whatif; }
  void fillRequest(ViewRequest& r) const override;
  void showResult(const ViewResultPtr& result) override;
  void setWorkload(const Workload& w) override;
  void applySettings(const QJsonObject& s) override;
  QJsonObject exportData() const override;
  QString exportCsv() const override;
  QWidget* figure() override;
  void setColormap(ColormapId id) override { heatmap_->setColormap(id); }
  void showStale(const QString& label) override { stale_->setLabel(label); }

  // The sweep values a text field holds, strictly: comma-separated integers in [min, max], none
  // twice. Returns an error message (empty when `out` holds the values).
  static QString parseValues(const QString& text, qint64 min, qint64 max, QVector<qint64>& out);
  // What the values field starts with when `key` is swept (`current`: the knob's value now).
  static QString defaultValues(const QString& key, qint64 min, qint64 max, qint64 current);

  // For tests and the main window.
  QComboBox* variantCombo() const { return variantCombo_; }
  QComboBox* sweepCombo() const { return sweepCombo_; }
  QLineEdit* valuesEdit() const { return valuesEdit_; }
  QLabel* valuesNote() const { return valuesNote_; }
  QComboBox* pointCombo() const { return pointCombo_; }
  QLabel* summary() const { return summary_; }
  HeatmapWidget* heatmap() const { return heatmap_; }
  QChartView* chartView() const { return chartView_; }
  QStackedWidget* pages() const { return stack_; }
  NeedModelPage* needModelPage() const { return needModel_; }
  QSpinBox* knobSpin(const QString& key) const;
  QCheckBox* knobCheck(const QString& key) const;
  // The scatter series of sweep point `i` (one per point, so a click names its point).
  QScatterSeries* pointSeries(int i) const;
  int selectedPoint() const { return pointCombo_->currentIndex(); }
  void selectPoint(int i);

 signals:
  void openModelRequested();

 private:
  struct Knob {
    QString key;
    QSpinBox* spin = nullptr;
    QCheckBox* check = nullptr;
  };

  VariantId currentVariant() const;
  void rebuildKnobs();
  void refillSweep();
  void commitValues();
  void changed();
  void showPoint();
  void rebuildChart();
  QString pointLabel(const ViewResult& r, int i) const;

  QComboBox* variantCombo_;
  QWidget* knobBox_;
  QHBoxLayout* knobLayout_;
  QVector<Knob> knobs_;
  QComboBox* sweepCombo_;
  QLineEdit* valuesEdit_;
  QLabel* valuesNote_;
  QStackedWidget* stack_;
  NeedModelPage* needModel_;
  QWidget* resultPage_;
  QComboBox* pointCombo_;
  QLabel* summary_;
  QWidget* figure_;
  QChartView* chartView_;
  QChart* chart_;
  QVector<QScatterSeries*> pointSeries_;
  HeatmapWidget* heatmap_;
  StaleOverlay* stale_;

  // Each variant's knobs as last set, so switching variants and back keeps them.
  QMap<int, AttentionProblem> problems_;
  // The last values list that parsed; a bad edit leaves it (and the request) as it was.
  QVector<qint64> sweepValues_;
  bool quiet_ = false;  // applySettings: one requestChanged() at the end, not one per field
};

}  // namespace attnscope::gui
