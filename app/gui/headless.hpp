// Headless rendering: open a preset in a view, wait for the worker's answer, write a screenshot
// (PNG or SVG) and exit; used for docs/images and by the tests.
#pragma once

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

}  // namespace attnscope::gui
