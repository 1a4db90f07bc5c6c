// Tests of the main window: it opens and shows a first result, panel edits recompute, invalid
// parameters and missing backends end up in the status line (never a blocking dialog or a crash).
#include <QLabel>
#include <QStandardItemModel>
#include <QTest>

#include "attnscope/registry.hpp"
#include "gui_test_support.hpp"
#include "views/attention_map_view.hpp"
#include "workload_panel.hpp"

using namespace attnscope;
using namespace attnscope::gui;

class TestGuiWindow : public QObject {
  Q_OBJECT

 private slots:
  void windowOpensAndShowsAMap() {
    MainWindow w(MainWindow::Options{false, false});
    w.setWorkload(test::smallWorkload());
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QVERIFY(waitUntilSettled(w, 20000));
    QVERIFY2(w.lastError().isEmpty(), qPrintable(w.lastError()));
    auto* map = static_cast<AttentionMapView*>(w.view(ViewKind::map));
    QVERIFY(map->lastResult());
    QVERIFY(map->heatmap()->hasMap());
    QVERIFY(!w.grab().isNull());
  }

  void panelListsRegistryAndDefaultsToAFastBackend() {
    MainWindow w(MainWindow::Options{false, false});
    WorkloadPanel* p = w.panel();
    QCOMPARE(p->variantCombo()->count(), int(variants().size()));
    QCOMPARE(p->backendCombo()->count(), int(backends().size()));
    QCOMPARE(p->workload().backend.isEmpty() ? preferredBackend() : p->workload().backend,
             preferredBackend());
    // Every unavailable backend is disabled and explains why.
    auto* model = static_cast<QStandardItemModel*>(p->backendCombo()->model());
    for (int i = 0; i < model->rowCount(); ++i) {
      const BackendInfo& b = backends()[size_t(i)];
      const bool ok = b.available().ok;
      QCOMPARE(model->item(i)->isEnabled(), ok);
      if (!ok) QVERIFY(model->item(i)->toolTip().contains("Unavailable"));
    }
  }

  void editingThePanelRecomputes() {
    MainWindow w(MainWindow::Options{false, false});
    w.setWorkload(test::smallWorkload());
    w.show();
    QVERIFY(waitUntilSettled(w, 20000));
    w.panel()->spin("q_len")->setValue(48);
    QVERIFY(waitUntilSettled(w, 20000));
    QCOMPARE(w.controller().workload().problem.shape.q_len, 48);
    QCOMPARE(w.view(ViewKind::map)->lastResult()->workload.problem.shape.q_len, 48);
  }

  void invalidParameterShowsMessage() {
    MainWindow w(MainWindow::Options{false, false});
    w.setWorkload(test::smallWorkload());
    w.show();
    QVERIFY(waitUntilSettled(w, 20000));
    w.panel()->spin("kv_heads")->setValue(3);  // 2 heads cannot share 3 kv heads
    QVERIFY(waitUntilSettled(w, 20000));
    QVERIFY(w.lastError().contains("divisible"));
    QVERIFY(w.panel()->errorText().contains("divisible"));
    QCOMPARE(w.findChild<QLabel*>("errorLabel")->text(), w.lastError());
    // Fixing it clears the message.
    w.panel()->spin("kv_heads")->setValue(1);
    QVERIFY(waitUntilSettled(w, 20000));
    QVERIFY(w.lastError().isEmpty());
  }

  void missingBackendShowsMessage() {
    MainWindow w(MainWindow::Options{false, false});
    Workload wl = test::smallWorkload();
    wl.backend = "cuda-that-is-not-here";
    w.setWorkload(wl);
    w.show();
    QVERIFY(waitUntilSettled(w, 20000));
    QVERIFY(w.lastError().contains("cuda-that-is-not-here"));
  }

  void badFileShowsMessage() {
    const QString path = test::scratchDir() + "/bad.npy";
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("\x93NUMPY garbage");
    f.close();
    MainWindow w(MainWindow::Options{false, false});
    w.setWorkload(test::smallWorkload());
    w.show();
    QVERIFY(waitUntilSettled(w, 20000));
    QSignalSpy errors(&w.controller(), &ExplorerController::errorOccurred);
    w.controller().loadFile(path);
    QVERIFY(errors.wait(10000));
    QVERIFY(w.lastError().contains("bad.npy"));
  }

  void dialogsDoNotBlock() {
    // With dialogs on (the interactive default) an error opens a non-modal box and returns.
    MainWindow w(MainWindow::Options{false, true});
    Workload wl = test::smallWorkload();
    wl.problem.shape.heads = 3;
    w.setWorkload(wl);
    w.show();
    QVERIFY(waitUntilSettled(w, 20000));
    QVERIFY(!w.lastError().isEmpty());
    QVERIFY(QApplication::activeModalWidget() == nullptr);
  }

  void darkPaletteSwitches() {
    MainWindow w(MainWindow::Options{false, false});
    w.setDarkPalette(true);
    QVERIFY(qApp->palette().color(QPalette::Window).lightness() < 100);
    w.setDarkPalette(false);
    QVERIFY(qApp->palette().color(QPalette::Window).lightness() > 150);
  }

  void zoomKeepsWorkingAndRefines() {
    MainWindow w(MainWindow::Options{false, false});
    w.setWorkload(test::smallWorkload());
    w.show();
    QVERIFY(waitUntilSettled(w, 20000));
    auto* map = static_cast<AttentionMapView*>(w.view(ViewKind::map));
    map->zoomIn();
    map->zoomIn();
    QVERIFY(waitUntilSettled(w, 20000));
    const Region r = map->lastResult()->maps.front().region;
    QVERIFY(r.rows() < 64 && r.cols() < 64);
    QCOMPARE(map->lastResult()->maps.front().rows, int(r.rows()));  // full detail, not pooled
    map->resetZoom();
    QVERIFY(waitUntilSettled(w, 20000));
    QCOMPARE(map->lastResult()->maps.front().region.rows(), 64);
  }
};

QTEST_MAIN(TestGuiWindow)
#include "test_gui_window.moc"
