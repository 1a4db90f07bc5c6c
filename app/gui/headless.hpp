// Headless rendering: open a preset in a view, wait for the worker's answer, write a screenshot
// (PNG or SVG) and exit; used for docs/images and by the tests.
#pragma once

#include <QJsonObject>
#include <QString>

namespace attnscope::gui {

class MainWindow;

// Pumps the event loop until the window has settled (nothing queued or running, the current
// view shows its answer) or timeoutMs passes. Returns true when settled.
bool waitUntilSettled(MainWindow& window, int timeoutMs = 60000);

// Parses a --size value strictly: "WxH", two decimal integers from 1 to kMaxImageSide (16384)
// each, nothing else (no signs, spaces or units). Returns an error message, empty on success.
QString parseScreenshotSize(const QString& text, int& width, int& height);

// Returns the process exit code; writes a one-line message to `message` on failure.
// Checks every argument (names, size, the output's folder) before opening a window, and writes the
// file atomically: on failure nothing is left at `file`.
int renderHeadless(const QString& preset, const QString& view, const QString& file,
                   QString* message, int width = 1200, int height = 800, bool dark = false);

// A model on a text instead of a preset: `attnscope --model DIR --text-file F --view V
// --screenshot FILE`. A folder the model library refuses, or a text file that is missing, empty or
// not UTF-8, exits non-zero with one line.
struct ModelShot {
  QString modelDir, textFile;
  QString view = QStringLiteral("map");
  int layer = 0, head = -1;  // head -1: the view's default (the map: head 0)
  int token = -1;            // the text view's query token; -1: the last token
  QString stat;              // the atlas's statistic (head_stat_key); empty: entropy
  QJsonObject settings;      // the view's settings, as a demo's "view_settings" gives them
};
int renderModelHeadless(const ModelShot& shot, const QString& file, QString* message,
                        int width = 1200, int height = 800, bool dark = false);
// Reads a text file for the model: UTF-8, not empty. Returns an error message, empty on success.
QString readModelText(const QString& path, QString& text);

}  // namespace attnscope::gui
