// The selection view's page for a lightning indexer's key choice (DSA): the indexer's scores next
// to the dense attention it stands in for, plain and with the selected keys over it, and recall
// and top-k overlap against top_k, with a slider that reruns the variant at another top_k. It only
// draws; the numbers are the worker's (dsa_analysis.cpp).
#pragma once

#include <QLabel>
#include <QSlider>
#include <QWidget>

#include "heatmap_widget.hpp"
#include "view_result.hpp"

class QLineSeries;
class QScatterSeries;
class QLogValueAxis;

namespace attnscope::gui {

class IndexerSelectionPage : public QWidget {
  Q_OBJECT

 public:
  explicit IndexerSelectionPage(QWidget* parent = nullptr);
  void showResult(const ViewResult& r);
  void clear(const QString& note);
  void setColormap(ColormapId id);
  // A new workload: the slider offers 1, 2, 4, ... up to its keys and its own top_k, and starts
  // there again.
  void setWorkload(const AttentionProblem& p);
  // The top_k the slider asks for; 0 until it moves (the workload's own).
  qint64 requestedTopK() const { return requested_; }
  void setRequestedTopK(qint64 k);
  // Pixels of the map the selection is drawn over: the analysis bins keys to a few pixels each.
  QSize plotPixels() const { return selected_->plotPixels(); }
  static QString summary(const ViewResult& r);

 signals:
  void topKChanged();
  void hoverText(const QString& text);

 private:
  void showSteps(qint64 selected);

  QSlider* slider_;
  QLabel* sliderLabel_;
  HeatmapWidget* index_;
  HeatmapWidget* attention_;
  HeatmapWidget* selected_;  // the dense attention again, the selection over it
  QLineSeries* recall_;
  QLineSeries* best_;
  QLineSeries* overlap_;
  QScatterSeries* marker_;
  QLogValueAxis* axisX_;
  QVector<qint64> steps_;
  qint64 workloadTopK_ = 0, requested_ = 0;
};

}  // namespace attnscope::gui
