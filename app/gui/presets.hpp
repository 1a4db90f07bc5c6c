// Presets: the guided demos bundled from resources/presets/*.json. Each names a workload, the view
// to open (and the views it uses), per-view settings and an HTML explanation with formulas.
#pragma once

#include <QJsonObject>
#include <QList>
#include <QString>
#include <QStringList>

#include "view_result.hpp"
#include "workload.hpp"

namespace attnscope::gui {

struct Preset {
  QString name;   // command-line name: "mha-gqa-mqa"
  QString title;  // menu text
  QString summary;
  ViewKind view = ViewKind::map;
  QList<ViewKind> views;  // every view the demo is meant to be seen in
  QJsonObject workload;
  QJsonObject viewSettings;  // {"map": {...}, "compare": {...}}
  QString html;
  int order = 0;
  // Runs on the user's own model ("needs_model": true): its workload is the model that is open,
  // and without one its views offer the folder picker.
  bool needsModel = false;
};

// All bundled presets in display order; parse errors are reported once on stderr and skipped.
const QList<Preset>& presets();
const Preset* findPreset(const QString& name);
QStringList presetNames();
// Parses one preset document; returns an error message (empty on success).
QString parsePreset(const QByteArray& json, Preset& out);

}  // namespace attnscope::gui
