// Real text in the views: the token text widget (chips in reading order, clicks select a query,
// weights tint) and token labels on the heatmap's axes, in its hover and in its SVG export.
#include <QBuffer>
#include <QElapsedTimer>
#include <QMouseEvent>
#include <QPainter>
#include <QScrollBar>
#include <QSignalSpy>
#include <QSvgGenerator>
#include <QTest>
#include <cmath>

#include "gui_test_support.hpp"
#include "heatmap_widget.hpp"
#include "views/token_text_widget.hpp"

using namespace attnscope;
using namespace attnscope::gui;

namespace {

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

MapImage gradientMap(int rows, int cols, qint64 extent) {
  MapImage m;
  m.rows = rows;
  m.cols = cols;
  m.region = {0, extent, 0, extent};
  m.values.resize(rows * cols);
  for (int i = 0; i < rows * cols; ++i) m.values[i] = float(1 + i % 97) / 97.0f;
  return m;
}

std::shared_ptr<const QStringList> numberedTokens(int n) {
  auto t = std::make_shared<QStringList>();
  for (int i = 0; i < n; ++i) t->push_back(QStringLiteral("tok%1").arg(i));
  return t;
}

// Running text: words with leading spaces, sentences ending in a newline now and then.
std::shared_ptr<const QStringList> prose(int n) {
  static const char* words[] = {" the", " cat",    " sat", " on",        " a",    " mat", ",",
                                " and", " looked", " at",  " attention", " maps", " for", " hours"};
  auto t = std::make_shared<QStringList>();
  for (int i = 0; i < n; ++i) {
    if (i % 23 == 22) {
      t->push_back(QStringLiteral(".\n"));
    } else if (i % 23 == 0) {
      t->push_back(QStringLiteral("Then"));
    } else {
      t->push_back(QString::fromLatin1(words[(i * 5) % 14]));
    }
  }
  return t;
}

void click(TokenTextWidget& w, int index) {
  QTest::mouseClick(w.viewport(), Qt::LeftButton, {}, w.tokenRect(index).center());
}

void hover(TokenTextWidget& w, const QPoint& pos) {
  QMouseEvent move(QEvent::MouseMove, QPointF(pos), w.viewport()->mapToGlobal(QPointF(pos)),
                   Qt::NoButton, Qt::NoButton, Qt::NoModifier);
  QCoreApplication::sendEvent(w.viewport(), &move);
}

}  // namespace

class TestGuiTokenText : public QObject {
  Q_OBJECT

 private slots:
  void visibleTokenShowsControlCharacters() {
    QCOMPARE(visibleToken(QStringLiteral("\n")), QStringLiteral("↵"));
    QCOMPARE(visibleToken(QStringLiteral(".\n\n")), QStringLiteral(".↵↵"));
    QCOMPARE(visibleToken(QStringLiteral("\t")), QStringLiteral("→"));
    QCOMPARE(visibleToken(QStringLiteral("a\r")), QStringLiteral("a␍"));
    QCOMPARE(visibleToken(QStringLiteral("   ")), QStringLiteral("␣␣␣"));
    QCOMPARE(visibleToken(QStringLiteral(" the")), QStringLiteral(" the"));
    QCOMPARE(visibleToken(QString()), QString());
  }

  // Clicking a chip's centre selects exactly that token: the first and last chip of a wrapped
  // line, the chip after a newline, and chips after scrolling.
  void clickSelectsTheTokenUnderTheMouse() {
    TokenTextWidget w;
    w.resize(360, 220);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    w.setTokens(prose(600));
    QCOMPARE(w.tokenCount(), 600);
    QSignalSpy spy(&w, &TokenTextWidget::tokenClicked);

    QVector<int> targets{0};
    int lastOfWrappedLine = -1, afterNewline = -1;
    for (int i = 0; i + 1 < w.tokenCount() && w.tokenRect(i + 1).bottom() < w.viewport()->height();
         ++i) {
      const bool lineEnds = w.tokenRect(i + 1).top() > w.tokenRect(i).top();
      if (!lineEnds) continue;
      if (i % 23 == 22) {
        if (afterNewline < 0) afterNewline = i + 1;
      } else if (lastOfWrappedLine < 0) {
        lastOfWrappedLine = i;
      }
    }
    QVERIFY(lastOfWrappedLine > 0);  // the text wraps at this width
    QVERIFY(afterNewline > 0);
    QVERIFY(w.tokenRect(afterNewline).left() < 12);  // a newline starts the next line
    targets << lastOfWrappedLine << lastOfWrappedLine + 1 << afterNewline;
    for (int i : targets) {
      click(w, i);
      QCOMPARE(spy.last().first().toInt(), i);
      QCOMPARE(w.selected(), i);
      QCOMPARE(w.tokenAt(w.tokenRect(i).center()), i);
    }

    QScrollBar* bar = w.verticalScrollBar();
    QVERIFY(bar->maximum() > 0);
    bar->setValue(bar->maximum() / 2);
    int visible = -1;
    for (int i = 0; i < w.tokenCount(); ++i) {
      const QRect r = w.tokenRect(i);
      if (r.top() > 40 && r.bottom() < w.viewport()->height()) {
        visible = i;
        break;
      }
    }
    QVERIFY(visible > targets.last());
    click(w, visible);
    QCOMPARE(spy.last().first().toInt(), visible);

    // Between lines and past the end: no token.
    QCOMPARE(w.tokenAt(QPoint(w.viewport()->width() - 2, w.tokenRect(visible).top() - 2)), -1);

    // Arrow keys move the selection and say so; setSelected scrolls but emits nothing.
    const int before = int(spy.size());
    QTest::keyClick(&w, Qt::Key_Right);
    QCOMPARE(w.selected(), visible + 1);
    QCOMPARE(spy.last().first().toInt(), visible + 1);
    QTest::keyClick(&w, Qt::Key_Left);
    QCOMPARE(w.selected(), visible);
    QCOMPARE(int(spy.size()), before + 2);
    w.setSelected(599);
    QCOMPARE(int(spy.size()), before + 2);
    QVERIFY(w.viewport()->rect().contains(w.tokenRect(599)));
    w.setSelected(0);
    QVERIFY(w.viewport()->rect().contains(w.tokenRect(0)));
  }

  // 32K tokens lay out once and paint only what is in view; a re-tint needs no layout.
  void largeTextLaysOutAndPaints() {
    auto tokens = std::make_shared<QStringList>();
    for (int i = 0; i < 32768; ++i) {
      tokens->push_back(i % 97 == 96 ? QStringLiteral("\n")
                                     : QStringLiteral(" w%1").arg((i * 2654435761u) % 5000));
    }
    TokenTextWidget w;
    w.resize(800, 600);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QElapsedTimer t;
    t.start();
    w.setTokens(tokens);
    const QRect last = w.tokenRect(32767);
    const qint64 layoutMs = t.elapsed();
    QVERIFY(!last.isEmpty());
    t.restart();
    QImage first = w.viewport()->grab().toImage();
    const qint64 paintMs = t.elapsed();
    w.setSelected(32767);
    QVERIFY(w.viewport()->rect().contains(w.tokenRect(32767)));
    QCOMPARE(w.tokenAt(w.tokenRect(32767).center()), 32767);
    t.restart();
    QVector<float> weights(32768);
    for (int j = 0; j < 32768; ++j)
      weights[j] = j <= 20000 ? float(j % 100) / 100 : NAN;  // later tokens masked
    w.setWeights(weights, 1);
    QImage tinted = w.viewport()->grab().toImage();
    const qint64 tintMs = t.elapsed();
    QVERIFY(!first.isNull() && !tinted.isNull());
    qInfo("32K tokens: measure + layout %lld ms, first paint %lld ms, weights + paint %lld ms",
          layoutMs, paintMs, tintMs);
  }

  // A chip's colour follows its weight through the colormap; NaN and no weights leave it plain.
  void weightsTintChips() {
    TokenTextWidget w;
    w.resize(400, 200);
    w.setTokens(prose(20));
    const QRect r = w.tokenRect(3);
    const QPoint probe(r.left() + 2, r.center().y());  // in the padding, clear of the text
    auto pixelWith = [&](float weight) {
      w.setWeights(QVector<float>(20, weight), 1.0f);
      const QImage img = w.viewport()->grab().toImage();
      return img.pixelColor((QPointF(probe) * img.devicePixelRatio()).toPoint());
    };
    const QColor low = pixelWith(0), high = pixelWith(1), masked = pixelWith(NAN);
    QVERIFY2(low != high, qPrintable(low.name() + " " + high.name()));
    const QColor viridis0(Colormap::get(ColormapId::viridis).at(0));
    const QColor viridis1(Colormap::get(ColormapId::viridis).at(1));
    QVERIFY2(std::abs(low.red() - viridis0.red()) + std::abs(low.green() - viridis0.green()) < 12,
             qPrintable(low.name()));
    QVERIFY2(std::abs(high.red() - viridis1.red()) + std::abs(high.green() - viridis1.green()) < 12,
             qPrintable(high.name()));
    QCOMPARE(masked, w.palette().color(QPalette::Base));
    // scaleMax maps to the full colour.
    w.setWeights(QVector<float>(20, 0.25f), 0.25f);
    const QImage img = w.viewport()->grab().toImage();
    QCOMPARE(img.pixelColor((QPointF(probe) * img.devicePixelRatio()).toPoint()), high);
    // Weights leave the layout alone.
    QCOMPARE(w.tokenRect(3), r);
    w.setColormap(ColormapId::magma);
    QVERIFY(pixelWith(1) != high);
  }

  void hoverNamesTheToken() {
    TokenTextWidget w;
    w.resize(400, 200);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    w.setTokens(numberedTokens(30));
    QSignalSpy spy(&w, &TokenTextWidget::hoverText);
    hover(w, w.tokenRect(7).center());
    QCOMPARE(spy.last().first().toString(), QStringLiteral("token 'tok7' (7)"));
    QVector<float> weights(30, NAN);
    weights[12] = 0.0123f;
    w.setWeights(weights, 1);
    hover(w, w.tokenRect(12).center());
    QCOMPARE(spy.last().first().toString(), QStringLiteral("token 'tok12' (12): p = 0.0123"));
    hover(w, w.tokenRect(13).center());  // masked: named, no value
    QCOMPARE(spy.last().first().toString(), QStringLiteral("token 'tok13' (13)"));
    hover(w, QPoint(w.viewport()->width() - 3, w.tokenRect(13).top() - 2));
    QCOMPARE(spy.last().first().toString(), QString());
  }

  // Empty lists, no list, and strings that are hard to draw: nothing crashes, every token still
  // has a chip that a click finds, and no chip is wider than the line.
  void oddTokensDoNotCrash() {
    TokenTextWidget w;
    w.resize(300, 200);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    w.setTokens(std::make_shared<QStringList>());
    QCOMPARE(w.tokenCount(), 0);
    QVERIFY(w.tokenRect(0).isEmpty());
    QCOMPARE(w.tokenAt(QPoint(10, 10)), -1);
    QTest::keyClick(&w, Qt::Key_Right);
    w.setWeights({}, 1);
    w.setSelected(3);
    QCOMPARE(w.selected(), -1);
    (void)w.viewport()->grab();
    w.setTokens(nullptr);
    QCOMPARE(w.tokenCount(), 0);
    (void)w.viewport()->grab();

    auto odd = std::make_shared<QStringList>(QStringList{
        QStringLiteral("\n"), QString(), QStringLiteral("  "), QString(5000, QLatin1Char('x')),
        QStringLiteral("\t"), QStringLiteral("\r\n"), QStringLiteral("%1%2"),
        QStringLiteral("\n\n\n"), QStringLiteral(" "), QStringLiteral("end")});
    w.setTokens(odd);
    QSignalSpy spy(&w, &TokenTextWidget::tokenClicked);
    for (int i = 0; i < w.tokenCount(); ++i) {
      const QRect r = w.tokenRect(i);
      QVERIFY2(!r.isEmpty(), qPrintable(QString::number(i)));
      QVERIFY(r.width() <= w.viewport()->width());
      w.setSelected(i);
      click(w, i);
      QCOMPARE(spy.last().first().toInt(), i);
    }
    w.setWeights(QVector<float>{0.5f, NAN}, 0);  // shorter than the tokens; a zero scale
    (void)w.viewport()->grab();
    w.resize(40, 60);  // narrower than any padding
    (void)w.viewport()->grab();
    QVERIFY(w.tokenRect(3).width() <= std::max(w.viewport()->width(), 30));
    QTest::keyClick(&w, Qt::Key_Left);
    QTest::keyClick(&w, Qt::Key_Right);
  }

  // Heatmap: a 20 x 20 zoom labels rows and columns with their tokens, as text in the SVG
  // (an export at its own resolution too); 2000 rows in view keep the round numbers.
  void heatmapLabelsZoomWithTokens() {
    HeatmapWidget h;
    h.resize(700, 600);
    h.setExtent(64, 64);
    h.setMap(gradientMap(64, 64, 64));
    const QRectF numeric = h.plotArea();
    auto rows = std::make_shared<QStringList>(*numberedTokens(64));
    (*rows)[15] = QStringLiteral("\n");
    h.setAxisTokens(rows, numberedTokens(64));
    h.setViewRegion({10, 30, 20, 40});
    QVERIFY(h.rowTokenLabels());
    QVERIFY(h.colTokenLabels());
    QCOMPARE(h.rowTicks().size(), 20);
    QCOMPARE(h.colTicks().first(), 20);
    // The rotated column labels take room below the plot; the legend follows the plot.
    QVERIFY(h.plotArea().bottom() < numeric.bottom());
    QVERIFY(h.plotArea().bottom() + 40 < h.height());

    const QByteArray svg = renderSvg(&h);
    QVERIFY(svg.contains(">tok12<"));  // a row
    QVERIFY(svg.contains(">tok33<"));  // a column
    QVERIFY(!svg.contains(">tok5<"));  // out of view
    QVERIFY(svg.contains(QStringLiteral(">↵<").toUtf8()));

    MapImage fine = gradientMap(20, 20, 64);
    fine.region = {10, 30, 20, 40};
    h.beginExportMap(fine);
    QVERIFY(renderSvg(&h).contains(">tok33<"));
    h.endExportMap();

    // Cells under a line high: numbers, even with few rows.
    h.resize(260, 200);
    QVERIFY(!h.rowTokenLabels());
    QVERIFY(!renderSvg(&h).contains(">tok12<"));

    h.resize(700, 600);
    h.setExtent(4096, 4096);
    h.setAxisTokens(numberedTokens(4096), numberedTokens(4096));
    h.setMap(gradientMap(64, 64, 4096));
    h.setViewRegion({0, 2000, 0, 2000});
    QVERIFY(!h.rowTokenLabels());
    QVERIFY(!h.colTokenLabels());
    const QVector<qint64> ticks = h.rowTicks();
    QVERIFY(ticks.size() >= 2 && ticks.size() < 20);
    const QByteArray numbers = renderSvg(&h);
    QVERIFY(!numbers.contains(">tok"));
    QVERIFY(numbers.contains(">" + QByteArray::number(ticks[1]) + "<"));
  }

  // Single entries name their tokens; pooled cells keep their ranges.
  void heatmapHoverNamesTokens() {
    HeatmapWidget h;
    h.resize(600, 500);
    h.setExtent(32, 32);
    const MapImage m = gradientMap(32, 32, 32);
    h.setMap(m);
    auto rows = std::make_shared<QStringList>(*numberedTokens(32));
    (*rows)[5] = QStringLiteral("%1\n");
    h.setAxisTokens(rows, numberedTokens(32));
    QCOMPARE(h.hoverTextAt(3, 4), QStringLiteral("query 'tok3' (3) → key 'tok4' (4): p = %1")
                                      .arg(formatMapValue(m.at(3, 4))));
    QCOMPARE(h.hoverTextAt(5, 0), QStringLiteral("query '%1↵' (5) → key 'tok0' (0): p = %2")
                                      .arg(QStringLiteral("%1"), formatMapValue(m.at(5, 0))));

    h.setExtent(1024, 1024);
    h.setAxisTokens(numberedTokens(1024), numberedTokens(1024));
    h.setMap(gradientMap(32, 32, 1024));
    const QString pooled = h.hoverTextAt(100, 5);
    QVERIFY2(pooled.contains("96-127") && pooled.contains("max over 32x32 cells") &&
                 !pooled.contains("tok"),
             qPrintable(pooled));
    h.setAxisTokens(nullptr, nullptr);
    h.setExtent(32, 32);
    h.setMap(m);
    QVERIFY(!h.hoverTextAt(3, 4).contains("'"));
  }
};

QTEST_MAIN(TestGuiTokenText)
#include "test_gui_token_text.moc"
