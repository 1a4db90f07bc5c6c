// Headless screenshots. The window is shown on the offscreen platform (so layouts are real) and
// grabbed after the worker answers; names are checked first so a typo exits with one clear line.
#include "headless.hpp"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QRegularExpression>
#include <QThread>
#include <cmath>
#include <cstdlib>

#include "exporter.hpp"
#include "main_window.hpp"
#include "output_files.hpp"
#include "presets.hpp"

namespace attnscope::gui {

namespace {

// The window as a PNG, like QWidget::grab() but into an image whose allocation is checked first,
// written atomically.
QString grabToPng(QWidget& window, const QString& file) {
  const double dpr = window.devicePixelRatioF();
  QByteArray bytes;
  if (QString e = renderPng(&window, file, dpr, int(std::lround(96 * dpr)), true, {}, bytes);
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

int renderHeadless(const QString& preset, const QString& viewArg, const QString& file,
                   QString* message, int width, int height, bool dark) {
  const Preset* p = findPreset(preset);
  if (!p) {
    *message =
        QStringLiteral("unknown preset '%1' (known: %2)").arg(preset, presetNames().join(", "));
    return 2;
  }
  ViewKind kind = p->view;
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
  MainWindow window(MainWindow::Options{false, false});
  window.resize(width, height);
  if (dark) window.setDarkPalette(true);
  window.show();
  if (QString e = window.applyPreset(preset); !e.isEmpty()) {
    *message = e;
    return 2;
  }
  window.setCurrentView(kind);
  window.requestView(true);
  if (!waitUntilSettled(window, 120000)) {
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
  QString e;
  if (suffix == "png") {
    e = grabToPng(window, file);
  } else {
    e = exportFigure(&window, file, 96);
  }
  if (!e.isEmpty()) {
    *message = e;
    return 1;
  }
  *message = runError;
  return code;
}

}  // namespace attnscope::gui
