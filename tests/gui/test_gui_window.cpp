// Tests of the main window: it opens and shows a first result, panel edits recompute, invalid
// parameters and missing backends end up in the status line (never a blocking dialog or a crash).
#include <QLabel>
#include <QSettings>
#include <QStandardItemModel>
#include <QStandardPaths>
#include <QTest>
#include <QTimer>

#include <QMimeData>
#include <QMouseEvent>

#include "attnscope/io.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"
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
      const BackendInfo b = backends()[size_t(i)];  // a copy: backends() is a snapshot
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

  void droppingATensorFileLoadsIt() {
    AttentionProblem p = AttentionProblem::defaults(VariantId::dense);
    p.shape = {1, 2, 2, 32, 32, 16, 16};
    const QString path = test::scratchDir() + "/dropped.safetensors";
    io::save_safetensors(path.toStdString(), make_inputs(p, "periodic", 9).tensors);
    MainWindow w(MainWindow::Options{false, false});
    w.setWorkload(test::smallWorkload());
    w.show();
    QVERIFY(waitUntilSettled(w, 20000));
    QMimeData mime;
    mime.setUrls({QUrl::fromLocalFile(path)});
    QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(w.panel(), &enter);
    QVERIFY(enter.isAccepted());
    QDropEvent drop(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(w.panel(), &drop);
    QSignalSpy loaded(&w.controller(), &ExplorerController::fileLoaded);
    QVERIFY(loaded.wait(10000));
    QVERIFY(waitUntilSettled(w, 20000));
    QVERIFY2(w.lastError().isEmpty(), qPrintable(w.lastError()));
    QCOMPARE(w.controller().workload().file, path);
    QCOMPARE(w.panel()->workload().problem.shape.q_len, 32);
    QVERIFY(!w.panel()->spin("q_len")->isEnabled());  // the file fixes the shape
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

  void uiStaysResponsiveDuringALongRun() {
    // While the worker grinds through a long reference run, the event loop keeps ticking: the
    // largest gap between 10 ms timer ticks stays under 100 ms.
    MainWindow w(MainWindow::Options{false, false});
    w.show();
    QVERIFY(waitUntilSettled(w, 20000));
    Workload wl = Workload::forVariant(VariantId::dense);
    wl.backend = "reference";
    wl.problem.shape.heads = wl.problem.shape.kv_heads = 64;
    wl.problem.shape.q_len = wl.problem.shape.kv_len = 1024;
    w.setWorkload(wl);
    w.controller().recompute();
    QVERIFY(w.controller().busy());
    QElapsedTimer clock;
    clock.start();
    qint64 last = 0, worst = 0;
    QTimer tick;
    tick.setInterval(10);
    connect(&tick, &QTimer::timeout, [&] {
      worst = std::max(worst, clock.elapsed() - last);
      last = clock.elapsed();
    });
    tick.start();
    while (clock.elapsed() < 1200) QTest::qWait(20);
    tick.stop();
    QVERIFY(w.controller().busy());  // still running: the measurement covered a live run
    w.controller().cancel();
    QVERIFY(waitUntilSettled(w, 10000));
    qInfo("worst event-loop gap during the run: %lld ms", worst);
    QVERIFY2(worst < 100, qPrintable(QStringLiteral("UI stalled %1 ms").arg(worst)));
  }

  void settingsRememberTheLastWorkload() {
    QStandardPaths::setTestModeEnabled(true);  // QSettings under ~/.qttest, not the user's
    QCoreApplication::setOrganizationName("attnscope-tests");
    QCoreApplication::setApplicationName("attnscope-tests");
    QSettings().clear();
    {
      MainWindow w;  // remembers by default
      Workload wl = test::smallWorkload(VariantId::swa);
      wl.problem.swa.window = 7;
      w.setWorkload(wl);
      w.show();
      QVERIFY(waitUntilSettled(w, 20000));
      w.close();
    }
    MainWindow again;
    QCOMPARE(again.controller().workload().problem.variant, VariantId::swa);
    QCOMPARE(again.controller().workload().problem.swa.window, 7);
    QSettings().clear();
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

  void batchPickerShowsAnotherSequence() {
    MainWindow w(MainWindow::Options{false, false});
    Workload wl = test::smallWorkload();
    wl.problem.shape.batch = 2;
    w.setWorkload(wl);
    w.show();
    QVERIFY(waitUntilSettled(w, 20000));
    auto* map = static_cast<AttentionMapView*>(w.view(ViewKind::map));
    const QVector<float> first = map->lastResult()->maps.front().values;
    map->setBatch(1);
    QVERIFY(waitUntilSettled(w, 20000));
    QCOMPARE(map->lastResult()->request.batch, 1);
    QVERIFY(map->lastResult()->maps.front().values != first);
  }

  void hoverNamesQueryKeyAndProbability() {
    MainWindow w(MainWindow::Options{false, false});
    w.setWorkload(test::smallWorkload());
    w.show();
    QVERIFY(waitUntilSettled(w, 20000));
    auto* map = static_cast<AttentionMapView*>(w.view(ViewKind::map));
    HeatmapWidget* h = map->heatmap();
    QSignalSpy hover(h, &HeatmapWidget::hoverText);
    // Bottom-left quarter of the plot: a visible (causal) entry.
    const QSize px = h->plotPixels() / h->devicePixelRatioF();
    const QPoint pos(h->width() / 2 - px.width() / 4, h->height() / 2 + px.height() / 4);
    QMouseEvent move(QEvent::MouseMove, pos, h->mapToGlobal(pos), Qt::NoButton, Qt::NoButton,
                     Qt::NoModifier);
    QApplication::sendEvent(h, &move);
    QVERIFY(!hover.isEmpty());
    const QString text = hover.last().at(0).toString();
    QVERIFY2(text.contains("query i = ") && text.contains("key j = ") && text.contains("p = "),
             qPrintable(text));
  }
};

QTEST_MAIN(TestGuiWindow)
#include "test_gui_window.moc"
