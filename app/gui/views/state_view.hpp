// The view of a variant with a recurrent state (VariantInfo::has_state): its implicit attention,
// its state over time and its gates. The variant that has one implements it in its own files
// (views/gated_delta_view.cpp, gated_delta_analysis.cpp), so the window and the worker reach it
// without naming that variant.
#pragma once

#include <QString>

class QWidget;

namespace attnscope::gui {

class ViewBase;

ViewBase* makeStateView(QWidget* parent = nullptr);
// Its name for --view, presets and exports.
QString stateViewName();

}  // namespace attnscope::gui
