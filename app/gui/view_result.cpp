// Names of views and compare pairs: the spelling used by --view, presets and exports.
// Kept next to the types so the command line, the JSON and the menus cannot disagree.
#include "view_result.hpp"

#include <QObject>
#include <algorithm>

#include "attnscope/registry.hpp"
#include "views/state_view.hpp"

namespace attnscope::gui {

bool showsSelection(const VariantInfo& v) {
  return v.has_selection() || std::find(v.extra_outputs.begin(), v.extra_outputs.end(),
                                        "selection") != v.extra_outputs.end();
}

const QVector<ViewKind>& allViews() {
  // Tab order: the map, then the views of a model on a text, then the rest.
  static const QVector<ViewKind> views = {
      ViewKind::map,    ViewKind::text,       ViewKind::atlas,    ViewKind::whatif,
      ViewKind::blocks, ViewKind::compare,    ViewKind::state,    ViewKind::learn,
      ViewKind::kv,     ViewKind::throughput, ViewKind::benchmark};
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
    case ViewKind::state:
      return stateViewName();
    case ViewKind::learn:
      return QStringLiteral("learn");
    case ViewKind::kv:
      return QStringLiteral("kv");
    case ViewKind::throughput:
      return QStringLiteral("throughput");
    case ViewKind::benchmark:
      return QStringLiteral("benchmark");
    case ViewKind::text:
      return QStringLiteral("text");
    case ViewKind::atlas:
      return QStringLiteral("atlas");
    case ViewKind::whatif:
      return QStringLiteral("whatif");
  }
  return {};
}

ViewResultPtr withoutModel(const ViewResultPtr& r) {
  if (!r || !r->workload.model) return r;
  auto s = std::make_shared<ViewResult>(*r);
  // A file name no loaded file has (and no inputs): its run key matches no workload to come.
  s->workload.file = QObject::tr("(closed model %1, text sha256 %2)")
                         .arg(r->workload.model->dir,
                              r->workload.text ? r->workload.text->sha256 : QStringLiteral("-"));
  s->workload.model.reset();
  s->workload.text.reset();
  s->runResult.reset();
  return s;
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

namespace {

const QString kDenseVs = QStringLiteral("dense_vs_");

QString qs(std::string_view s) {
  return QString::fromUtf8(s.data(), static_cast<qsizetype>(s.size()));
}

// Variants that attend to a subset of dense attention's keys, so that B's map is A's renormalized:
// block selections first (the view was made for their recall), then windows.
std::vector<const VariantInfo*> keySubsetVariants() {
  std::vector<const VariantInfo*> out;
  for (bool selection : {true, false}) {
    for (const VariantInfo& v : variants()) {
      if (v.map_kind != MapKind::softmax) continue;
      if (selection ? v.has_selection() : (!v.has_selection() && v.mask != nullptr)) {
        out.push_back(&v);
      }
    }
  }
  return out;
}

}  // namespace

const QVector<ComparePair>& comparePairs() {
  static const QVector<ComparePair> pairs = [] {
    QVector<ComparePair> out;
    for (const VariantInfo* v : keySubsetVariants()) out << kDenseVs + qs(v->name);
    for (const VariantInfo& v : variants()) {
      if (v.sparse_of) out << qs(variant_info(*v.sparse_of).name) + "_vs_" + qs(v.name);
    }
    out << QStringLiteral("mha_vs_gqa") << QStringLiteral("causal_vs_bidirectional");
    return out;
  }();
  return pairs;
}

const VariantInfo* comparePairVariant(const ComparePair& p) {
  if (!p.startsWith(kDenseVs) || !comparePairs().contains(p)) return nullptr;
  const VariantInfo* v = find_variant(p.mid(kDenseVs.size()).toStdString());
  const auto subset = keySubsetVariants();  // not a sparse variant's own pair ("dense_vs_nsa")
  return std::find(subset.begin(), subset.end(), v) != subset.end() ? v : nullptr;
}

const VariantInfo* sparsePairVariant(const ComparePair& p) {
  if (!comparePairs().contains(p)) return nullptr;
  for (const VariantInfo& v : variants()) {
    if (v.sparse_of && p == qs(variant_info(*v.sparse_of).name) + "_vs_" + qs(v.name)) return &v;
  }
  return nullptr;
}

QString comparePairTitle(const ComparePair& p) {
  if (const VariantInfo* v = comparePairVariant(p)) {
    return QObject::tr("dense vs %1").arg(midSentence(v->short_title));
  }
  if (const VariantInfo* v = sparsePairVariant(p)) {
    return QObject::tr("%1 vs %2")
        .arg(midSentence(variant_info(*v->sparse_of).short_title), midSentence(v->short_title));
  }
  if (p == QLatin1String("mha_vs_gqa")) return QObject::tr("MHA vs GQA/MQA");
  if (p == QLatin1String("causal_vs_bidirectional")) return QObject::tr("bidirectional vs causal");
  return p;
}

}  // namespace attnscope::gui
