// ThroughputView: a prefill or decode loop on the chosen backend, running on a worker thread, with
// live tokens/s, GFLOP/s and GB/s over the last minute, and a roofline: the device's measured peaks
// (device_peak, calibrated on the worker) as the roofs (DRAM, and the last-level cache for runs
// whose working set fits in it), the running loop as a point that moves, and earlier runs as faded
// points labelled by variant. A point above its roof is a measurement problem: drawn apart,
// flagged, and the roof re-measured once. docs/roofline.md says how the peaks are measured.
#pragma once

#include <QComboBox>
#include <QLabel>
#include <QMap>
#include <QPushButton>
#include <QSet>
#include <QSpinBox>
#include <optional>

#include "attnscope/calibrate.hpp"
#include "live/throughput_runner.hpp"
#include "view_base.hpp"

class QChart;
class QLineSeries;
class QScatterSeries;
class QValueAxis;
class QLogValueAxis;

namespace attnscope::gui {

// A point on the roofline: one run's aggregate.
struct RooflinePoint {
  QString label;  // "dense · prefill"
  double intensity = 0, gflops = 0;
  double workingSetBytes = 0;  // bytes one run (decode: one step) moves by the cost model
  QString backend;             // whose peak it is placed under
};

class ThroughputView : public LiveView {
  Q_OBJECT

 public:
  explicit ThroughputView(QWidget* parent = nullptr);
  ~ThroughputView() override;

  ViewKind kind() const override { return ViewKind::throughput; }
  void setWorkload(const Workload& w) override;
  void applySettings(const QJsonObject& s) override;
  QJsonObject exportData() const override;
  QString exportCsv() const override;
  QString prepareHeadless(int timeoutMs) override;

  ThroughputConfig config() const;
  ThroughputRunner& runner() { return runner_; }
  void start();
  void stop();
  void recalibrate();
  // The DRAM roof at an intensity for the current backend's peak; nullopt before calibration.
  std::optional<double> roofAt(double intensity) const;
  // A point against the roof that applies to its working set; nullopt before calibration.
  std::optional<RoofPlacement> placementOf(const RooflinePoint& point) const;
  // Whether a point above its roof made the view re-measure this backend's roof (once a session).
  bool recheckRequested(const QString& backend) const { return rechecked_.contains(backend); }
  QChart* roofChart() const { return roofChart_; }
  QScatterSeries* aboveRoofSeries() const { return aboveSeries_; }
  std::optional<DevicePeak> peak() const;
  // The running (or last) run's aggregate point, and the earlier runs.
  std::optional<RooflinePoint> currentPoint() const { return current_; }
  const QVector<RooflinePoint>& history() const { return history_; }
  QString errorText() const { return error_->text(); }
  QString calibrationText() const { return calibration_->text(); }

  QComboBox* modeCombo() const { return mode_; }
  QComboBox* backendCombo() const { return backend_; }
  QPushButton* startButton() const { return start_; }
  QPushButton* stopButton() const { return stop_; }
  QPushButton* recalibrateButton() const { return recalibrate_; }

 protected:
  void showEvent(QShowEvent* e) override;
  void changeEvent(QEvent* e) override;

 private:
  void onSample(const ThroughputSample& s);
  void onStopped(bool cancelled, const QString& error);
  void updateRoof();
  void updatePoints();
  void updateButtons();
  void restyle();
  void recheckIfAbove();
  QString runLabel() const;
  QString placementText(const RooflinePoint& r) const;

  QComboBox* mode_;
  QComboBox* backend_;
  QSpinBox* decodeTokens_;
  QPushButton* start_;
  QPushButton* stop_;
  QPushButton* recalibrate_;
  QLabel* calibration_;
  QLabel* status_;
  QLabel* error_;
  QLabel* roofPercent_;

  struct Live {
    QChart* chart = nullptr;
    QLineSeries* series = nullptr;
    QValueAxis* x = nullptr;
    QValueAxis* y = nullptr;
  };
  Live tokens_, gflops_, gbps_;
  QChart* roofChart_;
  QLogValueAxis* roofX_;
  QLogValueAxis* roofY_;
  QLineSeries* roof_;
  QLineSeries* cacheRoof_;
  QScatterSeries* currentSeries_;
  QScatterSeries* aboveSeries_;  // points above their roof: measurement problems
  QMap<QString, QScatterSeries*> historySeries_;

  ThroughputRunner runner_;
  ThroughputConfig runConfig_;
  QString runLabel_;
  double runFlops_ = 0, runBytes_ = 0, runSeconds_ = 0;
  qint64 runRuns_ = 0;
  QSet<QString> rechecked_;  // backends whose roof a point above it made re-measure
  std::optional<RooflinePoint> current_;
  QVector<RooflinePoint> history_;
  bool shownOnce_ = false;
  QString lastBackend_;
};

}  // namespace attnscope::gui
