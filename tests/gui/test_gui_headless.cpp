// The headless flag: `attnscope --preset NAME --view VIEW --screenshot FILE` writes a decodable
// PNG/SVG and exits 0; a bad preset or view exits non-zero with a one-line message.
#include <QProcess>
#include <QSvgRenderer>
#include <QTest>

#include "gui_test_support.hpp"

using namespace attnscope::gui;

namespace {
struct Run {
  int code = -1;
  QString err;
};
Run runGui(const QStringList& args) {
  QProcess p;
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  env.remove("QT_QPA_PLATFORM");  // main() must pick offscreen by itself
  p.setProcessEnvironment(env);
  p.start(QStringLiteral(ATTNSCOPE_GUI_EXE), args);
  if (!p.waitForFinished(60000)) return {};
  Run r;
  r.code = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
  r.err = QString::fromUtf8(p.readAllStandardError());
  return r;
}
QStringList meaningfulLines(const QString& s) {
  QStringList out;
  for (const QString& l : s.split('\n', Qt::SkipEmptyParts)) {
    if (l.startsWith("attnscope:")) out.append(l);
  }
  return out;
}
}  // namespace

class TestGuiHeadless : public QObject {
  Q_OBJECT

 private slots:
  void pngScreenshot() {
    const QString path = test::scratchDir() + "/headless.png";
    QFile::remove(path);
    const Run r = runGui({"--preset", "first-look", "--view", "map", "--screenshot", path});
    QVERIFY2(r.code == 0, qPrintable(r.err));
    const QImage img(path);
    QVERIFY(!img.isNull());
    QCOMPARE(img.size(), QSize(1200, 800));  // the documented default
  }

  void svgScreenshot() {
    const QString path = test::scratchDir() + "/headless.svg";
    QFile::remove(path);
    const Run r =
        runGui({"--preset", "causal-vs-bidirectional", "--view", "compare", "--screenshot", path});
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QVERIFY(QSvgRenderer(path).isValid());
  }

  void badPresetExitsNonZeroWithOneLine() {
    const Run r = runGui({"--preset", "nope", "--screenshot", test::scratchDir() + "/x.png"});
    QVERIFY(r.code != 0);
    QCOMPARE(meaningfulLines(r.err).size(), 1);
    QVERIFY(r.err.contains("nope"));
  }

  void badViewExitsNonZeroWithOneLine() {
    const Run r = runGui({"--preset", "first-look", "--view", "nowhere", "--screenshot",
                          test::scratchDir() + "/x.png"});
    QVERIFY(r.code != 0);
    QCOMPARE(meaningfulLines(r.err).size(), 1);
    QVERIFY(r.err.contains("nowhere"));
  }
};

QTEST_MAIN(TestGuiHeadless)
#include "test_gui_headless.moc"
