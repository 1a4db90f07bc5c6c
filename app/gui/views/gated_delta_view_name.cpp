// The state view's name for --view, presets and exports ("deltanet", as files saved before the
// view was reached by capability spell it). Qt Core only: the workload and preset readers, which
// the fuzz harnesses build without Widgets, need it.
#include "views/state_view.hpp"

namespace attnscope::gui {

QString stateViewName() {
  return QStringLiteral("deltanet");
}

}  // namespace attnscope::gui
