// Every bundled demo renders every view it names, without an error, in a real (offscreen) window.
// This is what the docs screenshots rely on; sizes are the presets' own, kept small on purpose.
#include <QPushButton>
#include <QTest>

#include "gui_test_support.hpp"
#include "presets.hpp"

using namespace attnscope;
using namespace attnscope::gui;

class TestGuiPresets : public QObject {
  Q_OBJECT

 private slots:
  void everyPresetRendersItsViews_data() {
    QTest::addColumn<QString>("preset");
    QTest::addColumn<QString>("view");
    for (const Preset& p : presets()) {
      for (ViewKind v : p.views) {
        QTest::newRow(qPrintable(p.name + "/" + viewName(v))) << p.name << viewName(v);
      }
    }
  }

  void everyPresetRendersItsViews() {
    QFETCH(QString, preset);
    QFETCH(QString, view);
    MainWindow w(MainWindow::Options{false, false});
    w.resize(1000, 700);
    w.show();
    QVERIFY(w.applyPreset(preset).isEmpty());
    ViewKind kind;
    QVERIFY(viewFromName(view, kind));
    w.setCurrentView(kind);
    w.requestView(true);
    QVERIFY(waitUntilSettled(w, 30000));
    QVERIFY2(w.lastError().isEmpty(), qPrintable(w.lastError()));
    const ViewResultPtr r = w.view(kind)->lastResult();
    QVERIFY(r);
    QCOMPARE(int(r->request.view), int(kind));
    const bool modelView =
        kind == ViewKind::text || kind == ViewKind::atlas || kind == ViewKind::whatif;
    if (findPreset(preset)->needsModel && modelView) {
      // No model is open: the view says what to open and offers the folder picker.
      auto* open = w.view(kind)->findChild<QPushButton*>(QStringLiteral("openModelButton"));
      QVERIFY(open && open->isVisible());
    } else if (kind != ViewKind::learn) {
      QVERIFY2(!r->maps.isEmpty(), qPrintable(r->note));
      for (const MapImage& m : r->maps) QVERIFY(m.rows > 0 && m.cols > 0);
    }
    const QImage shot = w.grab().toImage();
    QVERIFY(!shot.isNull());
  }

  void unknownPresetIsAnError() {
    MainWindow w(MainWindow::Options{false, false});
    QVERIFY(w.applyPreset("no-such-demo").contains("no-such-demo"));
  }
};

QTEST_MAIN(TestGuiPresets)
#include "test_gui_presets.moc"
