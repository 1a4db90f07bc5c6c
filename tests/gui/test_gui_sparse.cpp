// Sparse variants against their dense counterparts in the compare view ("dense_vs_nsa",
// "mla_vs_dsa"): the pairs are listed from VariantInfo::sparse_of, both sides run on the same
// inputs, and the overlap the view reports equals one computed here from the engine's own tiles.
#include <QTest>

#include <algorithm>

#include "attnscope/probes.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"
#include "explorer_controller.hpp"
#include "gui_test_support.hpp"

using namespace attnscope;
using namespace attnscope::gui;

namespace {

Workload nsaWorkload() {
  Workload w = Workload::forVariant(VariantId::nsa);
  w.backend = "cpu";
  w.pattern = "local";
  w.seed = 5;
  w.problem.shape = {1, 4, 2, 200, 200, 32, 32};
  w.problem.nsa = {16, 4, 24};
  return w;
}

Workload dsaWorkload(int64_t top_k) {
  Workload w = Workload::forVariant(VariantId::dsa);
  w.backend = "cpu";
  w.pattern = "random";
  w.seed = 9;
  w.problem.shape = {1, 4, 1, 150, 150, 24, 16};
  w.problem.mla = {32, 8, 16, true};
  w.problem.dsa = {top_k, 2, 8, false};
  return w;
}

ViewResultPtr compare(const Workload& w, const QString& pair) {
  ExplorerController c;
  QSignalSpy spy(&c, &ExplorerController::resultReady);
  QSignalSpy errors(&c, &ExplorerController::errorOccurred);
  c.setWorkload(w);
  ViewRequest r;
  r.view = ViewKind::compare;
  r.pair = pair;
  r.head = 1;
  r.outRows = r.outCols = 64;
  c.setViewRequest(r, true);
  if (!test::waitIdle(c, 60000)) return {};
  if (!errors.isEmpty()) qWarning("%s", qPrintable(errors.back().at(0).toString()));
  if (spy.isEmpty()) return {};
  return spy.back().at(0).value<ViewResultPtr>();
}

// Mean over the rows of head 1 of Σ_j min(A_ij, B_ij), from attention_tile of both runs.
double overlapOf(const AttentionProblem& a, const AttentionProblem& b, const Inputs& inB) {
  Inputs inA;
  for (const TensorSpec& t : variant_info(a.variant).inputs(a)) inA.set(t.name, inB.at(t.name));
  auto cpu = make_backend("cpu");
  const RunResult ra = cpu->run(a, inA, Probes{}, CancelToken{});
  const RunResult rb = cpu->run(b, inB, Probes{}, CancelToken{});
  const int64_t lq = a.shape.q_len, lk = a.shape.kv_len;
  std::vector<float> ta(size_t(lq * lk)), tb(ta.size());
  attention_tile(a, inA, ra, 0, 1, 0, lq, 0, lk, ta.data());
  attention_tile(b, inB, rb, 0, 1, 0, lq, 0, lk, tb.data());
  double sum = 0;
  for (size_t x = 0; x < ta.size(); ++x) sum += std::min(ta[x], tb[x]);
  return sum / double(lq);
}

}  // namespace

class TestGuiSparse : public QObject {
  Q_OBJECT

 private slots:
  void pairsComeFromTheRegistry() {
    const auto& pairs = comparePairs();
    for (const VariantInfo& v : variants()) {
      if (!v.sparse_of) continue;
      const QString id = QString::fromUtf8(variant_info(*v.sparse_of).name.data()) + "_vs_" +
                         QString::fromUtf8(v.name.data());
      QVERIFY2(pairs.contains(id), qPrintable(id));
      QCOMPARE(sparsePairVariant(id), &v);
      QCOMPARE(comparePairVariant(id), nullptr);  // not a plain key-subset pair
      QVERIFY(!comparePairTitle(id).contains('_'));
    }
    QVERIFY(pairs.contains(QStringLiteral("dense_vs_nsa")));
    QVERIFY(pairs.contains(QStringLiteral("mla_vs_dsa")));
    QCOMPARE(sparsePairVariant(QStringLiteral("dense_vs_moba")), nullptr);
  }

  void denseVsNsaReportsTheOverlapOfTheRealMaps() {
    const Workload w = nsaWorkload();
    const ViewResultPtr res = compare(w, QStringLiteral("dense_vs_nsa"));
    QVERIFY(res);
    QCOMPARE(res->maps.size(), 3);
    QVERIFY(res->labelB.contains(QStringLiteral("NSA")));
    AttentionProblem b = w.problem;
    AttentionProblem a = b;
    a.variant = VariantId::dense;
    const Inputs in = make_inputs(b, "local", 5);
    const double want = overlapOf(a, b, in);
    QVERIFY2(std::abs(res->massRecall - want) < 1e-5,
             qPrintable(QStringLiteral("%1 vs %2").arg(res->massRecall).arg(want)));
    QVERIFY(res->massRecall > 0.0 && res->massRecall < 1.0);
    QVERIFY(res->relError > 0.0);
  }

  void mlaVsDsaIsExactWhenTheSelectionHoldsEveryKey() {
    // top_k >= L: DSA attends to every past key, so it is MLA: recall 1, no output error.
    const ViewResultPtr all = compare(dsaWorkload(150), QStringLiteral("mla_vs_dsa"));
    QVERIFY(all);
    QVERIFY2(std::abs(all->massRecall - 1.0) < 1e-5, qPrintable(QString::number(all->massRecall)));
    QVERIFY2(all->relError < 1e-5, qPrintable(QString::number(all->relError)));
    // top_k 12 of 150: a random indexer keeps only part of MLA's mass, exactly what the tiles say.
    const Workload w = dsaWorkload(12);
    const ViewResultPtr some = compare(w, QStringLiteral("mla_vs_dsa"));
    QVERIFY(some);
    AttentionProblem b = w.problem;
    AttentionProblem a = b;
    a.variant = VariantId::mla;
    const double want = overlapOf(a, b, make_inputs(b, "random", 9));
    QVERIFY2(std::abs(some->massRecall - want) < 1e-5,
             qPrintable(QStringLiteral("%1 vs %2").arg(some->massRecall).arg(want)));
    QVERIFY(some->massRecall < 0.99);
  }

  void aDenseWorkloadCanStillAskForTheSparsePair() {
    // The workload is dense; the pair runs NSA at its shape with the workload's NSA knobs.
    Workload w = test::smallWorkload(VariantId::dense);
    w.backend = "cpu";
    const ViewResultPtr res = compare(w, QStringLiteral("dense_vs_nsa"));
    QVERIFY(res);
    QCOMPARE(res->maps.size(), 3);
    QVERIFY(res->massRecall > 0.0 && res->massRecall <= 1.0 + 1e-6);
  }
};

QTEST_MAIN(TestGuiSparse)
#include "test_gui_sparse.moc"
