// `attnscope chart FILE.json --kind K [--style line|bar] --out FILE.{png,svg,pdf} [--dpi N]
// [--csv FILE] [--title T]`: redraws a sweep file headless, with the very chart the Benchmark view
// shows. Lives in the GUI binary because it needs Qt Charts.
#pragma once

#include <QStringList>

namespace attnscope::gui::charts {

// `arguments` as QCoreApplication::arguments(): the program, "chart", then the options. Needs a
// QApplication (any platform; main() picks offscreen). Prints --help to stdout and any error as one
// line on stderr. Returns the exit code: 0 on success, 1 on any error.
int runChartCommand(const QStringList& arguments);

}  // namespace attnscope::gui::charts
