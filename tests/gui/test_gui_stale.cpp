// Tests of what the window says about its picture and of the habits it has to honour: a picture
// that is not the answer to the current settings is labelled as the previous result (while
// computing, after cancel, after an error) and the status bar describes what is drawn; a tensor
// file brings its shape and nothing else; refused values are named with their range; the error
// box closes when the problem is fixed; Ctrl+E, F5 and the Run menu; window geometry; memory
// sizes; GUI wording; readable formulas; the Benchmark view's layout and kept sweeps.
#include <QAction>
#include <QApplication>
#include <QDockWidget>
#include <QFontInfo>
#include <QHeaderView>
#include <QKeyEvent>
#include <QLabel>
#include <QMenu>
#include <QMenuBar>
#include <QPushButton>
#include <QScreen>
#include <QSettings>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTabWidget>
#include <QTableWidget>
#include <QTest>
#include <QTextBlock>
#include <QTextBrowser>

#include "attnscope/io.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"
#include "gui_test_support.hpp"
#include "live/model_presets.hpp"
#include "presets.hpp"
#include "views/benchmark_view.hpp"
#include "views/learn_view.hpp"
#include "views/stale_overlay.hpp"
#include "wording.hpp"
#include "workload_panel.hpp"

using namespace attnscope;
using namespace attnscope::gui;

namespace {

QString describe(const Workload& w) {
  return QString::fromStdString(w.problem.describe());
}

QString labelText(const MainWindow& w, const char* name) {
  const auto* label = w.findChild<QLabel*>(name);
  return label ? label->text() : QStringLiteral("<no %1>").arg(name);
}

StaleOverlay* overlayOf(ViewBase* view) {
  return view->findChild<StaleOverlay*>(QStringLiteral("staleOverlay"));
}

// The overlay's label while it is shown; empty when the picture is current.
QString staleLabel(ViewBase* view) {
  const StaleOverlay* o = overlayOf(view);
  return o && !o->isHidden() ? o->label() : QString();
}

// A run of the reference backend that takes seconds: long enough to be caught computing.
Workload slowWorkload() {
  Workload w = Workload::forVariant(VariantId::dense);
  w.backend = "reference";
  w.problem.shape.heads = w.problem.shape.kv_heads = 64;
  w.problem.shape.q_len = w.problem.shape.kv_len = 2048;
  return w;
}

bool waitFor(const std::function<bool()>& done, int timeoutMs = 20000) {
  QElapsedTimer t;
  t.start();
  while (t.elapsed() < timeoutMs) {
    if (done()) return true;
    QTest::qWait(10);
  }
  return done();
}

QAction* findAction(const MainWindow& w, const char* name) {
  return w.findChild<QAction*>(name);
}

// What a line edit does with Ctrl+E under the X11 keyboard scheme (end of line): it claims the key
// by accepting the ShortcutOverride, which beat the window's Export action. The offscreen
// platform's scheme binds nothing to Ctrl+E, so the test puts the claim back explicitly.
class ClaimsCtrlE : public QObject {
 public:
  using QObject::QObject;
  bool eventFilter(QObject*, QEvent* e) override {
    if (e->type() != QEvent::ShortcutOverride) return false;
    const auto* key = static_cast<QKeyEvent*>(e);
    if (key->key() != Qt::Key_E || !(key->modifiers() & Qt::ControlModifier)) return false;
    e->accept();
    return true;
  }
};

}  // namespace

class TestGuiStale : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() { QStandardPaths::setTestModeEnabled(true); }

  // Compare (a result view) and the status bar against the drawn result after a run, while a new
  // run computes, after cancel and after an error.
  void picturesAndStatusDescribeWhatIsDrawn() {
    MainWindow w(MainWindow::Options{false, false});
    const Workload small = test::smallWorkload();
    w.setWorkload(small);
    w.setCurrentView(ViewKind::compare);
    w.show();
    QVERIFY(waitUntilSettled(w, 20000));
    ViewBase* compare = w.view(ViewKind::compare);
    QVERIFY(compare->lastResult());
    QVERIFY(overlayOf(compare));
    QCOMPARE(staleLabel(compare), QString());
    QVERIFY2(labelText(w, "costLabel").contains(describe(small)),
             qPrintable(labelText(w, "costLabel")));
    QVERIFY(!labelText(w, "costLabel").contains("previous"));
    QVERIFY(labelText(w, "runLabel").startsWith("run "));

    // A new, slow run: the old picture is labelled and the status names the drawn problem.
    const Workload slow = slowWorkload();
    w.setWorkload(slow);
    QVERIFY(staleLabel(compare).contains("computing"));
    QVERIFY(waitFor([&] { return w.controller().busy(); }));
    QVERIFY(staleLabel(compare).contains("computing"));
    const QString cost = labelText(w, "costLabel");
    QVERIFY2(cost.contains("previous result") && cost.contains(describe(small)), qPrintable(cost));
    QVERIFY(!cost.contains(describe(slow)));

    // Esc: still the previous picture, said so; the phase text is gone.
    w.controller().cancel();
    QVERIFY(waitUntilSettled(w, 20000));
    QCOMPARE(compare->lastResult()->workload.problem.shape.q_len, small.problem.shape.q_len);
    QVERIFY2(staleLabel(compare).contains("cancelled"), qPrintable(staleLabel(compare)));
    QVERIFY(labelText(w, "costLabel").contains("previous result"));
    QVERIFY(labelText(w, "costLabel").contains(describe(small)));
    QVERIFY2(labelText(w, "runLabel").startsWith("run "), qPrintable(labelText(w, "runLabel")));
    QVERIFY(!labelText(w, "runLabel").contains(QChar(0x2026)));  // no "running …" phase left
    QVERIFY(labelText(w, "errorLabel").contains("cancelled"));

    // An error: the status says it, the picture is labelled as the previous result.
    Workload bad = small;
    bad.problem.shape.heads = 3;  // 3 heads cannot share 2 kv heads
    w.setWorkload(bad);
    QVERIFY(waitUntilSettled(w, 20000));
    QVERIFY(w.lastError().contains("divisible"));
    QCOMPARE(labelText(w, "errorLabel"), w.lastError());
    QVERIFY2(staleLabel(compare).contains("failed"), qPrintable(staleLabel(compare)));
    QVERIFY(labelText(w, "costLabel").contains("previous result"));
    QVERIFY(labelText(w, "costLabel").contains(describe(small)));
    QVERIFY(labelText(w, "runLabel").startsWith("run "));

    // Fixed: current again.
    Workload next = small;
    next.problem.shape.q_len = next.problem.shape.kv_len = 48;
    w.setWorkload(next);
    QVERIFY(waitUntilSettled(w, 20000));
    QVERIFY(w.lastError().isEmpty());
    QCOMPARE(staleLabel(compare), QString());
    QVERIFY(labelText(w, "costLabel").contains(describe(next)));
    QVERIFY(!labelText(w, "costLabel").contains("previous"));
  }

  // Opening a tensor file takes its shape and keeps window, seed and pattern; Clear restores the
  // shape in force before the file.
  void fileKeepsTheSettingsAndClearRestoresThem() {
    AttentionProblem p = AttentionProblem::defaults(VariantId::swa);
    p.shape = {1, 2, 2, 32, 32, 16, 16};
    const QString path = test::scratchDir() + "/stale-keeps.safetensors";
    io::save_safetensors(path.toStdString(), make_inputs(p, "periodic", 9).tensors);

    MainWindow w(MainWindow::Options{false, false});
    Workload before = test::smallWorkload(VariantId::swa);
    before.problem.swa.window = 7;
    before.seed = 5;
    before.pattern = "random";
    w.setWorkload(before);
    w.show();
    QVERIFY(waitUntilSettled(w, 20000));

    QSignalSpy loaded(&w.controller(), &ExplorerController::fileLoaded);
    w.controller().loadFile(path);
    QVERIFY(loaded.wait(10000));
    QVERIFY(waitUntilSettled(w, 20000));
    QVERIFY2(w.lastError().isEmpty(), qPrintable(w.lastError()));
    const Workload withFile = w.controller().workload();
    QCOMPARE(withFile.file, path);
    QCOMPARE(withFile.problem.shape.q_len, 32);  // the file's shape
    QCOMPARE(withFile.problem.shape.head_dim, 16);
    QCOMPARE(withFile.problem.swa.window, 7);  // everything else as it was
    QCOMPARE(withFile.seed, quint64(5));
    QCOMPARE(withFile.pattern, QStringLiteral("random"));
    QCOMPARE(w.panel()->workload().problem.swa.window, 7);
    QCOMPARE(w.view(ViewKind::map)->lastResult()->workload.file, path);

    // The file's Clear (the model source has one of its own).
    auto* clear = w.panel()->findChild<QPushButton*>(QStringLiteral("clearFile"));
    QVERIFY(clear && clear->isEnabled());
    clear->click();
    QVERIFY(waitUntilSettled(w, 20000));
    const Workload after = w.controller().workload();
    QVERIFY(after.file.isEmpty());
    QCOMPARE(after.problem.shape.q_len, before.problem.shape.q_len);
    QCOMPARE(after.problem.shape.head_dim, before.problem.shape.head_dim);
    QCOMPARE(after.problem.swa.window, 7);
    QCOMPARE(after.seed, quint64(5));
    QCOMPARE(after.pattern, QStringLiteral("random"));
  }

  // A value the problem refuses is shown beside its field and never pops up; an engine error
  // pops up, in GUI words, and the box closes when a run succeeds again.
  void errorBoxClosesWhenFixedAndTypingDoesNotRaiseIt() {
    MainWindow w(MainWindow::Options{false, true});
    w.setWorkload(test::smallWorkload());
    w.show();
    QVERIFY(waitUntilSettled(w, 20000));

    w.panel()->spin("kv_heads")->setValue(3);  // on the way from 2 to 4, say
    QVERIFY(waitUntilSettled(w, 20000));
    QVERIFY(w.lastError().contains("divisible"));
    QVERIFY(!w.errorBox() || w.errorBox()->isHidden());
    QVERIFY2(w.panel()->fieldNote("kv_heads").contains("divisible"),
             qPrintable(w.panel()->fieldNote("kv_heads")));
    w.panel()->spin("kv_heads")->setValue(1);
    QVERIFY(waitUntilSettled(w, 20000));
    QVERIFY(w.lastError().isEmpty());
    QCOMPARE(w.panel()->fieldNote("kv_heads"), QString());

    Workload lowPrecision = test::smallWorkload();
    lowPrecision.backend = "cpu";
    lowPrecision.problem.precision = Precision::bf16;  // the cpu backend computes in fp32 only
    w.setWorkload(lowPrecision);
    QVERIFY(waitUntilSettled(w, 20000));
    QVERIFY(!w.lastError().isEmpty());
    QVERIFY(w.errorBox() && w.errorBox()->isVisible());
    QVERIFY2(!w.lastError().contains("--"), qPrintable(w.lastError()));  // no CLI flags
    QVERIFY2(w.lastError().contains("Precision fp32"), qPrintable(w.lastError()));

    Workload fixed = lowPrecision;
    fixed.problem.precision = Precision::fp32;
    w.setWorkload(fixed);
    QVERIFY(waitUntilSettled(w, 20000));
    QVERIFY(w.lastError().isEmpty());
    QVERIFY(w.errorBox()->isHidden());
  }

  // 10^7 typed into Lq (at most 2^20) is refused with the range, not cut to 1,000,000; window 0
  // (at least 1) is refused by name rather than silently reverted.
  void outOfRangeValuesAreRefusedWithTheirRange() {
    MainWindow w(MainWindow::Options{false, false});
    w.setWorkload(test::smallWorkload(VariantId::swa));
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QVERIFY(waitUntilSettled(w, 20000));

    QSpinBox* lq = w.panel()->spin("q_len");
    lq->setFocus();
    lq->selectAll();
    QTest::keyClicks(lq, "10000000");
    QCOMPARE(lq->text(), QStringLiteral("10000000"));  // every digit got in
    QTest::keyClick(lq, Qt::Key_Return);
    QVERIFY(waitUntilSettled(w, 20000));
    QCOMPARE(lq->value(), 64);
    QCOMPARE(w.controller().workload().problem.shape.q_len, 64);
    const QString note = w.panel()->fieldNote("q_len");
    QVERIFY2(
        note.contains("10000000") && note.contains(QStringLiteral("1 to %1").arg(lq->maximum())),
        qPrintable(note));

    QSpinBox* window = w.panel()->spin("window");
    QVERIFY(window->minimum() >= 1);
    window->setFocus();
    window->selectAll();
    QTest::keyClicks(window, "0");
    QTest::keyClick(window, Qt::Key_Return);
    QVERIFY(waitUntilSettled(w, 20000));
    QCOMPARE(w.controller().workload().problem.swa.window, 16);
    QVERIFY2(w.panel()->fieldNote("window").contains(
                 QStringLiteral("%1 to %2").arg(window->minimum()).arg(window->maximum())),
             qPrintable(w.panel()->fieldNote("window")));
    // Leaving the field puts the value in force back and says it was kept.
    lq->setFocus();
    QVERIFY(waitFor([&] { return w.panel()->fieldNote("window").contains("16 kept"); }, 2000));
    QCOMPARE(window->value(), 16);

    // A number in range typed into the field applies after a short pause, without Enter.
    window->setFocus();
    window->selectAll();
    QTest::keyClicks(window, "9");
    QVERIFY(waitFor([&] { return w.controller().workload().problem.swa.window == 9; }, 3000));
    QCOMPARE(w.panel()->fieldNote("window"), QString());
  }

  void ctrlEExportsFromANumberField() {
    MainWindow w(MainWindow::Options{false, false});
    w.setWorkload(test::smallWorkload());
    w.show();
    w.activateWindow();
    QVERIFY(QTest::qWaitForWindowActive(&w));
    QVERIFY(waitUntilSettled(w, 20000));
    QAction* figure = findAction(w, "exportFigureAction");
    QAction* data = findAction(w, "exportDataAction");
    QVERIFY(figure && data);
    // The file dialogs are not what is tested: only that the actions fire.
    figure->disconnect(&w);
    data->disconnect(&w);
    QSignalSpy figureSpy(figure, &QAction::triggered), dataSpy(data, &QAction::triggered);
    QSpinBox* field = w.panel()->spin("q_len");
    ClaimsCtrlE claim;
    field->installEventFilter(&claim);
    field->setFocus();
    QVERIFY(field->hasFocus());
    QTest::keyClick(field, Qt::Key_E, Qt::ControlModifier);
    QCOMPARE(figureSpy.count(), 1);
    QTest::keyClick(field, Qt::Key_E, Qt::ControlModifier | Qt::ShiftModifier);
    QCOMPARE(dataSpy.count(), 1);
    QCOMPARE(field->value(), 64);  // and the field did not take the keys
  }

  // F5 and Ctrl+R run the engine again (a new run, not the cached one); one "Recompute" entry.
  void recomputeRerunsTheEngineAndIsListedOnce() {
    MainWindow w(MainWindow::Options{false, false});
    w.setWorkload(test::smallWorkload());
    w.show();
    w.activateWindow();
    QVERIFY(QTest::qWaitForWindowActive(&w));
    QVERIFY(waitUntilSettled(w, 20000));
    ViewBase* map = w.view(ViewKind::map);
    const auto first = map->lastResult()->runResult;
    QVERIFY(first);

    // A plain recompute answers from the cached run: the test can tell the two apart.
    w.controller().recompute();
    QVERIFY(waitUntilSettled(w, 20000));
    QCOMPARE(map->lastResult()->runResult.get(), first.get());

    QTest::keyClick(&w, Qt::Key_F5);
    QVERIFY(waitFor([&] { return map->lastResult()->runResult != first; }));
    QVERIFY(waitUntilSettled(w, 20000));
    const auto second = map->lastResult()->runResult;
    QVERIFY(second && second != first);
    QTest::keyClick(&w, Qt::Key_R, Qt::ControlModifier);
    QVERIFY(waitFor([&] { return map->lastResult()->runResult != second; }));

    QMenu* run = nullptr;
    for (QAction* a : w.menuBar()->actions()) {
      if (a->menu() && a->text().remove('&') == "Run") run = a->menu();
    }
    QVERIFY(run);
    int recompute = 0;
    for (QAction* a : run->actions()) recompute += a->text().remove('&') == "Recompute";
    QCOMPARE(recompute, 1);
    const QList<QKeySequence> keys = findAction(w, "recomputeAction")->shortcuts();
    QVERIFY(keys.contains(QKeySequence(Qt::Key_F5)));
    QVERIFY(keys.contains(QKeySequence(Qt::CTRL | Qt::Key_R)));
  }

  // The default window and its minimum fit a 1280 x 800 screen with room for a title bar and a
  // panel; a saved geometry from a larger screen comes back inside this one.
  void geometryFitsTheScreen() {
    const QRect laptop(0, 0, 1280, 800);
    const QSize size = MainWindow::defaultSize(laptop);
    QVERIFY(size.width() <= 1280 && size.height() <= 800 - 48);
    {
      MainWindow w(MainWindow::Options{false, false});
      const QSize minimum = w.minimumSizeHint();
      QVERIFY2(
          minimum.width() <= size.width() && minimum.height() <= size.height(),
          qPrintable(QStringLiteral("minimum %1 x %2").arg(minimum.width()).arg(minimum.height())));
      // A long error or description in the status bar does not widen the window either.
      Workload lowPrecision = test::smallWorkload();
      lowPrecision.backend = "cpu";
      lowPrecision.problem.precision = Precision::bf16;
      w.setWorkload(lowPrecision);
      w.show();
      QVERIFY(waitUntilSettled(w, 20000));
      QVERIFY(!w.lastError().isEmpty());
      QVERIFY(w.minimumSizeHint().width() <= size.width());
    }
    QCOMPARE(MainWindow::fitToScreen(QRect(3000, 2000, 4000, 3000), laptop), laptop);
    QCOMPARE(MainWindow::fitToScreen(QRect(-500, 100, 800, 600), laptop), QRect(0, 100, 800, 600));
    QCOMPARE(MainWindow::fitToScreen(QRect(100, 100, 800, 600), laptop), QRect(100, 100, 800, 600));
    QCOMPARE(MainWindow::fitToScreen(QRect(900, 500, 800, 600), laptop, QSize(900, 700)),
             QRect(380, 100, 900, 700));

    QCoreApplication::setOrganizationName("attnscope-tests-stale");
    QCoreApplication::setApplicationName("attnscope-tests-stale");
    QSettings().clear();
    {
      MainWindow big;
      big.setGeometry(5000, 4000, 6000, 5000);
      big.close();  // saves the geometry
    }
    MainWindow again;
    const QRect available = again.screen()->availableGeometry();
    const QRect g = again.geometry();
    QVERIFY2(available.contains(g.topLeft()),
             qPrintable(QStringLiteral("%1,%2").arg(g.x()).arg(g.y())));
    QVERIFY(g.width() <= std::max(available.width(), again.minimumSizeHint().width()));
    QVERIFY(g.height() <= std::max(available.height(), again.minimumSizeHint().height()));
    QSettings().clear();
  }

  void memoryIsInBinaryUnits() {
    QCOMPARE(humanBytes(2030.0 * (1 << 30)), QStringLiteral("1.98 TiB"));
    QCOMPARE(humanBytes(1536.0 * 1024), QStringLiteral("1.50 MiB"));
    const QString rewritten = guiWording("problem needs at least 2.03e+03 GiB for its inputs");
    QCOMPARE(rewritten, QStringLiteral("problem needs at least 1.98 TiB for its inputs"));

    // The engine's own refusal of a problem too large for memory, as the window shows it.
    MainWindow w(MainWindow::Options{false, false});
    Workload huge = Workload::forVariant(VariantId::dense);
    huge.problem.shape.batch = 64;
    huge.problem.shape.heads = huge.problem.shape.kv_heads = 128;
    huge.problem.shape.q_len = huge.problem.shape.kv_len = 1 << 20;
    huge.problem.shape.head_dim = huge.problem.shape.v_head_dim = 1024;
    w.setWorkload(huge);
    QVERIFY(waitUntilSettled(w, 20000));
    QVERIFY2(w.lastError().contains("iB"), qPrintable(w.lastError()));
    QVERIFY2(!w.lastError().contains("e+"), qPrintable(w.lastError()));

    w.setWorkload(test::smallWorkload());
    QVERIFY(waitUntilSettled(w, 20000));
    QVERIFY2(labelText(w, "costLabel").contains("iB moved"), qPrintable(labelText(w, "costLabel")));
  }

  void guiWordsInsteadOfCommandLineFlags() {
    const QString precision = guiWording(
        "the cpu backend computes in fp32; bf16 needs the cuda backend (run with --precision fp32 "
        "here)");
    QVERIFY2(!precision.contains("--") && precision.contains("choose Precision fp32"),
             qPrintable(precision));
    QVERIFY(!guiWording("Gated DeltaNet is defined only for causal attention (drop --non-causal)")
                 .contains("--"));
    const QString noGpu = backendUnavailableTip(
        "cuda",
        "no usable CUDA device (CUDA driver version is insufficient for CUDA runtime "
        "version)");
    QVERIFY2(noGpu.contains("no NVIDIA GPU was found") && !noGpu.contains("driver"),
             qPrintable(noGpu));
    QVERIFY(noGpu.startsWith("Unavailable"));
    QVERIFY(backendUnavailableTip("other", "not built").contains("not built"));
  }

  // Every sub- and superscript of every Learn page is drawn at 9 px or more (Qt draws them at
  // 70 % of the surrounding text).
  void learnFormulasAreReadable() {
    LearnView learn;
    QTextBrowser* text = learn.browser();
    int checked = 0;
    for (const Preset& p : presets()) {
      learn.selectPreset(p.name);
      QTextDocument* doc = text->document();
      for (QTextBlock b = doc->begin(); b.isValid(); b = b.next()) {
        for (auto it = b.begin(); !it.atEnd(); ++it) {
          const QTextCharFormat f = it.fragment().charFormat();
          const auto align = f.verticalAlignment();
          if (align != QTextCharFormat::AlignSubScript &&
              align != QTextCharFormat::AlignSuperScript)
            continue;
          QVERIFY(f.property(QTextFormat::FontSizeAdjustment).toInt() >= 0);
          const QFont font = f.font().resolve(doc->defaultFont());
          const int px = (QFontInfo(font).pixelSize() * 7 + 5) / 10;
          QVERIFY2(
              px >= 9,
              qPrintable(
                  QStringLiteral("%1: '%2' at %3 px").arg(p.name, it.fragment().text()).arg(px)));
          ++checked;
        }
      }
    }
    QVERIFY(checked > 20);  // the pages do have indices
  }

  void benchmarkRunButtonStaysAndTableHasRoom() {
    MainWindow w(MainWindow::Options{false, false});
    w.resize(MainWindow::defaultSize(QRect(0, 0, 1280, 800)));
    w.setCurrentView(ViewKind::benchmark);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    auto* bench = static_cast<BenchmarkView*>(w.view(ViewKind::benchmark));
    const auto runAt = [&] {
      QCoreApplication::processEvents();
      return bench->runButton()->mapTo(bench, QPoint(0, 0));
    };
    const QPoint before = runAt();
    QStringList all;
    for (const VariantInfo& v : variants()) all << QString::fromUtf8(v.name.data(), v.name.size());
    bench->setSelectedVariants(all);
    bench->setMode(SweepMode::decode);
    bench->setSeqLens("128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072");
    QCOMPARE(runAt(), before);
    bench->setSelectedVariants({});
    QVERIFY(!bench->startSweep().isEmpty());  // a status message in red
    QCOMPARE(runAt(), before);

    QTableWidget* table = bench->table();
    const int rows = (table->height() - table->horizontalHeader()->height()) /
                     table->verticalHeader()->defaultSectionSize();
    QVERIFY2(rows >= 6, qPrintable(QStringLiteral("room for %1 rows").arg(rows)));
  }

  void benchmarkCanKeepThePreviousPoints() {
    BenchmarkView view;
    view.setWorkload(test::smallWorkload());
    view.setSelectedBackends({preferredBackend()});
    view.setSeqLens("32, 64");
    view.setRepetitions(1);
    QSignalSpy finished(&view, &BenchmarkView::sweepFinished);
    const auto sweep = [&](const QString& variant) {
      view.setSelectedVariants({variant});
      const int before = finished.count();
      QVERIFY(view.startSweep().isEmpty());
      QVERIFY(waitFor([&] { return finished.count() > before; }, 60000));
    };
    const auto count = [&](const char* variant) {
      int n = 0;
      for (const SweepPoint& p : view.sweep().points) n += p.variant == variant;
      return n;
    };
    sweep("dense");
    QCOMPARE(count("dense"), 2);
    view.keepPreviousBox()->setChecked(true);
    sweep("swa");
    QCOMPARE(count("dense"), 2);  // kept
    QCOMPARE(count("swa"), 2);
    QCOMPARE(view.chart().data().series.size(), 2);
    sweep("swa");  // the same points again replace the kept ones
    QCOMPARE(count("dense"), 2);
    QCOMPARE(count("swa"), 2);
    view.keepPreviousBox()->setChecked(false);
    sweep("swa");
    QCOMPARE(count("dense"), 0);
    QCOMPARE(count("swa"), 2);
  }
};

QTEST_MAIN(TestGuiStale)
#include "test_gui_stale.moc"
