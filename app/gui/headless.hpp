// Headless rendering: open a preset in a view, wait for the worker's answer, write a screenshot
// (PNG or SVG) and exit; used for docs/images and by the tests.
#pragma once

#include <QString>

namespace attnscope::gui {

class MainWindow;

// Pumps the event loop until the window has settled (nothing queued or running, the current
// view shows its answer) or timeoutMs passes. Returns true when settled.
bool waitUntilSettled(MainWindow& window, int timeoutMs = 60000);

// Returns the process exit code; writes a one-line message to `message` on failure.
int renderHeadless(const QString& preset, const QString& view, const QString& file,
                   QString* message, int width = 1200, int height = 800, bool dark = false);

}  // namespace attnscope::gui
