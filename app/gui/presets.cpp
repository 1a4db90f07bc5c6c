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

namespace {

QString jsonKind(const QJsonValue& v) {
  switch (v.type()) {
    case QJsonValue::Null:
      return QStringLiteral("null");
    case QJsonValue::Bool:
      return QStringLiteral("a boolean");
    case QJsonValue::Double:
      return QStringLiteral("a number");
    case QJsonValue::String:
      return QStringLiteral("a string");
    case QJsonValue::Array:
      return QStringLiteral("an array");
    case QJsonValue::Object:
      return QStringLiteral("an object");
    case QJsonValue::Undefined:
      break;
  }
  return QStringLiteral("nothing");
}

}  // namespace

QString parsePreset(const QByteArray& json, Preset& out) {
  QJsonParseError err;
  const QJsonDocument doc = QJsonDocument::fromJson(json, &err);
  if (err.error != QJsonParseError::NoError) {
    return QStringLiteral("invalid JSON at offset %1: %2").arg(err.offset).arg(err.errorString());
  }
  if (!doc.isObject()) {
    return QStringLiteral("expected a JSON object, got %1")
        .arg(doc.isArray() ? QStringLiteral("an array") : QStringLiteral("nothing"));
  }
  const QJsonObject o = doc.object();
  Preset p;
  // Optional fields may be absent, but one that is present must have its type.
  const auto wrongType = [&o](const char* key, QJsonValue::Type type, const char* what) {
    const QJsonValue v = o.value(QLatin1String(key));
    if (v.isUndefined() || v.type() == type) return QString();
    return QStringLiteral("'%1' must be %2, got %3")
        .arg(QLatin1String(key), QLatin1String(what), jsonKind(v));
  };
  for (const QString& e : {wrongType("name", QJsonValue::String, "a string"),
                           wrongType("title", QJsonValue::String, "a string"),
                           wrongType("summary", QJsonValue::String, "a string"),
                           wrongType("order", QJsonValue::Double, "a number"),
                           wrongType("view", QJsonValue::String, "a string"),
                           wrongType("views", QJsonValue::Array, "an array"),
                           wrongType("workload", QJsonValue::Object, "an object"),
                           wrongType("view_settings", QJsonValue::Object, "an object"),
                           wrongType("needs_model", QJsonValue::Bool, "true or false")}) {
    if (!e.isEmpty()) {
      const QString name = o.value("name").toString();
      return name.isEmpty() ? e : QStringLiteral("preset %1: %2").arg(name, e);
    }
  }
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
  p.needsModel = o.value("needs_model").toBool(false);
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
