// Heatmap painting and navigation. The last image stays on screen, mapped to where its region now
// lies, while the worker re-probes a zoomed region: zooming never blanks the view or blocks the UI.
#include "heatmap_widget.hpp"

#include <QMouseEvent>
#include <QPainter>
#include <QPainterPath>
#include <QWheelEvent>
#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

namespace attnscope::gui {
namespace {
constexpr qint64 kMinSpan = 8;  // never zoom below 8 x 8 cells
// More labels than this on an axis stop reading as text, however large the cells.
constexpr qint64 kMaxTokenLabels = 80;
constexpr int kHoverTokenChars = 40;

// Row (column) k's label: its token elided to `maxWidth`, or its index past the token list.
QString tokenLabel(const QStringList& tokens, qint64 k, const QFontMetrics& fm, int maxWidth) {
  if (k < 0 || k >= tokens.size()) return QString::number(k);
  return fm.elidedText(visibleToken(tokens[qsizetype(k)]), Qt::ElideRight, maxWidth);
}

// "max over 43x43 cells", "mean over ...", "sample of ..." (sampled maps show one entry per bin).
QString poolPhrase(const MapImage& m) {
  if (m.sampled) return QObject::tr("sample of");
  return m.pool == Pool::mean ? QObject::tr("mean over") : QObject::tr("max over");
}

// Which output bin holds full-map index i: the probe's floor((i - first) * bins / span), or the
// map's explicit edges.
int binOf(const QVector<qint64>& edges, qint64 first, qint64 span, int bins, qint64 i) {
  if (bins <= 0) return 0;
  if (edges.size() == bins + 1) {
    const auto it = std::upper_bound(edges.begin(), edges.end(), i);
    return std::clamp(int(it - edges.begin()) - 1, 0, bins - 1);
  }
  return std::clamp(int((i - first) * bins / std::max<qint64>(1, span)), 0, bins - 1);
}

// The part of segment a-b inside r (Liang-Barsky), so overlays stay inside the plot in every
// output: QSvgGenerator does not honour the painter's clip, and a clipped-away stroke would still
// run across the colour bar in the SVG.
bool clipLine(QPointF a, QPointF b, const QRectF& r, QLineF& out) {
  double t0 = 0, t1 = 1;
  const double dx = b.x() - a.x(), dy = b.y() - a.y();
  const double pv[4] = {-dx, dx, -dy, dy};
  const double qv[4] = {a.x() - r.left(), r.right() - a.x(), a.y() - r.top(), r.bottom() - a.y()};
  for (int k = 0; k < 4; ++k) {
    if (pv[k] == 0) {
      if (qv[k] < 0) return false;
      continue;
    }
    const double t = qv[k] / pv[k];
    if (pv[k] < 0) {
      t0 = std::max(t0, t);
    } else {
      t1 = std::min(t1, t);
    }
    if (t0 > t1) return false;
  }
  out = QLineF(a + t0 * (b - a), a + t1 * (b - a));
  return true;
}
}  // namespace

QString formatMapValue(double v) {
  if (std::isnan(v)) return QObject::tr("masked");
  if (v == 0) return QStringLiteral("0");
  const double a = std::abs(v);
  return QString::number(v, 'g', a >= 1e-3 && a < 1e4 ? 4 : 3);
}

QString visibleToken(const QString& token) {
  if (!token.isEmpty() &&
      std::all_of(token.begin(), token.end(), [](QChar c) { return c == QLatin1Char(' '); })) {
    return QString(token.size(), QChar(0x2423));
  }
  auto visible = [](char16_t u) -> char16_t {
    if (u == u'\n' || u == 0x85 || u == 0x2028 || u == 0x2029) return 0x21B5;
    if (u == u'\t') return 0x2192;
    if (u < 0x20) return char16_t(0x2400 + u);
    if (u == 0x7f) return 0x2421;
    return u;
  };
  // Most tokens need no change: return the shared string, no copy.
  if (std::all_of(token.begin(), token.end(),
                  [&](QChar c) { return visible(c.unicode()) == c.unicode(); })) {
    return token;
  }
  QString out = token;
  for (QChar& c : out) c = QChar(visible(c.unicode()));
  return out;
}

QVector<qint64> roundTicks(qint64 lo, qint64 hi, double pixels, double minSpacing) {
  if (hi < lo) return {};
  if (hi == lo) return {lo};
  const qint64 span = hi - lo;
  const int maxTicks = std::max(2, int(pixels / std::max(1.0, minSpacing)) + 1);
  const int target = std::min(5, maxTicks);
  QVector<qint64> best;
  double bestScore = INFINITY;
  // Steps 1, 2, 4, 8, ... and 1, 10, 100, ...; on a tie a power of ten wins (it reads easier).
  for (int decimal = 0; decimal < 2; ++decimal) {
    for (qint64 step = 1; step <= span; step *= decimal ? 10 : 2) {
      const qint64 first = lo % step == 0 ? lo : (lo / step + (lo > 0 ? 1 : 0)) * step;
      if (first > hi) continue;
      const qint64 count = (hi - first) / step + 1;
      if (count > maxTicks || count < 2) continue;
      // Ticks that reach both ends of the axis (0 ... 4096 by 1024) beat decimal ones that stop
      // short of its end (0 ... 4000 by 1000).
      const bool spans = first == lo && first + (count - 1) * step == hi;
      const double score =
          std::abs(double(count) - target) + (decimal ? 0.0 : 0.1) - (spans ? 0.2 : 0.0);
      if (score < bestScore) {
        bestScore = score;
        best.clear();
        for (qint64 v = first; v <= hi; v += step) best.push_back(v);
      }
    }
  }
  if (best.isEmpty()) best = {lo};  // a span too narrow for two labels: its start
  return best;
}

HeatmapWidget::HeatmapWidget(QWidget* parent) : QWidget(parent) {
  setMouseTracking(true);
  setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
  setFocusPolicy(Qt::ClickFocus);
}

void HeatmapWidget::setMap(const MapImage& map) {
  map_ = map;
  message_.clear();
  stale_.clear();
  rebuildImage();
  updateHover();  // a refined frame under a still mouse: its value, not the coarse one
  update();
}

void HeatmapWidget::clearMap(const QString& message) {
  map_ = {};
  image_ = {};
  message_ = message;
  stale_.clear();
  update();
}

void HeatmapWidget::setStale(const QString& label) {
  if (stale_ == label) return;
  stale_ = label;
  update();
}

void HeatmapWidget::beginExportMap(const MapImage& map) {
  exportMap_ = map;
  exportImage_ = colorize(map);  // in the on-screen scale: the figure shows what the user saw
  exporting_ = true;
}

void HeatmapWidget::endExportMap() {
  exporting_ = false;
  exportMap_ = {};
  exportImage_ = {};
}

void HeatmapWidget::setExtent(qint64 rows, qint64 cols) {
  if (rows == extentRows_ && cols == extentCols_) return;
  extentRows_ = rows;
  extentCols_ = cols;
  view_ = {0, rows, 0, cols};
  haveFixed_ = false;
  update();
}

void HeatmapWidget::setViewRegion(const Region& r) {
  view_ = r;
  clampView();
  update();
}

void HeatmapWidget::resetZoom() {
  const Region before = view_;
  view_ = {0, extentRows_, 0, extentCols_};
  update();
  if (!(before == view_)) emit viewRegionChanged(view_);
}

bool HeatmapWidget::zoomed() const {
  return !(view_ == Region{0, extentRows_, 0, extentCols_});
}

void HeatmapWidget::zoomBy(double factor) {
  if (extentRows_ <= 0) return;
  const double cr = (view_.row0 + view_.row1) / 2.0, cc = (view_.col0 + view_.col1) / 2.0;
  const double hr = std::max<double>(kMinSpan, view_.rows() * factor) / 2;
  const double hc = std::max<double>(kMinSpan, view_.cols() * factor) / 2;
  view_ = {qint64(std::floor(cr - hr)), qint64(std::ceil(cr + hr)), qint64(std::floor(cc - hc)),
           qint64(std::ceil(cc + hc))};
  clampView();
  update();
  emit viewRegionChanged(view_);
}

void HeatmapWidget::clampView() {
  auto clampAxis = [](qint64& a, qint64& b, qint64 extent) {
    qint64 span = std::clamp<qint64>(b - a, std::min(kMinSpan, extent), extent);
    a = std::clamp<qint64>(a, 0, extent - span);
    b = a + span;
  };
  if (extentRows_ <= 0 || extentCols_ <= 0) return;
  clampAxis(view_.row0, view_.row1, extentRows_);
  clampAxis(view_.col0, view_.col1, extentCols_);
}

void HeatmapWidget::setColormap(ColormapId id) {
  colormap_ = id;
  rebuildImage();
  update();
}

void HeatmapWidget::setScaleMode(ScaleMode mode) {
  scale_.mode = mode;
  rebuildImage();
  update();
}

void HeatmapWidget::setScaleRange(ScaleRange range) {
  range_ = range;
  rebuildImage();
  update();
}

void HeatmapWidget::resetScaleRange() {
  haveFixed_ = false;
}

void HeatmapWidget::setZeroBased(bool on) {
  zeroBased_ = on;
  rebuildImage();
  update();
}

void HeatmapWidget::setDiverging(bool on) {
  // Unchanged: no rebuild (a rebuild of the old map would capture its range as the fixed one).
  if (on == diverging_) return;
  diverging_ = on;
  rebuildImage();
  update();
}

void HeatmapWidget::setCompact(bool on) {
  compact_ = on;
  update();
}

void HeatmapWidget::setTitle(const QString& t) {
  title_ = t;
  update();
}

void HeatmapWidget::setAxisTitles(const QString& rows, const QString& cols, const QString& value) {
  rowTitle_ = rows;
  colTitle_ = cols;
  valueTitle_ = value;
  update();
}

void HeatmapWidget::setOverlays(const MapOverlays& o) {
  overlays_ = o;
  update();
}

void HeatmapWidget::setOverlaysVisible(bool on) {
  overlaysVisible_ = on;
  update();
}

void HeatmapWidget::setAxisTokens(std::shared_ptr<const QStringList> rowTokens,
                                  std::shared_ptr<const QStringList> colTokens) {
  rowTokens_ = std::move(rowTokens);
  colTokens_ = std::move(colTokens);
  updateHover();
  update();
}

double HeatmapWidget::tokenLabelWidth() const {
  // About ten characters: most tokens whole, a long one elided before it crowds the plot.
  return std::round(QFontMetrics(font()).averageCharWidth() * 10.0);
}

// Below this a label is no longer readable: the axis shows numbers instead.
constexpr double kMinLabelPixels = 7.0;

QFont HeatmapWidget::tokenFont(double cellPixels) const {
  const QFontMetrics fm(font());
  if (cellPixels >= 0.9 * fm.height()) return font();
  // 80 tokens on a 600-pixel axis are 7.5 pixels apart: a smaller font still reads them.
  QFont f = font();
  f.setPixelSize(std::max(6, int(std::floor(cellPixels / 1.1))));
  return f;
}

HeatmapWidget::AxisLayout HeatmapWidget::axisLayout() const {
  // A label a line high fits a row; rotated, a column.
  auto fits = [&](qint64 cells, double pixels) {
    return cells > 0 && pixels / double(cells) >= kMinLabelPixels;
  };
  AxisLayout l;
  if (!compact_) {
    l.rowTokens = rowTokens_ && !rowTokens_->isEmpty() && view_.rows() <= kMaxTokenLabels;
    l.colTokens = colTokens_ && !colTokens_->isEmpty() && view_.cols() <= kMaxTokenLabels;
  }
  l.plot = plotRectWith(l.rowTokens, l.colTokens);
  const bool rows = l.rowTokens && fits(view_.rows(), l.plot.height());
  const bool cols = l.colTokens && fits(view_.cols(), l.plot.width());
  // Dropping a label's margin only enlarges the plot, so what fitted still fits afterwards.
  if (rows != l.rowTokens || cols != l.colTokens) {
    l.rowTokens = rows;
    l.colTokens = cols;
    l.plot = plotRectWith(rows, cols);
  }
  if (l.rowTokens) l.rowFont = tokenFont(l.plot.height() / double(view_.rows()));
  if (l.colTokens) l.colFont = tokenFont(l.plot.width() / double(view_.cols()));
  return l;
}

QRectF HeatmapWidget::plotRectWith(bool rowLabels, bool colLabels) const {
  const QFontMetrics fm(font());
  const double numbers = fm.horizontalAdvance(QStringLiteral("000000"));
  const double labels = tokenLabelWidth();
  const double left =
      compact_ ? 4 : (rowLabels ? std::max(numbers, labels + 6) : numbers) + fm.height();
  const double top = fm.height() + 8;
  // Below the plot: tick labels (rotated token labels need their length) and the axis title;
  // beside it the legend's two caption lines.
  const double bottom = compact_ ? 4 : (colLabels ? labels + 6 : fm.height()) + 2 * fm.height() + 6;
  const double right = compact_ ? 4 : fm.horizontalAdvance(QStringLiteral("0.00e-00")) + 36;
  double w = std::max(10.0, width() - left - right), h = std::max(10.0, height() - top - bottom);
  double x = left;
  if (keepAspect_ && !view_.isEmpty()) {
    // Square cells: a square map stays square however the widget is shaped.
    const double aspect = double(view_.rows()) / double(view_.cols());
    if (h / w > aspect) {
      h = w * aspect;
    } else {
      const double nw = h / aspect;
      x += (w - nw) / 2;
      w = nw;
    }
  }
  return QRectF(x, top, w, h);
}

QSize HeatmapWidget::plotPixels() const {
  const QRectF r = plotRect();
  const double dpr = devicePixelRatioF();
  return {std::clamp(int(r.width() * dpr), 16, 768), std::clamp(int(r.height() * dpr), 16, 768)};
}

QPointF HeatmapWidget::toWidget(double row, double col) const {
  const QRectF r = plotRect();
  const double x =
      r.left() + (col - view_.col0) / double(std::max<qint64>(1, view_.cols())) * r.width();
  const double y =
      r.top() + (row - view_.row0) / double(std::max<qint64>(1, view_.rows())) * r.height();
  return {x, y};
}

bool HeatmapWidget::toMap(const QPointF& pos, double& row, double& col) const {
  const QRectF r = plotRect();
  if (!r.contains(pos) || view_.isEmpty()) return false;
  row = view_.row0 + (pos.y() - r.top()) / r.height() * view_.rows();
  col = view_.col0 + (pos.x() - r.left()) / r.width() * view_.cols();
  return true;
}

void HeatmapWidget::rebuildImage() {
  if (map_.values.isEmpty()) {
    image_ = {};
    return;
  }
  double lo = INFINITY, hi = -INFINITY;
  for (float v : map_.values) {
    if (std::isnan(v)) continue;
    lo = std::min(lo, double(v));
    hi = std::max(hi, double(v));
  }
  if (!std::isfinite(lo)) lo = hi = 0;
  double vmin = 0, vmax = 1;
  if (diverging_) {
    // Signed maps are often dominated by a few large entries (the diagonal); saturate at the 99th
    // percentile of |v| so the structure elsewhere stays visible.
    std::vector<float> mags;
    mags.reserve(size_t(map_.values.size()));
    for (float v : map_.values) {
      if (!std::isnan(v) && v != 0) mags.push_back(std::abs(v));
    }
    double m = std::max({std::abs(lo), std::abs(hi), 1e-12});
    if (mags.size() > 100) {
      auto nth = mags.begin() + std::ptrdiff_t(mags.size() * 99 / 100);
      std::nth_element(mags.begin(), nth, mags.end());
      m = std::max(double(*nth), 1e-12);
    }
    vmin = -m;
    vmax = m;
  } else {
    vmin = zeroBased_ ? std::min(0.0, lo) : lo;
    vmax = hi > vmin ? hi : vmin + std::max(1e-12, std::abs(vmin) * 1e-9);
  }
  if (range_ == ScaleRange::fixed) {
    // The full view's range, kept while zooming so colours compare across zoom levels. A zoomed
    // map stands in until the first full view of this problem arrives.
    const bool full = extentRows_ <= 0 || map_.region == Region{0, extentRows_, 0, extentCols_};
    if (full || !haveFixed_) {
      fixedMin_ = vmin;
      fixedMax_ = vmax;
      haveFixed_ = true;
    }
    vmin = fixedMin_;
    vmax = fixedMax_;
  }
  scale_.vmin = vmin;
  scale_.vmax = vmax;
  image_ = colorize(map_);
}

QImage HeatmapWidget::colorize(const MapImage& m) const {
  if (m.values.isEmpty() || m.rows <= 0 || m.cols <= 0) return {};
  const Colormap& cm = Colormap::get(colormap_);
  QImage image(m.cols, m.rows, QImage::Format_RGB32);
  if (image.isNull()) return {};
  const QRgb maskedColor = palette().color(QPalette::Window).darker(112).rgb();
  for (int r = 0; r < m.rows; ++r) {
    auto* line = reinterpret_cast<QRgb*>(image.scanLine(r));
    for (int c = 0; c < m.cols; ++c) {
      const float v = m.values[r * m.cols + c];
      if (std::isnan(v) || (v == 0 && !diverging_ && maskZeros_)) {
        line[c] = maskedColor;
      } else if (diverging_) {
        line[c] = diverging(v / scale_.vmax);
      } else {
        line[c] = cm.at(scale_.mode == ScaleMode::log && scale_.vmin < 0
                            ? (v - scale_.vmin) / (scale_.vmax - scale_.vmin)
                            : scale_.normalize(v));
      }
    }
  }
  return image;
}

void HeatmapWidget::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), palette().window());
  const AxisLayout layout = axisLayout();
  const QRectF& plot = layout.plot;
  p.setPen(palette().color(QPalette::WindowText));
  QFont titleFont = font();
  titleFont.setBold(true);
  if (compact_) titleFont.setPointSizeF(font().pointSizeF() * 0.9);
  p.setFont(titleFont);
  p.drawText(QRectF(0, 0, width(), plot.top() - 2), Qt::AlignCenter,
             QFontMetrics(titleFont).elidedText(title_, Qt::ElideRight, width() - 4));
  p.setFont(font());
  p.fillRect(plot, palette().base());
  const MapImage& m = exporting_ ? exportMap_ : map_;
  const QImage& image = exporting_ ? exportImage_ : image_;
  if (image.isNull()) {
    p.drawText(plot.adjusted(8, 8, -8, -8), Qt::AlignCenter | Qt::TextWordWrap,
               message_.isEmpty() ? tr("computing…") : message_);
    return;
  }
  drawMap(p, plot, m, image);
  if (overlaysVisible_) drawOverlays(p, plot);
  if (!stale_.isEmpty()) {
    // Not the answer to the current request: washed out under a label saying what it is.
    QColor wash = palette().color(QPalette::Window);
    wash.setAlpha(150);
    p.fillRect(plot, wash);
    QFont f = font();
    f.setBold(true);
    p.setFont(f);
    const QFontMetrics fm(f);
    const QString label = fm.elidedText(stale_, Qt::ElideRight, int(plot.width()) - 16);
    const QRectF box(plot.center().x() - fm.horizontalAdvance(label) / 2.0 - 8,
                     plot.center().y() - fm.height() / 2.0 - 4, fm.horizontalAdvance(label) + 16,
                     fm.height() + 8);
    p.fillRect(box.intersected(plot), palette().window());
    p.setPen(palette().color(QPalette::WindowText));
    p.drawText(box, Qt::AlignCenter, label);
    p.setFont(font());
  }
  p.setPen(palette().color(QPalette::Mid));
  p.setBrush(Qt::NoBrush);
  p.drawRect(plot);
  if (!compact_) {
    drawAxes(p, layout);
    drawLegend(p, layout);
  }
}

void HeatmapWidget::drawMap(QPainter& p, const QRectF& plot, const MapImage& m,
                            const QImage& image) const {
  // The image lies where its region now is (a zoom in flight shows the old image moved and
  // scaled); only its part inside the plot is drawn, cut out of the image rather than clipped by
  // the painter, so no output format can show it outside the plot.
  const QRectF target(toWidget(m.region.row0, m.region.col0),
                      toWidget(m.region.row1, m.region.col1));
  const QRectF visible = target.intersected(plot);
  if (visible.isEmpty() || target.isEmpty()) return;
  const QImage shown = stale_.isEmpty() ? image : image.convertToFormat(QImage::Format_Grayscale8);
  p.save();
  p.setRenderHint(QPainter::SmoothPixmapTransform, false);
  if (visible == target) {
    p.drawImage(target, shown);
  } else {
    // The whole cells that reach into the plot, copied out: QSvgGenerator ignores a source
    // rectangle (it would squeeze the whole image into the plot). The cut cells' overhang (under
    // one cell) is clipped wherever the device honours clipping.
    const double sx = shown.width() / target.width(), sy = shown.height() / target.height();
    const QRect cells =
        QRectF((visible.left() - target.left()) * sx, (visible.top() - target.top()) * sy,
               visible.width() * sx, visible.height() * sy)
            .toAlignedRect()
            .intersected(shown.rect());
    const QRectF cellsTarget(target.left() + cells.left() / sx, target.top() + cells.top() / sy,
                             cells.width() / sx, cells.height() / sy);
    p.setClipRect(plot, Qt::IntersectClip);
    p.drawImage(cellsTarget, shown.copy(cells));
  }
  p.restore();
}

QVector<qint64> HeatmapWidget::rowTicks() const {
  const AxisLayout l = axisLayout();
  if (l.rowTokens) {
    QVector<qint64> all;
    for (qint64 i = view_.row0; i < view_.row1; ++i) all.push_back(i);
    return all;
  }
  const QFontMetrics fm(font());
  return roundTicks(view_.row0, view_.row1, l.plot.height(), 2.0 * fm.height());
}

QVector<qint64> HeatmapWidget::colTicks() const {
  const AxisLayout l = axisLayout();
  if (l.colTokens) {
    QVector<qint64> all;
    for (qint64 j = view_.col0; j < view_.col1; ++j) all.push_back(j);
    return all;
  }
  const QFontMetrics fm(font());
  const double label = fm.horizontalAdvance(QString::number(std::max<qint64>(view_.col1, 10)));
  return roundTicks(view_.col0, view_.col1, l.plot.width(), label + fm.height());
}

void HeatmapWidget::drawAxes(QPainter& p, const AxisLayout& layout) const {
  const QRectF& plot = layout.plot;
  const QFontMetrics fm(font());
  p.setPen(palette().color(QPalette::WindowText));
  const double rows = double(std::max<qint64>(1, view_.rows()));
  const double cols = double(std::max<qint64>(1, view_.cols()));
  const int labelWidth = int(tokenLabelWidth());
  if (layout.rowTokens) {
    // A token names a row, not a boundary: its label and tick sit at the row's centre.
    p.save();
    p.setFont(layout.rowFont);
    const QFontMetrics tfm(layout.rowFont);
    for (qint64 row = view_.row0; row < view_.row1; ++row) {
      const double y = plot.top() + (double(row - view_.row0) + 0.5) / rows * plot.height();
      p.drawLine(QPointF(plot.left() - 3, y), QPointF(plot.left(), y));
      p.drawText(
          QRectF(plot.left() - 5 - labelWidth, y - tfm.height() / 2.0, labelWidth, tfm.height()),
          Qt::AlignRight | Qt::AlignVCenter, tokenLabel(*rowTokens_, row, tfm, labelWidth));
    }
    p.restore();
  } else {
    // Ticks sit on cell boundaries: tick v is the top (left) edge of row (column) v, and the
    // view's end is the far edge of the plot.
    for (qint64 row : rowTicks()) {
      const double y = plot.top() + double(row - view_.row0) / rows * plot.height();
      p.drawLine(QPointF(plot.left() - 4, y), QPointF(plot.left(), y));
      p.drawText(QRectF(0, y - fm.height() / 2.0, plot.left() - 6, fm.height()),
                 Qt::AlignRight | Qt::AlignVCenter, QString::number(row));
    }
  }
  if (layout.colTokens) {
    // Rotated to read upwards and end at the axis, so a column a line high holds its label.
    const QFontMetrics tfm(layout.colFont);
    for (qint64 col = view_.col0; col < view_.col1; ++col) {
      const double x = plot.left() + (double(col - view_.col0) + 0.5) / cols * plot.width();
      p.drawLine(QPointF(x, plot.bottom()), QPointF(x, plot.bottom() + 3));
      p.save();
      p.setFont(layout.colFont);
      p.translate(x, plot.bottom() + 5);
      p.rotate(-90);
      p.drawText(QRectF(-labelWidth, -tfm.height() / 2.0, labelWidth, tfm.height()),
                 Qt::AlignRight | Qt::AlignVCenter, tokenLabel(*colTokens_, col, tfm, labelWidth));
      p.restore();
    }
  } else {
    for (qint64 col : colTicks()) {
      const double x = plot.left() + double(col - view_.col0) / cols * plot.width();
      p.drawLine(QPointF(x, plot.bottom()), QPointF(x, plot.bottom() + 4));
      p.drawText(QRectF(x - 50, plot.bottom() + 5, 100, fm.height()), Qt::AlignCenter,
                 QString::number(col));
    }
  }
  const double titleY = plot.bottom() + 5 + (layout.colTokens ? labelWidth + 2 : fm.height());
  p.drawText(QRectF(plot.left(), titleY, plot.width(), fm.height()), Qt::AlignCenter, colTitle_);
  p.save();
  p.translate(fm.height() * 0.5, plot.center().y());
  p.rotate(-90);
  p.drawText(QRectF(-plot.height() / 2, -fm.height() / 2.0, plot.height(), fm.height()),
             Qt::AlignCenter, rowTitle_);
  p.restore();
}

QString HeatmapWidget::legendCaption() const {
  const MapImage& m = exporting_ ? exportMap_ : map_;
  if (!m.pooled()) return tr("exact values");
  if (m.sampled) return tr("sampled");
  return m.pool == Pool::mean ? tr("mean-pooled") : tr("max-pooled");
}

bool HeatmapWidget::logLegend() const {
  return !diverging_ && scale_.mode == ScaleMode::log && scale_.vmin >= 0 && scale_.vmax > 0;
}

// Where value v sits on the colour bar, 0 (bottom) to 1 (top), as rebuildImage colours it.
double HeatmapWidget::legendPosition(double v) const {
  if (diverging_) return (v - scale_.vmin) / std::max(1e-300, scale_.vmax - scale_.vmin);
  if (logLegend()) return scale_.normalize(v);
  return (v - scale_.vmin) / std::max(1e-300, scale_.vmax - scale_.vmin);
}

QVector<double> HeatmapWidget::legendTicks(double maxTicks) const {
  QVector<double> ticks;
  const double lo = logLegend() ? scale_.valueAt(0.0) : scale_.vmin, hi = scale_.vmax;
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return {hi};
  if (logLegend()) {
    // Powers of ten inside the bar, thinned to every 2nd or 3rd decade when the bar is short.
    const int first = int(std::ceil(std::log10(lo) - 1e-9)),
              last = int(std::floor(std::log10(hi) + 1e-9));
    const int step = std::max(1, int(std::ceil((last - first + 1) / std::max(1.0, maxTicks))));
    for (int k = last; k >= first; k -= step) ticks.prepend(std::pow(10.0, k));
    if (ticks.size() >= 2) return ticks;
    ticks.clear();  // less than two decades shown: fall through to 1/2/5 steps
  }
  const double raw = (hi - lo) / std::max(1.0, std::min(6.0, maxTicks));
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (const double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi * (1 + 1e-12); v += step) {
    ticks.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  }
  return ticks;
}

void HeatmapWidget::drawLegend(QPainter& p, const AxisLayout& layout) const {
  const QRectF& plot = layout.plot;
  const QFontMetrics fm(font());
  const QRectF bar(plot.right() + 10, plot.top(), 14, plot.height());
  // One smooth gradient image, not a line per pixel: no banding at any resolution or zoom of a
  // vector export.
  const Colormap& cm = Colormap::get(colormap_);
  QImage gradient(1, 256, QImage::Format_RGB32);
  for (int y = 0; y < 256; ++y) {
    const double t = 1.0 - y / 255.0;
    gradient.setPixel(0, y, diverging_ ? diverging(2 * t - 1) : cm.lut()[255 - y]);
  }
  p.save();
  p.setRenderHint(QPainter::SmoothPixmapTransform, true);
  // A stale picture's scale is greyed with it: neither describes the current request.
  p.drawImage(bar,
              stale_.isEmpty() ? gradient : gradient.convertToFormat(QImage::Format_Grayscale8));
  p.restore();
  p.setPen(palette().color(QPalette::WindowText));
  p.setBrush(Qt::NoBrush);
  p.drawRect(bar);
  // Ticks at round values, as a figure needs them: decades on a log scale, 1/2/5 steps otherwise.
  for (const double v : legendTicks(bar.height() / (1.8 * fm.height()))) {
    const double f = legendPosition(v);
    const double y = bar.bottom() - f * bar.height();
    p.drawLine(QPointF(bar.right(), y), QPointF(bar.right() + 3, y));
    p.drawText(QRectF(bar.right() + 5, y - fm.height() / 2.0, 100, fm.height()),
               Qt::AlignLeft | Qt::AlignVCenter, formatMapValue(v));
  }
  QString caption = valueTitle_;
  if (!diverging_ && scale_.mode == ScaleMode::log) caption += tr(" (log)");
  // Two lines under the bar: the value and how each cell pools the entries it covers.
  const double room = width() - bar.left();
  // Level with the key axis' title, below its tick labels (the last one reaches under the bar);
  // rotated token labels stay left of the bar, and their title is far below: right under it.
  const double y0 = bar.bottom() + 5 + (layout.colTokens ? 0 : fm.height());
  p.drawText(QRectF(bar.left() - 4, y0, room, fm.height()), Qt::AlignLeft,
             fm.elidedText(caption, Qt::ElideRight, int(room)));
  p.drawText(QRectF(bar.left() - 4, y0 + fm.height(), room, fm.height()), Qt::AlignLeft,
             fm.elidedText(legendCaption(), Qt::ElideRight, int(room)));
}

void HeatmapWidget::drawOverlays(QPainter& p, const QRectF& plot) const {
  const MapOverlays& o = overlays_;
  p.save();
  p.setRenderHint(QPainter::Antialiasing, true);
  const qint64 offset = o.kvLen - o.qLen;  // bottom-right alignment
  const double r0 = view_.row0, r1 = view_.row1;
  auto line = [&](QPointF a, QPointF b) {
    QLineF l;
    if (clipLine(a, b, plot, l)) p.drawLine(l);
  };
  // The causal edge borders the (light or dark) masked area: draw it in the text colour.
  QColor edge = palette().color(QPalette::WindowText);
  edge.setAlpha(200);
  QPen pen(edge, 1.4, Qt::DashLine);
  p.setPen(pen);
  if (o.causal && o.qLen > 0) {
    // Keys j <= p are visible: the edge runs just right of the diagonal.
    line(toWidget(r0, r0 + offset + 1), toWidget(r1, r1 + offset + 1));
  }
  if (o.window > 0 && o.qLen > 0) {
    pen.setColor(QColor(255, 170, 0, 230));
    p.setPen(pen);
    line(toWidget(r0, r0 + offset - o.window + 1), toWidget(r1, r1 + offset - o.window + 1));
  }
  if (o.sinks > 0) {
    pen.setColor(QColor(255, 90, 200, 230));
    p.setPen(pen);
    line(toWidget(r0, double(o.sinks)), toWidget(r1, double(o.sinks)));
  }
  if (o.blockSize > 0 && o.topK > 0 && !o.selection.isEmpty()) {
    // Selected key blocks: consecutive (sampled) query rows choosing the same block merge into
    // one outlined strip, so the routing reads as shapes instead of tinting the data.
    // Widths are judged in output pixels (a 300-dpi export has three per widget pixel).
    const QTransform& wt = p.worldTransform();
    const double devScale =
        (p.device() ? p.device()->devicePixelRatioF() : 1.0) * std::hypot(wt.m11(), wt.m12());
    const qint64 rows = o.selection.size() / o.topK;
    const qint64 first = std::max<qint64>(0, view_.row0), last = std::min<qint64>(rows, view_.row1);
    const qint64 step = std::max<qint64>(1, (last - first) / 400);
    const double colEnd = o.kvLen > 0 ? double(o.kvLen) : 1e300;
    const QColor red(255, 40, 40, 230);
    const QBrush tint(QColor(255, 40, 40, std::clamp(o.tint, 0, 255)));
    std::map<qint32, qint64> open;  // block -> first row of its current run
    auto close = [&](qint32 b, qint64 start, qint64 end) {
      const double c0 = double(b) * o.blockSize;
      const QRectF full(toWidget(double(start), c0),
                        toWidget(double(end), std::min(c0 + o.blockSize, colEnd)));
      const double wpx = full.width() * devScale, hpx = full.height() * devScale;
      // A block narrower than an output pixel is omitted: its outline would hide the data it
      // marks. Narrow ones are only tinted, or get a hairline; a one-row choice is only tinted.
      if (wpx < 1) return;
      const QRectF r = full.intersected(plot);
      if (r.isEmpty()) return;
      if (wpx < 4 || hpx < 4) {
        p.setPen(Qt::NoPen);
      } else if (wpx < 12) {
        p.setPen(QPen(red, 0));  // cosmetic: one output pixel at any scale
      } else {
        p.setPen(QPen(red, 1.4));
      }
      p.setBrush(tint);
      p.drawRect(r);
    };
    for (qint64 i = first; i < last; i += step) {
      const qint32* sel = o.selection.constData() + i * o.topK;
      for (auto it = open.begin(); it != open.end();) {
        if (std::find(sel, sel + o.topK, it->first) == sel + o.topK) {
          close(it->first, it->second, i);
          it = open.erase(it);
        } else {
          ++it;
        }
      }
      for (int t = 0; t < o.topK; ++t) {
        if (sel[t] >= 0 && !open.count(sel[t])) open[sel[t]] = i;
      }
    }
    for (auto [b, start] : open) close(b, start, last);
  }
  p.restore();
}

void HeatmapWidget::wheelEvent(QWheelEvent* e) {
  if (!interactive_ || extentRows_ <= 0) return;
  double row = 0, col = 0;
  if (!toMap(e->position(), row, col)) return;
  const double factor = e->angleDelta().y() > 0 ? 0.8 : 1.25;
  // Keep the cell under the cursor fixed while the region shrinks or grows around it.
  const double fr = (row - view_.row0) / view_.rows(), fc = (col - view_.col0) / view_.cols();
  const double nr = std::max<double>(kMinSpan, view_.rows() * factor);
  const double nc = std::max<double>(kMinSpan, view_.cols() * factor);
  view_.row0 = qint64(std::floor(row - fr * nr));
  view_.row1 = view_.row0 + qint64(std::ceil(nr));
  view_.col0 = qint64(std::floor(col - fc * nc));
  view_.col1 = view_.col0 + qint64(std::ceil(nc));
  clampView();
  update();
  emit viewRegionChanged(view_);
  e->accept();
}

void HeatmapWidget::mousePressEvent(QMouseEvent* e) {
  if (!interactive_ || e->button() != Qt::LeftButton) return;
  dragging_ = true;
  dragStart_ = e->position();
  dragView_ = view_;
  setCursor(Qt::ClosedHandCursor);
}

void HeatmapWidget::mouseMoveEvent(QMouseEvent* e) {
  const QRectF plot = plotRect();
  if (dragging_) {
    const QPointF d = e->position() - dragStart_;
    const qint64 dr = qint64(std::llround(-d.y() / plot.height() * dragView_.rows()));
    const qint64 dc = qint64(std::llround(-d.x() / plot.width() * dragView_.cols()));
    view_ = {dragView_.row0 + dr, dragView_.row1 + dr, dragView_.col0 + dc, dragView_.col1 + dc};
    clampView();
    update();
    return;
  }
  hoverPos_ = e->position();
  updateHover();
}

QString HeatmapWidget::hoverTextAt(double row, double col) const {
  const MapImage& m = map_;
  const Region& reg = m.region;
  if (!hasMap() || row < reg.row0 || row >= reg.row1 || col < reg.col0 || col >= reg.col1) {
    return {};
  }
  const int r = binOf(m.rowEdges, reg.row0, reg.rows(), m.rows, qint64(std::floor(row)));
  const int c = binOf(m.colEdges, reg.col0, reg.cols(), m.cols, qint64(std::floor(col)));
  const qint64 i0 = m.rowBegin(r), i1 = m.rowEnd(r), j0 = m.colBegin(c), j1 = m.colEnd(c);
  const QString value = formatMapValue(m.at(r, c));
  if (i1 - i0 <= 1 && j1 - j0 <= 1 && (rowTokens_ || colTokens_)) {
    auto side = [](const QString& word, const std::shared_ptr<const QStringList>& tokens,
                   qint64 k) {
      if (!tokens || k >= tokens->size()) return QStringLiteral("%1 %2").arg(word).arg(k);
      QString tok = visibleToken(tokens->at(qsizetype(k)));
      if (tok.size() > kHoverTokenChars) tok = tok.left(kHoverTokenChars - 1) + QChar(0x2026);
      // One multi-arg call: a token holding "%1" must not be substituted again.
      return QStringLiteral("%1 '%2' (%3)").arg(word, tok, QString::number(k));
    };
    return tr("%1 → %2: %3 = %4")
        .arg(side(tr("query"), rowTokens_, i0), side(tr("key"), colTokens_, j0), valueTitle_,
             value);
  }
  if (i1 - i0 <= 1 && j1 - j0 <= 1) {
    return tr("%1 = %2, %3 = %4, %5 = %6")
        .arg(rowTitle_)
        .arg(i0)
        .arg(colTitle_)
        .arg(j0)
        .arg(valueTitle_, value);
  }
  // A pooled value names its pooling and the cells it covers; the main window's status line keeps
  // everything before the double-space note.
  auto range = [](qint64 a, qint64 b) {
    return b - a <= 1 ? QString::number(a) : QStringLiteral("%1-%2").arg(a).arg(b - 1);
  };
  return tr("%1 = %2, %3 = %4, %5 = %6 (%7 %8x%9 cells)  (zoom in for exact values)")
      .arg(rowTitle_, range(i0, i1), colTitle_, range(j0, j1), valueTitle_, value, poolPhrase(m))
      .arg(i1 - i0)
      .arg(j1 - j0);
}

void HeatmapWidget::updateHover() {
  if (hoverPos_.x() < 0) return;  // the mouse is not over the widget (leaveEvent)
  double row = 0, col = 0;
  const QString text = toMap(hoverPos_, row, col) ? hoverTextAt(row, col) : QString();
  setToolTip(text);
  emit hoverText(text);
}

void HeatmapWidget::clearHover() {
  setToolTip({});
  emit hoverText({});
}

void HeatmapWidget::mouseReleaseEvent(QMouseEvent* e) {
  if (!dragging_) return;
  dragging_ = false;
  unsetCursor();
  if (!(view_ == dragView_)) emit viewRegionChanged(view_);
  (void)e;
}

void HeatmapWidget::mouseDoubleClickEvent(QMouseEvent*) {
  if (interactive_) resetZoom();
}

void HeatmapWidget::changeEvent(QEvent* e) {
  if (e->type() == QEvent::PaletteChange) {  // masked cells use the palette
    rebuildImage();
    if (exporting_) exportImage_ = colorize(exportMap_);  // an export on a white background
  }
  QWidget::changeEvent(e);
}

void HeatmapWidget::leaveEvent(QEvent*) {
  hoverPos_ = {-1, -1};
  emit hoverText({});
}

}  // namespace attnscope::gui
