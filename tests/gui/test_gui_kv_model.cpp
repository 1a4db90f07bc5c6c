// The KV cache view's "this model" preset: built from a loaded folder's config.json and stored
// weights, it must give the cache a dense GQA (or Mistral's SWA) forward of that exact shape
// keeps, appear with the model and go away with it.
#include <QJsonObject>
#include <QtTest>
#include <filesystem>

#include "attnscope/registry.hpp"
#include "fixture.hpp"
#include "gui_test_support.hpp"
#include "views/kv_cache_view.hpp"

using namespace attnscope;
using namespace attnscope::gui;
using namespace attnscope::gui::test;

namespace {

// Odd sizes (3 layers, 3 kv heads of 8) so a wrong factor cannot cancel out.
attnscope::test::TinyModelSpec spec(const std::string& type, const std::string& dtype) {
  attnscope::test::TinyModelSpec s;
  s.model_type = type;
  s.vocab = 320;  // the byte-level tokenizer needs 256 bytes + merges
  s.hidden = 48;
  s.heads = 6;
  s.kv_heads = 3;
  s.layers = 3;
  s.max_positions = 128;
  s.dtype = dtype;
  if (type == "mistral") s.sliding_window = 16;
  return s;
}

Workload withModel(const attnscope::test::TinyModelSpec& s, const std::string& tag) {
  const std::string dir = (scratchDir() + "/kv_" + QString::fromStdString(tag)).toStdString();
  std::filesystem::remove_all(dir);
  attnscope::test::write_tiny_model(s, dir);
  attnscope::test::write_byte_level_tokenizer(dir, s.vocab);
  Workload w = Workload::defaults();
  w.model = LoadedModel::open(QString::fromStdString(dir));
  w.problem = w.model->model.config().attention_problem(64);  // as the panel sets it
  return w;
}

int thisModelIndex(const KvCacheView& v) {
  return v.modelCombo()->findData(QString::fromLatin1(kThisModelPreset));
}

const KvCurve* curveOf(const KvCacheView& v, VariantId id) {
  for (const KvCurve& c : v.curves()) {
    if (!c.model && c.variant == id) return &c;
  }
  return nullptr;
}

}  // namespace

class GuiKvModelTest : public QObject {
  Q_OBJECT

 private slots:
  void entryFollowsTheWorkloadsModel();
  void bytesPerTokenIsTheModelsShape();
  void mistralCachesItsWindow();
  void settingsAndExportNameTheModel();
};

void GuiKvModelTest::entryFollowsTheWorkloadsModel() {
  KvCacheView v;
  v.setWorkload(Workload::defaults());
  const int presets = v.modelCombo()->count();
  QCOMPARE(thisModelIndex(v), -1);
  QVERIFY(!v.thisModel());

  const Workload w = withModel(spec("llama", "F32"), "entry");
  v.setWorkload(w);
  QCOMPARE(v.modelCombo()->count(), presets + 1);
  QCOMPARE(thisModelIndex(v), 0);
  QCOMPARE(v.modelCombo()->itemText(0), QStringLiteral("this model: kv_entry"));
  QVERIFY(!v.model());  // appearing does not pick it: still the workload shape
  // The same model again (a knob changed) keeps one entry.
  v.setWorkload(w);
  QCOMPARE(v.modelCombo()->count(), presets + 1);

  // Picked, then the model goes away: back to the default, the workload shape.
  v.modelCombo()->setCurrentIndex(0);
  QVERIFY(v.model() && v.model()->name == QLatin1String(kThisModelPreset));
  v.setWorkload(Workload::defaults());
  QCOMPARE(thisModelIndex(v), -1);
  QCOMPARE(v.modelCombo()->count(), presets);
  QVERIFY(!v.model());
  QCOMPARE(v.modelCombo()->currentData().toString(), QString());
  QCOMPARE(v.curves().size(), qsizetype(variants().size()));
  QCOMPARE(v.markedContext(), int64_t(0));

  // Not picked: another preset stays picked when the model goes away.
  v.setWorkload(w);
  v.modelCombo()->setCurrentIndex(v.modelCombo()->findData("llama-3-8b"));
  v.setWorkload(Workload::defaults());
  QCOMPARE(v.modelCombo()->currentData().toString(), QStringLiteral("llama-3-8b"));
  QCOMPARE(v.modelCombo()->count(), presets);
}

void GuiKvModelTest::bytesPerTokenIsTheModelsShape() {
  KvCacheView v;
  v.setWorkload(Workload::defaults());
  for (const auto& [dtype, bytes] : {std::pair{"F32", 4}, {"BF16", 2}, {"F16", 2}}) {
    const attnscope::test::TinyModelSpec s = spec("llama", dtype);
    v.setWorkload(withModel(s, std::string("llama_") + dtype));
    v.modelCombo()->setCurrentIndex(thisModelIndex(v));
    QVERIFY(v.model() && v.thisModel());
    QCOMPARE(v.thisModel()->storedType, QString::fromLatin1(dtype));
    // The Element box follows the stored weights.
    QCOMPARE(v.elementBytes(), bytes);
    const double perToken = 2.0 * 3 * 3 * 8 * bytes;  // K and V x layers x kv heads x head_dim
    QCOMPARE(modelKvBytesPerToken(*v.model(), bytes), perToken);
    const KvCurve& model = v.curves().back();
    QVERIFY(model.model);
    QCOMPARE(model.layers, 3);
    QCOMPARE(model.bytesPerToken, perToken);
    QCOMPARE(model.valuesPerTokenPerLayer, 2.0 * 3 * 8);
    for (const QPointF& p : model.total) QCOMPARE(p.y(), p.x() * perToken);
    // The dense variant curve is the same model: what every other preset shows.
    const KvCurve* dense = curveOf(v, VariantId::dense);
    QVERIFY(dense);
    QCOMPARE(dense->bytesPerToken, perToken);
    QCOMPARE(dense->total, model.total);
    QCOMPARE(v.markedContext(), int64_t(128));
  }
  // The user may still switch the element afterwards.
  v.elementCombo()->setCurrentIndex(v.elementCombo()->findData(4));
  QCOMPARE(v.curves().back().bytesPerToken, 2.0 * 3 * 3 * 8 * 4);
}

void GuiKvModelTest::mistralCachesItsWindow() {
  KvCacheView v;
  v.setWorkload(withModel(spec("mistral", "BF16"), "mistral"));
  v.modelCombo()->setCurrentIndex(thisModelIndex(v));
  const ModelPreset* m = v.model();
  QVERIFY(m);
  QCOMPARE(m->primary().problem.variant, VariantId::swa);
  QCOMPARE(m->primary().problem.swa.window, int64_t(16));
  QCOMPARE(m->primary().problem.swa.sinks, int64_t(0));
  const double perToken = 2.0 * 3 * 3 * 8 * 2;
  const KvCurve& model = v.curves().back();
  QCOMPARE(model.bytesPerToken, perToken);
  // The ring holds the window: every sampled context (1K and up) caches 16 tokens.
  for (const QPointF& p : model.total) QCOMPARE(p.y(), 16 * perToken);
  QCOMPARE(modelKvCacheBytes(*m, 8, 2), 8 * perToken);
  QVERIFY(m->notes.contains(QStringLiteral("16 tokens")));
}

void GuiKvModelTest::settingsAndExportNameTheModel() {
  KvCacheView v;
  v.setWorkload(withModel(spec("llama", "BF16"), "settings"));
  v.applySettings(QJsonObject{{"model", QString::fromLatin1(kThisModelPreset)}});
  QVERIFY(v.model() && v.model()->contextLength == 128);
  const QJsonObject model = v.exportData().value("model").toObject();
  QCOMPARE(model.value("name").toString(), QString::fromLatin1(kThisModelPreset));
  QCOMPARE(model.value("context_length").toInteger(), qint64(128));
  QCOMPARE(model.value("stored_type").toString(), QStringLiteral("BF16"));
  QCOMPARE(model.value("layers").toInt(), 3);
  QVERIFY(v.exportCsv().contains(QStringLiteral("this model: kv_settings")));
}

QTEST_MAIN(GuiKvModelTest)
#include "test_gui_kv_model.moc"
