// attnscope entry point: the interactive explorer, or with --screenshot a headless render of one
// preset in one view (for docs and CI), on the offscreen platform unless one was chosen; or
// `attnscope chart FILE.json …`, which draws a benchmark sweep file, always offscreen.
#include <QApplication>
#include <QCommandLineParser>
#include <QJsonDocument>
#include <cstdio>
#include <cstring>
#include <initializer_list>

#include "charts/chart_command.hpp"
#include "exporter.hpp"
#include "headless.hpp"
#include "main_window.hpp"
#include "presets.hpp"
#include "workload_panel.hpp"

namespace {

bool isArg(const char* arg, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (std::strcmp(arg, n) == 0) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  // Decide the platform before QApplication exists: a screenshot needs no display, and neither
  // do the options that only print (--help, --version, --list-presets).
  bool screenshot = false, printOnly = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--screenshot", 12) == 0) screenshot = true;
    if (isArg(argv[i], {"--list-presets", "--help", "-h", "-?", "--help-all", "--version", "-v"})) {
      printOnly = true;
    }
  }
  // A chart never opens a window, so it never needs (or waits for) a display.
  const bool chart = argc > 1 && std::strcmp(argv[1], "chart") == 0;
  const bool headless = chart || screenshot || printOnly;
  if (headless && qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) {
    qputenv("QT_QPA_PLATFORM", "offscreen");
  }
  // A window with nowhere to go: Qt's xcb plugin would abort with several lines; say it in one.
  if (!headless && qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM") &&
      qEnvironmentVariableIsEmpty("DISPLAY") && qEnvironmentVariableIsEmpty("WAYLAND_DISPLAY")) {
    std::fprintf(stderr,
                 "attnscope: no display to open a window on (DISPLAY and WAYLAND_DISPLAY are "
                 "unset); headless: attnscope --preset NAME --screenshot FILE.png\n");
    return 1;
  }
  if (headless) {
    // Headless runs on bare machines: the offscreen plugin's notes about window features it
    // ignores and a missing XDG runtime directory are not news (also when the caller chose the
    // platform), so a failure prints exactly its one line; everything else still prints.
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
  QStringList viewNames;
  for (attnscope::gui::ViewKind v : attnscope::gui::allViews()) {
    viewNames << attnscope::gui::viewName(v);
  }
  QCommandLineOption viewOpt("view", QStringLiteral("View to show: %1.").arg(viewNames.join(", ")),
                             "VIEW");
  QCommandLineOption shotOpt("screenshot", "Render headless to FILE (.png or .svg) and exit.",
                             "FILE");
  QCommandLineOption sizeOpt(
      "size",
      QStringLiteral("Screenshot size WxH in pixels (default 1200x800; each side 1 to %1; the "
                     "window does not shrink below its minimum size).")
          .arg(attnscope::gui::kMaxImageSide),
      "WxH", "1200x800");
  QCommandLineOption listOpt("list-presets", "Print the demo names and exit.");
  QCommandLineOption darkOpt("dark", "Start with the dark palette.");
  QCommandLineOption modelOpt(
      "model", "Open a Hugging Face model folder (config.json, safetensors, tokenizer.json).",
      "DIR");
  QCommandLineOption textOpt("text-file", "The text the model reads (UTF-8).", "FILE");
  QCommandLineOption layerOpt("layer", "With --model: the layer to show (default 0).", "N");
  QCommandLineOption headOpt("head", "With --model: the head to show (map, text).", "H");
  QCommandLineOption tokenOpt(
      "token", "With --model: the text view's query token (default: the last).", "I");
  QCommandLineOption statOpt("stat",
                             "With --model: the head atlas's statistic (entropy, sink, local, "
                             "distant, previous_token, induction, retrieval).",
                             "KEY");
  QCommandLineOption settingsOpt(
      "view-settings",
      "With --model: the view's settings as a JSON object, as a demo's view_settings give them "
      "(what-if: {\"sweep\":\"window\",\"values\":\"16,32,64\"}).",
      "JSON");
  parser.addOptions({presetOpt, viewOpt, shotOpt, sizeOpt, listOpt, darkOpt, modelOpt, textOpt,
                     layerOpt, headOpt, tokenOpt, statOpt, settingsOpt});
  // parse(), not process(): an unknown option or a missing value is one "attnscope: " line.
  if (!parser.parse(QCoreApplication::arguments())) {
    std::fprintf(stderr, "attnscope: %s\n", qPrintable(parser.errorText()));
    return 2;
  }
  if (parser.isSet(QStringLiteral("help-all"))) parser.process(app);  // with Qt's options; exits
  if (parser.isSet(QStringLiteral("help"))) parser.showHelp(0);
  if (parser.isSet(QStringLiteral("version"))) parser.showVersion();
  if (!parser.positionalArguments().isEmpty()) {
    std::fprintf(stderr, "attnscope: unexpected argument '%s' (see attnscope --help)\n",
                 qPrintable(parser.positionalArguments().front()));
    return 2;
  }

  using namespace attnscope::gui;
  if (parser.isSet(listOpt)) {
    for (const Preset& p : presets())
      std::printf("%s\t%s\n", qPrintable(p.name), qPrintable(p.title));
    return 0;
  }
  // Checked whenever given (also without --screenshot), before anything is opened or rendered.
  int width = 1200, height = 800;
  if (parser.isSet(sizeOpt)) {
    if (QString e = parseScreenshotSize(parser.value(sizeOpt), width, height); !e.isEmpty()) {
      std::fprintf(stderr, "attnscope: %s\n", qPrintable(e));
      return 2;
    }
  }
  // --model: a model on a text instead of a preset.
  const bool model = parser.isSet(modelOpt);
  for (const QCommandLineOption* o :
       {&textOpt, &layerOpt, &headOpt, &tokenOpt, &statOpt, &settingsOpt}) {
    if (parser.isSet(*o) && !model) {
      std::fprintf(stderr, "attnscope: --%s needs --model DIR\n", qPrintable(o->names().front()));
      return 2;
    }
  }
  if (model && !parser.isSet(shotOpt)) {
    // The window's own pickers choose these once the model is open.
    for (const QCommandLineOption* o : {&layerOpt, &headOpt, &tokenOpt, &statOpt, &settingsOpt}) {
      if (parser.isSet(*o)) {
        std::fprintf(stderr,
                     "attnscope: --%s applies to --screenshot; in the window, choose it "
                     "in the view\n",
                     qPrintable(o->names().front()));
        return 2;
      }
    }
  }
  if (model && parser.isSet(presetOpt)) {
    std::fprintf(stderr, "attnscope: give --model or --preset, not both\n");
    return 2;
  }
  ModelShot shot;
  if (model) {
    shot.modelDir = parser.value(modelOpt);
    shot.textFile = parser.value(textOpt);
    if (parser.isSet(viewOpt)) shot.view = parser.value(viewOpt);
    shot.stat = parser.value(statOpt);
    if (parser.isSet(settingsOpt)) {
      QJsonParseError err;
      const QJsonDocument doc = QJsonDocument::fromJson(parser.value(settingsOpt).toUtf8(), &err);
      if (err.error != QJsonParseError::NoError || !doc.isObject()) {
        std::fprintf(
            stderr, "attnscope: --view-settings must be a JSON object (%s)\n",
            qPrintable(err.error != QJsonParseError::NoError ? err.errorString()
                                                             : QStringLiteral("not an object")));
        return 2;
      }
      shot.settings = doc.object();
    }
    const std::pair<const QCommandLineOption*, int*> numbers[] = {
        {&layerOpt, &shot.layer}, {&headOpt, &shot.head}, {&tokenOpt, &shot.token}};
    for (auto [opt, out] : numbers) {
      if (!parser.isSet(*opt)) continue;
      bool ok = false;
      const int v = parser.value(*opt).toInt(&ok);
      if (!ok || v < 0) {
        std::fprintf(stderr, "attnscope: --%s must be a whole number from 0, got '%s'\n",
                     qPrintable(opt->names().front()), qPrintable(parser.value(*opt)));
        return 2;
      }
      *out = v;
    }
  }
  if (parser.isSet(shotOpt) && model) {
    if (!parser.isSet(textOpt)) {
      std::fprintf(stderr, "attnscope: --model needs --text-file FILE for a screenshot\n");
      return 2;
    }
    QString message;
    const int code = renderModelHeadless(shot, parser.value(shotOpt), &message, width, height,
                                         parser.isSet(darkOpt));
    if (!message.isEmpty()) std::fprintf(stderr, "attnscope: %s\n", qPrintable(message));
    return code;
  }
  if (parser.isSet(shotOpt)) {
    if (!parser.isSet(presetOpt)) {
      std::fprintf(stderr, "attnscope: --screenshot needs --preset NAME (or --model DIR)\n");
      return 2;
    }
    QString message;
    const int code =
        renderHeadless(parser.value(presetOpt), parser.value(viewOpt), parser.value(shotOpt),
                       &message, width, height, parser.isSet(darkOpt));
    if (!message.isEmpty()) std::fprintf(stderr, "attnscope: %s\n", qPrintable(message));
    return code;
  }

  MainWindow window;
  if (parser.isSet(darkOpt)) window.setDarkPalette(true);
  if (model) {
    // The folder opens on the worker, as from the panel; a text file given is the text.
    if (parser.isSet(textOpt)) {
      QString text;
      if (QString e = readModelText(shot.textFile, text); !e.isEmpty()) {
        std::fprintf(stderr, "attnscope: %s\n", qPrintable(e));
        return 2;
      }
      window.panel()->modelBox()->setText(text);
    }
    window.panel()->modelBox()->setOpening(shot.modelDir);
    window.controller().loadModel(shot.modelDir);
  }
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
