// BenchmarkView: benchmark sweeps (variants x sequence lengths x backends, prefill or decode) run
// by the engine's run_sweep on a worker thread, with progress and cancel; the points appear in the
// chart and table as they finish. The chart is a charts::SweepChart, the very object the exports
// and `attnscope chart` render, so what is on screen is what is written.
#pragma once

#include <QCheckBox>
#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QList>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <chrono>

#include "attnscope/sweep.hpp"
#include "charts/sweep_chart.hpp"
#include "view_base.hpp"
#include "worker.hpp"

class QGraphicsView;

namespace attnscope::gui {

class BenchmarkView : public LiveView {
  Q_OBJECT

 public:
  explicit BenchmarkView(QWidget* parent = nullptr);
  ~BenchmarkView() override;

  ViewKind kind() const override { return ViewKind::benchmark; }
  void setWorkload(const Workload& w) override;
  void applySettings(const QJsonObject& s) override;
  QJsonObject exportData() const override;  // the sweep as sweep_to_json writes it
  QString exportCsv() const override;
  QWidget* figure() override;

  // The sweep's parameters (tests and presets set them like a user would).
  QStringList selectedVariants() const;
  void setSelectedVariants(const QStringList& names);
  QStringList selectedBackends() const;
  void setSelectedBackends(const QStringList& names);
  void setSeqLens(const QString& text);  // "512, 1024, 2048"
  void setMode(SweepMode mode);
  void setRepetitions(int reps);
  // The configuration the Run button would start, or an error message (bad length list, nothing
  // selected).
  QString buildConfig(SweepConfig& out) const;

  // Starts a sweep on the worker thread; returns an error message when it cannot start.
  QString startSweep();
  void cancelSweep();
  bool running() const { return worker_.busy(); }
  const SweepResult& sweep() const { return sweep_; }
  QString status() const { return status_->text(); }

  void setChartOptions(const charts::ChartOptions& options);
  const charts::SweepChart& chart() const { return chart_; }
  // Exports of what the view shows; each returns an error message, empty on success.
  QString exportChart(const QString& path, int dpi = 144) const;
  QString exportSweepData(const QString& path) const;
  // Loads a sweep JSON file (from `attnscope-cli bench` or an earlier export) into the view.
  QString openSweep(const QString& path);

  QPushButton* runButton() const { return run_; }
  QCheckBox* keepPreviousBox() const { return keep_; }
  QTableWidget* table() const { return table_; }
  QPushButton* cancelButton() const { return cancel_; }

 public slots:
  void exportChartDialog();
  void exportDataDialog();
  void openSweepDialog();

 signals:
  void pointAdded(int points);
  void sweepFinished(bool cancelled);
  void sweepFailed(const QString& message);

 private:
  void onProgress(double fraction);
  void onPoint(const SweepPoint& point);
  void onFinished(const SweepResult& result);
  void onFailed(const QString& message);
  void showRunning();
  void refresh();
  void refreshTable();
  void updateShapeLabel();
  void setStatus(const QString& text, bool error = false);
  // Starts sweep_ for `config`: empty, or holding the previous points the new sweep does not
  // measure again (Keep previous points, same mode and shape). Returns a note for the status.
  QString keepPrevious(const SweepConfig& config);

  std::chrono::steady_clock::time_point started_{};

  SweepResult sweep_;
  charts::SweepChart chart_;

  QList<QCheckBox*> variantBoxes_;
  QList<QCheckBox*> backendBoxes_;
  QLineEdit* lengths_;
  QComboBox* mode_;
  QSpinBox* reps_;
  QLabel* shape_;
  QPushButton* run_;
  QCheckBox* keep_;
  std::vector<SweepPoint> kept_;  // the previous points a running sweep adds to
  QPushButton* cancel_;
  QProgressBar* progress_;
  QLabel* status_;
  QComboBox* kind_;
  QComboBox* style_;
  QGraphicsView* canvas_;
  QTableWidget* table_;
  GuiWorker worker_{QStringLiteral("attnscope-sweep")};
};

}  // namespace attnscope::gui
