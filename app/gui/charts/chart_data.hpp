// What a benchmark chart shows, derived from a SweepResult without any drawing: the series (one per
// variant x backend), their values in the chart's unit, min-max whiskers, titles and footer lines.
// Pure and deterministic, so the GUI, `attnscope chart` and the tests all start from the same data.
#pragma once

#include <QString>
#include <QStringList>
#include <QVector>
#include <cstdint>

#include "attnscope/sweep.hpp"

namespace attnscope::gui::charts {

// time: median ms per run; throughput: tokens/s; gflops: GFLOP/s; gbps: GB/s; speedup: dense
// median / variant median at the same L and backend; kv: KV-cache bytes held after L tokens.
enum class ChartKind { time, throughput, gflops, gbps, speedup, kv };
enum class ChartStyle { line, bar };

const QVector<ChartKind>& allChartKinds();
QString chartKindName(ChartKind kind);   // "time", "throughput", … (the --kind spelling)
QString chartKindTitle(ChartKind kind);  // "Time", "Throughput", … (for pickers)
bool chartKindFromName(const QString& name, ChartKind& out);
QString chartKindNames();  // "time, throughput, gflops, gbps, speedup, kv"
QString chartStyleName(ChartStyle style);
bool chartStyleFromName(const QString& name, ChartStyle& out);

struct ChartOptions {
  ChartKind kind = ChartKind::time;
  ChartStyle style = ChartStyle::line;
  QString title;      // empty: a title made from the kind and the mode
  QString emptyText;  // shown for a sweep without points (default: says so)
};

struct DataPoint {
  int64_t seqLen = 0;
  double value = 0;
  // Spread of the timed repetitions in the chart's unit (low <= value <= high); equal to value
  // when there is none (one repetition, or a kind without spread: speedup, kv).
  double low = 0, high = 0;
};

struct DataSeries {
  QString name;  // legend text: "dense", or "dense · cpu" when several backends ran
  QString variant, backend;
  int variantIndex = 0;       // order of first appearance in the sweep (colour)
  int backendIndex = 0;       // order of first appearance in the sweep (dash / shade)
  QVector<DataPoint> points;  // ascending seqLen
};

struct ChartData {
  ChartKind kind = ChartKind::time;
  ChartStyle style = ChartStyle::line;
  QString title, xTitle, yTitle;
  QStringList footer;        // one or two lines: the configuration; machine, devices, date
  QVector<int64_t> seqLens;  // every L with at least one value, ascending
  QVector<DataSeries> series;
  bool logY = true;          // line style: log-log except speedup
  bool baselineOne = false;  // speedup: a reference line at 1x
  int skipped = 0;           // points that did not run (not shown)
};

// Fills `out` from the sweep; returns an error message (empty sweep, no finished point, speedup
// without a dense baseline or without another variant), empty on success.
QString buildChartData(const SweepResult& sweep, const ChartOptions& options, ChartData& out);

// The value of one point in the chart's unit and its spread; false when the point has none.
bool pointValue(const SweepPoint& p, ChartKind kind, double& value, double& low, double& high);

// Speedup of every finished point over dense at the same L and backend (NaN when there is no
// finished dense point to compare with), in points order.
QVector<double> speedups(const SweepResult& sweep);

// "B=1 H=8 Hkv=8 Dk=64 Dv=64 causal window=256 …": the shape the sweep shared.
QString describeSweepShape(const SweepResult& sweep);

}  // namespace attnscope::gui::charts
