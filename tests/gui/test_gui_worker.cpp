// Tests of the controller/worker pair without a window: results arrive from the worker thread,
// newer requests supersede older ones, long runs cancel promptly, errors come back as messages.
#include <QTest>
#include <QThread>

#include "attnscope/io.hpp"
#include "attnscope/workload.hpp"
#include "explorer_controller.hpp"
#include "gui_test_support.hpp"

using namespace attnscope;
using namespace attnscope::gui;

namespace {
// A reference-backend run that takes many seconds: long enough to cancel in the middle. Many
// small heads, because the reference loops poll the token once per (batch, head).
Workload longWorkload() {
  Workload w = Workload::forVariant(VariantId::dense);
  w.backend = "reference";
  w.problem.causal = false;
  w.problem.shape.heads = w.problem.shape.kv_heads = 96;
  w.problem.shape.q_len = w.problem.shape.kv_len = 1024;
  w.problem.shape.head_dim = w.problem.shape.v_head_dim = 64;
  return w;
}
}  // namespace

class TestGuiWorker : public QObject {
  Q_OBJECT

 private slots:
  void resultsAreComputedOffTheGuiThread() {
    ExplorerController c;
    QSignalSpy results(&c, &ExplorerController::resultReady);
    c.setWorkload(test::smallWorkload());
    c.recompute();
    QVERIFY(results.wait(20000));
    const auto r = results.takeFirst().at(0).value<ViewResultPtr>();
    QVERIFY(r);
    QVERIFY(r->workerThread != nullptr);
    QVERIFY(r->workerThread != QThread::currentThreadId());
    QVERIFY(c.workerThread() != QThread::currentThread());
    QCOMPARE(r->maps.size(), 1);
    QVERIFY(!r->maps.front().values.isEmpty());
  }

  void zoomedRegionComesBackAtFullDetail() {
    ExplorerController c;
    QSignalSpy results(&c, &ExplorerController::resultReady);
    c.setWorkload(test::smallWorkload());
    ViewRequest r;
    r.region = {8, 24, 4, 20};
    r.outRows = r.outCols = 256;  // more pixels than cells: the probe returns the cells exactly
    c.setViewRequest(r, true);
    QVERIFY(results.wait(20000));
    const auto res = results.takeLast().at(0).value<ViewResultPtr>();
    QCOMPARE(res->maps.front().rows, 16);
    QCOMPARE(res->maps.front().cols, 16);
    QVERIFY(!res->maps.front().pooled());
  }

  void longRunCanBeCancelled() {
    ExplorerController c;
    QSignalSpy cancelled(&c, &ExplorerController::cancelled);
    QSignalSpy results(&c, &ExplorerController::resultReady);
    QSignalSpy progress(&c, &ExplorerController::progressChanged);
    c.setWorkload(longWorkload());
    c.recompute();
    QVERIFY(c.busy());
    QTest::qWait(300);  // let it get going
    QVERIFY(c.busy());
    QElapsedTimer t;
    t.start();
    c.cancel();
    QVERIFY(cancelled.wait(5000));
    QVERIFY2(t.elapsed() < 3000, "cancellation took too long");
    QVERIFY(!c.busy());
    QCOMPARE(results.count(), 0);
    QVERIFY(progress.count() >= 1);  // the preparing phase at least
  }

  void newerRequestSupersedesRunningOne() {
    ExplorerController c;
    QSignalSpy results(&c, &ExplorerController::resultReady);
    c.setWorkload(longWorkload());
    c.recompute();
    QTest::qWait(100);
    Workload small = test::smallWorkload();
    small.backend = "reference";
    c.setWorkload(small);
    c.recompute();
    QVERIFY(results.wait(10000));
    const auto r = results.takeFirst().at(0).value<ViewResultPtr>();
    QCOMPARE(r->workload.problem.shape.q_len, 64);
    QVERIFY(test::waitIdle(c));
    QCOMPARE(results.count(), 0);  // the long run never reported
  }

  void invalidParameterReportsMessage() {
    ExplorerController c;
    QSignalSpy errors(&c, &ExplorerController::errorOccurred);
    Workload w = test::smallWorkload();
    w.problem.shape.heads = 3;
    w.problem.shape.kv_heads = 2;
    c.setWorkload(w);
    c.recompute();
    QCOMPARE(errors.count(), 1);
    QVERIFY(errors.first().at(0).toString().contains("divisible"));
    QVERIFY(!c.busy());
  }

  void hugeProblemIsRefusedBeforeRunning() {
    ExplorerController c;
    QSignalSpy errors(&c, &ExplorerController::errorOccurred);
    Workload w = test::smallWorkload();
    w.problem.shape.heads = w.problem.shape.kv_heads = 128;
    w.problem.shape.q_len = w.problem.shape.kv_len = 1 << 20;
    w.problem.shape.head_dim = w.problem.shape.v_head_dim = 1024;
    c.setWorkload(w);
    c.recompute();
    QCOMPARE(errors.count(), 1);
    QVERIFY(errors.first().at(0).toString().contains("memory"));
  }

  void unknownBackendIsAnErrorNotACrash() {
    ExplorerController c;
    QSignalSpy errors(&c, &ExplorerController::errorOccurred);
    Workload w = test::smallWorkload();
    w.backend = "no-such-gpu";
    c.setWorkload(w);
    c.recompute();
    QVERIFY(errors.wait(10000));
    QVERIFY(errors.first().at(0).toString().contains("no-such-gpu"));
  }

  void badFileIsAnErrorNotACrash() {
    const QString path = test::scratchDir() + "/garbage.safetensors";
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("this is not a safetensors file at all");
    f.close();
    ExplorerController c;
    QSignalSpy errors(&c, &ExplorerController::errorOccurred);
    QSignalSpy loaded(&c, &ExplorerController::fileLoaded);
    c.loadFile(path);
    QVERIFY(errors.wait(10000));
    QVERIFY(errors.first().at(0).toString().contains("garbage.safetensors"));
    QCOMPARE(loaded.count(), 0);
  }

  void loadedFileDrivesTheRun() {
    // Write a real .safetensors set for a small GQA problem, load it, and run on it.
    AttentionProblem p = AttentionProblem::defaults(VariantId::dense);
    p.shape = {1, 4, 2, 48, 40, 16, 8};
    const Inputs in = make_inputs(p, "local", 3);
    const QString path = test::scratchDir() + "/gqa.safetensors";
    io::save_safetensors(path.toStdString(), in.tensors);
    ExplorerController c;
    QSignalSpy loaded(&c, &ExplorerController::fileLoaded);
    QSignalSpy results(&c, &ExplorerController::resultReady);
    c.loadFile(path);
    QVERIFY(loaded.wait(10000));
    const Workload w = loaded.first().at(1).value<Workload>();
    QCOMPARE(w.file, path);
    QCOMPARE(w.problem.shape.kv_heads, 2);
    QCOMPARE(w.problem.shape.q_len, 48);
    QCOMPARE(w.problem.shape.kv_len, 40);
    QCOMPARE(w.problem.shape.v_head_dim, 8);
    QVERIFY(results.wait(10000));
    const auto r = results.takeFirst().at(0).value<ViewResultPtr>();
    QCOMPARE(r->maps.front().region.cols(), 40);
    QVERIFY(r->workload.toJson().value("file").toString() == path);
  }

  void everyAnalysisRunsOnSmallShapes() {
    const std::pair<VariantId, ViewKind> cases[] = {{VariantId::moba, ViewKind::blocks},
                                                    {VariantId::dense, ViewKind::compare},
                                                    {VariantId::gated_delta, ViewKind::deltanet},
                                                    {VariantId::mla, ViewKind::map}};
    for (auto [variant, view] : cases) {
      ExplorerController c;
      QSignalSpy results(&c, &ExplorerController::resultReady);
      QSignalSpy errors(&c, &ExplorerController::errorOccurred);
      Workload w = test::smallWorkload(variant);
      w.problem.mla.absorbed = true;  // MLA's decode form must probe like the plain one
      c.setWorkload(w);
      ViewRequest r;
      r.view = view;
      c.setViewRequest(r, true);
      QVERIFY2(results.wait(20000),
               errors.isEmpty() ? "timeout" : qPrintable(errors.first().at(0).toString()));
      const auto res = results.takeFirst().at(0).value<ViewResultPtr>();
      QVERIFY2(!res->maps.isEmpty(), qPrintable(viewName(view)));
      if (view == ViewKind::blocks) {
        QVERIFY(res->recall > 0 && res->recall <= 1.0 + 1e-6);
        QVERIFY(res->sparsity >= 0 && res->sparsity < 1);
      }
      if (view == ViewKind::compare) QVERIFY(res->massRecall > 0 && res->massRecall <= 1.0 + 1e-6);
      if (view == ViewKind::deltanet) {
        QVERIFY(res->stateNorm.size() > 2);
        QCOMPARE(res->gate.size(), 64);
      }
    }
  }
};

QTEST_MAIN(TestGuiWorker)
#include "test_gui_worker.moc"
