// Figures for a paper and an honest map: exports at the exported resolution on white, overlays
// inside the plot, round ticks, pooling named wherever a pooled value appears, and a map whose
// title, axes and extent describe what is drawn (stale pictures greyed and labelled).
#include <QBuffer>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QPainter>
#include <QRegularExpression>
#include <QSvgGenerator>
#include <QTest>
#include <QXmlStreamReader>
#include <cmath>
#include <functional>

#include "exporter.hpp"
#include "gui_test_support.hpp"
#include "heatmap_widget.hpp"
#include "views/attention_map_view.hpp"

using namespace attnscope;
using namespace attnscope::gui;

namespace {

// Every point of the SVG's line and path geometry drawn with `keep(group attributes)`, in the
// document's coordinates (the enclosing <g>'s matrix applied).
QVector<QPointF> svgPoints(const QByteArray& svg,
                           const std::function<bool(const QXmlStreamAttributes&)>& keep) {
  QVector<QPointF> out;
  QXmlStreamReader xml(svg);
  QVector<QXmlStreamAttributes> groups;
  QVector<QTransform> transforms{QTransform()};
  const QRegularExpression number(QStringLiteral("-?[0-9]*\\.?[0-9]+(?:e-?[0-9]+)?"));
  auto numbers = [&](const QString& s) {
    QVector<double> v;
    for (auto it = number.globalMatch(s); it.hasNext();)
      v.push_back(it.next().captured().toDouble());
    return v;
  };
  while (!xml.atEnd()) {
    const auto token = xml.readNext();
    if (token == QXmlStreamReader::StartElement) {
      const QString name = xml.name().toString();
      const QXmlStreamAttributes a = xml.attributes();
      if (name == QLatin1String("g")) {
        QTransform t = transforms.back();
        const QString m = a.value(QStringLiteral("transform")).toString();
        if (m.startsWith(QLatin1String("matrix("))) {
          const QVector<double> v = numbers(m);
          if (v.size() == 6) t = QTransform(v[0], v[1], v[2], v[3], v[4], v[5]) * t;
        }
        groups.push_back(a);
        transforms.push_back(t);
        continue;
      }
      if (groups.isEmpty() || !keep(groups.back())) continue;
      QVector<double> v;
      if (name == QLatin1String("polyline") || name == QLatin1String("polygon")) {
        v = numbers(a.value(QStringLiteral("points")).toString());
      } else if (name == QLatin1String("path")) {
        v = numbers(a.value(QStringLiteral("d")).toString());
      } else if (name == QLatin1String("rect")) {
        const double x = a.value(QStringLiteral("x")).toDouble();
        const double y = a.value(QStringLiteral("y")).toDouble();
        const double w = a.value(QStringLiteral("width")).toDouble();
        const double h = a.value(QStringLiteral("height")).toDouble();
        v = {x, y, x + w, y + h};
      } else if (name == QLatin1String("line")) {
        v = {a.value(QStringLiteral("x1")).toDouble(), a.value(QStringLiteral("y1")).toDouble(),
             a.value(QStringLiteral("x2")).toDouble(), a.value(QStringLiteral("y2")).toDouble()};
      }
      for (qsizetype k = 0; k + 1 < v.size(); k += 2) {
        out.push_back(transforms.back().map(QPointF(v[k], v[k + 1])));
      }
    } else if (token == QXmlStreamReader::EndElement && xml.name() == QLatin1String("g")) {
      groups.pop_back();
      transforms.pop_back();
    }
  }
  return out;
}

QByteArray renderSvg(QWidget* w) {
  QByteArray bytes;
  QBuffer buffer(&bytes);
  buffer.open(QIODevice::WriteOnly);
  QSvgGenerator svg;
  svg.setOutputDevice(&buffer);
  svg.setSize(w->size());
  svg.setViewBox(QRect(QPoint(0, 0), w->size()));
  QPainter p(&svg);
  w->render(&p);
  p.end();
  return bytes;
}

bool isPowerOf(qint64 v, qint64 base) {
  if (v < 1) return false;
  while (v % base == 0) v /= base;
  return v == 1;
}

// A map of `rows x cols` cells over the whole `extent x extent` map with distinct values.
MapImage gradientMap(int rows, int cols, qint64 extent) {
  MapImage m;
  m.rows = rows;
  m.cols = cols;
  m.region = {0, extent, 0, extent};
  m.values.resize(rows * cols);
  for (int i = 0; i < rows * cols; ++i) m.values[i] = float(1 + i % 97) / 97.0f;
  return m;
}

}  // namespace

class TestGuiFigures : public QObject {
  Q_OBJECT

  MainWindow* window_ = nullptr;

  AttentionMapView* mapView() const {
    return static_cast<AttentionMapView*>(window_->view(ViewKind::map));
  }
  bool show(const Workload& w) {
    window_->setCurrentView(ViewKind::map);
    window_->setWorkload(w);
    return waitUntilSettled(*window_, 60000) && window_->lastError().isEmpty();
  }

 private slots:
  void initTestCase() {
    window_ = new MainWindow(MainWindow::Options{false, false});
    window_->resize(1100, 760);
    window_->show();
  }
  void cleanupTestCase() { delete window_; }

  // A 300-dpi PNG of a long map: the image has 300/96 pixels per widget pixel, its plot is drawn
  // from a map probed at that resolution (adjacent pixel rows differ; a screen map enlarged would
  // repeat rows in blocks), and on a white background when asked even in a dark palette.
  void png300DpiRendersMapAtExportResolutionOnWhite() {
    Workload w = test::smallWorkload(VariantId::dense);
    w.problem.shape.q_len = w.problem.shape.kv_len = 4096;
    w.pattern = QStringLiteral("random");
    w.problem.causal = false;
    QVERIFY(show(w));
    AttentionMapView* v = mapView();
    v->setScaleMode(ScaleMode::log);
    QWidget* figure = v->figure();
    QCOMPARE(figure, static_cast<QWidget*>(v->heatmap()));
    QVERIFY(v->heatmap()->map().pooled());  // the screen's map has fewer cells than 4096

    QPalette dark = figure->palette();
    dark.setColor(QPalette::Window, QColor(45, 45, 48));
    dark.setColor(QPalette::Base, QColor(30, 30, 32));
    figure->setPalette(dark);
    const QString path = test::scratchDir() + "/figure300.png";
    QFile::remove(path);
    QVERIFY2(window_->exportFigureTo(path, 300, true).isEmpty(), qPrintable(window_->lastError()));
    QImage img(path);
    QVERIFY(!img.isNull());
    const double scale = 300.0 / 96.0;
    QCOMPARE(img.width(), int(std::lround(figure->width() * scale)));
    QCOMPARE(img.height(), int(std::lround(figure->height() * scale)));
    QCOMPARE(img.pixel(1, 1), qRgb(255, 255, 255));
    QCOMPARE(img.pixel(img.width() - 2, img.height() - 2), qRgb(255, 255, 255));
    // The palette on screen is back after the export.
    QCOMPARE(figure->palette().color(QPalette::Window), QColor(45, 45, 48));
    figure->setPalette(QPalette());
    QVERIFY(v->heatmap()->map().pooled());  // and the screen's own map too

    // Inside the plot (a margin kept from its edges): count adjacent pixel rows that are equal.
    const QRectF plot = v->heatmap()->plotArea();
    const QRect inner(int(std::ceil((plot.left() + plot.width() * 0.1) * scale)),
                      int(std::ceil((plot.top() + plot.height() * 0.1) * scale)),
                      int(plot.width() * 0.8 * scale), int(plot.height() * 0.8 * scale));
    int equal = 0;
    for (int y = inner.top(); y < inner.bottom(); ++y) {
      bool same = true;
      for (int x = inner.left(); x < inner.right() && same; ++x) {
        same = img.pixel(x, y) == img.pixel(x, y + 1);
      }
      equal += same ? 1 : 0;
    }
    const int pairs = inner.height() - 1;
    QVERIFY2(equal * 20 < pairs,  // under 5 %; an enlarged 768-cell map repeats over half
             qPrintable(QStringLiteral("%1 of %2 adjacent rows equal").arg(equal).arg(pairs)));
  }

  // The PDF's title names the view and variant; the configuration is not in the Creator field.
  void pdfTitleIsShort() {
    const QString path = test::scratchDir() + "/figure.pdf";
    QVERIFY(window_->exportFigureTo(path, 150).isEmpty());
    QFile f(path);
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QByteArray pdf = f.readAll();
    // Qt writes the info strings as UTF-16BE with a byte-order mark.
    auto utf16 = [](const QString& s) {
      QByteArray b;
      for (QChar c : s) {
        b.append(char(c.unicode() >> 8));
        b.append(char(c.unicode() & 0xff));
      }
      return b;
    };
    const int title = pdf.indexOf("/Title");
    QVERIFY(title >= 0);
    const int creator = pdf.indexOf("/Creator");
    QVERIFY(creator >= 0);
    const QByteArray titleText = pdf.mid(title, 200);
    QVERIFY(titleText.contains(utf16(QStringLiteral("Attention map"))));
    QVERIFY(titleText.contains(utf16(QStringLiteral("Dense"))) ||
            titleText.contains(utf16(QStringLiteral("dense"))));
    const QByteArray creatorText = pdf.mid(creator, 400);
    QVERIFY(creatorText.contains(utf16(QStringLiteral("attnscope"))));
    QVERIFY(!creatorText.contains(utf16(QStringLiteral("workload"))));
  }

  // CSV and JSON state the pooling and each cell's extent.
  void dataExportsStatePoolingAndExtents() {
    QVERIFY(mapView()->heatmap()->map().pooled());
    const QString csv = test::scratchDir() + "/figure.csv";
    QVERIFY(window_->exportDataTo(csv).isEmpty());
    QFile f(csv);
    QVERIFY(f.open(QIODevice::ReadOnly | QIODevice::Text));
    const QStringList lines = QString::fromUtf8(f.readAll()).split('\n', Qt::SkipEmptyParts);
    const int header = int(lines.indexOf("row_start,row_end,col_start,col_end,pooling,value"));
    QVERIFY(header > 0);
    QVERIFY(lines[header - 1].contains("pooling: max"));
    const QStringList cell = lines[header + 1].split(',');
    QCOMPARE(cell.size(), 6);
    QCOMPARE(cell[0].toLongLong(), 0);
    QVERIFY(cell[1].toLongLong() > 1);  // a pooled cell covers several rows
    QVERIFY(cell[3].toLongLong() > 1);
    QCOMPARE(cell[4], QString("max"));
    const QStringList next = lines[header + 2].split(',');
    QCOMPARE(next[2], cell[3]);  // the next cell starts where this one ends

    const QString json = test::scratchDir() + "/figure.json";
    QVERIFY(window_->exportDataTo(json).isEmpty());
    QFile g(json);
    QVERIFY(g.open(QIODevice::ReadOnly));
    const QJsonObject m = QJsonDocument::fromJson(g.readAll())
                              .object()["data"]
                              .toObject()["maps"]
                              .toArray()
                              .first()
                              .toObject();
    QCOMPARE(m["pooling"].toString(), QString("max"));
    const QJsonArray rowEdges = m["row_edges"].toArray();
    QCOMPARE(rowEdges.size(), m["rows"].toInt() + 1);
    QCOMPARE(rowEdges.first().toInteger(), 0);
    QCOMPARE(rowEdges.last().toInteger(), 4096);
    QCOMPARE(m["col_edges"].toArray().size(), m["cols"].toInt() + 1);
  }

  // A zoom whose causal edge would run out of the plot (and across the colour bar): every point
  // of the SVG's dashed overlay lies inside the plot rectangle.
  void svgOverlaysStayInsidePlot() {
    Workload w = test::smallWorkload(VariantId::moba);
    w.problem.causal = true;
    QVERIFY(show(w));
    HeatmapWidget* h = mapView()->heatmap();
    h->setViewRegion({0, 32, 0, 16});  // the diagonal leaves this view through its right edge
    const QString path = test::scratchDir() + "/overlays.svg";
    QVERIFY(window_->exportFigureTo(path).isEmpty());
    QFile f(path);
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QByteArray svg = f.readAll();
    const QRectF plot = h->plotArea().adjusted(-1, -1, 1, 1);  // half a pen either side
    const QVector<QPointF> dashed = svgPoints(svg, [](const QXmlStreamAttributes& a) {
      return a.hasAttribute(QStringLiteral("stroke-dasharray")) &&
             a.value(QStringLiteral("stroke-dasharray")) != QLatin1String("none");
    });
    QVERIFY(dashed.size() >= 2);  // the causal edge is drawn
    for (const QPointF& pt : dashed) {
      QVERIFY2(plot.contains(pt),
               qPrintable(QStringLiteral("(%1, %2) outside the plot").arg(pt.x()).arg(pt.y())));
    }
    const QVector<QPointF> blocks = svgPoints(svg, [](const QXmlStreamAttributes& a) {
      return a.value(QStringLiteral("fill")) == QLatin1String("#ff2828");
    });
    for (const QPointF& pt : blocks) QVERIFY(plot.contains(pt));
    // The map image drawn for this view holds the cells in view (16 columns x 32 rows of the
    // 64 x 64 map), not the whole map squeezed into the plot.
    QXmlStreamReader xml(svg);
    QSize mapCells;
    while (!xml.atEnd()) {
      if (xml.readNext() != QXmlStreamReader::StartElement ||
          xml.name() != QLatin1String("image")) {
        continue;
      }
      if (xml.attributes().value(QStringLiteral("width")).toDouble() < 50) continue;  // colour bar
      const QString href = xml.attributes().value(QStringLiteral("xlink:href")).toString();
      mapCells = QImage::fromData(QByteArray::fromBase64(href.section(',', 1).toLatin1())).size();
    }
    QCOMPARE(mapCells, QSize(16, 32));
    h->resetZoom();
    QVERIFY(waitUntilSettled(*window_, 20000));
  }

  // Stale: after a result, a workload of another length leaves the drawn map's extent, axes and
  // title alone; showStale greys and labels it until the next result, which re-extents the map.
  void staleMapKeepsItsExtentTitleAndIsGreyed() {
    Workload w = test::smallWorkload(VariantId::dense);
    w.problem.shape.q_len = w.problem.shape.kv_len = 256;
    QVERIFY(show(w));
    HeatmapWidget* h = mapView()->heatmap();
    QCOMPARE(h->extent(), (Region{0, 256, 0, 256}));
    const QString title = h->map().title;
    const MapImage drawn = h->map();

    Workload shorter = w;
    shorter.problem.shape.q_len = shorter.problem.shape.kv_len = 128;
    mapView()->setWorkload(shorter);  // what the window does while the user edits
    QCOMPARE(h->extent(), (Region{0, 256, 0, 256}));
    QCOMPARE(h->viewRegion(), (Region{0, 256, 0, 256}));
    QVERIFY(h->colTicks().last() <= 256 && h->colTicks().last() > 128);
    QCOMPARE(h->map().region, drawn.region);
    QCOMPARE(h->map().title, title);
    // The request asks for the whole new map, not the old extent.
    ViewRequest r;
    mapView()->fillRequest(r);
    QCOMPARE(r.region, (Region{0, 128, 0, 128}));

    mapView()->showStale(QStringLiteral("previous result - computing…"));
    QCOMPARE(h->staleLabel(), QStringLiteral("previous result - computing…"));
    const QImage grabbed = h->grab().toImage();
    const QPointF c = h->plotArea().topLeft() +
                      QPointF(h->plotArea().width() * 0.25, h->plotArea().height() * 0.75);
    const QColor px = grabbed.pixelColor((c * grabbed.devicePixelRatio()).toPoint());
    QVERIFY2(px.hsvSaturation() < 20, qPrintable(px.name()));  // grey, not viridis

    // A workload the engine refuses (here: 3 heads cannot share 2 kv heads) leaves the drawn
    // 256-token map its own axes, not the refused workload's.
    Workload refused = shorter;
    refused.problem.shape.q_len = refused.problem.shape.kv_len = 64;
    refused.problem.shape.heads = 3;
    window_->setWorkload(refused);
    QVERIFY(waitUntilSettled(*window_, 20000) || !window_->lastError().isEmpty());
    QVERIFY(!window_->lastError().isEmpty());
    QCOMPARE(h->extent(), (Region{0, 256, 0, 256}));
    QCOMPARE(h->map().region, drawn.region);

    window_->setWorkload(shorter);
    QVERIFY(waitUntilSettled(*window_, 20000));
    QVERIFY(h->staleLabel().isEmpty());
    QCOMPARE(h->extent(), (Region{0, 128, 0, 128}));
    QCOMPARE(h->map().region, (Region{0, 128, 0, 128}));
    const QImage fresh = h->grab().toImage();
    QVERIFY(fresh.pixelColor((c * fresh.devicePixelRatio()).toPoint()).hsvSaturation() > 40);
  }

  // Frames of one request (coarse, then exact) keep the zoom and, with the fixed scale, the full
  // view's colour range; per-view scale rescales each view.
  void progressiveFramesKeepZoomAndFixedScale() {
    AttentionMapView* v = mapView();
    HeatmapWidget* h = v->heatmap();
    const ViewResultPtr full = v->lastResult();
    QVERIFY(full && full->maps.size() == 1);
    const double fullMax = h->valueScale().vmax;
    h->setViewRegion({0, 32, 0, 32});
    auto frame = [&](int cells, float peak) {
      auto r = std::make_shared<ViewResult>(*full);
      r->request.region = {0, 32, 0, 32};
      MapImage m = gradientMap(cells, cells, 32);
      for (float& x : m.values) x *= peak;
      r->maps = {m};
      return ViewResultPtr(r);
    };
    v->setScaleRange(ScaleRange::fixed);
    v->showResult(frame(8, float(fullMax) / 4));
    v->showResult(frame(32, float(fullMax) / 4));
    QCOMPARE(h->viewRegion(), (Region{0, 32, 0, 32}));
    QCOMPARE(h->valueScale().vmax, fullMax);
    v->setScaleRange(ScaleRange::perView);
    QVERIFY(std::abs(h->valueScale().vmax - fullMax / 4) < fullMax * 1e-3);
    v->setScaleRange(ScaleRange::fixed);
    // Another head while zoomed: the fixed range starts over from the new map, never from the
    // previous head's (a rebuild of the old map must not capture the fresh range).
    auto otherHead = std::make_shared<ViewResult>(*frame(32, float(fullMax) / 8));
    otherHead->request.head = full->request.head + 1;
    v->showResult(otherHead);
    QVERIFY2(std::abs(h->valueScale().vmax - fullMax / 8) < fullMax * 1e-3,
             qPrintable(QStringLiteral("%1 vs %2").arg(h->valueScale().vmax).arg(fullMax / 8)));
    h->resetZoom();
    QVERIFY(waitUntilSettled(*window_, 20000));
  }

  // The hover names the pooling and the cells a pooled value covers; a new problem clears it.
  void hoverNamesPoolingAndClearsOnNewProblem() {
    HeatmapWidget h;
    h.resize(600, 500);
    h.setExtent(1024, 1024);
    MapImage m = gradientMap(32, 32, 1024);
    h.setMap(m);
    const QString maxText = h.hoverTextAt(100, 5);
    QVERIFY2(maxText.contains("max over 32x32 cells"), qPrintable(maxText));
    QVERIFY2(maxText.contains("96-127"), qPrintable(maxText));
    m.pool = Pool::mean;
    h.setMap(m);
    QVERIFY(h.hoverTextAt(100, 5).contains("mean over 32x32 cells"));
    m.sampled = true;  // one entry per bin (the block view's gate scores): never called pooled
    h.setMap(m);
    QVERIFY(h.hoverTextAt(100, 5).contains("sample of 32x32 cells"));
    QVERIFY(mapToCsv(m).contains(",sample,"));
    QVERIFY(!mapToCsv(m).contains(",mean,"));
    h.setMap(gradientMap(32, 32, 32));
    h.setExtent(32, 32);
    const QString exact = h.hoverTextAt(3, 4);
    QVERIFY2(!exact.contains("over") && exact.contains("= 3") && exact.contains("= 4"),
             qPrintable(exact));

    AttentionMapView* v = mapView();
    QSignalSpy spy(v, &ViewBase::hoverText);
    Workload other = window_->controller().workload();
    other.seed += 1;
    v->setWorkload(other);
    QVERIFY(!spy.isEmpty());
    QVERIFY(spy.last().first().toString().isEmpty());
    v->setWorkload(window_->controller().workload());
  }

  // Ticks at multiples of a power of two or ten: 0, 8192, ... 32768 on a 32K map, never 24575.
  void ticksAreRound() {
    QCOMPARE(roundTicks(0, 32768, 500, 60), (QVector<qint64>{0, 8192, 16384, 24576, 32768}));
    QCOMPARE(roundTicks(0, 64, 500, 60), (QVector<qint64>{0, 16, 32, 48, 64}));
    QCOMPARE(roundTicks(0, 4096, 500, 60), (QVector<qint64>{0, 1024, 2048, 3072, 4096}));
    QCOMPARE(roundTicks(0, 50, 500, 60), (QVector<qint64>{0, 10, 20, 30, 40, 50}));
    HeatmapWidget h;
    h.resize(640, 520);
    for (const Region& view : {Region{0, 32768, 0, 32768}, Region{383, 24575, 1000, 1100},
                               Region{0, 1000, 0, 1000}, Region{77, 93, 5, 13}}) {
      h.setExtent(32768, 32768);
      h.setViewRegion(view);
      for (const QVector<qint64>& ticks : {h.rowTicks(), h.colTicks()}) {
        QVERIFY(ticks.size() >= 2);
        const qint64 step = ticks[1] - ticks[0];
        QVERIFY2(isPowerOf(step, 2) || isPowerOf(step, 10), qPrintable(QString::number(step)));
        for (qint64 t : ticks) QCOMPARE(t % step, 0);
      }
    }
  }

  // The colour bar's ticks are round too: decades on the log scale (not 0.03253, 0.003253, ...),
  // 1/2/5 steps on the linear one, inside the bar's range.
  void colourBarTicksAreRound() {
    HeatmapWidget h;
    h.resize(600, 500);
    MapImage m = gradientMap(32, 32, 32);
    for (float& x : m.values) x *= 0.0325f;  // largest value 0.0325: log bar from 3.25e-6
    h.setMap(m);
    h.setScaleMode(ScaleMode::log);
    const QVector<double> logTicks = h.legendTicks();
    QVERIFY(logTicks.size() >= 2);
    for (double t : logTicks) {
      const double k = std::log10(t);
      QVERIFY2(std::abs(k - std::round(k)) < 1e-9, qPrintable(QString::number(t)));
      QVERIFY(t <= 0.0325 && t >= 3.25e-6);
    }
    QCOMPARE(logTicks.back(), 0.01);
    h.setScaleMode(ScaleMode::linear);
    const QVector<double> lin = h.legendTicks();
    QVERIFY(lin.size() >= 3);
    const double step = lin[1] - lin[0];
    const double mantissa = step / std::pow(10.0, std::floor(std::log10(step)));
    QVERIFY2(std::abs(mantissa - 1) < 1e-9 || std::abs(mantissa - 2) < 1e-9 ||
                 std::abs(mantissa - 5) < 1e-9,
             qPrintable(QString::number(step)));
    QCOMPARE(lin.front(), 0.0);
    QVERIFY(lin.back() <= 0.0325);
  }

  // MoBA blocks narrower than an output pixel get no outline (it would cover the data); wide
  // blocks keep theirs. The colour bar is one gradient image, not a line per pixel.
  void thinBlocksAreNotOutlinedAndColourBarIsAGradient() {
    HeatmapWidget h;
    h.resize(600, 500);
    const qint64 L = 8192;
    h.setExtent(L, L);
    h.setMap(gradientMap(64, 64, L));
    auto overlays = [&](qint64 block) {
      MapOverlays o;
      o.qLen = o.kvLen = L;
      o.blockSize = block;
      o.topK = 1;
      o.selection.resize(L);
      for (qint64 i = 0; i < L; ++i) o.selection[i] = qint32(i / block / 2);
      return o;
    };
    auto redShapes = [&]() {
      return svgPoints(renderSvg(&h),
                       [](const QXmlStreamAttributes& a) {
                         return a.value(QStringLiteral("stroke")) == QLatin1String("#ff2828");
                       })
          .size();
    };
    h.setOverlays(overlays(4));  // 4 of 8192 columns: well under a pixel
    QCOMPARE(redShapes(), 0);
    h.setOverlays(overlays(1024));
    QVERIFY(redShapes() > 0);

    h.setOverlays({});
    const QByteArray svg = renderSvg(&h);
    QCOMPARE(svg.count("<image"), 2);  // the map and the colour bar
    const QRectF plot = h.plotArea();
    const QVector<QPointF> lines = svgPoints(svg, [](const QXmlStreamAttributes&) { return true; });
    int inBar = 0;
    for (const QPointF& p : lines) {
      if (p.x() > plot.right() + 5 && p.x() < plot.right() + 30 && p.y() > plot.top() + 2 &&
          p.y() < plot.bottom() - 2) {
        ++inBar;
      }
    }
    QVERIFY2(inBar < 20, qPrintable(QString::number(inBar)));  // a few tick marks, no bands
  }
};

QTEST_MAIN(TestGuiFigures)
#include "test_gui_figures.moc"
