// The KV cache and Throughput views: curves are cost_of, the model presets give their documented
// numbers, a live decode fills pages with consistent accounting and stops promptly, the throughput
// loop emits sane samples and sits under the roofline, and engine errors become messages.
#include <QJsonArray>
#include <QJsonDocument>
#include <QProcess>
#include <QTest>
#include <QThread>
#include <cmath>

#include "attnscope/cost.hpp"
#include "attnscope/registry.hpp"
#include "gui_test_support.hpp"
#include "live/live_decode.hpp"
#include "live/model_presets.hpp"
#include "live/page_map_widget.hpp"
#include "live/throughput_runner.hpp"
#include "views/kv_cache_view.hpp"
#include "views/throughput_view.hpp"

using namespace attnscope;
using namespace attnscope::gui;

namespace {

using test::waitFor;

Workload tinyWorkload(VariantId id) {
  Workload w = test::smallWorkload(id);
  w.backend = "cpu";
  w.pattern = "random";
  w.problem.shape.head_dim = 16;
  w.problem.shape.v_head_dim = 16;
  w.problem.mla.kv_lora_rank = 32;
  w.problem.mla.rope_dim = 8;
  w.problem.mla.nope_dim = 16;
  normalize_shape(w.problem);  // a latent variant's head_dim is nope + rope = 24
  return w;
}

void setFast(KvCacheView& v, const QString& prompts, int target, int pacingMs) {
  v.promptsEdit()->setText(prompts);
  v.targetSpin()->setValue(target);
  v.pacingCombo()->setCurrentIndex(v.pacingCombo()->findData(pacingMs));
  v.backendCombo()->setCurrentIndex(v.backendCombo()->findData("cpu", Qt::UserRole));
}

}  // namespace

class TestGuiLive : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() {
    // Device peaks land in a scratch cache, never in the user's.
    qputenv("ATTNSCOPE_CACHE_DIR", (test::scratchDir() + "/peaks").toUtf8());
  }

  // --- KV cache curves ---

  void kvCurvesAreCostOfEveryVariant() {
    KvCacheView v;
    Workload w = Workload::forVariant(VariantId::dense);
    w.problem.shape.heads = 8;
    w.problem.shape.kv_heads = 2;
    v.setWorkload(w);
    QCOMPARE(v.curves().size(), qsizetype(variants().size()));  // every variant, no model curve
    const int e = v.elementBytes();
    for (const KvCurve& c : v.curves()) {
      QVERIFY(!c.model);
      QCOMPARE(c.layers, 1);
      QCOMPARE(c.total.size(), kvContextLengths().size());
      for (qsizetype i = 0; i < c.total.size(); i += 7) {
        const int64_t n = kvContextLengths()[i];
        AttentionProblem p = c.problem;
        p.shape.q_len = p.shape.kv_len = n;
        QCOMPARE(c.total[i].x(), double(n));
        QCOMPARE(c.total[i].y(), cost_of(p, e).kv_cache_bytes);
        QCOMPARE(c.perToken[i].y(), cost_of(p, e).kv_cache_bytes / double(n));
      }
    }
    // The workload's own variant is plotted at exactly the workload's shape.
    const KvCurve& dense = v.curves().front();
    QCOMPARE(dense.variant, VariantId::dense);
    AttentionProblem p = w.problem;
    p.shape.q_len = p.shape.kv_len = 65536;
    const qsizetype i = kvContextLengths().indexOf(65536);
    QVERIFY(i >= 0);
    QCOMPARE(dense.total[i].y(), cost_of(p, e).kv_cache_bytes);
    // fp32 doubles a bf16 cache.
    const double bf16 = dense.total[i].y();
    v.elementCombo()->setCurrentIndex(v.elementCombo()->findData(4));
    QCOMPARE(v.curves().front().total[i].y(), 2 * bf16);
  }

  void modelPresetsGiveDocumentedNumbers() {
    const ModelPreset* llama = findModelPreset("llama-3-8b");
    const ModelPreset* mistral = findModelPreset("mistral-7b");
    const ModelPreset* dsv3 = findModelPreset("deepseek-v3");
    const ModelPreset* moba = findModelPreset("llama-8b-1m-moba");
    const ModelPreset* qwen = findModelPreset("qwen3-next-80b-a3b");
    QVERIFY(llama && mistral && dsv3 && moba && qwen);
    for (const ModelPreset& m : modelPresets()) {
      QVERIFY2(!m.source.isEmpty(), qPrintable(m.name));
      for (const ModelLayerGroup& g : m.groups) {
        QVERIFY2(!g.problem.validate(), qPrintable(m.name + ": " + g.role));
      }
    }
    // Llama-3-8B: 2 (K and V) x 8 kv heads x 128 per layer, 32 layers; 128 KiB a token in bf16.
    QCOMPARE(llama->layers(), 32);
    QCOMPARE(costAtContext(llama->primary().problem, 1, 2).kv_values_per_token, 2.0 * 8 * 128);
    QCOMPARE(modelKvBytesPerToken(*llama, 2), 2.0 * 8 * 128 * 32 * 2);
    QCOMPARE(modelKvCacheBytes(*llama, 8192, 2), 8192.0 * 131072);  // 1 GiB at 8K
    // DeepSeek-V3: 512 latent + 64 rotary = 576 values a token a layer, 61 layers.
    QCOMPARE(dsv3->layers(), 61);
    QCOMPARE(costAtContext(dsv3->primary().problem, 1, 2).kv_values_per_token, 576.0);
    QCOMPARE(modelKvBytesPerToken(*dsv3, 2), 576.0 * 2 * 61);
    // Mistral-7B: the 4096-token window caps the cache.
    QCOMPARE(modelKvCacheBytes(*mistral, 32768, 2), modelKvCacheBytes(*mistral, 4096, 2));
    QCOMPARE(modelKvCacheBytes(*mistral, 4096, 2), 4096.0 * 32 * 2 * 8 * 128 * 2);
    // MoBA model: Llama-3.1-8B shape, block 4096, top-k 12, 29 MoBA + 3 full-attention layers.
    QCOMPARE(moba->layers(), 32);
    QCOMPARE(moba->primary().problem.moba.block_size, int64_t(4096));
    QCOMPARE(moba->primary().problem.moba.top_k, int64_t(12));
    QVERIFY(modelKvCacheBytes(*moba, 1 << 20, 2) > modelKvCacheBytes(*llama, 1 << 20, 2));
    // Qwen3-Next: 12 attention layers (2 kv heads x 256) grow; 36 DeltaNet states are constant.
    QCOMPARE(qwen->layers(), 48);
    QCOMPARE(qwen->groups[0].layers, 12);
    QCOMPARE(qwen->groups[1].layers, 36);
    const double attnPerToken = 12.0 * 2 * 2 * 256 * 2;
    const double gdnState = 36.0 * 4 * 32 * 128 * 128;
    QCOMPARE(modelKvCacheBytes(*qwen, 1024, 2), 1024 * attnPerToken + gdnState);
    QCOMPARE(modelKvCacheBytes(*qwen, 1 << 20, 2), double(1 << 20) * attnPerToken + gdnState);

    // The view's model curve is the model's total; variant curves use its attention shape.
    KvCacheView v;
    v.setWorkload(Workload::defaults());
    v.modelCombo()->setCurrentIndex(v.modelCombo()->findData("qwen3-next-80b-a3b"));
    QCOMPARE(v.curves().size(), qsizetype(variants().size()) + 1);
    const KvCurve& model = v.curves().back();
    QVERIFY(model.model);
    for (qsizetype i = 0; i < model.total.size(); ++i) {
      QCOMPARE(model.total[i].y(),
               modelKvCacheBytes(*qwen, int64_t(model.total[i].x()), v.elementBytes()));
    }
    for (const KvCurve& c : v.curves()) QCOMPARE(c.layers, 48);
  }

  // --- live decode ---

  void liveDecodeFillsPagesAndReleasesThem() {
    KvCacheView v;
    v.setWorkload(tinyWorkload(VariantId::dense));
    setFast(v, "8, 12, 20", 48, 20);
    QSignalSpy ready(&v.runner(), &LiveDecodeRunner::sessionReady);
    QVERIFY(v.startLive());
    int64_t maxUsed = 0;
    QVERIFY(waitFor(
        [&] {
          if (v.lastSnapshot()) maxUsed = std::max(maxUsed, v.lastSnapshot()->stats.pages_used);
          return !v.runner().running();
        },
        30000));
    QVERIFY2(v.runner().lastError().isEmpty(), qPrintable(v.runner().lastError()));
    QCOMPARE(ready.size(), 1);
    QVERIFY(v.snapshotsTaken() >= 3);
    QCOMPARE(v.auditFailures(), 0);
    QVERIFY(maxUsed > 0);  // pages were filled while it ran
    const KvSnapshot& s = *v.lastSnapshot();
    QVERIFY(!s.audit);
    // Every sequence reached the target and was released: all pages back in the pool.
    QVERIFY(s.stats.pages_allocated > 0);
    QCOMPARE(s.stats.pages_used, int64_t(0));
    QCOMPARE(s.stats.pages_free, s.stats.pages_allocated);
    QVERIFY(s.sequences.empty());
    const LiveDecodeProgress& p = v.runner().lastProgress();
    QCOMPARE(p.released, QVector<bool>({true, true, true}));
    QCOMPARE(p.tokens, int64_t((48 - 8) + (48 - 12) + (48 - 20)));
  }

  void liveDecodeEveryVariantKeepsConsistentAccounting() {
    for (const VariantInfo& info : variants()) {
      KvCacheView v;
      v.setWorkload(tinyWorkload(info.id));
      setFast(v, "20, 33", 52, 0);
      v.pageSizeSpin()->setValue(8);
      if (!info.no_decode.empty()) {
        // No decode yet: refused before any work, with the variant's own sentence.
        QVERIFY(!v.startLive());
        QVERIFY2(v.liveError().contains(
                     QString::fromUtf8(info.no_decode.data(), qsizetype(info.no_decode.size()))),
                 qPrintable(v.liveError()));
        continue;
      }
      QVERIFY(v.startLive());
      // Watch the cache from this (the UI) thread while the worker decodes.
      int checks = 0;
      QVERIFY(waitFor(
          [&] {
            if (const LiveDecodeRunPtr run = v.runner().current()) {
              const KvSnapshot s = KvSnapshot::of(run->cache());
              if (s.audit) qWarning("%s", s.audit->c_str());
              if (s.audit) return true;
              ++checks;
            }
            return !v.runner().running();
          },
          30000));
      QVERIFY2(v.runner().lastError().isEmpty(),
               qPrintable(QString::fromUtf8(info.name.data()) + ": " + v.runner().lastError()));
      QCOMPARE(v.auditFailures(), 0);
      QVERIFY(v.lastSnapshot() && !v.lastSnapshot()->audit);
      QVERIFY(checks > 0);
      if (info.id == VariantId::swa) {
        // Window 16 and pages of 8: sequences of 52 tokens evicted pages along the way.
        QVERIFY(v.lastSnapshot()->stats.pages_evicted > 0);
      }
    }
  }

  void pageMapShowsEvictedAndStatePages() {
    // A paused SWA decode: the page map paints with evicted pages; a GDN one with a state block.
    for (VariantId id : {VariantId::swa, VariantId::gated_delta, VariantId::moba}) {
      KvCacheView v;
      v.resize(900, 700);
      v.setWorkload(tinyWorkload(id));
      setFast(v, "40, 50", 2000, 20);
      v.pageSizeSpin()->setValue(4);
      QVERIFY(v.startLive());
      // The view polls the cache on a timer, so under load its last snapshot can predate the
      // prefill; wait for one that holds both sequences before judging what it paints.
      QVERIFY(waitFor(
          [&] {
            return v.runner().lastProgress().steps >= 5 && v.lastSnapshot() &&
                   v.lastSnapshot()->sequences.size() == 2;
          },
          30000));
      const QImage img = v.pageMap()->grab().toImage();
      QVERIFY(!img.isNull());
      QVERIFY(v.pageMap()->minimumHeight() > 80);
      v.stopLive();
      QVERIFY(waitFor([&] { return !v.runner().running(); }, 5000));
      const KvSnapshot& s = *v.lastSnapshot();
      QCOMPARE(qsizetype(s.sequences.size()), qsizetype(2));
      if (id == VariantId::gated_delta) {
        QVERIFY(s.sequences[0].state_bytes > 0);
        QCOMPARE(s.stats.pages_used, int64_t(0));
      }
      if (id == VariantId::swa) QVERIFY(s.stats.pages_evicted > 0);
    }
  }

  void stopCancelsPromptly() {
    KvCacheView v;
    v.setWorkload(tinyWorkload(VariantId::dense));
    setFast(v, "16, 24, 32, 40", 20000, 0);  // would run for a long time
    QVERIFY(v.startLive());
    QVERIFY(waitFor([&] { return v.runner().lastProgress().steps >= 20; }, 30000));
    QSignalSpy stopped(&v.runner(), &LiveDecodeRunner::stopped);
    QElapsedTimer t;
    t.start();
    v.stopLive();
    // Bounded by the wait itself; a tighter wall-clock bound would fail on a loaded CI machine
    // (speed is measured in benchmarks, not in timed tests).
    QVERIFY2(waitFor([&] { return !v.runner().running(); }, 5000),
             qPrintable(QString::number(t.elapsed())));
    QCOMPARE(stopped.size(), 1);
    QCOMPARE(stopped.front().at(0).toBool(), true);  // cancelled, not failed
    QVERIFY(v.liveError().isEmpty());
    QVERIFY(v.lastSnapshot() && !v.lastSnapshot()->audit);
    QVERIFY(v.startButton()->isEnabled());
    QVERIFY(!v.stopButton()->isEnabled());
  }

  void liveErrorsAreMessages() {
    KvCacheView v;
    v.setWorkload(tinyWorkload(VariantId::dense));
    setFast(v, "64", 32, 0);  // prompt longer than the target
    QVERIFY(!v.startLive());
    QVERIFY(v.liveError().contains("shorter"));
    setFast(v, "8, x", 32, 0);
    QVERIFY(!v.startLive());
    QVERIFY(v.liveError().contains("x"));
    // An invalid problem: the engine's own message comes back, nothing crashes.
    Workload bad = tinyWorkload(VariantId::dense);
    bad.problem.shape.heads = 3;
    bad.problem.shape.kv_heads = 2;
    v.setWorkload(bad);
    setFast(v, "8", 32, 0);
    QVERIFY(v.startLive());
    QVERIFY(waitFor([&] { return !v.runner().running(); }, 10000));
    QVERIFY(!v.runner().lastError().isEmpty());
    QCOMPARE(v.liveError(), v.runner().lastError());
  }

  // --- throughput ---

  void throughputWorkerEmitsSaneSamplesAndStops() {
    for (LoopMode mode : {LoopMode::prefill, LoopMode::decode}) {
      ThroughputRunner r;
      ThroughputConfig c;
      c.mode = mode;
      c.workload = tinyWorkload(VariantId::dense);
      c.backend = "cpu";
      c.decodeTokens = 16;
      c.sampleMs = 100;
      QSignalSpy samples(&r, &ThroughputRunner::sampleReady);
      r.start(c);
      QVERIFY(waitFor([&] { return samples.size() >= 4 || !r.running(); }, 30000));
      QVERIFY2(r.lastError().isEmpty(), qPrintable(r.lastError()));
      for (const ThroughputSample& s : r.samples()) {
        QVERIFY(s.runs > 0);
        for (double x : {s.tokensPerSecond, s.gflops, s.gbps, s.intensity}) {
          QVERIFY2(std::isfinite(x) && x > 0, qPrintable(loopModeName(mode)));
        }
        QVERIFY(s.t > 0);
      }
      QVERIFY(!r.device().isEmpty());
      QSignalSpy stopped(&r, &ThroughputRunner::stopped);
      QElapsedTimer t;
      t.start();
      r.stop();
      QVERIFY2(waitFor([&] { return !r.running(); }, 5000),
               qPrintable(QString::number(t.elapsed())));
      QCOMPARE(stopped.size(), 1);
      QCOMPARE(stopped.front().at(0).toBool(), true);
    }
  }

  void throughputDecodeRunsEveryVariant() {
    for (const VariantInfo& info : variants()) {
      ThroughputRunner r;
      ThroughputConfig c;
      c.mode = LoopMode::decode;
      c.workload = tinyWorkload(info.id);
      c.backend = "cpu";
      c.decodeTokens = 8;
      c.sampleMs = 50;
      r.start(c);
      QVERIFY(waitFor([&] { return r.samples().size() >= 2 || !r.running(); }, 30000));
      if (!info.no_decode.empty()) {
        // No decode yet: the loop stops at once and says why.
        QVERIFY(waitFor([&] { return !r.running(); }, 5000));
        QVERIFY2(r.lastError().contains(
                     QString::fromUtf8(info.no_decode.data(), qsizetype(info.no_decode.size()))),
                 qPrintable(r.lastError()));
        continue;
      }
      QVERIFY2(r.lastError().isEmpty(),
               qPrintable(QString::fromUtf8(info.name.data()) + ": " + r.lastError()));
      const ThroughputSample& s = r.samples().back();
      QVERIFY(s.tokensPerSecond > 0 && s.gflops > 0 && s.gbps > 0);
      r.stop();
      QVERIFY(waitFor([&] { return !r.running(); }, 5000));
    }
  }

  void rooflinePointOfDenseRunIsUnderTheRoof() {
    ThroughputView v;
    v.resize(1000, 700);
    v.setWorkload(tinyWorkload(VariantId::dense));
    v.backendCombo()->setCurrentIndex(v.backendCombo()->findData("cpu", Qt::UserRole));
    v.show();  // the first show calibrates on the worker thread
    QVERIFY(waitFor([&] { return !v.runner().calibrating(); }, 90000));
    QVERIFY2(v.peak().has_value(), qPrintable(v.calibrationText()));
    QVERIFY(v.peak()->gflops > 0 && v.peak()->gbps > 0);
    v.start();
    QVERIFY(
        waitFor([&] { return v.runner().samples().size() >= 4 || !v.runner().running(); }, 30000));
    QVERIFY2(v.errorText().isEmpty(), qPrintable(v.errorText()));
    const auto point = v.currentPoint();
    QVERIFY(point.has_value());
    const auto roof = v.roofAt(point->intensity);
    QVERIFY(roof.has_value());
    QVERIFY2(point->gflops > 0 && point->gflops < *roof,
             qPrintable(QStringLiteral("%1 GFLOP/s vs roof %2").arg(point->gflops).arg(*roof)));
    v.stop();
    QVERIFY(waitFor([&] { return !v.runner().running(); }, 5000));
    // A second run keeps the first as a faded, labelled point.
    v.start();
    QVERIFY(waitFor([&] { return v.runner().samples().size() >= 1; }, 30000));
    QCOMPARE(v.history().size(), qsizetype(1));
    QVERIFY(v.history().front().label.startsWith("dense"));
    v.stop();
    QVERIFY(waitFor([&] { return !v.runner().running(); }, 5000));
    const QJsonObject data = v.exportData();
    QVERIFY(data.value("device_peak").isObject());
    QVERIFY(data.value("samples").toArray().size() >= 1);
    QCOMPARE(data.value("roofline_points").toArray().size(), 2);
    QVERIFY(v.exportCsv().contains("t_seconds,tokens_per_second"));
  }

  void throughputErrorIsAMessage() {
    ThroughputView v;
    Workload bad = tinyWorkload(VariantId::dense);
    bad.problem.shape.heads = 3;
    bad.problem.shape.kv_heads = 2;
    v.setWorkload(bad);
    v.backendCombo()->setCurrentIndex(v.backendCombo()->findData("cpu", Qt::UserRole));
    v.start();
    QVERIFY(waitFor([&] { return !v.runner().running(); }, 10000));
    QVERIFY(!v.errorText().isEmpty());
    QVERIFY(v.startButton()->isEnabled());
  }

  // --- the window: tabs, export, headless ---

  void windowExportsKvViewWithLiveData() {
    MainWindow w(MainWindow::Options{false, false});
    w.setWorkload(tinyWorkload(VariantId::dense));
    w.setCurrentView(ViewKind::kv);
    auto* kv = static_cast<KvCacheView*>(w.view(ViewKind::kv));
    QVERIFY(kv);
    QVERIFY(waitUntilSettled(w, 20000));
    setFast(*kv, "8, 16", 40, 0);
    QVERIFY(kv->startLive());
    QVERIFY(waitFor([&] { return !kv->runner().running(); }, 30000));
    const QString json = test::scratchDir() + "/kv.json";
    QVERIFY(w.exportDataTo(json).isEmpty());
    QFile f(json);
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QJsonObject o = QJsonDocument::fromJson(f.readAll()).object();
    QCOMPARE(o.value("configuration").toObject().value("view").toString(), QString("kv"));
    const QJsonObject data = o.value("data").toObject();
    QCOMPARE(data.value("curves").toArray().size(), qsizetype(variants().size()));
    const QJsonObject live = data.value("live_decode").toObject();
    QVERIFY(live.value("stats").isObject());
    QCOMPARE(live.value("audit").toString(), QString("consistent"));
    QVERIFY(live.value("machine").toObject().contains("os"));
    QVERIFY(!live.value("device").toString().isEmpty());
    const QString csv = test::scratchDir() + "/kv.csv";
    QVERIFY(w.exportDataTo(csv).isEmpty());
    const QString png = test::scratchDir() + "/kv.png";
    QVERIFY(w.exportFigureTo(png, 96).isEmpty());
    QVERIFY(!QImage(png).isNull());
  }

  void headlessScreenshotsOfLiveViews() {
    for (const QString& view : {QStringLiteral("kv"), QStringLiteral("throughput")}) {
      const QString path = test::scratchDir() + "/headless-" + view + ".png";
      QFile::remove(path);
      QProcess p;
      QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
      env.remove("QT_QPA_PLATFORM");
      p.setProcessEnvironment(env);
      p.start(QStringLiteral(ATTNSCOPE_GUI_EXE), {"--preset", "first-look", "--view", view,
                                                  "--screenshot", path, "--size", "1100x760"});
      QVERIFY(p.waitForFinished(90000));
      QVERIFY2(p.exitCode() == 0, qPrintable(QString::fromUtf8(p.readAllStandardError())));
      const QImage img(path);
      QVERIFY(!img.isNull());
      // The window may grow to fit the widest view's minimum; never below the request.
      QVERIFY(img.width() >= 1100 && img.height() >= 760);
    }
  }
};

QTEST_MAIN(TestGuiLive)
#include "test_gui_live.moc"
