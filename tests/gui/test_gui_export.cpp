// Exports produce files that decode: PNG (QImage, at the requested DPI), SVG (QSvgRenderer and
// QXmlStreamReader), PDF (header), JSON and CSV with the full run configuration.
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSvgRenderer>
#include <QTest>
#include <QXmlStreamReader>

#include "gui_test_support.hpp"

using namespace attnscope;
using namespace attnscope::gui;

class TestGuiExport : public QObject {
  Q_OBJECT

  MainWindow* window_ = nullptr;

 private slots:
  void initTestCase() {
    window_ = new MainWindow(MainWindow::Options{false, false});
    window_->resize(1000, 700);
    Workload w = test::smallWorkload(VariantId::moba);
    w.pattern = "needle";
    w.seed = 42;
    window_->setWorkload(w);
    window_->show();
    QVERIFY(waitUntilSettled(*window_, 20000));
    QVERIFY(window_->lastError().isEmpty());
  }
  void cleanupTestCase() { delete window_; }

  void pngDecodesAtRequestedDpi() {
    const QString path = test::scratchDir() + "/map.png";
    QFile::remove(path);
    QVERIFY(window_->exportFigureTo(path, 192).isEmpty());
    QImage img(path);
    QVERIFY(!img.isNull());
    const QSize widget = window_->currentView()->figure()->size();
    QCOMPARE(img.width(), widget.width() * 2);  // 192 dpi = 2x the 96-dpi widget
    QVERIFY(img.text("attnscope-configuration").contains("needle"));
  }

  void svgParses() {
    const QString path = test::scratchDir() + "/map.svg";
    QFile::remove(path);
    QVERIFY(window_->exportFigureTo(path).isEmpty());
    QSvgRenderer renderer(path);
    QVERIFY(renderer.isValid());
    QFile f(path);
    QVERIFY(f.open(QIODevice::ReadOnly));
    QXmlStreamReader xml(&f);
    int elements = 0;
    while (!xml.atEnd()) {
      if (xml.readNext() == QXmlStreamReader::StartElement) ++elements;
    }
    QVERIFY2(!xml.hasError(), qPrintable(xml.errorString()));
    QVERIFY(elements > 10);
  }

  void pdfIsWritten() {
    const QString path = test::scratchDir() + "/map.pdf";
    QFile::remove(path);
    QVERIFY(window_->exportFigureTo(path, 150).isEmpty());
    QFile f(path);
    QVERIFY(f.open(QIODevice::ReadOnly));
    QVERIFY(f.read(5) == "%PDF-");
    QVERIFY(f.size() > 1000);
  }

  void jsonHasDataAndFullConfiguration() {
    const QString path = test::scratchDir() + "/map.json";
    QVERIFY(window_->exportDataTo(path).isEmpty());
    QFile f(path);
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QJsonObject o = QJsonDocument::fromJson(f.readAll()).object();
    const QJsonObject cfg = o.value("configuration").toObject();
    const QJsonObject wl = cfg.value("workload").toObject();
    QCOMPARE(wl.value("pattern").toString(), QString("needle"));
    QCOMPARE(wl.value("seed").toString(), QString("42"));
    QCOMPARE(wl.value("variant").toString(), QString("moba"));
    QVERIFY(wl.value("describe").toString().contains("top_k"));
    QVERIFY(!wl.value("backend").toString().isEmpty());
    QVERIFY(wl.value("moba").toObject().contains("block_size"));
    QVERIFY(cfg.contains("run"));
    // The configuration reproduces the workload.
    Workload back;
    QVERIFY(Workload::fromJson(wl, back).isEmpty());
    QCOMPARE(back.runKey(), window_->controller().workload().runKey());
    const QJsonArray maps = o.value("data").toObject().value("maps").toArray();
    QCOMPARE(maps.size(), 1);
    const QJsonObject m = maps.first().toObject();
    QCOMPARE(m.value("values_row_major").toArray().size(),
             m.value("rows").toInt() * m.value("cols").toInt());
  }

  void csvHasConfigurationLineAndRows() {
    const QString path = test::scratchDir() + "/map.csv";
    QVERIFY(window_->exportDataTo(path).isEmpty());
    QFile f(path);
    QVERIFY(f.open(QIODevice::ReadOnly | QIODevice::Text));
    const QStringList lines = QString::fromUtf8(f.readAll()).split('\n', Qt::SkipEmptyParts);
    QVERIFY(lines.first().startsWith("# attnscope {"));
    QVERIFY(lines.first().contains("\"seed\":\"42\""));
    QVERIFY(lines.contains("row_start,row_end,col_start,col_end,pooling,value"));
    QVERIFY(lines.size() > 100);
  }

  void everyViewExports() {
    for (ViewKind v : allViews()) {
      window_->setCurrentView(v);
      window_->requestView(true);
      QVERIFY(waitUntilSettled(*window_, 20000));
      const QString base = test::scratchDir() + "/view_" + viewName(v);
      QVERIFY(window_->exportFigureTo(base + ".png", 96).isEmpty());
      QVERIFY(!QImage(base + ".png").isNull());
      QVERIFY(window_->exportDataTo(base + ".json").isEmpty());
      QFile f(base + ".json");
      QVERIFY(f.open(QIODevice::ReadOnly));
      QVERIFY(QJsonDocument::fromJson(f.readAll()).isObject());
    }
  }

  void unknownFormatIsAnError() {
    QVERIFY(!window_->exportFigureTo(test::scratchDir() + "/x.bmpx").isEmpty());
    QVERIFY(!window_->exportDataTo(test::scratchDir() + "/x.xlsx").isEmpty());
  }
};

QTEST_MAIN(TestGuiExport)
#include "test_gui_export.moc"
