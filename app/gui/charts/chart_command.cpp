// The `chart` subcommand: parse, check every option before reading anything, load the sweep,
// render with SweepChart (the Benchmark view's own chart) and write the files.
#include "charts/chart_command.hpp"

#include <QCommandLineParser>
#include <QFileInfo>
#include <QObject>
#include <cstdio>

#include "charts/sweep_chart.hpp"
#include "charts/sweep_io.hpp"
#include "output_files.hpp"

namespace attnscope::gui::charts {
namespace {

int fail(const QString& message) {
  std::fprintf(stderr, "attnscope: chart: %s\n", qPrintable(message));
  return 1;
}

}  // namespace

int runChartCommand(const QStringList& arguments) {
  QCommandLineParser parser;
  parser.setApplicationDescription(
      QObject::tr("Draws a benchmark sweep JSON file (from `attnscope-cli bench` or the "
                  "Benchmark view) as a chart, without a display."));
  parser.setSingleDashWordOptionMode(QCommandLineParser::ParseAsLongOptions);
  const QCommandLineOption helpOpt({"h", "help"}, QObject::tr("Show this help and exit."));
  const QCommandLineOption kindOpt(
      "kind", QObject::tr("What to plot: %1 (default time).").arg(chartKindNames()), "KIND",
      "time");
  const QCommandLineOption styleOpt("style", QObject::tr("line (default) or bar."), "STYLE",
                                    "line");
  const QCommandLineOption outOpt(
      "out", QObject::tr("The chart file; its suffix picks the format: .png, .svg or .pdf."),
      "FILE");
  const QCommandLineOption dpiOpt(
      "dpi",
      QObject::tr("Resolution of .png (pixels = 960x600 * N / 96) and .pdf (default 144; %1-%2).")
          .arg(kMinDpi)
          .arg(kMaxDpi),
      "N", "144");
  const QCommandLineOption csvOpt("csv", QObject::tr("Also write the sweep's data as CSV."),
                                  "FILE");
  const QCommandLineOption titleOpt("title", QObject::tr("Chart title (default from the kind)."),
                                    "T");
  parser.addOptions({helpOpt, kindOpt, styleOpt, outOpt, dpiOpt, csvOpt, titleOpt});
  parser.addPositionalArgument("FILE.json", QObject::tr("The sweep file."));

  QStringList args = arguments;
  if (args.size() >= 2) args.removeAt(1);  // "chart"
  if (!parser.parse(args)) return fail(parser.errorText());
  if (parser.isSet(helpOpt)) {
    std::printf(
        "Usage: attnscope chart FILE.json --kind KIND [--style line|bar] --out "
        "FILE.{png,svg,pdf} [--dpi N] [--csv FILE] [--title T]\n\n%s",
        qPrintable(parser.helpText().section(QLatin1Char('\n'), 1)));
    return 0;
  }

  const QStringList positional = parser.positionalArguments();
  if (positional.size() != 1) {
    return fail(positional.isEmpty()
                    ? QObject::tr("missing the sweep file (attnscope chart FILE.json --out FILE)")
                    : QObject::tr("one sweep file expected, got %1: %2")
                          .arg(positional.size())
                          .arg(positional.join(QLatin1Char(' '))));
  }
  ChartOptions options;
  if (!chartKindFromName(parser.value(kindOpt), options.kind)) {
    return fail(QObject::tr("unknown --kind '%1' (choose from: %2)")
                    .arg(parser.value(kindOpt), chartKindNames()));
  }
  if (!chartStyleFromName(parser.value(styleOpt), options.style)) {
    return fail(
        QObject::tr("unknown --style '%1' (choose from: line, bar)").arg(parser.value(styleOpt)));
  }
  options.title = parser.value(titleOpt);
  if (!parser.isSet(outOpt) || parser.value(outOpt).isEmpty()) {
    return fail(QObject::tr("--out FILE.png|.svg|.pdf is required"));
  }
  const QString out = parser.value(outOpt);
  const QString suffix = QFileInfo(out).suffix().toLower();
  if (suffix != QLatin1String("png") && suffix != QLatin1String("svg") &&
      suffix != QLatin1String("pdf")) {
    return fail(QObject::tr("--out must end in .png, .svg or .pdf: %1").arg(out));
  }
  bool ok = false;
  const int dpi = parser.value(dpiOpt).toInt(&ok);
  if (!ok || dpi < kMinDpi || dpi > kMaxDpi) {
    return fail(QObject::tr("--dpi must be a whole number from %1 to %2 (got '%3')")
                    .arg(kMinDpi)
                    .arg(kMaxDpi)
                    .arg(parser.value(dpiOpt)));
  }
  const QString csv = parser.value(csvOpt);
  if (parser.isSet(csvOpt) && QFileInfo(csv).suffix().toLower() != QLatin1String("csv")) {
    return fail(QObject::tr("--csv must end in .csv: %1").arg(csv));
  }

  // Every output is checked before anything is read or rendered, and none may be the input.
  const QString input = positional.front();
  const QString inputCanonical = QFileInfo(input).canonicalFilePath();
  QStringList outputs{out};
  if (parser.isSet(csvOpt)) outputs << csv;
  for (const QString& path : outputs) {
    if (QString e = checkOutputPath(path); !e.isEmpty()) return fail(e);
    if (!inputCanonical.isEmpty() && QFileInfo(path).canonicalFilePath() == inputCanonical) {
      return fail(QObject::tr("%1 is the sweep file itself: choose another output").arg(path));
    }
  }

  SweepResult sweep;
  if (QString e = loadSweepFile(input, sweep); !e.isEmpty()) return fail(e);
  SweepChart chart;
  if (QString e = chart.setSweep(sweep, options); !e.isEmpty()) {
    return fail(QStringLiteral("%1: %2").arg(input, e));
  }
  // Render everything into memory, then write all files or none.
  QList<OutputFile> files;
  QByteArray chartBytes;
  if (QString e = chart.render(out, dpi, chartBytes); !e.isEmpty()) return fail(e);
  files.append(OutputFile{out, chartBytes});
  if (parser.isSet(csvOpt)) {
    QByteArray csvBytes;
    if (QString e = sweepDataBytes(sweep, csv, csvBytes); !e.isEmpty()) return fail(e);
    files.append(OutputFile{csv, csvBytes});
  }
  if (QString e = writeOutputFiles(files); !e.isEmpty()) return fail(e);
  return 0;
}

}  // namespace attnscope::gui::charts
