// Headless screenshots. The window is shown on the offscreen platform (so layouts are real) and
// grabbed after the worker answers; names are checked first so a typo exits with one clear line.
#include "headless.hpp"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QPixmap>
#include <QThread>

#include "exporter.hpp"
#include "main_window.hpp"
#include "presets.hpp"

namespace attnscope::gui {

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
  if (!window.lastError().isEmpty()) {
    *message = window.lastError();
    code = 1;
  }
  if (suffix == "png") {
    if (!window.grab().save(file, "PNG")) {
      *message = QStringLiteral("cannot write %1").arg(file);
      return 1;
    }
  } else if (QString e = exportFigure(&window, file, 96); !e.isEmpty()) {
    *message = e;
    return 1;
  }
  return code;
}

}  // namespace attnscope::gui
