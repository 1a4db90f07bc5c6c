// Widgets the selection view's pages share (selection_parts.hpp).
#include "selection_parts.hpp"

#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <algorithm>
#include <cmath>

namespace attnscope::gui {

HeatmapWidget* selectionMap(const QString& rows, const QString& cols, const QString& value) {
  auto* w = new HeatmapWidget;
  w->setAxisTitles(rows, cols, value);
  w->setInteractive(false);
  return w;
}

HeatmapWidget* weightsMap(const QString& value) {
  HeatmapWidget* w = selectionMap(QObject::tr("query i"), QObject::tr("key j"), value);
  w->setScaleMode(ScaleMode::log);
  return w;
}

QChartView* selectionChart(QChart* chart) {
  chart->legend()->setAlignment(Qt::AlignTop);
  chart->setMargins(QMargins(4, 4, 4, 4));
  auto* view = new QChartView(chart);
  view->setRenderHint(QPainter::Antialiasing);
  view->setMinimumHeight(170);
  return view;
}

QList<QPointF> perQuery(const QVector<float>& values, qsizetype smooth) {
  QList<QPointF> points;
  const qsizetype n = values.size(), step = std::max<qsizetype>(1, n / 1024);
  for (qsizetype i = 0; i < n; i += step) {
    double sum = 0;
    qsizetype count = 0;
    for (qsizetype j = std::max<qsizetype>(0, i - smooth / 2);
         j < std::min(n, i - smooth / 2 + smooth); ++j) {
      if (!std::isnan(values[j])) sum += values[j], ++count;
    }
    if (count > 0) points.append(QPointF(double(i), sum / double(count)));
  }
  return points;
}

}  // namespace attnscope::gui
