// The selection view's page for a gated mixture of branches (NSA): each branch alone (its own
// softmax) with its gate, the implicit map they sum to, the kv group's block importance with its
// chosen blocks, and per-query recall and gates. It only draws; the numbers are the worker's
// (nsa_analysis.cpp).
#pragma once

#include <QLabel>
#include <QSlider>
#include <QWidget>

#include "heatmap_widget.hpp"
#include "view_result.hpp"

class QChartView;
class QLineSeries;
class QValueAxis;

namespace attnscope::gui {

class BranchSelectionPage : public QWidget {
  Q_OBJECT

 public:
  explicit BranchSelectionPage(QWidget* parent = nullptr);
  void showResult(const ViewResult& r);
  void clear(const QString& note);
  void setColormap(ColormapId id);
  static QString summary(const ViewResult& r);

 signals:
  void hoverText(const QString& text);

 private:
  HeatmapWidget* branches_[3];
  HeatmapWidget* implicit_;
  HeatmapWidget* importance_;
  QLineSeries* recall_;
  QLineSeries* gates_[3];
  QValueAxis* axisX_;
};

}  // namespace attnscope::gui
