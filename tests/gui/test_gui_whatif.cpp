// The what-if view on a tiny random llama: its request, its numbers against attnscope::what_if
// (the function the CLI reports from; equal to the last bit), the recall heatmap, a sweep's points
// and chart, the exports, the no-model page and a bad sweep list that keeps the last request.
#include <QJsonArray>
#include <QSignalSpy>
#include <QTest>
#include <QtCharts/QChartView>
#include <QtCharts/QScatterSeries>
#include <cmath>

#include "attnscope/whatif.hpp"
#include "engine_worker.hpp"
#include "fixture.hpp"
#include "views/whatif_view.hpp"

using namespace attnscope;
using namespace attnscope::gui;

namespace {
// About 90 byte-level tokens: longer than every window the tests sweep, within the tiny model's
// 128 positions.
const QString kText = QStringLiteral(
    "The cat sat on the mat. The dog sat on the log. Then the cat saw the dog and ran off.");
}  // namespace

class TestGuiWhatIf : public QObject {
  Q_OBJECT

 private:
  std::shared_ptr<const LoadedModel> model_;
  std::shared_ptr<const ModelText> text_;
  Workload workload_;
  EngineWorker worker_;  // one worker: its cached forward serves every request, like the app's

  ViewResultPtr compute(const ViewRequest& r) {
    static quint64 id = 0;
    return worker_.compute(EngineJob{++id, workload_, r}, CancelToken{},
                           [](double, const QString&) {});
  }

  WhatIfReport direct(const AttentionProblem& variant) {
    WhatIfRequest req;
    req.variant = variant;
    req.backend = resolvedBackend(workload_).toStdString();
    return what_if(model_->model, text_->ids, req);
  }

  static int layersOf(const WhatIfReport& rep) { return int(rep.layers.size()); }

 private slots:
  void initTestCase() {
    test::TinyModelSpec spec;
    spec.vocab = 320;
    const std::string dir = test::test_dir("gui_whatif");
    test::write_tiny_model(spec, dir);
    test::write_byte_level_tokenizer(dir, spec.vocab);
    model_ = LoadedModel::open(QString::fromStdString(dir));
    text_ = ModelText::make(*model_, kText);
    QVERIFY2(text_->length() > 40 && text_->length() <= 128,
             qPrintable(QString::number(text_->length())));
    workload_.model = model_;
    workload_.text = text_;
    workload_.problem = model_->model.attention_problem(text_->length());
  }

  void noModelPage() {
    WhatIfView view;
    view.setWorkload(Workload{});
    QCOMPARE(view.pages()->currentWidget(), static_cast<QWidget*>(view.needModelPage()));
    QCOMPARE(view.figure(), static_cast<QWidget*>(view.needModelPage()));
    auto* text = view.needModelPage()->findChild<QLabel*>("needModelText");
    QVERIFY(text);
    QVERIFY(text->text().contains("runs your model with another attention"));
    QVERIFY(text->text().contains("Inputs → Model"));
    QVERIFY(!view.variantCombo()->isEnabled());
    QSignalSpy open(&view, &WhatIfView::openModelRequested);
    QCOMPARE(view.needModelPage()->openButton()->text(), QStringLiteral("Open model folder…"));
    view.needModelPage()->openButton()->click();
    QCOMPARE(open.count(), 1);
    QVERIFY(view.exportData().isEmpty());
    QVERIFY(view.exportCsv().isEmpty());

    view.setWorkload(workload_);
    QVERIFY(view.pages()->currentWidget() != view.needModelPage());
    QVERIFY(view.figure() != view.needModelPage());
    QVERIFY(view.variantCombo()->isEnabled());
  }

  void controlsAndDefaults() {
    WhatIfView view;
    view.setWorkload(workload_);
    QStringList names;
    for (int i = 0; i < view.variantCombo()->count(); ++i) {
      names << view.variantCombo()->itemData(i).toString();
    }
    QCOMPARE(names.join(", "), QString::fromStdString(what_if_variant_names()));
    QCOMPARE(view.variantCombo()->currentData().toString(), QStringLiteral("swa"));
    QVERIFY(view.knobSpin("window") && view.knobSpin("sinks"));
    QCOMPARE(view.knobSpin("window")->value(), 256);
    QCOMPARE(view.knobSpin("sinks")->value(), 4);
    QCOMPARE(view.sweepCombo()->currentData().toString(), QString());
    QCOMPARE(view.sweepCombo()->count(), 3);  // no sweep, window, sinks
    QVERIFY(!view.valuesEdit()->isEnabled());

    ViewRequest r;
    view.fillRequest(r);
    QCOMPARE(r.view, ViewKind::whatif);
    QCOMPARE(r.whatIf.variant, VariantId::swa);
    QCOMPARE(r.whatIf.swa.window, 256);
    QCOMPARE(r.whatIf.swa.sinks, 4);
    QVERIFY(r.sweepKey.isEmpty());
    QVERIFY(r.sweepValues.isEmpty());

    QSignalSpy changed(&view, &ViewBase::requestChanged);
    view.knobSpin("window")->setValue(24);
    QCOMPARE(changed.count(), 1);
    view.variantCombo()->setCurrentIndex(view.variantCombo()->findData("moba"));
    QCOMPARE(changed.count(), 2);
    QVERIFY(!view.knobSpin("window"));
    QCOMPARE(view.knobSpin("block_size")->value(), 64);
    QCOMPARE(view.knobSpin("top_k")->value(), 4);
    view.fillRequest(r);
    QCOMPARE(r.whatIf.variant, VariantId::moba);
    QCOMPARE(r.whatIf.moba.block_size, 64);
    QCOMPARE(r.whatIf.moba.top_k, 4);
    // Back to SWA: its knobs as they were left.
    view.variantCombo()->setCurrentIndex(view.variantCombo()->findData("swa"));
    QCOMPARE(view.knobSpin("window")->value(), 24);

    // A sweep: the window's default list, the swept field disabled, one request per change.
    changed.clear();
    view.sweepCombo()->setCurrentIndex(view.sweepCombo()->findData("window"));
    QCOMPARE(changed.count(), 1);
    QCOMPARE(view.valuesEdit()->text(), QStringLiteral("64,128,256,512,1024,2048,4096"));
    QVERIFY(view.valuesEdit()->isEnabled());
    QVERIFY(!view.knobSpin("window")->isEnabled());
    view.fillRequest(r);
    QCOMPARE(r.sweepKey, QStringLiteral("window"));
    QCOMPARE(r.sweepValues, (QVector<qint64>{64, 128, 256, 512, 1024, 2048, 4096}));
    view.sweepCombo()->setCurrentIndex(view.sweepCombo()->findData("sinks"));
    QCOMPARE(view.valuesEdit()->text(), QStringLiteral("1,2,4,8,16,32"));
    QVERIFY(view.knobSpin("window")->isEnabled());
    view.sweepCombo()->setCurrentIndex(0);
    view.fillRequest(r);
    QVERIFY(r.sweepKey.isEmpty());
    QVERIFY(r.sweepValues.isEmpty());
  }

  void parseValuesIsStrict() {
    QVector<qint64> v;
    QVERIFY(WhatIfView::parseValues("8, 16 ,32", 1, 100, v).isEmpty());
    QCOMPARE(v, (QVector<qint64>{8, 16, 32}));
    for (const char* bad :
         {"", "8,", "8,,16", "8;16", "8.5", "0x10", "abc", "1e3", "8,8", "0", "101", "-4", "+8"}) {
      QVERIFY2(!WhatIfView::parseValues(bad, 1, 100, v).isEmpty(), bad);
      QVERIFY(v.isEmpty());
    }
  }

  void singlePointMatchesWhatIf() {
    WhatIfView view;
    view.setWorkload(workload_);
    view.knobSpin("window")->setValue(16);
    ViewRequest r;
    view.fillRequest(r);
    const ViewResultPtr result = compute(r);
    view.showStale(QStringLiteral("previous result · computing…"));
    auto* overlay = view.findChild<StaleOverlay*>();
    QVERIFY(overlay);
    QCOMPARE(overlay->label(), QStringLiteral("previous result · computing…"));
    view.showResult(result);
    QVERIFY(overlay->label().isEmpty());

    const WhatIfReport rep = direct(r.whatIf);
    QCOMPARE(result->whatIf.size(), 1);
    const ViewResult::WhatIfPoint& pt = result->whatIf[0];
    QCOMPARE(pt.ppl, rep.ppl);  // exact: the same function on the same inputs
    QCOMPARE(pt.pplDense, rep.ppl_dense);
    QCOMPARE(pt.klMean, rep.kl_mean);
    QVERIFY(pt.ppl > pt.pplDense * 0.5 && std::isfinite(pt.ppl));

    const int layers = layersOf(rep), heads = int(rep.layers[0].recall.size());
    QCOMPARE(result->layers, layers);
    const MapImage& m = view.heatmap()->map();
    QCOMPARE(m.rows, layers);
    QCOMPARE(m.cols, heads);
    QCOMPARE(m.values.size(), layers * heads);
    QCOMPARE(view.heatmap()->extent(), (Region{0, layers, 0, heads}));
    for (int l = 0; l < layers; ++l) {
      for (int h = 0; h < heads; ++h) {
        QCOMPARE(m.at(l, h), float(rep.layers[size_t(l)].recall[size_t(h)]));
      }
    }

    const QString s = view.summary()->text();
    QVERIFY2(s.startsWith(QStringLiteral("perplexity %1 with SWA window 16, sinks 4 vs %2 dense")
                              .arg(rep.ppl, 0, 'f', rep.ppl < 100 ? 2 : 1)
                              .arg(rep.ppl_dense, 0, 'f', rep.ppl_dense < 100 ? 2 : 1)),
             qPrintable(s));
    QVERIFY2(s.contains(" nats/token, sparsity ") && s.contains(", mean recall "), qPrintable(s));
    QVERIFY(view.chartView()->isHidden());  // no sweep, no chart
    QVERIFY(!view.pointCombo()->isEnabled());

    const QJsonObject o = view.exportData();
    QCOMPARE(o["variant"].toString(), QStringLiteral("swa"));
    QCOMPARE(o["sweep_key"].toString(), QString());
    QCOMPARE(o["knobs"].toObject()["window"].toInteger(), 16);
    const QJsonObject p0 = o["points"].toArray()[0].toObject();
    QCOMPARE(p0["ppl"].toDouble(), rep.ppl);
    QCOMPARE(p0["ppl_dense"].toDouble(), rep.ppl_dense);
    QCOMPARE(p0["kl_mean"].toDouble(), rep.kl_mean);
    QCOMPARE(p0["variant"].toString(), QString::fromStdString(rep.variant));
    QCOMPARE(p0["recall"].toArray().size(), layers);
    QCOMPARE(p0["recall"].toArray()[1].toArray()[2].toDouble(), rep.layers[1].recall[2]);
  }

  void moba() {
    WhatIfView view;
    view.setWorkload(workload_);
    view.applySettings({{"variant", "moba"}, {"block_size", 16}, {"top_k", 2}});
    ViewRequest r;
    view.fillRequest(r);
    QCOMPARE(r.whatIf.variant, VariantId::moba);
    const ViewResultPtr result = compute(r);
    view.showResult(result);
    const WhatIfReport rep = direct(r.whatIf);
    QCOMPARE(result->whatIf[0].ppl, rep.ppl);
    QCOMPARE(result->whatIf[0].klMean, rep.kl_mean);
    QVERIFY(view.summary()->text().contains("with MoBA block size 16, top k 2 vs"));
    QVERIFY(result->whatIf[0].sparsity > 0 && result->whatIf[0].sparsity < 1);
  }

  void sweep() {
    WhatIfView view;
    view.setWorkload(workload_);
    view.resize(1200, 700);
    view.sweepCombo()->setCurrentIndex(view.sweepCombo()->findData("window"));
    QSignalSpy changed(&view, &ViewBase::requestChanged);
    view.valuesEdit()->setText("32,8,16");  // any order: the chart sorts by sparsity
    emit view.valuesEdit()->editingFinished();
    QCOMPARE(changed.count(), 1);
    ViewRequest r;
    view.fillRequest(r);
    QCOMPARE(r.sweepKey, QStringLiteral("window"));
    QCOMPARE(r.sweepValues, (QVector<qint64>{32, 8, 16}));
    const ViewResultPtr result = compute(r);
    view.showResult(result);

    QCOMPARE(result->whatIf.size(), 3);
    const auto& pts = result->whatIf;
    QCOMPARE(pts[0].knob, 32);
    QCOMPARE(pts[1].knob, 8);
    QCOMPARE(pts[2].knob, 16);
    // The larger the window, the fewer pairs skipped.
    QVERIFY(pts[1].sparsity > pts[2].sparsity);
    QVERIFY(pts[2].sparsity > pts[0].sparsity);
    QVERIFY(pts[0].sparsity > 0);
    for (int i = 0; i < 3; ++i) {
      AttentionProblem p = r.whatIf;
      p.swa.window = pts[i].knob;
      const WhatIfReport rep = direct(p);
      QCOMPARE(pts[i].ppl, rep.ppl);
      QCOMPARE(pts[i].klMean, rep.kl_mean);
      QCOMPARE(pts[i].pplDense, pts[0].pplDense);
    }

    QVERIFY(!view.chartView()->isHidden());
    QCOMPARE(view.pointCombo()->count(), 3);
    QVERIFY(view.pointCombo()->isEnabled());
    for (int i = 0; i < 3; ++i) {
      QScatterSeries* s = view.pointSeries(i);
      QVERIFY(s);
      QCOMPARE(s->count(), 1);
      QCOMPARE(s->at(0), QPointF(100 * pts[i].sparsity, pts[i].ppl));
      QCOMPARE(s->pointLabelsFormat(), QString::number(pts[i].knob));
      QVERIFY(s->pointLabelsVisible());
    }
    // A click on a point shows its numbers and its recall.
    QCOMPARE(view.selectedPoint(), 0);
    emit view.pointSeries(1)->clicked(view.pointSeries(1)->at(0));
    QCOMPARE(view.selectedPoint(), 1);
    QVERIFY2(view.summary()->text().contains("with SWA window 8, sinks 4 vs"),
             qPrintable(view.summary()->text()));
    const MapImage& m = view.heatmap()->map();
    for (int x = 0; x < m.values.size(); ++x) QCOMPARE(m.values[x], float(pts[1].recall[x]));
    // So does the combo.
    view.pointCombo()->setCurrentIndex(2);
    QVERIFY(view.summary()->text().contains("with SWA window 16, sinks 4 vs"));
    QCOMPARE(view.heatmap()->map().values[0], float(pts[2].recall[0]));
    // A fresh result of the same sweep keeps the chosen point.
    view.showResult(result);
    QCOMPARE(view.selectedPoint(), 2);

    // The figure is the chart and the heatmap; it renders.
    QWidget* fig = view.figure();
    QVERIFY(fig->isAncestorOf(view.chartView()) && fig->isAncestorOf(view.heatmap()));
    QVERIFY(!fig->grab().isNull());

    // Exports.
    const QJsonObject o = view.exportData();
    QCOMPARE(o["variant"].toString(), QStringLiteral("swa"));
    QCOMPARE(o["sweep_key"].toString(), QStringLiteral("window"));
    const QJsonArray points = o["points"].toArray();
    QCOMPARE(points.size(), 3);
    const int layers = result->layers, heads = int(pts[0].recall.size()) / layers;
    for (int i = 0; i < 3; ++i) {
      const QJsonObject p = points[i].toObject();
      QCOMPARE(p["knob"].toInteger(), pts[i].knob);
      QCOMPARE(p["ppl"].toDouble(), pts[i].ppl);
      QCOMPARE(p["ppl_dense"].toDouble(), pts[i].pplDense);
      QCOMPARE(p["kl_mean"].toDouble(), pts[i].klMean);
      QCOMPARE(p["sparsity"].toDouble(), pts[i].sparsity);
      QCOMPARE(p["mean_recall"].toDouble(), pts[i].meanRecall);
      const QJsonArray recall = p["recall"].toArray();
      QCOMPARE(recall.size(), layers);
      for (int l = 0; l < layers; ++l) {
        QCOMPARE(recall[l].toArray().size(), heads);
        for (int h = 0; h < heads; ++h) {
          QCOMPARE(recall[l].toArray()[h].toDouble(), pts[i].recall[l * heads + h]);
        }
      }
    }

    const QStringList lines = view.exportCsv().split('\n');
    QVERIFY(lines[0].startsWith("# what-if: swa"));
    QCOMPARE(lines[1], QStringLiteral("knob,sparsity,ppl,ppl_dense,kl_mean,mean_recall"));
    for (int i = 0; i < 3; ++i) {
      const QStringList f = lines[2 + i].split(',');
      QCOMPARE(f.size(), 6);
      QCOMPARE(f[0].toLongLong(), pts[i].knob);
      QVERIFY(std::abs(f[2].toDouble() - pts[i].ppl) <= 1e-9 * pts[i].ppl);
    }
    QCOMPARE(lines[5], QString());
    QVERIFY(lines[6].startsWith('#'));
    QCOMPARE(lines[7], QStringLiteral("knob,layer,head,recall"));
    const int recallLines = 3 * layers * heads;
    QCOMPARE(lines.size(), 8 + recallLines + 1);  // the last line ends with '\n'
    const QStringList last = lines[8 + recallLines - 1].split(',');
    QCOMPARE(last[0].toLongLong(), pts[2].knob);
    QCOMPARE(last[1].toInt(), layers - 1);
    QCOMPARE(last[2].toInt(), heads - 1);
    QVERIFY(std::abs(last[3].toDouble() - pts[2].recall.back()) <= 1e-9);
  }

  void badValuesKeepTheLastRequest() {
    WhatIfView view;
    view.setWorkload(workload_);
    view.sweepCombo()->setCurrentIndex(view.sweepCombo()->findData("window"));
    view.valuesEdit()->setText("8,16");
    emit view.valuesEdit()->editingFinished();
    QVERIFY(view.valuesNote()->isHidden());
    QSignalSpy changed(&view, &ViewBase::requestChanged);
    for (const char* bad : {"8,abc", "8,,16", "0,8", "8,8", ""}) {
      view.valuesEdit()->setText(bad);
      emit view.valuesEdit()->editingFinished();
      QVERIFY2(!view.valuesNote()->isHidden(), bad);
      QVERIFY(!view.valuesNote()->text().isEmpty());
      QCOMPARE(changed.count(), 0);
      ViewRequest r;
      view.fillRequest(r);
      QCOMPARE(r.sweepValues, (QVector<qint64>{8, 16}));
    }
    QVERIFY(view.valuesNote()->text().contains("8,16"));  // says what stays in use
    QVERIFY(view.valuesNote()->styleSheet().contains("color"));
    view.valuesEdit()->setText("8,32");
    emit view.valuesEdit()->editingFinished();
    QVERIFY(view.valuesNote()->isHidden());
    QCOMPARE(changed.count(), 1);
    ViewRequest r;
    view.fillRequest(r);
    QCOMPARE(r.sweepValues, (QVector<qint64>{8, 32}));
  }

  void applySettings() {
    WhatIfView view;
    view.setWorkload(workload_);
    QSignalSpy changed(&view, &ViewBase::requestChanged);
    view.applySettings({{"variant", "moba"},
                        {"block_size", 16},
                        {"top_k", 2},
                        {"sweep", "top_k"},
                        {"values", "1,2,4"}});
    QCOMPARE(changed.count(), 1);
    ViewRequest r;
    view.fillRequest(r);
    QCOMPARE(r.whatIf.variant, VariantId::moba);
    QCOMPARE(r.whatIf.moba.block_size, 16);
    QCOMPARE(r.whatIf.moba.top_k, 2);
    QCOMPARE(r.sweepKey, QStringLiteral("top_k"));
    QCOMPARE(r.sweepValues, (QVector<qint64>{1, 2, 4}));
    view.applySettings({{"variant", "swa"}, {"window", 12}, {"sweep", "none"}});
    view.fillRequest(r);
    QCOMPARE(r.whatIf.variant, VariantId::swa);
    QCOMPARE(r.whatIf.swa.window, 12);
    QVERIFY(r.sweepKey.isEmpty());
    view.applySettings({{"variant", "nope"}, {"sweep", "window"}, {"values", QJsonArray{4, 8}}});
    view.fillRequest(r);
    QCOMPARE(r.whatIf.variant, VariantId::swa);
    QCOMPARE(r.sweepKey, QStringLiteral("window"));
    QCOMPARE(r.sweepValues, (QVector<qint64>{4, 8}));
  }
};

QTEST_MAIN(TestGuiWhatIf)
#include "test_gui_whatif.moc"
