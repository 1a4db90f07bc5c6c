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

QString formatValue(double v) {
  if (std::isnan(v)) return QObject::tr("masked");
  if (v == 0) return QStringLiteral("0");
  const double a = std::abs(v);
  return QString::number(v, 'g', a >= 1e-3 && a < 1e4 ? 4 : 3);
}
}  // namespace

HeatmapWidget::HeatmapWidget(QWidget* parent) : QWidget(parent) {
  setMouseTracking(true);
  setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
  setFocusPolicy(Qt::ClickFocus);
}

void HeatmapWidget::setMap(const MapImage& map) {
  map_ = map;
  message_.clear();
  rebuildImage();
  update();
}

void HeatmapWidget::clearMap(const QString& message) {
  map_ = {};
  image_ = {};
  message_ = message;
  update();
}

void HeatmapWidget::setExtent(qint64 rows, qint64 cols) {
  if (rows == extentRows_ && cols == extentCols_) return;
  extentRows_ = rows;
  extentCols_ = cols;
  view_ = {0, rows, 0, cols};
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

void HeatmapWidget::setDiverging(bool on) {
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

QRectF HeatmapWidget::plotRect() const {
  const QFontMetrics fm(font());
  const double left = compact_ ? 4 : fm.horizontalAdvance(QStringLiteral("000000")) + fm.height();
  const double top = fm.height() + 8;
  const double bottom = compact_ ? 4 : 2 * fm.height() + 8;
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
    scale_.vmin = -m;
    scale_.vmax = m;
  } else {
    scale_.vmin = std::min(0.0, lo);
    scale_.vmax = hi > scale_.vmin ? hi : scale_.vmin + 1e-12;
  }
  const Colormap& cm = Colormap::get(colormap_);
  image_ = QImage(map_.cols, map_.rows, QImage::Format_RGB32);
  const QRgb maskedColor = palette().color(QPalette::Window).darker(112).rgb();
  for (int r = 0; r < map_.rows; ++r) {
    auto* line = reinterpret_cast<QRgb*>(image_.scanLine(r));
    for (int c = 0; c < map_.cols; ++c) {
      const float v = map_.values[r * map_.cols + c];
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
}

void HeatmapWidget::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), palette().window());
  const QRectF plot = plotRect();
  p.setPen(palette().color(QPalette::WindowText));
  QFont titleFont = font();
  titleFont.setBold(true);
  if (compact_) titleFont.setPointSizeF(font().pointSizeF() * 0.9);
  p.setFont(titleFont);
  p.drawText(QRectF(0, 0, width(), plot.top() - 2), Qt::AlignCenter,
             QFontMetrics(titleFont).elidedText(title_, Qt::ElideRight, width() - 4));
  p.setFont(font());
  p.fillRect(plot, palette().base());
  if (image_.isNull()) {
    p.drawText(plot.adjusted(8, 8, -8, -8), Qt::AlignCenter | Qt::TextWordWrap,
               message_.isEmpty() ? tr("computing…") : message_);
    return;
  }
  p.save();
  p.setClipRect(plot);
  const QRectF target(toWidget(map_.region.row0, map_.region.col0),
                      toWidget(map_.region.row1, map_.region.col1));
  p.setRenderHint(QPainter::SmoothPixmapTransform, false);
  p.drawImage(target, image_);
  if (overlaysVisible_) drawOverlays(p);
  p.restore();
  p.setPen(palette().color(QPalette::Mid));
  p.drawRect(plot);
  if (!compact_) {
    drawAxes(p, plot);
    drawLegend(p, plot);
  }
}

void HeatmapWidget::drawAxes(QPainter& p, const QRectF& plot) const {
  const QFontMetrics fm(font());
  p.setPen(palette().color(QPalette::WindowText));
  const int ticks = 4;
  for (int t = 0; t <= ticks; ++t) {
    const double f = double(t) / ticks;
    const qint64 row = view_.row0 + qint64(std::llround(f * (view_.rows() - 1)));
    const qint64 col = view_.col0 + qint64(std::llround(f * (view_.cols() - 1)));
    const double y = plot.top() + f * plot.height();
    const double x = plot.left() + f * plot.width();
    p.drawLine(QPointF(plot.left() - 4, y), QPointF(plot.left(), y));
    p.drawLine(QPointF(x, plot.bottom()), QPointF(x, plot.bottom() + 4));
    const QString rl = QString::number(row), cl = QString::number(col);
    p.drawText(QRectF(0, y - fm.height() / 2.0, plot.left() - 6, fm.height()),
               Qt::AlignRight | Qt::AlignVCenter, rl);
    p.drawText(QRectF(x - 40, plot.bottom() + 5, 80, fm.height()), Qt::AlignCenter, cl);
  }
  p.drawText(QRectF(plot.left(), plot.bottom() + 5 + fm.height(), plot.width(), fm.height()),
             Qt::AlignCenter, colTitle_);
  p.save();
  p.translate(fm.height() * 0.5, plot.center().y());
  p.rotate(-90);
  p.drawText(QRectF(-plot.height() / 2, -fm.height() / 2.0, plot.height(), fm.height()),
             Qt::AlignCenter, rowTitle_);
  p.restore();
}

void HeatmapWidget::drawLegend(QPainter& p, const QRectF& plot) const {
  const QFontMetrics fm(font());
  const QRectF bar(plot.right() + 10, plot.top(), 14, plot.height());
  const Colormap& cm = Colormap::get(colormap_);
  for (int y = 0; y < int(bar.height()); ++y) {
    const double t = 1.0 - y / std::max(1.0, bar.height() - 1);
    const QRgb c = diverging_ ? diverging(2 * t - 1) : cm.at(t);
    p.setPen(QColor(c));
    p.drawLine(QPointF(bar.left(), bar.top() + y), QPointF(bar.right(), bar.top() + y));
  }
  p.setPen(palette().color(QPalette::WindowText));
  p.drawRect(bar);
  for (int t = 0; t <= 4; ++t) {
    const double f = t / 4.0;
    double v = diverging_ ? scale_.vmin + f * (scale_.vmax - scale_.vmin) : scale_.valueAt(f);
    if (!diverging_ && scale_.mode == ScaleMode::log && scale_.vmin < 0) {
      v = scale_.vmin + f * (scale_.vmax - scale_.vmin);
    }
    const double y = bar.bottom() - f * bar.height();
    p.drawLine(QPointF(bar.right(), y), QPointF(bar.right() + 3, y));
    p.drawText(QRectF(bar.right() + 5, y - fm.height() / 2.0, 100, fm.height()),
               Qt::AlignLeft | Qt::AlignVCenter, formatValue(v));
  }
  QString caption = valueTitle_;
  if (!diverging_ && scale_.mode == ScaleMode::log) caption += tr(" (log)");
  p.drawText(QRectF(bar.left() - 4, bar.bottom() + 6 + fm.height(), 100, fm.height()),
             Qt::AlignLeft, caption);
}

void HeatmapWidget::drawOverlays(QPainter& p) const {
  const MapOverlays& o = overlays_;
  p.setRenderHint(QPainter::Antialiasing, true);
  const qint64 offset = o.kvLen - o.qLen;  // bottom-right alignment
  const double r0 = view_.row0, r1 = view_.row1;
  // The causal edge borders the (light or dark) masked area: draw it in the text colour.
  QColor edge = palette().color(QPalette::WindowText);
  edge.setAlpha(200);
  QPen pen(edge, 1.4, Qt::DashLine);
  p.setPen(pen);
  if (o.causal && o.qLen > 0) {
    // Keys j <= p are visible: the edge runs just right of the diagonal.
    p.drawLine(toWidget(r0, r0 + offset + 1), toWidget(r1, r1 + offset + 1));
  }
  if (o.window > 0 && o.qLen > 0) {
    pen.setColor(QColor(255, 170, 0, 230));
    p.setPen(pen);
    p.drawLine(toWidget(r0, r0 + offset - o.window + 1), toWidget(r1, r1 + offset - o.window + 1));
  }
  if (o.sinks > 0) {
    pen.setColor(QColor(255, 90, 200, 230));
    p.setPen(pen);
    p.drawLine(toWidget(r0, double(o.sinks)), toWidget(r1, double(o.sinks)));
  }
  if (o.blockSize > 0 && o.topK > 0 && !o.selection.isEmpty()) {
    // Selected key blocks: consecutive (sampled) query rows choosing the same block merge into
    // one outlined strip, so the routing reads as shapes instead of tinting the data.
    const qint64 rows = o.selection.size() / o.topK;
    const qint64 first = std::max<qint64>(0, view_.row0), last = std::min<qint64>(rows, view_.row1);
    const qint64 step = std::max<qint64>(1, (last - first) / 400);
    const double colEnd = o.kvLen > 0 ? double(o.kvLen) : 1e300;
    const QPen outline(QColor(255, 40, 40, 230), 1.4);
    const QBrush tint(QColor(255, 40, 40, 45));
    std::map<qint32, qint64> open;  // block -> first row of its current run
    auto close = [&](qint32 b, qint64 start, qint64 end) {
      const double c0 = double(b) * o.blockSize;
      const QRectF r(toWidget(double(start), c0),
                     toWidget(double(end), std::min(c0 + o.blockSize, colEnd)));
      // Long runs get an outline; a one-row choice is only tinted, or the outlines hide the data.
      p.setPen(r.height() >= 4 ? outline : Qt::NoPen);
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
  double row = 0, col = 0;
  if (!hasMap() || !toMap(e->position(), row, col)) {
    emit hoverText({});
    return;
  }
  const Region& reg = map_.region;
  if (row < reg.row0 || row >= reg.row1 || col < reg.col0 || col >= reg.col1) return;
  const int r = std::clamp(int((row - reg.row0) / reg.rows() * map_.rows), 0, map_.rows - 1);
  const int c = std::clamp(int((col - reg.col0) / reg.cols() * map_.cols), 0, map_.cols - 1);
  QString text = tr("%1 = %2, %3 = %4, %5 = %6")
                     .arg(rowTitle_)
                     .arg(qint64(row))
                     .arg(colTitle_)
                     .arg(qint64(col))
                     .arg(valueTitle_, formatValue(map_.at(r, c)));
  if (map_.pooled()) {
    text += tr("  (pooled %1 x %2 cell; zoom in for exact values)")
                .arg(double(reg.rows()) / map_.rows, 0, 'g', 3)
                .arg(double(reg.cols()) / map_.cols, 0, 'g', 3);
  }
  setToolTip(text);
  emit hoverText(text);
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
  if (e->type() == QEvent::PaletteChange) rebuildImage();  // masked cells use the palette
  QWidget::changeEvent(e);
}

void HeatmapWidget::leaveEvent(QEvent*) {
  emit hoverText({});
}

}  // namespace attnscope::gui
