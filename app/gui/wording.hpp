// What the GUI says in words of the GUI. The engine's messages are written for the command line
// ("use --precision fp32") and print sizes with a stream's default precision ("2.03e+03 GiB"); the
// explorer shows them through guiWording, so a message names what to choose in the window.
#pragma once

#include <QString>

namespace attnscope::gui {

// `message` with command-line flags replaced by the panel's controls and sizes in scientific
// notation rewritten with binary prefixes (humanBytes). Text it does not recognise is unchanged.
QString guiWording(const QString& message);

// The tooltip of a backend this machine cannot use. For cuda, a missing device or driver means
// "no NVIDIA GPU was found": the CUDA runtime's own words ("driver version is insufficient")
// would send someone without a GPU to update a driver.
QString backendUnavailableTip(const QString& backend, const QString& whyNot);

}  // namespace attnscope::gui
