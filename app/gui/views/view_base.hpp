// ViewBase: what every view offers the main window: its request parameters, how it shows a result,
// preset settings, exportable data and the widget that is its figure. A view is one of two kinds:
// - ResultView: request-driven. It draws what the explorer controller computed for its request
//   (map, block selection, compare, Gated DeltaNet), and asks for a new one by requestChanged().
// - LiveView: self-driven. It runs its own engine work on its own GuiWorker (the KV cache's live
//   decode, the throughput loop, benchmark sweeps); the controller's result for it only feeds the
//   status bar.
#pragma once

#include <QComboBox>
#include <QCoreApplication>
#include <QDeadlineTimer>
#include <QJsonArray>
#include <QJsonObject>
#include <QSignalBlocker>
#include <QThread>
#include <QWidget>
#include <algorithm>
#include <cmath>
#include <functional>

#include "colormap.hpp"
#include "view_result.hpp"

namespace attnscope::gui {

class ViewBase : public QWidget {
  Q_OBJECT

 public:
  using QWidget::QWidget;

  virtual ViewKind kind() const = 0;
  // Adds this view's parameters (head, region, resolution, pair) to the request.
  virtual void fillRequest(ViewRequest& r) const { r.view = kind(); }
  virtual void showResult(const ViewResultPtr& result) { last_ = result; }
  virtual void setWorkload(const Workload& w) { workload_ = w; }
  // Settings from a preset's "view_settings" (head, scale, pair, …); unknown keys are ignored.
  virtual void applySettings(const QJsonObject&) {}
  // The view's data (no configuration; the exporter adds it).
  virtual QJsonObject exportData() const { return {}; }
  virtual QString exportCsv() const { return {}; }
  virtual QWidget* figure() { return this; }
  virtual void zoomIn() {}
  virtual void zoomOut() {}
  virtual void resetZoom() {}
  virtual void setColormap(ColormapId) {}
  // The picture on screen is not the answer to the current request: `label` says why ("previous
  // result - computing", "previous result - cancelled", "previous result - error"). A result view
  // greys its picture and shows the label until showResult() draws a fresh one; an empty label
  // means the picture is current again. Live views draw their own work and ignore it.
  virtual void showStale(const QString& label) { (void)label; }
  // Headless screenshots: called once the window has settled, before the grab; a live view runs
  // its loop for a while here (pumping events). Returns an error message, empty when fine.
  virtual QString prepareHeadless(int timeoutMs) { return {}; }
  ViewResultPtr lastResult() const { return last_; }
  // The model of the last result is being closed: keep the result without it (withoutModel).
  void releaseModel() { last_ = withoutModel(last_); }

 signals:
  void requestChanged();  // a parameter changed: the main window asks for a fresh result
  void hoverText(const QString& text);

 protected:
  ViewResultPtr last_;
  Workload workload_;
};

// Request-driven: shows the controller's ViewResult for the request its fillRequest() describes.
class ResultView : public ViewBase {
  Q_OBJECT

 public:
  using ViewBase::ViewBase;

 protected:
  // Refills a head picker with "head 0" … "head H-1" (then `extra` with data -1, if given) when
  // the head count changed, keeping the current choice where it still exists; emits nothing.
  static void refillHeads(QComboBox* combo, qint64 heads, const QString& extra = {}) {
    if (combo->count() == heads + (extra.isEmpty() ? 0 : 1)) return;
    const QSignalBlocker block(combo);
    const int current = std::max(0, combo->currentIndex());
    combo->clear();
    for (int h = 0; h < heads; ++h) combo->addItem(tr("head %1").arg(h), h);
    if (!extra.isEmpty()) combo->addItem(extra, -1);
    combo->setCurrentIndex(std::min<int>(current, int(heads) - 1));
  }
};

// Self-driven: owns a GuiWorker (inside its runner) and starts, stops and shows its own work.
class LiveView : public ViewBase {
  Q_OBJECT

 public:
  using ViewBase::ViewBase;

 protected:
  // For prepareHeadless(): pumps events (the worker's news arrives as queued calls) while `busy`
  // holds, until `deadline`; true when `busy` ended.
  static bool pumpWhile(const std::function<bool()>& busy, QDeadlineTimer deadline) {
    while (busy()) {
      if (deadline.hasExpired()) return false;
      QCoreApplication::processEvents(QEventLoop::AllEvents, 20);
      QThread::msleep(5);
    }
    return true;
  }
};

// Shared helpers for views' data exports. A pooled value always travels with its pooling rule and
// the full-map cells it covers, so nobody mistakes a 43x43 block's max for one attention weight.
inline QString poolingName(const MapImage& m) {
  if (!m.pooled()) return QStringLiteral("none");
  if (m.sampled) return QStringLiteral("sample");
  return m.pool == Pool::mean ? QStringLiteral("mean") : QStringLiteral("max");
}

inline QJsonObject mapToJson(const MapImage& m) {
  QJsonArray values;
  for (float v : m.values) values.append(std::isnan(v) ? QJsonValue() : QJsonValue(double(v)));
  // Bin edges: output row r covers full-map rows [row_edges[r], row_edges[r + 1]); columns alike.
  QJsonArray rowEdges, colEdges;
  for (int r = 0; r <= m.rows; ++r) rowEdges.append(r < m.rows ? m.rowBegin(r) : m.rowEnd(r - 1));
  for (int c = 0; c <= m.cols; ++c) colEdges.append(c < m.cols ? m.colBegin(c) : m.colEnd(c - 1));
  return {{"title", m.title},
          {"rows", m.rows},
          {"cols", m.cols},
          {"region", QJsonObject{{"row0", m.region.row0},
                                 {"row1", m.region.row1},
                                 {"col0", m.region.col0},
                                 {"col1", m.region.col1}}},
          {"pooling", poolingName(m)},
          {"row_edges", rowEdges},
          {"col_edges", colEdges},
          {"values_row_major", values}};
}

inline QString mapToCsv(const MapImage& m) {
  // Long format: one line per cell with the full-map rows [row_start, row_end) and columns
  // [col_start, col_end) it covers and how they were pooled ("none": one entry, exact).
  QString s =
      QStringLiteral("# %1; pooling: %2\nrow_start,row_end,col_start,col_end,pooling,value\n")
          .arg(m.title, poolingName(m));
  const QString pool = poolingName(m);
  for (int r = 0; r < m.rows; ++r) {
    const qint64 i0 = m.rowBegin(r), i1 = m.rowEnd(r);
    for (int c = 0; c < m.cols; ++c) {
      const qint64 j0 = m.colBegin(c), j1 = m.colEnd(c);
      const bool single = i1 - i0 <= 1 && j1 - j0 <= 1;
      s += QStringLiteral("%1,%2,%3,%4,%5,%6\n")
               .arg(i0)
               .arg(i1)
               .arg(j0)
               .arg(j1)
               .arg(single ? QStringLiteral("none") : pool)
               .arg(double(m.at(r, c)), 0, 'g', 8);
    }
  }
  return s;
}

}  // namespace attnscope::gui
