// Tests of the controller/worker pair without a window: results arrive from the worker thread,
// newer requests supersede older ones, long runs cancel promptly, errors come back as messages.
// And of the GuiWorker every GUI engine job runs on, alone.
#include <QTest>
#include <QThread>
#include <atomic>
#include <new>
#include <optional>
#include <stdexcept>

#include "attnscope/error.hpp"
#include "attnscope/io.hpp"
#include "attnscope/workload.hpp"
#include "explorer_controller.hpp"
#include "gui_test_support.hpp"
#include "worker.hpp"

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

// A job that runs until it is cancelled (or 10 s pass), like an engine loop polling its token.
int untilCancelled(const GuiWorker::Job& job) {
  QElapsedTimer t;
  t.start();
  while (t.elapsed() < 10000) {
    job.cancel().throw_if_cancelled();
    QThread::msleep(1);
  }
  return -1;
}

void failTest(const JobFailure& f) {
  QFAIL(qPrintable("unexpected failure: " + f.message));
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
    // Esc answers at once, whatever the engine is doing: the controller is idle and says so before
    // cancel() returns; the job stops at its next check on the worker.
    QCOMPARE(cancelled.count(), 1);
    QVERIFY(!c.busy());
    QVERIFY(progress.count() >= 1);  // the preparing phase at least
    // ... and the worker is soon free for the next request (the cancelled run gave up).
    c.setWorkload(test::smallWorkload());
    c.recompute();
    QVERIFY(results.wait(10000));
    QVERIFY2(t.elapsed() < 4000, "the cancelled run kept the worker busy too long");
    QCOMPARE(results.count(), 1);  // the small workload's, nothing from the cancelled run
    QCOMPARE(results.front().at(0).value<ViewResultPtr>()->workload.problem.shape.heads, 2);
  }

  void escDuringTheDebounceIsHeard() {
    ExplorerController c;
    QSignalSpy cancelled(&c, &ExplorerController::cancelled);
    QSignalSpy results(&c, &ExplorerController::resultReady);
    c.setWorkload(test::smallWorkload());  // debounced: nothing runs yet
    QVERIFY(c.pending());
    c.cancel();
    QCOMPARE(cancelled.count(), 1);  // the window relabels its picture, as for a running job
    QVERIFY(!c.pending() && !c.busy());
    QTest::qWait(400);
    QCOMPARE(results.count(), 0);
  }

  void exportNeverStartsARun() {
    // An export re-probes the map on screen from the cached run; without one it fails at once
    // with the reason instead of running the engine behind a wait cursor.
    ExplorerController c;
    c.setWorkload(longWorkload());  // not run yet
    ViewRequest r;
    r.outRows = r.outCols = 64;
    QString failure;
    bool done = false;
    QElapsedTimer t;
    t.start();
    c.computeForExport(
        r, [&](ViewResultPtr) { done = true; },
        [&](const QString& e) {
          failure = e;
          done = true;
        });
    QTRY_VERIFY_WITH_TIMEOUT(done, 5000);
    QVERIFY2(failure.contains("not at hand"), qPrintable(failure));
    QVERIFY(t.elapsed() < 3000);
    c.cancel();
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
                                                    {VariantId::gated_delta, ViewKind::state},
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
      if (view == ViewKind::state) {
        QVERIFY(res->stateNorm.size() > 2);
        QCOMPARE(res->gate.size(), 64);
      }
    }
  }

  // --- the GuiWorker alone ---

  void workerRunsJobsOffTheOwnerThreadAndDeliversOnIt() {
    GuiWorker w(QStringLiteral("test-worker"));
    std::atomic<Qt::HANDLE> ranOn = nullptr;
    Qt::HANDLE deliveredOn = nullptr;
    int result = 0;
    w.start(
        0,
        [&](const GuiWorker::Job&) {
          ranOn = QThread::currentThreadId();
          return 42;
        },
        [&](int r) {
          result = r;
          deliveredOn = QThread::currentThreadId();
        },
        failTest);
    QVERIFY(w.busy());
    QTRY_VERIFY_WITH_TIMEOUT(!w.busy(), 10000);
    QCOMPARE(result, 42);
    QVERIFY(ranOn.load() != QThread::currentThreadId());
    QCOMPARE(deliveredOn, QThread::currentThreadId());
    QVERIFY(w.thread() != QThread::currentThread());
  }

  void workerNewestRequestWins() {
    GuiWorker w(QStringLiteral("test-worker"));
    std::atomic<int> firstStarted = 0, secondRan = 0;
    int delivered = 0, failures = 0, third = 0;
    w.start(
        0,
        [&](const GuiWorker::Job& job) {
          firstStarted = 1;
          return untilCancelled(job);
        },
        [&](int) { ++delivered; }, [&](const JobFailure&) { ++failures; });
    QTRY_VERIFY_WITH_TIMEOUT(firstStarted.load() == 1, 10000);
    // The second supersedes the running first (cancelled), the third the queued second (skipped).
    w.start(
        0, [&](const GuiWorker::Job&) { return ++secondRan; }, [&](int) { ++delivered; },
        [&](const JobFailure&) { ++failures; });
    w.start(
        0, [](const GuiWorker::Job&) { return 3; }, [&](int r) { third = r; }, failTest);
    QTRY_VERIFY_WITH_TIMEOUT(!w.busy(), 10000);
    QCOMPARE(third, 3);
    QCOMPARE(secondRan.load(), 0);
    QTest::qWait(50);
    QCOMPARE(delivered, 0);  // the superseded jobs report nothing, not even their cancel
    QCOMPARE(failures, 0);
  }

  void workerCancelArrivesAsCancelled() {
    GuiWorker w(QStringLiteral("test-worker"));
    std::optional<JobFailure> failure;
    w.start(
        0, untilCancelled, [](int) { QFAIL("a cancelled job has no result"); },
        [&](const JobFailure& f) { failure = f; });
    QTest::qWait(50);
    QElapsedTimer t;
    t.start();
    w.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(failure.has_value(), 5000);
    QVERIFY(t.elapsed() < 3000);
    QVERIFY(failure->cancelled());
    QVERIFY(!w.busy());
  }

  void workerExceptionsBecomeFailures() {
    QVector<JobFailure> failures;
    const auto failed = [&](const JobFailure& f) { failures.append(f); };
    const auto never = [](int) { QFAIL("a failed job has no result"); };
    // Each on its own lane, so none supersedes another.
    GuiWorker lanes(QStringLiteral("test-worker"), 3);
    lanes.start(
        0, [](const GuiWorker::Job&) -> int { throw Error("engine says no"); }, never, failed);
    lanes.start(
        1, [](const GuiWorker::Job&) -> int { throw std::bad_alloc(); }, never, failed);
    lanes.start(
        2, [](const GuiWorker::Job&) -> int { throw std::logic_error("odd"); }, never, failed);
    QTRY_COMPARE_WITH_TIMEOUT(failures.size(), 3, 10000);
    QCOMPARE(int(failures[0].kind), int(JobFailure::Kind::engine));
    QCOMPARE(failures[0].message, QStringLiteral("engine says no"));
    QCOMPARE(int(failures[1].kind), int(JobFailure::Kind::outOfMemory));
    QCOMPARE(int(failures[2].kind), int(JobFailure::Kind::unexpected));
    QCOMPARE(failures[2].message, QStringLiteral("odd"));
  }

  void workerLanesDoNotSupersedeEachOther() {
    GuiWorker w(QStringLiteral("test-worker"), 2);
    std::atomic<bool> started = false;
    int first = 0, second = 0;
    w.start(
        0,
        [&](const GuiWorker::Job&) {
          started = true;
          QThread::msleep(100);
          return 1;
        },
        [&](int r) { first = r; }, failTest);
    w.start(
        1, [](const GuiWorker::Job&) { return 2; }, [&](int r) { second = r; }, failTest);
    QTRY_VERIFY_WITH_TIMEOUT(!w.busy(0) && !w.busy(1), 10000);
    QCOMPARE(first, 1);
    QCOMPARE(second, 2);
  }

  void workerForgetDropsLateNews() {
    GuiWorker w(QStringLiteral("test-worker"));
    std::atomic<bool> finished = false;
    int news = 0;
    w.start(
        0,
        [&](const GuiWorker::Job& job) {
          while (!job.cancel().cancelled()) QThread::msleep(1);
          job.post([&] { ++news; });  // too late: the lane was forgotten
          finished = true;
          return 0;  // a result despite the cancel: dropped all the same
        },
        [&](int) { ++news; }, [&](const JobFailure&) { ++news; });
    QTest::qWait(20);
    w.forget();
    QVERIFY(!w.busy());
    QTRY_VERIFY_WITH_TIMEOUT(finished.load(), 5000);
    QTest::qWait(50);
    QCOMPARE(news, 0);
  }

  void workerPostAlwaysOutlivesSupersession() {
    GuiWorker w(QStringLiteral("test-worker"));
    std::atomic<bool> started = false;
    int kept = 0, answers = 0;
    w.start(
        0,
        [&](const GuiWorker::Job& job) {
          started = true;
          while (!job.cancel().cancelled()) QThread::msleep(1);
          job.postAlways([&] { ++kept; });
          return 1;
        },
        [&](int) { ++answers; }, [&](const JobFailure&) { ++answers; });
    QTRY_VERIFY_WITH_TIMEOUT(started.load(), 5000);
    w.start(
        0, [](const GuiWorker::Job&) { return 2; }, [&](int r) { answers += 10 * r; }, failTest);
    QTRY_VERIFY_WITH_TIMEOUT(!w.busy(), 10000);
    QTest::qWait(20);
    QCOMPARE(kept, 1);
    QCOMPARE(answers, 20);  // only the newest job's answer
  }

  void workerVoidJobsAndDestructorAbortsAndJoins() {
    std::atomic<bool> started = false, queuedRan = false;
    int delivered = 0;
    QElapsedTimer t;
    {
      GuiWorker w(QStringLiteral("test-worker"), 2);
      w.start(
          0,
          [&](const GuiWorker::Job& job) {
            started = true;
            untilCancelled(job);
          },
          [&] { ++delivered; }, [&](const JobFailure&) { ++delivered; });
      w.start(
          1, [&](const GuiWorker::Job&) { queuedRan = true; }, [&] { ++delivered; },
          [&](const JobFailure&) { ++delivered; });
      QTRY_VERIFY_WITH_TIMEOUT(started.load(), 5000);
      t.start();
    }  // cancels the running job, drops the queued one, joins
    QVERIFY(t.elapsed() < 3000);
    QVERIFY(!queuedRan.load());
    QTest::qWait(20);
    QCOMPARE(delivered, 0);
  }
};

QTEST_MAIN(TestGuiWorker)
#include "test_gui_worker.moc"
