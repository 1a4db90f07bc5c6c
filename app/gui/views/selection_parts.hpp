// Widgets the selection view's pages share: non-interactive maps, a chart view, per-query series.
#pragma once

#include <QList>
#include <QPointF>
#include <QString>
#include <QVector>

#include "heatmap_widget.hpp"

class QChart;
class QChartView;

namespace attnscope::gui {

// A map the view fills whole (no zoom: each page shows the full map at its own bins).
HeatmapWidget* selectionMap(const QString& rows, const QString& cols, const QString& value);
// Attention weights span decades (a window's few keys against a long tail): a log colour scale.
HeatmapWidget* weightsMap(const QString& value);
QChartView* selectionChart(QChart* chart);
// At most ~1024 points of a per-query series, every n-th (NaN: a row that was not measured);
// with `smooth` > 1 each point is the mean of that many queries centred on it.
QList<QPointF> perQuery(const QVector<float>& values, qsizetype smooth = 1);

}  // namespace attnscope::gui
