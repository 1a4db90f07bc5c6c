// KvCacheView: how big the KV cache gets. Top: cache bytes per token of context and the whole
// cache against the context length (1K..1M tokens, log-log) for every variant of the registry at
// the workload's shape or at a real model's (presets with their sources), from cost_of. Bottom: a
// live decode through the engine's PagedKvCache on a worker thread, its page map and counters
// polled ten times a second.
#pragma once

#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QPointF>
#include <QPushButton>
#include <QSpinBox>
#include <QTimer>
#include <QVector>
#include <optional>

#include "live/live_decode.hpp"
#include "live/model_presets.hpp"
#include "view_base.hpp"

class QChart;
class QChartView;
class QLogValueAxis;

namespace attnscope::gui {

class PageMapWidget;

// One plotted curve: the whole-cache bytes and the bytes per token of context at each length.
struct KvCurve {
  QString name;
  bool model = false;  // the model as configured (hybrid mixes), not one variant
  VariantId variant = VariantId::dense;
  int layers = 1;
  AttentionProblem problem;  // one layer (for a model curve: its primary group)
  double valuesPerTokenPerLayer = 0, bytesPerToken = 0;  // cost_of's, x layers for bytes
  QVector<QPointF> total;                                // (tokens, cache bytes)
  QVector<QPointF> perToken;                             // (tokens, cache bytes / tokens)
};

class KvCacheView : public LiveView {
  Q_OBJECT

 public:
  explicit KvCacheView(QWidget* parent = nullptr);
  ~KvCacheView() override;

  ViewKind kind() const override { return ViewKind::kv; }
  void setWorkload(const Workload& w) override;
  void applySettings(const QJsonObject& s) override;
  QJsonObject exportData() const override;
  QString exportCsv() const override;
  QString prepareHeadless(int timeoutMs) override;

  // The curves as plotted (tests compare them with cost_of).
  const QVector<KvCurve>& curves() const { return curves_; }
  int elementBytes() const;
  const ModelPreset* model() const;  // nullptr: the workload's shape, one layer
  // The workload's model as a preset (the combo's "this model" entry), when it has one.
  const std::optional<ModelPreset>& thisModel() const { return thisModel_; }
  // The context length marked on both charts (the picked model's max_positions), 0 when none.
  int64_t markedContext() const;

  // Live decode.
  LiveDecodeConfig liveConfig(QString* error = nullptr) const;
  LiveDecodeRunner& runner() { return runner_; }
  bool startLive();  // false (and the message shown) when the configuration is invalid
  void stopLive();
  const std::optional<KvSnapshot>& lastSnapshot() const { return snapshot_; }
  int snapshotsTaken() const { return snapshots_; }
  int auditFailures() const { return auditFailures_; }
  QString liveError() const { return liveError_->text(); }

  // Widgets, for tests and automation.
  QComboBox* modelCombo() const { return model_; }
  QComboBox* elementCombo() const { return element_; }
  QComboBox* backendCombo() const { return backend_; }
  QLineEdit* promptsEdit() const { return prompts_; }
  QSpinBox* targetSpin() const { return target_; }
  QSpinBox* pageSizeSpin() const { return pageSize_; }
  QComboBox* pacingCombo() const { return pacing_; }
  QPushButton* startButton() const { return start_; }
  QPushButton* stopButton() const { return stop_; }
  PageMapWidget* pageMap() const { return pageMap_; }

 protected:
  void changeEvent(QEvent* e) override;

 private:
  void rebuildCurves();
  void syncThisModel(const Workload& w);
  void followModelElement();
  void restyle();
  void poll();
  void updateCounters();
  void updateButtons();
  void updatePageSizeText();

  // Curves.
  QComboBox* model_;
  QComboBox* element_;
  QLabel* source_;
  QLabel* summary_;
  QChart* perTokenChart_;
  QChart* totalChart_;
  QVector<KvCurve> curves_;
  std::optional<ModelPreset> thisModel_;

  // Live decode.
  QComboBox* backend_;
  QLineEdit* prompts_;
  QSpinBox* target_;
  QSpinBox* pageSize_;
  QComboBox* pacing_;
  QPushButton* start_;
  QPushButton* stop_;
  QLabel* status_;
  QLabel* counters_;
  QLabel* liveError_;
  PageMapWidget* pageMap_;
  QTimer pollTimer_;
  LiveDecodeRunner runner_;
  LiveDecodeConfig runningConfig_;
  std::optional<KvSnapshot> snapshot_;
  int snapshots_ = 0;
  int auditFailures_ = 0;
  QString lastBackend_;
};

}  // namespace attnscope::gui
