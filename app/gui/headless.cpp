// Headless screenshots. The window is shown on the offscreen platform (so layouts are real) and
// grabbed after the worker answers; names are checked first so a typo exits with one clear line.
#include "headless.hpp"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QRegularExpression>
#include <QStringDecoder>
#include <QThread>
#include <cmath>
#include <cstdlib>

#include "exporter.hpp"
#include "main_window.hpp"
#include "output_files.hpp"
#include "presets.hpp"
#include "views/atlas_view.hpp"
#include "views/attention_map_view.hpp"
#include "views/text_view.hpp"
#include "workload_panel.hpp"

namespace attnscope::gui {

namespace {

// The window as a PNG, like QWidget::grab() but into an image whose allocation is checked first,
// written atomically.
QString grabToPng(QWidget& window, const QString& file, const QString& description) {
  const double dpr = window.devicePixelRatioF();
  QByteArray bytes;
  if (QString e =
          renderPng(&window, file, dpr, int(std::lround(96 * dpr)), true, description, bytes);
      !e.isEmpty()) {
    return e;
  }
  return writeOutputFile(file, bytes);
}

}  // namespace

bool waitUntilSettled(MainWindow& window, int timeoutMs) {
  QElapsedTimer timer;
  timer.start();
  int settledRounds = 0;
  while (timer.elapsed() < timeoutMs) {
    QCoreApplication::processEvents(QEventLoop::AllEvents, 20);
    // A result can trigger a follow-up request (e.g. the plot size changed): require calm twice.
    settledRounds = window.settled() ? settledRounds + 1 : 0;
    if (settledRounds >= 3) return true;
    QThread::msleep(10);
  }
  return false;
}

QString parseScreenshotSize(const QString& text, int& width, int& height) {
  static const QRegularExpression pattern(QStringLiteral("^([0-9]+)[xX]([0-9]+)$"));
  const QString limits =
      QStringLiteral("two whole numbers of pixels from 1 to %1 each, like 1200x800")
          .arg(kMaxImageSide);
  const QRegularExpressionMatch m = pattern.match(text);
  if (!m.hasMatch()) {
    return QStringLiteral("--size must be WxH, %1 (got '%2')").arg(limits, text.left(80));
  }
  bool okW = false, okH = false;
  const qint64 w = m.captured(1).toLongLong(&okW), h = m.captured(2).toLongLong(&okH);
  if (!okW || !okH || !checkImageSize(w, h).isEmpty()) {
    return QStringLiteral("--size %1 is out of range: WxH must be %2").arg(text.left(80), limits);
  }
  width = int(w);
  height = int(h);
  return {};
}

namespace {

// The checks every screenshot makes before a window exists. Returns the exit code (0: fine).
int checkShot(const QString& viewArg, ViewKind& kind, const QString& file, QString* message,
              int width, int height) {
  if (!viewArg.isEmpty() && !viewFromName(viewArg, kind)) {
    QStringList names;
    for (ViewKind v : allViews()) names.append(viewName(v));
    *message = QStringLiteral("unknown view '%1' (known: %2)").arg(viewArg, names.join(", "));
    return 2;
  }
  const QString suffix = QFileInfo(file).suffix().toLower();
  if (suffix != "png" && suffix != "svg") {
    *message = QStringLiteral("screenshot file must end in .png or .svg: %1").arg(file);
    return 2;
  }
  // Qt cannot back a paint device of any size: a window (and so a grab) it failed to allocate
  // crashes inside Qt's own widgets, so the size is checked here as well as by main().
  if (QString e = checkImageSize(width, height); !e.isEmpty()) {
    *message = QStringLiteral("screenshot size: %1").arg(e);
    return 2;
  }
  if (QString e = checkOutputPath(file); !e.isEmpty()) {
    *message = e;
    return 2;
  }
  // Qt allocates the window's backing store at this size (and the views their own images, and the
  // grab below its image) and, when such an allocation fails, crashes painting into it. Under a
  // memory limit (ulimit -v), make sure room for three such images exists before showing it.
  {
    const size_t bytes = size_t(width) * size_t(height) * 4 * 3;
    void* room = std::malloc(bytes);
    if (!room) {
      *message = QStringLiteral("not enough memory for a %1x%2 screenshot (try a smaller --size)")
                     .arg(width)
                     .arg(height);
      return 1;
    }
    std::free(room);
  }
  return 0;
}

// Waits for the window's answer and writes it to `file`.
int grabSettled(MainWindow& window, const QString& file, QString* message) {
  const QString suffix = QFileInfo(file).suffix().toLower();
  window.requestView(true);
  if (!waitUntilSettled(window, 600000)) {
    *message = QStringLiteral("timed out waiting for the engine");
    return 3;
  }
  if (QString e = window.currentView()->prepareHeadless(60000); !e.isEmpty()) {
    *message = e;
    return 1;
  }
  int code = 0;
  QString runError;
  if (!window.lastError().isEmpty()) {
    runError = window.lastError();
    code = 1;
  }
  // The file carries what it shows (the workload, model folder and text hash, the view's
  // request), as an export from the window does.
  const QJsonObject config =
      runConfiguration(window.controller().workload(), *window.currentView());
  QString e;
  if (suffix == "png") {
    e = grabToPng(window, file,
                  QString::fromUtf8(QJsonDocument(config).toJson(QJsonDocument::Compact)));
  } else {
    e = exportFigure(&window, file, 96, config);
  }
  if (!e.isEmpty()) {
    *message = e;
    return 1;
  }
  *message = runError;
  return code;
}

}  // namespace

int renderHeadless(const QString& preset, const QString& viewArg, const QString& file,
                   QString* message, int width, int height, bool dark) {
  const Preset* p = findPreset(preset);
  if (!p) {
    *message =
        QStringLiteral("unknown preset '%1' (known: %2)").arg(preset, presetNames().join(", "));
    return 2;
  }
  ViewKind kind = p->view;
  if (int code = checkShot(viewArg, kind, file, message, width, height)) return code;
  MainWindow window(MainWindow::Options{false, false});
  window.resize(width, height);
  if (dark) window.setDarkPalette(true);
  window.show();
  if (QString e = window.applyPreset(preset); !e.isEmpty()) {
    *message = e;
    return 2;
  }
  window.setCurrentView(kind);
  return grabSettled(window, file, message);
}

QString readModelText(const QString& path, QString& text) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) {
    return QStringLiteral("cannot read --text-file '%1': %2").arg(path, f.errorString());
  }
  // What a text box takes; a CPU forward reads far less.
  constexpr qint64 kMaxTextBytes = 4 << 20;
  if (f.size() > kMaxTextBytes) {
    return QStringLiteral("--text-file '%1' is %2 MiB; at most %3 MiB of text")
        .arg(path)
        .arg(double(f.size()) / (1 << 20), 0, 'f', 1)
        .arg(kMaxTextBytes >> 20);
  }
  QStringDecoder utf8(QStringDecoder::Utf8);
  text = utf8(f.readAll());
  if (utf8.hasError()) return QStringLiteral("--text-file '%1' is not UTF-8 text").arg(path);
  if (text.trimmed().isEmpty()) return QStringLiteral("--text-file '%1' is empty").arg(path);
  return {};
}

int renderModelHeadless(const ModelShot& shot, const QString& file, QString* message, int width,
                        int height, bool dark) {
  ViewKind kind = ViewKind::map;
  if (int code = checkShot(shot.view, kind, file, message, width, height)) return code;
  QString text;
  if (QString e = readModelText(shot.textFile, text); !e.isEmpty()) {
    *message = e;
    return 2;
  }
  std::shared_ptr<const LoadedModel> model;
  std::shared_ptr<const ModelText> tokens;
  try {
    model = LoadedModel::open(shot.modelDir);
    tokens = ModelText::make(*model, text);
  } catch (const std::exception& e) {
    *message = QString::fromStdString(e.what());
    return 1;
  }
  const ModelConfig& c = model->model.config();
  if (shot.layer < 0 || shot.layer >= c.layers) {
    *message = QStringLiteral("--layer %1 is outside this model's layers 0-%2")
                   .arg(shot.layer)
                   .arg(c.layers - 1);
    return 2;
  }
  if (shot.head >= c.heads) {
    *message = QStringLiteral("--head %1 is outside this model's heads 0-%2")
                   .arg(shot.head)
                   .arg(c.heads - 1);
    return 2;
  }
  if (shot.token >= tokens->length()) {
    *message = QStringLiteral("--token %1 is outside the text's tokens 0-%2")
                   .arg(shot.token)
                   .arg(tokens->length() - 1);
    return 2;
  }
  MainWindow window(MainWindow::Options{false, false});
  window.resize(width, height);
  if (dark) window.setDarkPalette(true);
  window.show();
  window.panel()->modelBox()->setText(text);
  window.panel()->applyModel(model);
  window.setCurrentView(kind);
  if (auto* map = qobject_cast<AttentionMapView*>(window.view(ViewKind::map))) {
    map->setLayer(shot.layer);
    if (shot.head >= 0) map->setHeadSelection(HeadMode::single, shot.head, 0);
  }
  if (auto* tv = qobject_cast<TextView*>(window.view(ViewKind::text))) {
    tv->layerCombo()->setCurrentIndex(shot.layer);
    if (shot.head >= 0) tv->headCombo()->setCurrentIndex(tv->headCombo()->findData(shot.head));
    const int token = shot.token >= 0 ? shot.token : int(tokens->length()) - 1;
    tv->tokens()->setSelected(token);
  }
  if (auto* atlas = qobject_cast<AtlasView*>(window.view(ViewKind::atlas));
      atlas && !shot.stat.isEmpty()) {
    const int i = atlas->statCombo()->findData(shot.stat);
    if (i < 0) {
      QStringList keys;
      for (int x = 0; x < atlas->statCombo()->count(); ++x)
        keys << atlas->statCombo()->itemData(x).toString();
      *message = QStringLiteral("unknown --stat '%1' (known: %2)").arg(shot.stat, keys.join(", "));
      return 2;
    }
    atlas->statCombo()->setCurrentIndex(i);
  }
  if (!shot.settings.isEmpty()) window.view(kind)->applySettings(shot.settings);
  return grabSettled(window, file, message);
}

}  // namespace attnscope::gui
