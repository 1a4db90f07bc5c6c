// attnscope entry point: the interactive explorer, or with --screenshot a headless render of one
// preset in one view (for docs and CI), on the offscreen platform unless one was chosen; or
// `attnscope chart FILE.json …`, which draws a benchmark sweep file, always offscreen.
#include <QApplication>
#include <QCommandLineParser>
#include <cstdio>
#include <cstring>

#include "charts/chart_command.hpp"
#include "headless.hpp"
#include "main_window.hpp"
#include "presets.hpp"

int main(int argc, char** argv) {
  // Decide the platform before QApplication exists: a screenshot needs no display.
  bool screenshot = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--screenshot", 12) == 0) screenshot = true;
  }
  // A chart never opens a window, so it never needs (or waits for) a display.
  const bool chart = argc > 1 && std::strcmp(argv[1], "chart") == 0;
  if (chart || (screenshot && qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))) {
    qputenv("QT_QPA_PLATFORM", "offscreen");
    // Headless runs on bare machines: the offscreen plugin's notes about window features it
    // ignores and a missing XDG runtime directory are not news; everything else still prints.
    static const QtMessageHandler previous = qInstallMessageHandler(
        [](QtMsgType type, const QMessageLogContext& context, const QString& message) {
          if (message.contains(QLatin1String("propagateSizeHints")) ||
              message.contains(QLatin1String("XDG_RUNTIME_DIR"))) {
            return;
          }
          if (previous) {
            previous(type, context, message);
          } else {
            std::fprintf(stderr, "%s\n", qPrintable(message));
          }
        });
  }
  // QApplication would take the chart's own options (--style is also one of Qt's): it gets only
  // the program name, and the chart parses the full command line itself.
  int qtArgc = chart ? 1 : argc;
  QApplication app(qtArgc, argv);
  QApplication::setOrganizationName(QStringLiteral("attnscope"));
  QApplication::setApplicationName(QStringLiteral("attnscope"));
  QApplication::setApplicationVersion(QStringLiteral(ATTNSCOPE_VERSION));
  if (chart) {
    QStringList arguments;
    for (int i = 0; i < argc; ++i) arguments << QString::fromLocal8Bit(argv[i]);
    return attnscope::gui::charts::runChartCommand(arguments);
  }

  QCommandLineParser parser;
  parser.setApplicationDescription(
      QStringLiteral("Explorer for attention mechanisms.\n"
                     "attnscope chart FILE.json --kind K --out FILE draws a benchmark sweep "
                     "(see attnscope chart --help)."));
  parser.addHelpOption();
  parser.addVersionOption();
  QCommandLineOption presetOpt("preset", "Open a guided demo (see --list-presets).", "NAME");
  QCommandLineOption viewOpt(
      "view", "View to show: map, blocks, compare, deltanet, learn, kv, throughput, benchmark.",
      "VIEW");
  QCommandLineOption shotOpt("screenshot", "Render headless to FILE (.png or .svg) and exit.",
                             "FILE");
  QCommandLineOption sizeOpt("size", "Screenshot size WxH (default 1200x800).", "WxH", "1200x800");
  QCommandLineOption listOpt("list-presets", "Print the demo names and exit.");
  QCommandLineOption darkOpt("dark", "Start with the dark palette.");
  parser.addOptions({presetOpt, viewOpt, shotOpt, sizeOpt, listOpt, darkOpt});
  parser.process(app);

  using namespace attnscope::gui;
  if (parser.isSet(listOpt)) {
    for (const Preset& p : presets())
      std::printf("%s\t%s\n", qPrintable(p.name), qPrintable(p.title));
    return 0;
  }
  if (parser.isSet(shotOpt)) {
    if (!parser.isSet(presetOpt)) {
      std::fprintf(stderr, "attnscope: --screenshot needs --preset NAME\n");
      return 2;
    }
    const QStringList wh = parser.value(sizeOpt).split('x');
    const int w = wh.size() == 2 ? wh[0].toInt() : 1200, h = wh.size() == 2 ? wh[1].toInt() : 800;
    QString message;
    const int code =
        renderHeadless(parser.value(presetOpt), parser.value(viewOpt), parser.value(shotOpt),
                       &message, w > 0 ? w : 1200, h > 0 ? h : 800, parser.isSet(darkOpt));
    if (!message.isEmpty()) std::fprintf(stderr, "attnscope: %s\n", qPrintable(message));
    return code;
  }

  MainWindow window;
  if (parser.isSet(darkOpt)) window.setDarkPalette(true);
  if (parser.isSet(presetOpt)) {
    if (QString e = window.applyPreset(parser.value(presetOpt)); !e.isEmpty()) {
      std::fprintf(stderr, "attnscope: %s\n", qPrintable(e));
      return 2;
    }
  }
  if (parser.isSet(viewOpt)) {
    ViewKind v;
    if (!viewFromName(parser.value(viewOpt), v)) {
      std::fprintf(stderr, "attnscope: unknown view '%s'\n", qPrintable(parser.value(viewOpt)));
      return 2;
    }
    window.setCurrentView(v);
  }
  window.show();
  return app.exec();
}
