// Fuzz harness: the GUI's parsePreset (app/gui/presets.hpp; docs/fuzzing.md), the reader of the
// guided demos in resources/presets/. The input is one preset document.
// Properties: parsePreset never throws (it returns an error message); when it refuses, `out` is
// untouched; an accepted preset has a name, lists its own view among its views and carries a
// workload that Workload::fromJson accepts; written back as a preset document (every field in its
// parsed form) it parses to the same preset.
#include <QByteArray>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "presets.hpp"

using namespace attnscope;
using attnscope::fuzz::finding;
using attnscope::fuzz::require;
using attnscope::gui::Preset;

namespace {

std::string preset_difference(const Preset& a, const Preset& b) {
  if (a.name != b.name) return "name";
  if (a.title != b.title) return "title";
  if (a.summary != b.summary) return "summary";
  if (a.view != b.view) return "view";
  if (a.views != b.views) return "views";
  if (a.workload != b.workload) return "workload";
  if (a.viewSettings != b.viewSettings) return "view_settings";
  if (a.html != b.html) return "explanation";
  if (a.order != b.order) return "order";
  return {};
}

Preset sentinel() {
  Preset p;
  p.name = QStringLiteral("sentinel");
  p.title = QStringLiteral("sentinel title");
  p.view = gui::ViewKind::kv;
  p.views = {gui::ViewKind::kv, gui::ViewKind::learn};
  p.workload = QJsonObject{{"variant", "swa"}};
  p.html = QStringLiteral("<p>sentinel</p>");
  p.order = -7;
  return p;
}

QString parse(const QByteArray& json, Preset& out, const char* what) {
  try {
    return gui::parsePreset(json, out);
  } catch (...) {
    finding(std::string("parsePreset threw ") + fuzz::current_exception_type() + " " + what);
  }
}

// The preset as a document in the bundled files' format.
QByteArray write(const Preset& p) {
  QJsonArray views;
  for (gui::ViewKind v : p.views) views.append(gui::viewName(v));
  const QJsonObject o{{"name", p.name},
                      {"title", p.title},
                      {"summary", p.summary},
                      {"view", gui::viewName(p.view)},
                      {"views", views},
                      {"workload", p.workload},
                      {"view_settings", p.viewSettings},
                      {"explanation", p.html},
                      {"order", p.order}};
  return QJsonDocument(o).toJson();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const QByteArray bytes(reinterpret_cast<const char*>(data), static_cast<qsizetype>(size));
  const Preset untouched = sentinel();
  Preset p = untouched;
  if (!parse(bytes, p, "on the input").isEmpty()) {
    const std::string d = preset_difference(p, untouched);
    require(d.empty(), "a refused parsePreset changed its output (" + d + ")");
    return 0;
  }
  require(!p.name.isEmpty(), "an accepted preset has no name");
  require(p.views.contains(p.view), "an accepted preset does not list its own view");
  gui::Workload w;
  require(gui::Workload::fromJson(p.workload, w).isEmpty(),
          "an accepted preset's workload is refused by Workload::fromJson");

  const QByteArray text = write(p);
  Preset back = untouched;
  const QString e = parse(text, back, "on its own output");
  require(e.isEmpty(), "parsePreset refused the preset written back: " + e.toStdString());
  const std::string d = preset_difference(p, back);
  require(d.empty(), "preset -> JSON -> parsePreset changed " + d);
  return 0;
}
