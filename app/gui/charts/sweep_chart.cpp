// Drawing a sweep with Qt Charts. Everything that could vary between machines is pinned: the size
// (960 x 600 logical pixels), the theme, the palette (Okabe-Ito, colour-blind safe), the font
// (DejaVu Sans in pixel sizes, unhinted, so metrics do not depend on the screen's DPI), the axis
// ranges and tick counts (computed here, never left to the chart). Exports render the scene.
#include "charts/sweep_chart.hpp"

#include <QBuffer>
#include <QCoreApplication>
#include <QFileInfo>
#include <QFontMetricsF>
#include <QGraphicsLayout>
#include <QGraphicsScene>
#include <QGraphicsSimpleTextItem>
#include <QPageSize>
#include <QPainter>
#include <QPdfWriter>
#include <QSvgGenerator>
#include <QtCharts/QBarCategoryAxis>
#include <QtCharts/QBarSeries>
#include <QtCharts/QBarSet>
#include <QtCharts/QChart>
#include <QtCharts/QLegend>
#include <QtCharts/QLegendMarker>
#include <QtCharts/QLineSeries>
#include <QtCharts/QLogValueAxis>
#include <QtCharts/QScatterSeries>
#include <QtCharts/QValueAxis>
#include <algorithm>
#include <cmath>

#include "output_files.hpp"

namespace attnscope::gui::charts {
namespace {

constexpr int kFooterLine = 15;  // pixels per footer line
constexpr double kDefaultDpi = 96.0;

const QColor& paletteColor(int i) {
  // Okabe & Ito's colour-blind-safe set, yellow last (weak on white).
  static const QColor colors[] = {QColor(0x00, 0x72, 0xB2), QColor(0xD5, 0x5E, 0x00),
                                  QColor(0x00, 0x9E, 0x73), QColor(0xCC, 0x79, 0xA7),
                                  QColor(0xE6, 0x9F, 0x00), QColor(0x56, 0xB4, 0xE9),
                                  QColor(0x00, 0x00, 0x00), QColor(0xF0, 0xE4, 0x42)};
  return colors[std::max(0, i) % 8];
}

Qt::PenStyle backendDash(int i) {
  static const Qt::PenStyle styles[] = {Qt::SolidLine, Qt::DashLine, Qt::DotLine, Qt::DashDotLine};
  return styles[std::max(0, i) % 4];
}

// Marker shapes by variant: hollow, so coinciding points of two variants both stay visible.
QScatterSeries::MarkerShape variantShape(int i) {
  static const QScatterSeries::MarkerShape shapes[] = {
      QScatterSeries::MarkerShapeCircle,   QScatterSeries::MarkerShapeRectangle,
      QScatterSeries::MarkerShapeTriangle, QScatterSeries::MarkerShapeRotatedRectangle,
      QScatterSeries::MarkerShapePentagon, QScatterSeries::MarkerShapeStar};
  return shapes[std::max(0, i) % 6];
}

QFont chartFont(int pixels, bool bold = false) {
  QFont f(SweepChart::fontFamily());
  f.setStyleHint(QFont::SansSerif);
  f.setPixelSize(pixels);
  f.setBold(bold);
  f.setHintingPreference(QFont::PreferNoHinting);
  f.setKerning(true);
  return f;
}

const QColor kText(0x22, 0x22, 0x22);
const QColor kMuted(0x55, 0x55, 0x55);
const QColor kGrid(0xD9, 0xD9, 0xD9);
const QColor kMinorGrid(0xEF, 0xEF, 0xEF);

template <typename Axis>
void styleAxis(Axis* axis, const QString& title) {
  axis->setTitleText(title);
  axis->setTitleFont(chartFont(13));
  axis->setTitleBrush(kText);
  axis->setLabelsFont(chartFont(11));
  axis->setLabelsBrush(kText);
  axis->setLinePen(QPen(kMuted, 1));
  axis->setGridLinePen(QPen(kGrid, 1));
  axis->setMinorGridLinePen(QPen(kMinorGrid, 1));
  axis->setShadesVisible(false);
}

// A log axis over [lo, hi] with ticks at powers of `base` and a little room at both ends so that
// markers and whiskers at the extremes stay inside the plot.
QLogValueAxis* logAxis(double lo, double hi, double base, const QString& format, int minorTicks) {
  auto* axis = new QLogValueAxis;
  axis->setBase(base);
  const double l = std::log(lo) / std::log(base), h = std::log(hi) / std::log(base);
  const double pad = std::max(0.15, 0.04 * (h - l));
  axis->setRange(std::pow(base, l - pad), std::pow(base, h + pad));
  axis->setLabelFormat(format);
  axis->setMinorTickCount(minorTicks);
  return axis;
}

// A linear axis from 0 (or below, if a value is negative) to a round number above `hi`, with
// 1-2-2.5-5 steps and about six ticks.
QValueAxis* linearAxis(double hi) {
  if (!(hi > 0) || !std::isfinite(hi)) hi = 1;
  const double raw = hi / 5.0;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  const double nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
  const double step = nice * mag;
  const int steps = std::max(1, int(std::ceil(hi * 1.0001 / step)));
  auto* axis = new QValueAxis;
  axis->setRange(0, steps * step);
  axis->setTickCount(steps + 1);
  int decimals = std::max(0, int(-std::floor(std::log10(step) + 1e-9)));
  if (nice == 2.5 && step < 10) ++decimals;
  axis->setLabelFormat(QStringLiteral("%.%1f").arg(decimals));
  axis->setMinorTickCount(0);
  return axis;
}

void hideFromLegend(QChart* chart, QAbstractSeries* series) {
  for (QLegendMarker* m : chart->legend()->markers(series)) m->setVisible(false);
}

QString describeForMetadata(const ChartData& d) {
  QStringList parts;
  parts << QStringLiteral("attnscope chart: kind=%1 style=%2")
               .arg(chartKindName(d.kind), chartStyleName(d.style));
  parts << d.footer;
  return parts.join(QStringLiteral("\n"));
}

}  // namespace

QString SweepChart::fontFamily() {
  return QStringLiteral("DejaVu Sans");
}

SweepChart::SweepChart() : scene_(std::make_unique<QGraphicsScene>()) {
  scene_->setSceneRect(0, 0, kWidth, kHeight);
  scene_->setBackgroundBrush(Qt::white);
  setSweep(SweepResult{}, ChartOptions{});
}

SweepChart::~SweepChart() = default;

QString SweepChart::setSweep(const SweepResult& sweep, const ChartOptions& options) {
  options_ = options;
  error_ = buildChartData(sweep, options, data_);
  build();
  return error_;
}

void SweepChart::build() {
  if (chart_) {
    scene_->removeItem(chart_);
    delete chart_;
    chart_ = nullptr;
  }
  chart_ = new QChart;
  chart_->setTheme(QChart::ChartThemeLight);
  chart_->setAnimationOptions(QChart::NoAnimation);
  chart_->setLocalizeNumbers(false);
  chart_->setDropShadowEnabled(false);
  chart_->setBackgroundRoundness(0);
  chart_->setBackgroundBrush(Qt::white);
  chart_->setBackgroundPen(Qt::NoPen);
  chart_->setPlotAreaBackgroundVisible(false);
  chart_->setTitle(data_.title);
  chart_->setTitleFont(chartFont(18, true));
  chart_->setTitleBrush(kText);
  chart_->setMargins(QMargins(6, 2, 10, 6 + kFooterLine * int(data_.footer.size())));
  QLegend* legend = chart_->legend();
  legend->setAlignment(Qt::AlignRight);
  legend->setFont(chartFont(12));
  legend->setLabelColor(kText);
  legend->setBackgroundVisible(false);
  legend->setShowToolTips(false);
  legend->setMarkerShape(QLegend::MarkerShapeFromSeries);
  scene_->addItem(chart_);
  chart_->setGeometry(QRectF(0, 0, kWidth, kHeight));

  if (!error_.isEmpty()) {
    legend->setVisible(false);
    addMessage(error_);
  } else if (data_.style == ChartStyle::bar) {
    buildBar();
  } else {
    buildLine();
  }
  addFooter();
  settle();
}

void SweepChart::buildLine() {
  double xlo = double(data_.seqLens.front()), xhi = double(data_.seqLens.back());
  double ylo = INFINITY, yhi = 0;
  for (const DataSeries& s : data_.series) {
    for (const DataPoint& p : s.points) {
      ylo = std::min(ylo, std::min(p.low, p.value));
      yhi = std::max(yhi, std::max(p.high, p.value));
    }
  }
  if (xhi <= xlo) {  // one length: one octave of room either side
    xlo /= 2;
    xhi *= 2;
  }
  const double octaves = std::log2(xhi / xlo);
  auto* x = logAxis(xlo, xhi,
                    octaves <= 12   ? 2
                    : octaves <= 24 ? 4
                                    : 16,
                    QStringLiteral("%.0f"), 0);
  styleAxis(x, data_.xTitle);
  QAbstractAxis* y = nullptr;
  if (data_.logY) {
    // The data's own range when it holds at least two powers of ten (labels sit on those), else
    // the decades around it.
    double lo = ylo, hi = yhi;
    if (std::floor(std::log10(yhi)) - std::ceil(std::log10(ylo)) < 1) {
      lo = std::pow(10.0, std::floor(std::log10(ylo)));
      hi = std::max(std::pow(10.0, std::ceil(std::log10(yhi))), lo * 10);
    }
    auto* axis = logAxis(lo, hi, 10, QStringLiteral("%g"), 8);
    styleAxis(axis, data_.yTitle);
    y = axis;
  } else {
    auto* axis = linearAxis(std::max(yhi, data_.baselineOne ? 1.0 : 0.0) * 1.08);
    styleAxis(axis, data_.yTitle);
    y = axis;
  }
  chart_->addAxis(x, Qt::AlignBottom);
  chart_->addAxis(y, Qt::AlignLeft);

  // Whisker caps: a fixed fraction of an octave wide, so they look the same at every length.
  const double cap = std::pow(2.0, 0.07);
  for (const DataSeries& s : data_.series) {
    const QColor color = paletteColor(s.variantIndex);
    auto* line = new QLineSeries;
    line->setPen(QPen(color, 2.0, backendDash(s.backendIndex), Qt::RoundCap, Qt::RoundJoin));
    auto* markers = new QScatterSeries;  // the legend entry: colour and shape of the variant
    markers->setName(s.name);
    markers->setMarkerShape(variantShape(s.variantIndex));
    markers->setMarkerSize(10);
    markers->setPen(QPen(color, 1.8));
    markers->setBrush(Qt::white);
    for (const DataPoint& p : s.points) {
      line->append(double(p.seqLen), p.value);
      markers->append(double(p.seqLen), p.value);
    }
    for (QXYSeries* series : {static_cast<QXYSeries*>(line), static_cast<QXYSeries*>(markers)}) {
      chart_->addSeries(series);
      series->attachAxis(x);
      series->attachAxis(y);
    }
    hideFromLegend(chart_, line);
    for (const DataPoint& p : s.points) {
      if (!(p.high > p.low) || !(p.low > 0)) continue;
      const double L = double(p.seqLen);
      auto* whisker = new QLineSeries;
      whisker->setPen(QPen(color, 1.2, Qt::SolidLine, Qt::FlatCap, Qt::MiterJoin));
      whisker->append({{L / cap, p.low},
                       {L * cap, p.low},
                       {L, p.low},
                       {L, p.high},
                       {L / cap, p.high},
                       {L * cap, p.high}});
      chart_->addSeries(whisker);
      whisker->attachAxis(x);
      whisker->attachAxis(y);
      hideFromLegend(chart_, whisker);
    }
  }
  if (data_.baselineOne) {
    auto* base = new QLineSeries;
    base->setName(QObject::tr("dense = 1×"));
    base->setPen(QPen(kMuted, 1.4, Qt::DashLine));
    const auto* lx = static_cast<QLogValueAxis*>(x);
    base->append(lx->min(), 1.0);
    base->append(lx->max(), 1.0);
    chart_->addSeries(base);
    base->attachAxis(x);
    base->attachAxis(y);
  }
}

void SweepChart::buildBar() {
  chart_->legend()->setMarkerShape(QLegend::MarkerShapeRectangle);  // filled, like the bars
  auto* bars = new QBarSeries;
  bars->setBarWidth(0.8);
  double yhi = 0;
  for (const DataSeries& s : data_.series) {
    auto* set = new QBarSet(s.name);
    const QColor color = paletteColor(s.variantIndex).lighter(100 + 40 * s.backendIndex);
    set->setColor(color);
    set->setBorderColor(color.darker(130));
    for (int64_t L : data_.seqLens) {
      const auto it = std::find_if(s.points.begin(), s.points.end(),
                                   [L](const DataPoint& p) { return p.seqLen == L; });
      const double v = it == s.points.end() ? 0.0 : it->value;
      set->append(v);
      yhi = std::max(yhi, v);
    }
    bars->append(set);
  }
  chart_->addSeries(bars);
  auto* x = new QBarCategoryAxis;
  QStringList categories;
  for (int64_t L : data_.seqLens) categories << QString::number(L);
  x->append(categories);
  styleAxis(x, data_.xTitle);
  x->setGridLineVisible(false);
  auto* y = linearAxis(std::max(yhi, data_.baselineOne ? 1.0 : 0.0) * 1.08);
  styleAxis(y, data_.yTitle);
  chart_->addAxis(x, Qt::AlignBottom);
  chart_->addAxis(y, Qt::AlignLeft);
  bars->attachAxis(x);
  bars->attachAxis(y);
  if (data_.baselineOne) {
    auto* base = new QLineSeries;
    base->setName(QObject::tr("dense = 1×"));
    base->setPen(QPen(kMuted, 1.4, Qt::DashLine));
    base->append(-0.5, 1.0);
    base->append(double(data_.seqLens.size()) - 0.5, 1.0);
    chart_->addSeries(base);
    base->attachAxis(x);
    base->attachAxis(y);
    for (QLegendMarker* m : chart_->legend()->markers(base)) {
      m->setShape(QLegend::MarkerShapeFromSeries);
    }
  }
}

void SweepChart::addFooter() {
  const QFont font = chartFont(10);
  const QFontMetricsF metrics(font);
  const int lines = int(data_.footer.size());
  for (int i = 0; i < lines; ++i) {
    auto* item = new QGraphicsSimpleTextItem(chart_);
    item->setFont(font);
    item->setBrush(kMuted);
    item->setText(metrics.elidedText(data_.footer[i], Qt::ElideRight, kWidth - 24));
    item->setPos(12, kHeight - 4 - kFooterLine * (lines - i));
  }
}

void SweepChart::addMessage(const QString& text) {
  auto* item = new QGraphicsSimpleTextItem(chart_);
  const QFont font = chartFont(15);
  item->setFont(font);
  item->setBrush(kMuted);
  const QFontMetricsF metrics(font);
  item->setText(metrics.elidedText(text, Qt::ElideRight, kWidth - 80));
  const QRectF r = item->boundingRect();
  item->setPos(std::round((kWidth - r.width()) / 2), std::round((kHeight - r.height()) / 2));
}

void SweepChart::settle() const {
  // Qt Charts lays out on posted LayoutRequest events; deliver them now so every rendering (and
  // the first paint on screen) sees the finished layout, whether or not an event loop runs.
  if (chart_->layout()) chart_->layout()->activate();
  QCoreApplication::sendPostedEvents(chart_, QEvent::LayoutRequest);
  QCoreApplication::sendPostedEvents(nullptr, QEvent::LayoutRequest);
}

QImage SweepChart::toImage(int dpi) const {
  dpi = std::clamp(dpi, kMinDpi, kMaxDpi);
  const double scale = dpi / kDefaultDpi;
  const QSize pixels(int(std::lround(kWidth * scale)), int(std::lround(kHeight * scale)));
  QImage image(pixels, QImage::Format_ARGB32_Premultiplied);
  if (image.isNull()) return {};  // out of memory: painting into it would crash inside Qt
  image.fill(Qt::white);
  image.setDotsPerMeterX(int(std::lround(dpi / 0.0254)));
  image.setDotsPerMeterY(int(std::lround(dpi / 0.0254)));
  settle();
  QPainter p;
  if (!p.begin(&image)) return {};
  p.setRenderHints(QPainter::Antialiasing | QPainter::TextAntialiasing |
                   QPainter::SmoothPixmapTransform);
  scene_->render(&p, QRectF(QPointF(0, 0), QSizeF(pixels)), scene_->sceneRect());
  p.end();
  return image;
}

QByteArray SweepChart::toSvg() const {
  QBuffer buffer;
  buffer.open(QIODevice::WriteOnly);
  QSvgGenerator svg;
  svg.setOutputDevice(&buffer);
  svg.setSize(logicalSize());
  svg.setViewBox(QRect(QPoint(0, 0), logicalSize()));
  svg.setResolution(int(kDefaultDpi));
  svg.setTitle(data_.title);
  svg.setDescription(describeForMetadata(data_));
  settle();
  QPainter p;
  if (!p.begin(&svg)) return {};
  p.setRenderHints(QPainter::Antialiasing | QPainter::TextAntialiasing);
  scene_->render(&p, QRectF(0, 0, kWidth, kHeight), scene_->sceneRect());
  p.end();
  return buffer.data();
}

QByteArray SweepChart::toPdf(int dpi) const {
  dpi = std::clamp(dpi, kMinDpi, kMaxDpi);
  QBuffer buffer;
  buffer.open(QIODevice::WriteOnly);
  {
    QPdfWriter pdf(&buffer);
    pdf.setResolution(dpi);
    pdf.setTitle(data_.title);
    pdf.setCreator(QStringLiteral("attnscope"));
    // One page of the chart's size at 96 logical pixels per inch, no margins.
    pdf.setPageSize(QPageSize(QSizeF(kWidth * 72.0 / kDefaultDpi, kHeight * 72.0 / kDefaultDpi),
                              QPageSize::Point, QString(), QPageSize::ExactMatch));
    pdf.setPageMargins(QMarginsF(0, 0, 0, 0));
    settle();
    QPainter p;
    if (!p.begin(&pdf)) return {};
    p.setRenderHints(QPainter::Antialiasing | QPainter::TextAntialiasing);
    const double scale = double(pdf.width()) / kWidth;
    p.scale(scale, scale);
    scene_->render(&p, QRectF(0, 0, kWidth, kHeight), scene_->sceneRect());
    p.end();
  }
  return buffer.data();
}

QString SweepChart::render(const QString& path, int dpi, QByteArray& bytes) const {
  bytes.clear();
  if (!error_.isEmpty()) return error_;
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (dpi < kMinDpi || dpi > kMaxDpi) {
    return QObject::tr("dpi must be between %1 and %2 (got %3)").arg(kMinDpi).arg(kMaxDpi).arg(dpi);
  }
  if (suffix == QLatin1String("png")) {
    QImage image = toImage(dpi);
    if (image.isNull()) {
      return QObject::tr("cannot render the chart at %1 dpi: not enough memory for the image")
          .arg(dpi);
    }
    image.setText(QStringLiteral("Title"), data_.title);
    image.setText(QStringLiteral("Software"), QStringLiteral("attnscope"));
    image.setText(QStringLiteral("Description"), describeForMetadata(data_));
    QBuffer buffer(&bytes);
    buffer.open(QIODevice::WriteOnly);
    if (!image.save(&buffer, "PNG")) return QObject::tr("cannot encode the PNG image");
  } else if (suffix == QLatin1String("svg")) {
    bytes = toSvg();
  } else if (suffix == QLatin1String("pdf")) {
    bytes = toPdf(dpi);
  } else {
    return QObject::tr("unknown chart format '%1' (use .png, .svg or .pdf)")
        .arg(suffix.isEmpty() ? path : QStringLiteral(".") + suffix);
  }
  if (bytes.isEmpty()) return QObject::tr("cannot render the chart as .%1").arg(suffix);
  return {};
}

QString SweepChart::save(const QString& path, int dpi) const {
  QByteArray bytes;
  if (QString e = render(path, dpi, bytes); !e.isEmpty()) return e;
  return writeOutputFile(path, bytes);
}

}  // namespace attnscope::gui::charts
