// A model folder in the explorer: tiny random checkpoints of every family, written by the model
// tests' fixture, opened through the panel's path (the worker opens the folder, the panel
// tokenizes), and every number a model view draws checked against the independent float64
// forward of tests/model/reference_forward.cpp.
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QProcess>
#include <QSettings>
#include <QStandardPaths>
#include <QTableWidget>
#include <QtTest>
#include <cmath>
#include <filesystem>

#include "attnscope/head_stats.hpp"
#include "attnscope/io.hpp"
#include "attnscope/workload.hpp"
#include "fixture.hpp"
#include "gui_test_support.hpp"
#include "reference_forward.hpp"
#include "views/atlas_view.hpp"
#include "views/attention_map_view.hpp"
#include "views/text_view.hpp"
#include "workload_panel.hpp"

using namespace attnscope;
using namespace attnscope::gui;
using namespace attnscope::gui::test;

namespace {

// Short English text: the fixture's tokenizer merges a few English pairs, so tokens are words,
// pieces and bytes; about 60 tokens, fewer than the 80 a map labels.
const QString kText = QStringLiteral("the cat sat on the mat. the cat sat on the hat.\nthe end");

attnscope::test::TinyModel writeModel(const std::string& type, const std::string& tag) {
  attnscope::test::TinyModelSpec spec;
  spec.model_type = type;
  spec.vocab = 320;  // the byte-level tokenizer needs 256 bytes + merges
  spec.hidden = 32;
  spec.heads = 4;
  spec.kv_heads = type == "gpt2" ? 4 : 2;
  spec.layers = 2;
  spec.max_positions = 128;
  if (type == "qwen2") spec.qkv_bias = true;
  if (type == "qwen3") spec.qk_norm = true;
  if (type == "mistral") spec.sliding_window = 16;
  const std::string dir = (scratchDir() + "/model_" + QString::fromStdString(tag)).toStdString();
  std::filesystem::remove_all(dir);
  attnscope::test::TinyModel m = attnscope::test::write_tiny_model(spec, dir);
  attnscope::test::write_byte_level_tokenizer(dir, spec.vocab, /*bos=*/type != "gpt2");
  return m;
}

// P_ij of the reference forward: exp(scale q_i.k_j - lse_i) over the keys row i sees.
double refP(const attnscope::test::ReferenceResult& ref, int layer, int head, int64_t i, int64_t j,
            std::optional<int64_t> window) {
  if (j > i || (window && j <= i - *window)) return 0.0;
  const attnscope::test::ReferenceLayer& l = ref.layers[size_t(layer)];
  const int64_t L = ref.tokens, D = ref.head_dim, group = ref.heads / ref.kv_heads;
  const double* q = l.q.data() + (head * L + i) * D;
  const double* k = l.k.data() + ((head / group) * L + j) * D;
  double s = 0;
  for (int64_t d = 0; d < D; ++d) s += q[d] * k[d];
  return std::exp(s / std::sqrt(double(D)) - l.lse[size_t(head * L + i)]);
}

struct Opened {
  std::unique_ptr<MainWindow> window;
  attnscope::test::TinyModel model;
  attnscope::test::ReferenceResult ref;
};

// A window with the model open on kText, as a user gets it: text typed, folder opened.
Opened open(const std::string& type) {
  Opened o;
  o.model = writeModel(type, type);
  o.window = std::make_unique<MainWindow>(MainWindow::Options{false, false});
  o.window->resize(1200, 800);
  o.window->show();
  WorkloadPanel* panel = o.window->panel();
  panel->modelBox()->setText(kText);
  emit panel->modelBox()->openRequested(QString::fromStdString(o.model.dir));
  waitFor([&] { return bool(o.window->controller().workload().text); }, 20000);
  const Workload& w = o.window->controller().workload();
  if (w.text) o.ref = attnscope::test::reference_forward(o.model, w.text->ids);
  return o;
}

}  // namespace

class GuiModelTest : public QObject {
  Q_OBJECT

 private slots:
  void mapOfEveryLayerAndHeadIsTheReference();
  void mapShowsTokenLabels();
  void textViewClickGivesTheTokensRow();
  void atlasStatisticsAreTheReferences();
  void everyFamilyRendersEveryModelView();
  void cancellingAModelRunLeavesTheAppResponsive();
  void badFoldersAreMessagesNotCrashes();
  void headlessModelScreenshots();
  void modelDemoRunsOnTheOpenModel();
  void aTensorFileReplacesTheModel();
  void closingTheModelLetsItGo();
  void clearWhileOpeningKeepsItClosed();
  void zoomingInBringsTheTokenLabels();
  void theLastModelAndTextComeBack();
  void requestsDuringTheForwardWaitForIt();
  void viewsThatNeedNoForwardRunNone();
};

void GuiModelTest::mapOfEveryLayerAndHeadIsTheReference() {
  Opened o = open("llama");
  MainWindow& w = *o.window;
  QVERIFY(w.controller().workload().text);
  const int64_t L = w.controller().workload().text->length();
  QVERIFY(L > 20 && L < 80);
  QCOMPARE(o.ref.tokens, L);
  auto* map = static_cast<AttentionMapView*>(w.view(ViewKind::map));
  w.setCurrentView(ViewKind::map);
  QCOMPARE(map->layerCombo()->count(), 2);
  QVERIFY(map->layerCombo()->isVisible());
  for (int layer : {0, 1}) {
    for (int head : {0, 3}) {
      map->setLayer(layer);
      map->setHeadSelection(HeadMode::single, head, 0);
      QVERIFY(waitUntilSettled(w, 30000));
      QVERIFY2(w.lastError().isEmpty(), qPrintable(w.lastError()));
      const ViewResultPtr r = map->lastResult();
      QVERIFY(r && !r->maps.isEmpty());
      QCOMPARE(r->layer, layer);
      const MapImage& m = r->maps.front();
      // The plot has more pixels than tokens: one entry per cell, exact.
      QCOMPARE(m.rows, int(L));
      QCOMPARE(m.cols, int(L));
      double worst = 0;
      for (int i = 0; i < L; ++i) {
        for (int j = 0; j < L; ++j) {
          worst =
              std::max(worst, std::abs(double(m.at(i, j)) - refP(o.ref, layer, head, i, j, {})));
        }
      }
      QVERIFY2(worst < 2e-5, qPrintable(QString::number(worst)));
    }
  }
  // The perplexity the status describes is the forward's own.
  QVERIFY(std::abs(map->lastResult()->perplexity - o.ref.perplexity) < 1e-3 * o.ref.perplexity);
}

void GuiModelTest::mapShowsTokenLabels() {
  Opened o = open("llama");
  MainWindow& w = *o.window;
  w.setCurrentView(ViewKind::map);
  QVERIFY(waitUntilSettled(w, 30000));
  // 38 tokens: every row and column of the whole map is labelled with its token.
  auto* map = static_cast<AttentionMapView*>(w.view(ViewKind::map));
  QVERIFY(map->heatmap()->rowTokenLabels() && map->heatmap()->colTokenLabels());
  const QString svg = scratchDir() + "/model_map.svg";
  QVERIFY2(w.exportFigureTo(svg).isEmpty(), "export failed");
  QFile f(svg);
  QVERIFY(f.open(QIODevice::ReadOnly));
  const QString content = QString::fromUtf8(f.readAll());
  QVERIFY(content.contains(QStringLiteral("&lt;|bos|&gt;")));
  // And the data export names the model, the text's hash and the tokens.
  const QString json = scratchDir() + "/model_map.json";
  QVERIFY(w.exportDataTo(json).isEmpty());
  QFile jf(json);
  QVERIFY(jf.open(QIODevice::ReadOnly));
  const QByteArray data = jf.readAll();
  QVERIFY(data.contains(w.controller().workload().text->sha256.toUtf8()));
  QVERIFY(data.contains("row_tokens"));
}

void GuiModelTest::textViewClickGivesTheTokensRow() {
  Opened o = open("llama");
  MainWindow& w = *o.window;
  auto* tv = static_cast<TextView*>(w.view(ViewKind::text));
  w.setCurrentView(ViewKind::text);
  QVERIFY(waitUntilSettled(w, 30000));
  const int64_t L = o.ref.tokens;
  QCOMPARE(tv->tokens()->tokenCount(), int(L));
  tv->headCombo()->setCurrentIndex(tv->headCombo()->findData(2));
  tv->layerCombo()->setCurrentIndex(1);
  const int token = int(L) - 5;
  QTRY_VERIFY(!tv->tokens()->tokenRect(token).isEmpty());
  QTest::mouseClick(tv->tokens()->viewport(), Qt::LeftButton, {},
                    tv->tokens()->tokenRect(token).center());
  QCOMPARE(tv->tokens()->selected(), token);
  QVERIFY(waitUntilSettled(w, 30000));
  const ViewResultPtr r = tv->lastResult();
  QVERIFY(r);
  QCOMPARE(r->token, token);
  QCOMPARE(r->tokenWeights.size(), int(L));
  for (int j = 0; j < L; ++j) {
    if (j > token) {
      QVERIFY(std::isnan(r->tokenWeights[j]));
    } else {
      QVERIFY(std::abs(r->tokenWeights[j] - refP(o.ref, 1, 2, token, j, {})) < 2e-5);
    }
  }
  QVERIFY(tv->summary().contains(QStringLiteral("attends most")));
  // The mean over every layer's heads sums to 1 over the token's past.
  tv->allLayersCheck()->setChecked(true);
  QVERIFY(waitUntilSettled(w, 30000));
  double sum = 0, expect0 = 0;
  for (int j = 0; j <= token; ++j) sum += tv->lastResult()->tokenWeights[j];
  for (int l = 0; l < 2; ++l) {
    for (int h = 0; h < 4; ++h) expect0 += refP(o.ref, l, h, token, 0, {}) / 8;
  }
  QVERIFY(std::abs(sum - 1.0) < 1e-4);
  QVERIFY(std::abs(tv->lastResult()->tokenWeights[0] - expect0) < 2e-5);
}

void GuiModelTest::atlasStatisticsAreTheReferences() {
  Opened o = open("mistral");  // a window shorter than the text: the SWA mask counts
  MainWindow& w = *o.window;
  auto* atlas = static_cast<AtlasView*>(w.view(ViewKind::atlas));
  w.setCurrentView(ViewKind::atlas);
  const int64_t L = o.ref.tokens;
  const std::optional<int64_t> window = 16;
  for (const char* stat : {"entropy", "sink", "local", "previous_token"}) {
    atlas->statCombo()->setCurrentIndex(atlas->statCombo()->findData(QString::fromLatin1(stat)));
    QVERIFY(waitUntilSettled(w, 30000));
    QVERIFY2(w.lastError().isEmpty(), qPrintable(w.lastError()));
    const ViewResultPtr r = atlas->lastResult();
    QVERIFY(r);
    QCOMPARE(r->atlasLayers, 2);
    QCOMPARE(r->atlasHeads, 4);
    for (int l = 0; l < 2; ++l) {
      for (int h = 0; h < 4; ++h) {
        double total = 0;
        int64_t rows = 0;
        for (int64_t i = 0; i < L; ++i) {
          double v = 0;
          const std::string s = stat;
          if (s == "previous_token" && i == 0) continue;
          for (int64_t j = 0; j <= i; ++j) {
            const double p = refP(o.ref, l, h, i, j, window);
            if (s == "entropy" && p > 0) v -= p * std::log(p);
            if (s == "sink" && j < 4) v += p;
            if (s == "local" && j > i - 16) v += p;
            if (s == "previous_token" && j == i - 1) v += p;
          }
          total += v;
          ++rows;
        }
        const double expect = total / double(rows);
        QVERIFY2(std::abs(r->atlas[l * 4 + h] - expect) < 1e-6,
                 qPrintable(QStringLiteral("%1 layer %2 head %3: %4 vs %5")
                                .arg(stat)
                                .arg(l)
                                .arg(h)
                                .arg(r->atlas[l * 4 + h])
                                .arg(expect)));
      }
    }
  }
  // The table sorts by value and a double-click opens that head's map.
  QTableWidget* t = atlas->table();
  QCOMPARE(t->rowCount(), 8);
  t->sortItems(2, Qt::DescendingOrder);
  QVERIFY(t->item(0, 2)->data(Qt::UserRole).toDouble() >=
          t->item(7, 2)->data(Qt::UserRole).toDouble());
  const int layer = t->item(0, 0)->data(Qt::UserRole).toInt();
  const int head = t->item(0, 1)->data(Qt::UserRole).toInt();
  emit t->cellDoubleClicked(0, 0);
  QCOMPARE(w.currentView()->kind(), ViewKind::map);
  QVERIFY(waitUntilSettled(w, 30000));
  const ViewResultPtr m = w.view(ViewKind::map)->lastResult();
  QCOMPARE(m->layer, layer);
  QCOMPARE(m->request.head, head);
  // Induction: on its own repeated random sequence, not the text.
  w.setCurrentView(ViewKind::atlas);
  atlas->statCombo()->setCurrentIndex(atlas->statCombo()->findData(QStringLiteral("induction")));
  QVERIFY(waitUntilSettled(w, 60000));
  QVERIFY2(w.lastError().isEmpty(), qPrintable(w.lastError()));
  QVERIFY(atlas->lastResult()->atlasTokens > L);
  // Exports: the table as CSV, the grid as a figure.
  QVERIFY(atlas->exportCsv().contains(QStringLiteral("layer,head,induction")));
  QVERIFY(w.exportFigureTo(scratchDir() + "/atlas.png").isEmpty());
}

void GuiModelTest::everyFamilyRendersEveryModelView() {
  for (const std::string type : {"llama", "mistral", "qwen2", "qwen3", "gpt2"}) {
    Opened o = open(type);
    MainWindow& w = *o.window;
    QVERIFY2(w.controller().workload().text, type.c_str());
    for (ViewKind v :
         {ViewKind::map, ViewKind::text, ViewKind::atlas, ViewKind::whatif, ViewKind::compare}) {
      w.setCurrentView(v);
      QVERIFY(waitUntilSettled(w, 60000));
      QVERIFY2(w.lastError().isEmpty(), qPrintable(QString::fromStdString(type) + ": " +
                                                   viewName(v) + ": " + w.lastError()));
      QVERIFY(!w.grab().isNull());
    }
  }
}

void GuiModelTest::cancellingAModelRunLeavesTheAppResponsive() {
  Opened o = open("llama");
  MainWindow& w = *o.window;
  QVERIFY(waitUntilSettled(w, 30000));
  // A longer text: a fresh forward, cancelled as soon as it is under way.
  QString longer;
  for (int i = 0; i < 10; ++i) longer += kText + QLatin1Char(' ');
  w.panel()->setModelText(longer.left(400));
  w.controller().recompute();
  QVERIFY(w.controller().busy());
  w.controller().cancel();
  QVERIFY(!w.controller().busy());
  // The app answers the next request.
  w.controller().rerun();
  QVERIFY(waitUntilSettled(w, 60000));
  QVERIFY2(w.lastError().isEmpty(), qPrintable(w.lastError()));
}

void GuiModelTest::badFoldersAreMessagesNotCrashes() {
  MainWindow w(MainWindow::Options{false, false});
  w.show();
  const std::string good = writeModel("llama", "bad_base").dir;
  const QString base = scratchDir();
  // A config.json that is not JSON.
  const QString corrupt = base + "/model_corrupt";
  QDir(corrupt).removeRecursively();
  std::filesystem::copy(good, corrupt.toStdString());
  {
    QFile f(corrupt + "/config.json");
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write("{ this is not json");
  }
  // Weights cut short.
  const QString truncated = base + "/model_truncated";
  QDir(truncated).removeRecursively();
  std::filesystem::copy(good, truncated.toStdString());
  std::filesystem::resize_file(truncated.toStdString() + "/model.safetensors", 100);
  // No tokenizer.json.
  const QString noTokenizer = base + "/model_no_tokenizer";
  QDir(noTokenizer).removeRecursively();
  std::filesystem::copy(good, noTokenizer.toStdString());
  QFile::remove(noTokenizer + "/tokenizer.json");
  for (const QString& dir : {corrupt, truncated, noTokenizer, base + "/no_such_folder",
                             QString::fromStdString(good) + "/config.json"}) {
    emit w.panel()->modelBox()->openRequested(dir);
    QVERIFY2(waitFor([&] { return !w.lastError().isEmpty(); }, 20000), qPrintable(dir));
    QVERIFY(!w.controller().workload().model);
    QVERIFY(!w.panel()->modelBox()->statusText().isEmpty());
    // Cleared for the next one.
    w.setWorkload(smallWorkload());
    QVERIFY(waitUntilSettled(w, 20000));
  }
  // A text longer than GPT-2's positions is refused under the box, not run.
  const std::string gpt2 = writeModel("gpt2", "gpt2_long").dir;
  w.panel()->modelBox()->setText(QString(600, QLatin1Char('x')));
  emit w.panel()->modelBox()->openRequested(QString::fromStdString(gpt2));
  QVERIFY(waitFor([&] { return bool(w.controller().workload().model); }, 20000));
  QVERIFY(!w.controller().workload().text);
  QVERIFY(!w.panel()->modelBox()->textNote().isEmpty());
}

void GuiModelTest::headlessModelScreenshots() {
  const std::string dir = writeModel("llama", "headless").dir;
  const QString text = scratchDir() + "/headless.txt";
  {
    QFile f(text);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write(kText.toUtf8());
  }
  const auto run = [&](const QStringList& args, QString* err = nullptr) {
    QProcess p;
    p.setProcessChannelMode(QProcess::SeparateChannels);
    p.start(QStringLiteral(ATTNSCOPE_GUI_EXE), args);
    p.waitForFinished(120000);
    if (err) *err = QString::fromUtf8(p.readAllStandardError());
    return p.exitCode();
  };
  for (const char* view : {"map", "text", "atlas"}) {
    const QString out = scratchDir() + "/headless_" + view + ".png";
    QFile::remove(out);
    QString err;
    QCOMPARE(run({"--model", QString::fromStdString(dir), "--text-file", text, "--view", view,
                  "--layer", "1", "--head", "1", "--screenshot", out},
                 &err),
             0);
    QVERIFY2(QFileInfo(out).size() > 1000, qPrintable(err));
  }
  // Bad input: one line, non-zero, nothing written.
  const QString out = scratchDir() + "/headless_bad.png";
  QFile::remove(out);
  QString err;
  QVERIFY(run({"--model", scratchDir() + "/nope", "--text-file", text, "--screenshot", out},
              &err) != 0);
  QCOMPARE(err.trimmed().count(QLatin1Char('\n')), 0);
  QVERIFY(!QFile::exists(out));
  QVERIFY(run({"--model", QString::fromStdString(dir), "--text-file", scratchDir() + "/nope.txt",
               "--screenshot", out},
              &err) != 0);
  QVERIFY(err.contains(QStringLiteral("--text-file")));
  QVERIFY(run({"--model", QString::fromStdString(dir), "--text-file", text, "--layer", "9",
               "--screenshot", out},
              &err) != 0);
  QVERIFY(err.contains(QStringLiteral("--layer 9")));
  QVERIFY(!QFile::exists(out));
}

void GuiModelTest::modelDemoRunsOnTheOpenModel() {
  Opened o = open("llama");
  MainWindow& w = *o.window;
  QVERIFY(waitUntilSettled(w, 30000));
  const auto model = w.controller().workload().model;
  QVERIFY(w.applyPreset(QStringLiteral("your-model")).isEmpty());
  QCOMPARE(w.currentView()->kind(), ViewKind::atlas);
  QVERIFY(waitUntilSettled(w, 30000));
  QVERIFY2(w.lastError().isEmpty(), qPrintable(w.lastError()));
  // The demo runs on the open model, with its statistic.
  QCOMPARE(w.controller().workload().model, model);
  const ViewResultPtr r = w.currentView()->lastResult();
  QVERIFY(r && !r->atlas.isEmpty());
  QCOMPARE(r->request.stat, QStringLiteral("sink"));
}

void GuiModelTest::aTensorFileReplacesTheModel() {
  Opened o = open("llama");
  MainWindow& w = *o.window;
  QVERIFY(waitUntilSettled(w, 30000));
  AttentionProblem p = AttentionProblem::defaults(VariantId::dense);
  p.shape = {1, 2, 2, 32, 32, 16, 16};
  const QString path = scratchDir() + "/model_then_file.safetensors";
  io::save_safetensors(path.toStdString(), make_inputs(p, "periodic", 9).tensors);
  QSignalSpy loaded(&w.controller(), &ExplorerController::fileLoaded);
  w.controller().loadFile(path);
  QVERIFY(loaded.wait(10000));
  QVERIFY(waitUntilSettled(w, 20000));
  // The file is the input now: no model, the file's shape, and the map is the file's.
  const Workload now = w.controller().workload();
  QVERIFY(!now.model && !now.text);
  QCOMPARE(now.file, path);
  QCOMPARE(now.problem.shape.q_len, 32);
  QCOMPARE(w.view(ViewKind::map)->lastResult()->maps.front().region.rows(), 32);
  QVERIFY(w.panel()->modelBox()->statusText().isEmpty());
  // And nothing holds the model any more, though the controller's switch came first.
  for (ViewKind v : allViews()) {
    if (const ViewResultPtr r = w.view(v)->lastResult()) QVERIFY(!r->workload.model);
  }
}

void GuiModelTest::closingTheModelLetsItGo() {
  Opened o = open("llama");
  MainWindow& w = *o.window;
  for (ViewKind v : {ViewKind::map, ViewKind::text, ViewKind::atlas}) {
    w.setCurrentView(v);
    QVERIFY(waitUntilSettled(w, 30000));
  }
  std::weak_ptr<const LoadedModel> model = w.controller().workload().model;
  QVERIFY(!model.expired());
  w.panel()->clearModel();
  w.setCurrentView(ViewKind::map);
  QVERIFY(waitUntilSettled(w, 30000));
  // Nothing holds the model any more: not the views' previous results, not the status bar, not
  // the worker's captures.
  QVERIFY(model.expired());
  // What the other views show is a previous result, greyed.
  auto* atlas = static_cast<AtlasView*>(w.view(ViewKind::atlas));
  QVERIFY(atlas->lastResult() && !atlas->lastResult()->atlas.isEmpty());
  QVERIFY(atlas->lastResult()->workload.runKey() != w.controller().workload().runKey());
}

void GuiModelTest::clearWhileOpeningKeepsItClosed() {
  const attnscope::test::TinyModel m = writeModel("llama", "clear_opening");
  MainWindow w(MainWindow::Options{false, false});
  w.show();
  QVERIFY(waitUntilSettled(w, 20000));
  emit w.panel()->modelBox()->openRequested(QString::fromStdString(m.dir));
  emit w.panel()->modelBox()->clearRequested();
  QTest::qWait(500);
  QVERIFY(waitUntilSettled(w, 20000));
  QVERIFY(!w.controller().workload().model);
}

void GuiModelTest::zoomingInBringsTheTokenLabels() {
  Opened o = open("llama");
  MainWindow& w = *o.window;
  QString longer;
  for (int i = 0; i < 3; ++i) longer += kText + QLatin1Char(' ');
  w.panel()->setModelText(longer);
  w.setCurrentView(ViewKind::map);
  QVERIFY(waitUntilSettled(w, 30000));
  const qint64 L = w.controller().workload().text->length();
  QVERIFY(L > 100 && L < 128);
  auto* map = static_cast<AttentionMapView*>(w.view(ViewKind::map));
  // More than 80 tokens in view: numbers on the axes.
  QVERIFY(!map->heatmap()->rowTokenLabels() && !map->heatmap()->colTokenLabels());
  map->heatmap()->setViewRegion({L - 30, L, L - 30, L});
  w.requestView();
  QVERIFY(waitUntilSettled(w, 30000));
  QCOMPARE(map->lastResult()->maps.front().region, (Region{L - 30, L, L - 30, L}));
  QVERIFY(map->heatmap()->rowTokenLabels() && map->heatmap()->colTokenLabels());
  // The labels are the tokens of the rows in view, in the SVG a reader gets.
  const QString svg = scratchDir() + "/model_zoomed.svg";
  QVERIFY(w.exportFigureTo(svg).isEmpty());
  QFile f(svg);
  QVERIFY(f.open(QIODevice::ReadOnly));
  const QString content = QString::fromUtf8(f.readAll());
  const QStringList& tokens = *w.controller().workload().text->tokens;
  int found = 0;
  for (qint64 i = L - 30; i < L; ++i) {
    const QString& t = tokens[i];
    if (t.trimmed().size() >= 2 && !t.contains(QLatin1Char('\n')) &&
        content.contains(QLatin1Char('>') + t.toHtmlEscaped() + QStringLiteral("</text>"))) {
      ++found;
    }
  }
  QVERIFY2(found >= 3, qPrintable(QString::number(found)));
  // Hovering one entry names both tokens and the exact value.
  const QString hover = map->heatmap()->hoverTextAt(double(L - 2) + 0.5, double(L - 5) + 0.5);
  QVERIFY2(hover.startsWith(QStringLiteral("query '")) && hover.contains(QStringLiteral("→ key '")),
           qPrintable(hover));
}

void GuiModelTest::theLastModelAndTextComeBack() {
  QStandardPaths::setTestModeEnabled(true);  // QSettings under a test folder, not the user's
  QSettings().clear();
  const attnscope::test::TinyModel m = writeModel("qwen2", "settings");
  {
    MainWindow w(MainWindow::Options{true, false});
    w.show();
    w.panel()->modelBox()->setText(kText);
    emit w.panel()->modelBox()->openRequested(QString::fromStdString(m.dir));
    QVERIFY(waitFor([&] { return bool(w.controller().workload().text); }, 20000));
    QVERIFY(waitUntilSettled(w, 30000));
    w.close();
  }
  MainWindow again(MainWindow::Options{true, false});
  again.show();
  QVERIFY(waitFor([&] { return bool(again.controller().workload().text); }, 20000));
  QCOMPARE(again.controller().workload().model->dir,
           QFileInfo(QString::fromStdString(m.dir)).absoluteFilePath());
  QCOMPARE(again.controller().workload().text->text, kText);
  QVERIFY(waitUntilSettled(again, 30000));
  again.panel()->clearModel();
  again.close();
  QSettings().clear();
}

void GuiModelTest::requestsDuringTheForwardWaitForIt() {
  // A forward slow enough to be interrupted: the float64 reference backend, 8 layers of 64-wide
  // heads on 120 tokens.
  attnscope::test::TinyModelSpec spec;
  spec.vocab = 320;
  spec.hidden = 256;
  spec.heads = 4;
  spec.kv_heads = 2;
  spec.layers = 8;
  spec.intermediate = 64;
  spec.max_positions = 128;
  const std::string dir = (scratchDir() + "/model_slow").toStdString();
  std::filesystem::remove_all(dir);
  attnscope::test::write_tiny_model(spec, dir);
  attnscope::test::write_byte_level_tokenizer(dir, spec.vocab);
  MainWindow w(MainWindow::Options{false, false});
  w.resize(1200, 800);
  w.show();
  Workload synthetic = smallWorkload();
  synthetic.backend = QStringLiteral("reference");
  w.setWorkload(synthetic);
  QVERIFY(waitUntilSettled(w, 20000));
  QString text;
  for (int i = 0; i < 3; ++i) text += kText + QLatin1Char(' ');
  w.panel()->modelBox()->setText(text);
  const int before = w.controller().engine().forwardsStarted();
  emit w.panel()->modelBox()->openRequested(QString::fromStdString(dir));
  QVERIFY(waitFor([&] { return w.controller().busy() && w.controller().workload().text; }, 20000));
  // Clicks while it reads: another head, another view, a token.
  auto* map = static_cast<AttentionMapView*>(w.view(ViewKind::map));
  map->setHeadSelection(HeadMode::single, 2, 0);
  w.requestView(true);
  w.setCurrentView(ViewKind::text);
  w.setCurrentView(ViewKind::atlas);
  QVERIFY(waitUntilSettled(w, 120000));
  QVERIFY2(w.lastError().isEmpty(), qPrintable(w.lastError()));
  QCOMPARE(w.controller().engine().forwardsStarted() - before, 1);
  QVERIFY(w.view(ViewKind::atlas)->lastResult() &&
          !w.view(ViewKind::atlas)->lastResult()->atlas.isEmpty());
}

void GuiModelTest::viewsThatNeedNoForwardRunNone() {
  const attnscope::test::TinyModel m = writeModel("llama", "no_forward");
  MainWindow w(MainWindow::Options{false, false});
  w.show();
  w.setCurrentView(ViewKind::kv);
  // No text yet: the KV cache view reads the model's shape only, and that is no error.
  emit w.panel()->modelBox()->openRequested(QString::fromStdString(m.dir));
  QVERIFY(waitFor([&] { return bool(w.controller().workload().model); }, 20000));
  QVERIFY(waitUntilSettled(w, 20000));
  QVERIFY2(w.lastError().isEmpty(), qPrintable(w.lastError()));
  QCOMPARE(w.controller().engine().forwardsStarted(), 0);
  // The map needs the text, and says so.
  w.setCurrentView(ViewKind::map);
  QVERIFY(waitUntilSettled(w, 20000));
  QVERIFY(w.lastError().contains(QStringLiteral("text")));
}

QTEST_MAIN(GuiModelTest)
#include "test_gui_model.moc"
