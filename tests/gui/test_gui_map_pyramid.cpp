// The explorer's map at long context: whole-map views come from the run's map pyramid (bins on
// cell edges, listed), a zoom finer than its cells shows the pyramid's cells first and the probe's
// exact frame after, both of the same request, and the progress bar only moves forward.
#include <QTest>

#include "explorer_controller.hpp"
#include "gui_test_support.hpp"

using namespace attnscope;
using namespace attnscope::gui;

namespace {
// Long enough that the pyramid's cells (2048 per axis) hold several keys each; quick on the cpu.
Workload longCpuWorkload() {
  Workload w = Workload::forVariant(VariantId::dense);
  w.backend = "cpu";
  w.problem.causal = true;
  w.problem.shape.heads = w.problem.shape.kv_heads = 2;
  w.problem.shape.q_len = w.problem.shape.kv_len = 8192;
  w.problem.shape.head_dim = w.problem.shape.v_head_dim = 32;
  return w;
}

QVector<ViewResultPtr> results(QSignalSpy& spy) {
  QVector<ViewResultPtr> out;
  for (const QList<QVariant>& args : spy) out.push_back(args.at(0).value<ViewResultPtr>());
  return out;
}
}  // namespace

class TestGuiMapPyramid : public QObject {
  Q_OBJECT

 private slots:
  void wholeMapIsServedFromThePyramid() {
    ExplorerController c;
    QSignalSpy spy(&c, &ExplorerController::resultReady);
    c.setWorkload(longCpuWorkload());
    ViewRequest r;
    r.outRows = r.outCols = 384;
    c.setViewRequest(r, true);
    QVERIFY(test::waitIdle(c, 60000));
    const auto all = results(spy);
    QVERIFY(!all.isEmpty());
    const ViewResultPtr last = all.back();
    QVERIFY(!last->preview);
    QVERIFY(last->runResult && last->runResult->pyramid);
    const MapImage& m = last->maps.front();
    QCOMPARE(m.rows, 384);
    QCOMPARE(m.cols, 384);
    // Served from the cells: explicit edges on cell boundaries, covering the whole map.
    QCOMPARE(m.rowEdges.size(), 385);
    QCOMPARE(m.colEdges.size(), 385);
    QCOMPARE(m.rowEdges.front(), 0);
    QCOMPARE(m.rowEdges.back(), 8192);
    const qint64 cell = last->runResult->pyramid->cell_cols;
    for (qint64 e : m.colEdges) QCOMPARE(e % cell == 0 || e == 8192, true);
    QCOMPARE(m.pool, Pool::max);
    // Causal: the top-right bin is all masked (0), the diagonal is not.
    QCOMPARE(m.at(0, m.cols - 1), 0.0f);
    QVERIFY(m.at(m.rows - 1, m.cols - 1) > 0.0f);
  }

  void deepZoomShowsCellsFirstThenTheExactFrame() {
    ExplorerController c;
    QSignalSpy spy(&c, &ExplorerController::resultReady);
    c.setWorkload(longCpuWorkload());
    ViewRequest r;
    r.outRows = r.outCols = 384;
    c.setViewRequest(r, true);
    QVERIFY(test::waitIdle(c, 60000));
    spy.clear();
    // 512 x 512 entries at 384 pixels: finer than 4-key cells (128 of them per axis).
    r.region = {4096, 4608, 2048, 2560};
    c.setViewRequest(r, true);
    QVERIFY(test::waitIdle(c, 60000));
    const auto all = results(spy);
    QCOMPARE(all.size(), 2);
    QVERIFY(all[0]->preview);
    QVERIFY(!all[1]->preview);
    QCOMPARE(all[0]->id, all[1]->id);  // two frames of one request
    const MapImage& coarse = all[0]->maps.front();
    const MapImage& exact = all[1]->maps.front();
    QVERIFY(coarse.rows < exact.rows);
    QCOMPARE(exact.rows, 384);
    QVERIFY(exact.rowEdges.isEmpty());  // the probe's uniform bins
    QVERIFY(coarse.region.row0 <= 4096 && coarse.region.row1 >= 4608);
    // The same entries pooled two ways: the largest value agrees.
    const float a = *std::max_element(coarse.values.begin(), coarse.values.end());
    const float b = *std::max_element(exact.values.begin(), exact.values.end());
    QVERIFY2(std::abs(a - b) <= 1e-5f * std::max(1.0f, b), qPrintable(QString::number(a - b)));
  }

  // The compare view differences two runs' maps bin by bin: both sides must have the same bins,
  // although dense and MoBA pyramids cut cells differently (MoBA's divide its block size).
  void compareSidesShareTheirBins() {
    ExplorerController c;
    QSignalSpy spy(&c, &ExplorerController::resultReady);
    Workload w = longCpuWorkload();
    w.problem.shape.q_len = w.problem.shape.kv_len = 6144;  // dense cells of 3 keys, MoBA's 2
    w.problem.moba.block_size = 64;
    w.problem.moba.top_k = 4;
    c.setWorkload(w);
    ViewRequest r;
    r.view = ViewKind::compare;
    r.pair = QStringLiteral("dense_vs_moba");
    r.outRows = r.outCols = 384;
    c.setViewRequest(r, true);
    QVERIFY(test::waitIdle(c, 120000));
    const auto all = results(spy);
    QVERIFY(!all.isEmpty());
    const ViewResultPtr res = all.back();
    QCOMPARE(res->maps.size(), 3);
    const MapImage& a = res->maps[0];
    const MapImage& b = res->maps[1];
    QCOMPARE(a.rows, b.rows);
    QCOMPARE(a.cols, b.cols);
    QCOMPARE(a.region, b.region);
    QCOMPARE(a.rowEdges, b.rowEdges);
    QCOMPARE(a.colEdges, b.colEdges);
    for (int x = 0; x < a.rows * a.cols; x += 997) {
      QCOMPARE(res->maps[2].values[x], b.values[x] - a.values[x]);
    }
  }

  void progressOnlyMovesForward() {
    ExplorerController c;
    QSignalSpy progress(&c, &ExplorerController::progressChanged);
    c.setWorkload(longCpuWorkload());
    ViewRequest r;
    r.region = {100, 612, 0, 512};  // a probed region: a real map phase after the run
    c.setViewRequest(r, true);
    QVERIFY(test::waitIdle(c, 60000));
    QVERIFY(progress.count() >= 3);
    double last = -1;
    QStringList phases;
    for (const QList<QVariant>& args : progress) {
      const double f = args.at(0).toDouble();
      QVERIFY2(f >= last - 1e-9, qPrintable(QStringLiteral("%1 after %2").arg(f).arg(last)));
      QVERIFY(f >= 0.0 && f <= 1.0);
      last = f;
      if (phases.isEmpty() || phases.back() != args.at(1).toString()) {
        phases << args.at(1).toString();
      }
    }
    QVERIFY2(phases.size() >= 3, qPrintable(phases.join(" | ")));
    QVERIFY(phases.front().contains("inputs"));
    QVERIFY(phases.back().contains("map"));
  }
};

QTEST_MAIN(TestGuiMapPyramid)
#include "test_gui_map_pyramid.moc"
