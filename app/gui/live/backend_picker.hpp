// The backend pickers of the live views: the registry's backends in preference order, the ones this
// machine cannot use disabled with the reason as their tooltip (as in the workload panel).
#pragma once

#include <QComboBox>
#include <QSignalBlocker>
#include <QStandardItemModel>

#include "attnscope/registry.hpp"
#include "wording.hpp"
#include "workload.hpp"

namespace attnscope::gui {

// The preferred backend's name when `name` is empty, else `name`.
inline QString liveBackendName(const QString& name) {
  return name.isEmpty() ? preferredBackend() : name;
}

inline void fillBackendCombo(QComboBox* combo) {
  registerOptionalBackends();
  const auto qs = [](std::string_view v) {
    return QString::fromUtf8(v.data(), static_cast<qsizetype>(v.size()));
  };
  const QSignalBlocker block(combo);
  auto* model = new QStandardItemModel(combo);
  for (const BackendInfo& b : backends()) {
    const Support s = b.available();
    auto* item =
        new QStandardItem(s.ok ? qs(b.name) : QObject::tr("%1 (unavailable)").arg(qs(b.name)));
    item->setData(qs(b.name), Qt::UserRole);
    item->setToolTip(s.ok ? qs(b.summary)
                          : backendUnavailableTip(qs(b.name), QString::fromStdString(s.why_not)));
    if (!s.ok) item->setFlags(item->flags() & ~(Qt::ItemIsEnabled | Qt::ItemIsSelectable));
    model->appendRow(item);
  }
  combo->setModel(model);
  const int preferred = combo->findData(preferredBackend(), Qt::UserRole);
  combo->setCurrentIndex(std::max(0, preferred));
}

// Selects `name` when it is listed and enabled; emits nothing.
inline void selectBackend(QComboBox* combo, const QString& name) {
  const int i = combo->findData(name, Qt::UserRole);
  auto* model = qobject_cast<QStandardItemModel*>(combo->model());
  if (i < 0 || (model && !(model->item(i)->flags() & Qt::ItemIsEnabled))) return;
  const QSignalBlocker block(combo);
  combo->setCurrentIndex(i);
}

}  // namespace attnscope::gui
