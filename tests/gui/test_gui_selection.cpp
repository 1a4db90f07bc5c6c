// The selection view for NSA and DSA: its numbers are checked against the engine's own runs and
// tiles computed here, on maps small enough to be unpooled (every bin one entry).
#include <QTest>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "attnscope/cost.hpp"
#include "attnscope/probes.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"
#include "explorer_controller.hpp"
#include "gui_test_support.hpp"
#include "views/block_selection_view.hpp"

using namespace attnscope;
using namespace attnscope::gui;

namespace {

constexpr int64_t L = 72;

Workload nsaWorkload() {
  Workload w = Workload::forVariant(VariantId::nsa);
  w.backend = "cpu";
  w.pattern = "local";
  w.seed = 11;
  w.problem.shape = {1, 4, 2, L, L, 16, 16};
  w.problem.nsa = {8, 4, 12};
  return w;
}

Workload dsaWorkload(int64_t top_k) {
  Workload w = Workload::forVariant(VariantId::dsa);
  w.backend = "cpu";
  w.pattern = "random";
  w.seed = 13;
  w.problem.shape = {1, 3, 1, L, L, 24, 16};
  w.problem.mla = {32, 8, 16, true};
  w.problem.dsa = {top_k, 2, 8, false};
  return w;
}

ViewResultPtr selection(const Workload& w, int head, qint64 topK = 0) {
  ExplorerController c;
  QSignalSpy spy(&c, &ExplorerController::resultReady);
  QSignalSpy errors(&c, &ExplorerController::errorOccurred);
  c.setWorkload(w);
  ViewRequest r;
  r.view = ViewKind::blocks;
  r.headMode = head < 0 ? HeadMode::mean : HeadMode::single;
  r.head = std::max(0, head);
  r.topK = topK;
  r.outRows = r.outCols = 256;  // more bins than entries: every map is exact
  c.setViewRequest(r, true);
  if (!test::waitIdle(c, 60000)) return {};
  if (!errors.isEmpty()) qWarning("%s", qPrintable(errors.back().at(0).toString()));
  if (spy.isEmpty()) return {};
  return spy.back().at(0).value<ViewResultPtr>();
}

bool near(double a, double b, double tol) {
  return std::abs(a - b) <= tol * (1.0 + std::abs(b));
}

// The dense row of query i for head h (or the mean of all heads, h < 0), from a run of `p`.
std::vector<float> denseRow(const AttentionProblem& p, const Inputs& in, const RunResult& r, int h,
                            int64_t i) {
  const int64_t lk = p.shape.kv_len;
  std::vector<float> row(static_cast<size_t>(lk), 0.0f), tmp(static_cast<size_t>(lk));
  for (int64_t hh = 0; hh < p.shape.heads; ++hh) {
    if (h >= 0 && hh != h) continue;
    attention_tile(p, in, r, 0, hh, i, i + 1, 0, lk, tmp.data());
    for (int64_t j = 0; j < lk; ++j) row[size_t(j)] += tmp[size_t(j)];
  }
  if (h < 0)
    for (float& x : row) x /= float(p.shape.heads);
  return row;
}

}  // namespace

class TestGuiSelection : public QObject {
  Q_OBJECT

 private slots:
  void nsaImplicitMapIsTheGatedSumOfItsBranches() {
    const Workload w = nsaWorkload();
    const ViewResultPtr res = selection(w, 3);  // kv group 1
    QVERIFY(res);
    QCOMPARE(res->maps.size(), 5);
    const Inputs in = make_inputs(w.problem, "local", 11);
    const float* g[3] = {in.at("g_cmp").data(), in.at("g_slc").data(), in.at("g_swa").data()};
    for (int64_t i = 0; i < L; ++i) {
      double rowSum[3] = {0, 0, 0};
      for (int64_t j = 0; j < L; ++j) {
        double sum = 0;
        for (int n = 0; n < 3; ++n) {
          const float v = res->maps[1 + n].at(int(i), int(j));
          rowSum[n] += v;
          sum += double(g[n][3 * L + i]) * v;  // head 3's gates
        }
        QVERIFY2(near(res->maps[0].at(int(i), int(j)), sum, 1e-5),
                 qPrintable(QStringLiteral("i %1 j %2").arg(i).arg(j)));
      }
      // Each branch is its own softmax: its row sums to 1 wherever it sees a key.
      for (int n = 0; n < 3; ++n) {
        QVERIFY2(rowSum[n] == 0.0 || near(rowSum[n], 1.0, 1e-4),
                 qPrintable(QStringLiteral("branch %1 row %2: %3").arg(n).arg(i).arg(rowSum[n])));
      }
    }
    QCOMPARE(res->branchGates.size(), 3);
    QCOMPARE(res->branchGates[2].size(), L);
    QCOMPARE(res->branchGates[2][5], g[2][3 * L + 5]);
  }

  void nsaSelectionIsTheGroupsAndRecallIsTheDenseMassOnIt() {
    const Workload w = nsaWorkload();
    const ViewResultPtr res = selection(w, 2);  // kv group 1 again: the same blocks as head 3
    QVERIFY(res);
    const Inputs in = make_inputs(w.problem, "local", 11);
    auto cpu = make_backend("cpu");
    const RunResult run = cpu->run(w.problem, in, Probes{}, CancelToken{});
    const IndexTensor& sel = run.extra_index.at("selection");  // [B, Hkv, Lq, S]
    const int64_t S = w.problem.nsa.block_count, bs = w.problem.nsa.block_size;
    QCOMPARE(res->topK, int(S));
    QCOMPARE(res->selection.size(), L * S);
    for (int64_t x = 0; x < L * S; ++x) QCOMPARE(res->selection[x], sel.data()[L * S + x]);
    // The chosen blocks beyond the forced ones outrank every visible block left out.
    const MapImage& imp = res->maps[4];
    for (int r = 0; r < imp.rows; ++r) {
      const int64_t i = imp.rowBegin(r), own = i / bs;
      const qint32* chosen = res->selection.constData() + i * S;
      float lowestChosen = INFINITY, highestLeft = -INFINITY;
      for (int64_t c = 1; c + 2 <= own; ++c) {
        const float v = imp.at(r, int(c));
        if (std::find(chosen, chosen + S, qint32(c)) != chosen + S) {
          lowestChosen = std::min(lowestChosen, v);
        } else {
          highestLeft = std::max(highestLeft, v);
        }
      }
      QVERIFY2(highestLeft <= lowestChosen * (1 + 1e-5f) || !std::isfinite(lowestChosen),
               qPrintable(QStringLiteral("row %1").arg(i)));
    }
    // Recall: head 2's dense causal mass in the group's selected blocks.
    AttentionProblem dense = AttentionProblem::defaults(VariantId::dense);
    dense.shape = w.problem.shape;
    dense.causal = true;
    Inputs qkv;
    for (const char* n : {"q", "k", "v"}) qkv.set(n, in.at(n));
    const RunResult d = cpu->run(dense, qkv, Probes{}, CancelToken{});
    double total = 0;
    for (int64_t i = 0; i < L; ++i) {
      const std::vector<float> row = denseRow(dense, qkv, d, 2, i);
      double captured = 0;
      for (int64_t t = 0; t < S; ++t) {
        const int32_t c = sel.data()[(L + i) * S + t];
        for (int64_t j = c * bs; c >= 0 && j < std::min((c + 1) * bs, i + 1); ++j)
          captured += row[size_t(j)];
      }
      QVERIFY(near(res->recallPerQuery[i], captured, 1e-5));
      total += captured;
    }
    QVERIFY(near(res->recall, total / double(L), 1e-6));
    QVERIFY(res->recallWithWindow >= res->recall - 1e-9 && res->recallWithWindow <= 1 + 1e-6);
    // Sparsity: the causal pairs read neither in a selected block nor in the window.
    double read = 0, causal = 0;
    for (int64_t i = 0; i < L; ++i) {
      for (int64_t j = 0; j <= i; ++j) {
        bool in = j > i - w.problem.nsa.window;
        for (int64_t t = 0; t < S; ++t) in = in || sel.data()[(L + i) * S + t] == j / bs;
        read += in;
      }
      causal += double(i + 1);
    }
    QVERIFY2(near(res->sparsity, 1.0 - read / causal, 1e-12),
             qPrintable(QStringLiteral("%1 vs %2").arg(res->sparsity).arg(1.0 - read / causal)));
    QVERIFY(res->sparsity > 0.1 && res->sparsity < 0.9);
    QVERIFY(res->recall > 0.2 && res->recall < 1.0);
  }

  void dsaNumbersComeFromTheRunAndTheDenseMla_data() {
    QTest::addColumn<qint64>("lq");
    QTest::addColumn<qint64>("lk");
    QTest::addColumn<int>("head");
    QTest::newRow("square, mean of heads") << qint64(L) << qint64(L) << -1;
    QTest::newRow("fewer queries (a chunk at the end)") << qint64(40) << qint64(L) << 1;
    QTest::newRow("more queries than keys") << qint64(L + 20) << qint64(L) << -1;
  }

  void dsaNumbersComeFromTheRunAndTheDenseMla() {
    QFETCH(qint64, lq);
    QFETCH(qint64, lk);
    QFETCH(int, head);
    Workload w = dsaWorkload(9);
    w.problem.shape.q_len = lq;
    w.problem.shape.kv_len = lk;
    const int64_t off = lk - lq;  // query i sits at position i + off
    const ViewResultPtr res = selection(w, head);
    QVERIFY(res);
    QCOMPARE(res->maps.size(), 2);
    QCOMPARE(res->keyTopK, qint64(9));
    const int64_t first = std::max<int64_t>(0, -off);  // rows before it see no key
    QCOMPARE(res->curveRows, lq - first);
    const Inputs in = make_inputs(w.problem, "random", 13);
    // The index map is index_score_tile, NaN after each query.
    std::vector<float> scores(static_cast<size_t>(lk));
    for (int64_t i : {qint64(0), lq / 2, lq - 1}) {
      index_score_tile(w.problem, in, 0, i, i + 1, 0, lk, scores.data());
      for (int64_t j = 0; j < lk; ++j) {
        const float got = res->maps[0].at(int(i), int(j));
        QVERIFY(j > i + off ? std::isnan(got) : near(got, scores[size_t(j)], 1e-6));
      }
    }
    // Recall and overlap of the run's own selection, against dense MLA (head or heads' mean).
    auto cpu = make_backend("cpu");
    const RunResult run = cpu->run(w.problem, in, Probes{}, CancelToken{});
    const IndexTensor& sel = run.extra_index.at("selection");
    AttentionProblem mla = w.problem;
    mla.variant = VariantId::mla;
    Inputs latent;
    for (const TensorSpec& t : variant_info(VariantId::mla).inputs(mla))
      latent.set(t.name, in.at(t.name));
    const RunResult dense = cpu->run(mla, latent, Probes{}, CancelToken{});
    double recall = 0, overlap = 0;
    for (int64_t i = first; i < lq; ++i) {
      const std::vector<float> row = denseRow(mla, latent, dense, head, i);
      const int64_t seen = std::min<int64_t>(i + off + 1, lk), kept = std::min<int64_t>(9, seen);
      std::vector<int64_t> order(static_cast<size_t>(seen));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return row[size_t(a)] > row[size_t(b)]; });
      double captured = 0;
      int64_t common = 0;
      for (int64_t t = 0; t < kept; ++t) {
        const int32_t s = sel.data()[i * 9 + t];
        captured += row[size_t(s)];
        common += std::find(order.begin(), order.begin() + kept, s) != order.begin() + kept;
      }
      QVERIFY(near(res->recallPerQuery[i], captured, 1e-5));
      recall += captured;
      overlap += double(common) / double(kept);
    }
    const double rows = double(lq - first);
    QVERIFY2(near(res->recall, recall / rows, 1e-5),
             qPrintable(QStringLiteral("%1 vs %2").arg(res->recall).arg(recall / rows)));
    QVERIFY(near(res->topKOverlap, overlap / rows, 1e-9));
    // The curves: each recall rises with top_k, the true top-k's bounds the indexer's, all reach
    // 1, and at the run's top_k the curves pass through the run's own numbers.
    const qsizetype n = res->curveTopK.size();
    QVERIFY(res->curveTopK.contains(qint64(9)));
    QCOMPARE(res->curveTopK.back(), lk);
    for (qsizetype x = 0; x < n; ++x) {
      QVERIFY(res->curveBestRecall[x] >= res->curveRecall[x] - 1e-5);
      if (x > 0) QVERIFY(res->curveRecall[x] >= res->curveRecall[x - 1] - 1e-5);
      if (res->curveTopK[x] == 9) {
        QCOMPARE(res->curveRecall[x], res->recall);
        QCOMPARE(res->curveOverlap[x], res->topKOverlap);
      }
    }
    QVERIFY(near(res->curveRecall.back(), 1.0, 1e-5) && near(res->curveOverlap.back(), 1.0, 1e-9));
    // Sparsity is the cost model's: the share of causal pairs top_k skips.
    const double pairs = double(visible_pairs(w.problem)), all = double(visible_pairs(mla));
    QVERIFY(near(res->sparsity, 1.0 - pairs / all, 1e-9));
  }

  void dsaSliderRerunsAtItsTopK() {
    const ViewResultPtr res = selection(dsaWorkload(9), 1, 32);
    QVERIFY(res);
    QCOMPARE(res->keyTopK, qint64(32));
    QVERIFY(res->recall > 0.0 && res->recall <= 1.0 + 1e-6);
    // A top_k holding every key is causal MLA itself: all of the mass, and the true top-k.
    const ViewResultPtr all = selection(dsaWorkload(9), 1, 1000);
    QVERIFY(all);
    QCOMPARE(all->keyTopK, qint64(L));
    QVERIFY(near(all->recall, 1.0, 1e-5));
    QVERIFY(near(all->topKOverlap, 1.0, 1e-12));
    QCOMPARE(all->sparsity, 0.0);
    // So is a workload whose own top_k exceeds its keys (the default 2048 at short lengths): the
    // view speaks of the keys a query can keep.
    const ViewResultPtr big = selection(dsaWorkload(2048), -1);
    QVERIFY(big);
    QCOMPARE(big->keyTopK, qint64(L));
    QCOMPARE(big->curveTopK.back(), qint64(L));
    QVERIFY(near(big->recall, 1.0, 1e-5));
  }

  void theViewShowsEachVariantsPage() {
    BlockSelectionView view;
    view.resize(1000, 700);
    for (const Workload& w : {nsaWorkload(), dsaWorkload(9)}) {
      view.setWorkload(w);
      ViewRequest r;
      view.fillRequest(r);
      if (w.problem.variant == VariantId::dsa) {
        QCOMPARE(r.headMode, HeadMode::mean);  // the heads' mean by default
        QCOMPARE(r.topK, qint64(0));
      }
      const ViewResultPtr res = selection(w, w.problem.variant == VariantId::dsa ? -1 : 0);
      QVERIFY(res);
      view.showResult(res);
      const QJsonObject e = view.exportData();
      QVERIFY(e.contains("recall"));
      QCOMPARE(e.contains("top_k_overlap"), w.problem.variant == VariantId::dsa);
      QVERIFY(!view.exportCsv().isEmpty());
    }
    // A demo's setting moves the slider, and the next request asks for it.
    view.applySettings(QJsonObject{{"top_k", 16}});
    ViewRequest r;
    view.fillRequest(r);
    QCOMPARE(r.topK, qint64(16));
  }
};

QTEST_MAIN(TestGuiSelection)
#include "test_gui_selection.moc"
