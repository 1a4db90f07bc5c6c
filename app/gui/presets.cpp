// Preset loading from the compiled-in resources (qt_add_resources): the JSON files are the single
// source of the demos, so adding a demo is adding a file.
#include "presets.hpp"

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <algorithm>
#include <cstdio>

namespace attnscope::gui {

QString parsePreset(const QByteArray& json, Preset& out) {
  QJsonParseError err;
  const QJsonDocument doc = QJsonDocument::fromJson(json, &err);
  if (!doc.isObject()) return QStringLiteral("invalid JSON: %1").arg(err.errorString());
  const QJsonObject o = doc.object();
  Preset p;
  p.name = o.value("name").toString();
  p.title = o.value("title").toString(p.name);
  p.summary = o.value("summary").toString();
  p.order = o.value("order").toInt(100);
  if (p.name.isEmpty()) return QStringLiteral("preset has no \"name\"");
  if (!viewFromName(o.value("view").toString("map"), p.view)) {
    return QStringLiteral("preset %1: unknown view '%2'").arg(p.name, o.value("view").toString());
  }
  for (const QJsonValue& v : o.value("views").toArray()) {
    ViewKind k;
    if (!viewFromName(v.toString(), k)) {
      return QStringLiteral("preset %1: unknown view '%2'").arg(p.name, v.toString());
    }
    p.views.append(k);
  }
  if (!p.views.contains(p.view)) p.views.prepend(p.view);
  p.workload = o.value("workload").toObject();
  Workload probe;
  if (QString e = Workload::fromJson(p.workload, probe); !e.isEmpty()) {
    return QStringLiteral("preset %1: %2").arg(p.name, e);
  }
  p.viewSettings = o.value("view_settings").toObject();
  const QJsonValue text = o.value("explanation");
  if (text.isArray()) {
    QStringList parts;
    for (const QJsonValue& v : text.toArray()) parts.append(v.toString());
    p.html = parts.join('\n');
  } else {
    p.html = text.toString();
  }
  out = p;
  return {};
}

const QList<Preset>& presets() {
  static const QList<Preset> all = [] {
    QList<Preset> list;
    const QDir dir(QStringLiteral(":/presets"));
    for (const QString& file : dir.entryList({QStringLiteral("*.json")}, QDir::Files)) {
      QFile f(dir.filePath(file));
      if (!f.open(QIODevice::ReadOnly)) continue;
      Preset p;
      if (QString e = parsePreset(f.readAll(), p); !e.isEmpty()) {
        std::fprintf(stderr, "attnscope: skipping preset %s: %s\n", qPrintable(file),
                     qPrintable(e));
        continue;
      }
      list.append(p);
    }
    std::stable_sort(list.begin(), list.end(),
                     [](const Preset& a, const Preset& b) { return a.order < b.order; });
    return list;
  }();
  return all;
}

const Preset* findPreset(const QString& name) {
  for (const Preset& p : presets()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

QStringList presetNames() {
  QStringList names;
  for (const Preset& p : presets()) names.append(p.name);
  return names;
}

}  // namespace attnscope::gui
