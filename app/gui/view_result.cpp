// Names of views and compare pairs: the spelling used by --view, presets and exports.
// Kept next to the types so the command line, the JSON and the menus cannot disagree.
#include "view_result.hpp"

#include <QObject>

namespace attnscope::gui {

const QVector<ViewKind>& allViews() {
  static const QVector<ViewKind> views = {
      ViewKind::map,   ViewKind::blocks, ViewKind::compare,    ViewKind::deltanet,
      ViewKind::learn, ViewKind::kv,     ViewKind::throughput, ViewKind::benchmark};
  return views;
}

QString viewName(ViewKind v) {
  switch (v) {
    case ViewKind::map:
      return QStringLiteral("map");
    case ViewKind::blocks:
      return QStringLiteral("blocks");
    case ViewKind::compare:
      return QStringLiteral("compare");
    case ViewKind::deltanet:
      return QStringLiteral("deltanet");
    case ViewKind::learn:
      return QStringLiteral("learn");
    case ViewKind::kv:
      return QStringLiteral("kv");
    case ViewKind::throughput:
      return QStringLiteral("throughput");
    case ViewKind::benchmark:
      return QStringLiteral("benchmark");
  }
  return {};
}

bool viewFromName(const QString& name, ViewKind& out) {
  for (ViewKind v : allViews()) {
    if (viewName(v) == name) {
      out = v;
      return true;
    }
  }
  return false;
}

QString comparePairName(ComparePair p) {
  switch (p) {
    case ComparePair::dense_vs_moba:
      return QStringLiteral("dense_vs_moba");
    case ComparePair::dense_vs_swa:
      return QStringLiteral("dense_vs_swa");
    case ComparePair::mha_vs_gqa:
      return QStringLiteral("mha_vs_gqa");
    case ComparePair::causal_vs_bidirectional:
      return QStringLiteral("causal_vs_bidirectional");
  }
  return {};
}

QString comparePairTitle(ComparePair p) {
  switch (p) {
    case ComparePair::dense_vs_moba:
      return QObject::tr("dense vs MoBA");
    case ComparePair::dense_vs_swa:
      return QObject::tr("dense vs sliding window");
    case ComparePair::mha_vs_gqa:
      return QObject::tr("MHA vs GQA/MQA");
    case ComparePair::causal_vs_bidirectional:
      return QObject::tr("bidirectional vs causal");
  }
  return {};
}

}  // namespace attnscope::gui
