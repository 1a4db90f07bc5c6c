// HeatmapWidget: paints one pooled map with a colormap, axes, legend and overlays, and turns wheel
// and drag into a new view region (the owner asks the worker to re-probe it at full detail).
#pragma once

#include <QImage>
#include <QStringList>
#include <QWidget>
#include <memory>

#include "colormap.hpp"
#include "view_result.hpp"

namespace attnscope::gui {

// Mask geometry and MoBA routing drawn over a map, in full-map coordinates.
struct MapOverlays {
  bool causal = false;
  qint64 qLen = 0, kvLen = 0;  // for bottom-right causal alignment: p = i + kvLen - qLen
  qint64 window = 0;           // sliding-window lower edge j > p - window (0: none)
  qint64 sinks = 0;            // keys j < sinks always visible (0: none)
  qint64 blockSize = 0;        // MoBA block width in columns (1 for block-unit maps)
  QVector<qint32> selection;   // [qLen x topK] selected block ids per query
  int topK = 0;
  int tint = 45;  // alpha of the selection's fill
};

// Whether the colour scale follows each view or stays at the full map's range while zooming.
enum class ScaleRange { fixed, perView };

// Axis ticks at round positions: multiples of one step that is a power of two or of ten, within
// [lo, hi], about `pixels / minSpacing` of them at most (at least two where the span allows).
QVector<qint64> roundTicks(qint64 lo, qint64 hi, double pixels, double minSpacing);

// A token as a label can show it: a raw newline would break the label's line and a tab or a
// space-only token would look like nothing, so control characters become visible symbols
// ("\n" -> "↵", "\t" -> "→", others their control pictures) and a token of only spaces shows
// one "␣" per space.
QString visibleToken(const QString& token);
// A map value as hover texts write it: 4 significant digits in the usual range, "masked" for NaN.
QString formatMapValue(double v);

class HeatmapWidget : public QWidget {
  Q_OBJECT

 public:
  explicit HeatmapWidget(QWidget* parent = nullptr);

  // Draws `map`. Zoom and hover stay: a progressive frame of the same request only refines it.
  void setMap(const MapImage& map);
  void clearMap(const QString& message);
  // Non-empty: the picture is not the answer to the current request (computing, cancelled,
  // error): it is drawn in grey under `label` until the next setMap() or clearMap().
  void setStale(const QString& label);
  QString staleLabel() const { return stale_; }
  // For an export: draws `map` (the same region at a finer grid) instead of the current one, in
  // the current colour scale, until endExportMap(). Nothing else changes.
  void beginExportMap(const MapImage& map);
  void endExportMap();
  const MapImage& map() const { return map_; }
  bool hasMap() const { return !map_.values.isEmpty(); }

  // Size of the full map; the view region never leaves it. Resets zoom when it changes.
  void setExtent(qint64 rows, qint64 cols);
  Region extent() const { return {0, extentRows_, 0, extentCols_}; }
  Region viewRegion() const { return view_; }
  void setViewRegion(const Region& r);
  void resetZoom();
  void zoomBy(double factor);  // < 1 zooms in, around the centre
  bool zoomed() const;

  void setColormap(ColormapId id);
  void setScaleMode(ScaleMode mode);
  // Per view by default; the attention-map view keeps the full view's range while zooming.
  void setScaleRange(ScaleRange range);
  ScaleRange scaleRange() const { return range_; }
  // Forgets the full view's range (a new problem or head): the next map sets it again.
  void resetScaleRange();
  const ValueScale& valueScale() const { return scale_; }
  void setDiverging(bool on);  // signed data: symmetric blue-white-red
  // Probabilities start the colour scale at 0 (the default); one statistic per head (the atlas,
  // recall) spans its own range instead, so differences of a few percent between heads show.
  void setZeroBased(bool on);
  void setCompact(bool on);  // thumbnails: no legend, small labels
  // Exact zeros are masked entries of a probability map: paint them as background, not as 'low'.
  void setMaskZeros(bool on) { maskZeros_ = on; }
  void setKeepAspect(bool on) {
    keepAspect_ = on;
    update();
  }
  void setInteractive(bool on) { interactive_ = on; }
  void setTitle(const QString& t);
  void setAxisTitles(const QString& rows, const QString& cols, const QString& value);
  void setOverlays(const MapOverlays& o);
  void setOverlaysVisible(bool on);
  // Token strings of the map's rows (queries) and columns (keys), as Tokenizer::token_display
  // gives them; null: numeric axes. Shared, never copied per map (a context holds 32K tokens).
  // A zoom that shows few enough rows (columns) for a label per cell labels each with its token
  // (columns rotated, the plot shrinking to make room); the hover names single entries' tokens.
  void setAxisTokens(std::shared_ptr<const QStringList> rowTokens,
                     std::shared_ptr<const QStringList> colTokens);
  // Whether the rows (columns) in view are labelled with their tokens rather than round numbers.
  bool rowTokenLabels() const { return axisLayout().rowTokens; }
  bool colTokenLabels() const { return axisLayout().colTokens; }

  // Pixels of the plot area: the resolution worth asking the probe for.
  QSize plotPixels() const;
  // The plot area in widget coordinates (overlays never leave it) and its axis ticks.
  QRectF plotArea() const { return plotRect(); }
  // With token labels: every row (column) in view, labelled at its centre.
  QVector<qint64> rowTicks() const;
  QVector<qint64> colTicks() const;
  // What hovering full-map cell (row, col) reports; empty outside the drawn map.
  QString hoverTextAt(double row, double col) const;
  // Clears the hover readout (the problem changed: the value under the mouse is not known yet).
  void clearHover();
  QSize sizeHint() const override { return {520, 460}; }
  QSize minimumSizeHint() const override { return {160, 140}; }

  // The colour bar's tick values, round: decades on a log scale, 1/2/5 steps on a linear one
  // (at most about maxTicks of them).
  QVector<double> legendTicks(double maxTicks = 6) const;

 signals:
  void viewRegionChanged(const attnscope::gui::Region& region);
  void hoverText(const QString& text);

 protected:
  void paintEvent(QPaintEvent*) override;
  void wheelEvent(QWheelEvent* e) override;
  void mousePressEvent(QMouseEvent* e) override;
  void mouseMoveEvent(QMouseEvent* e) override;
  void mouseReleaseEvent(QMouseEvent* e) override;
  void mouseDoubleClickEvent(QMouseEvent* e) override;
  void leaveEvent(QEvent* e) override;
  void changeEvent(QEvent* e) override;

 private:
  struct AxisLayout {
    QRectF plot;
    bool rowTokens = false, colTokens = false;
    QFont rowFont, colFont;  // of the token labels: smaller than the widget's for dense cells
  };
  // The widget's font, or a smaller one (not below 6 px) that fits cells `cellPixels` apart.
  QFont tokenFont(double cellPixels) const;
  AxisLayout axisLayout() const;
  QRectF plotRectWith(bool rowLabels, bool colLabels) const;
  double tokenLabelWidth() const;
  QRectF plotRect() const { return axisLayout().plot; }
  QPointF toWidget(double row, double col) const;
  bool toMap(const QPointF& pos, double& row, double& col) const;
  void rebuildImage();
  QImage colorize(const MapImage& m) const;
  void updateHover();
  QString legendCaption() const;
  void clampView();
  void drawAxes(QPainter& p, const AxisLayout& layout) const;
  void drawLegend(QPainter& p, const AxisLayout& layout) const;
  bool logLegend() const;
  double legendPosition(double v) const;

  void drawOverlays(QPainter& p, const QRectF& plot) const;
  void drawMap(QPainter& p, const QRectF& plot, const MapImage& m, const QImage& image) const;

  MapImage map_;
  QImage image_;
  QString message_;
  QString stale_;
  bool exporting_ = false;
  MapImage exportMap_;
  QImage exportImage_;
  ScaleRange range_ = ScaleRange::perView;
  bool haveFixed_ = false;  // fixedMin_/fixedMax_ hold the full view's range
  double fixedMin_ = 0, fixedMax_ = 1;
  QPointF hoverPos_{-1, -1};  // last mouse position over the widget, for refreshed frames
  QString title_;
  QString rowTitle_ = tr("query i"), colTitle_ = tr("key j"), valueTitle_ = QStringLiteral("p");
  Region view_;
  qint64 extentRows_ = 0, extentCols_ = 0;
  ColormapId colormap_ = ColormapId::viridis;
  ValueScale scale_;
  bool diverging_ = false;
  bool zeroBased_ = true;
  bool maskZeros_ = true;
  bool keepAspect_ = true;
  bool compact_ = false;
  bool interactive_ = true;
  MapOverlays overlays_;
  bool overlaysVisible_ = true;
  std::shared_ptr<const QStringList> rowTokens_, colTokens_;
  bool dragging_ = false;
  QPointF dragStart_;
  Region dragView_;
};

}  // namespace attnscope::gui
