// Sweep -> chart data. Series follow the sweep's own order (variant-major, as run_sweep runs), so
// the same sweep always gives the same series, colours and legend.
#include "chart_data.hpp"

#include <QObject>
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <utility>

#include "attnscope/registry.hpp"

namespace attnscope::gui::charts {
namespace {

QString qs(const std::string& s) {
  return QString::fromStdString(s);
}

bool finished(const SweepPoint& p) {
  return p.skipped.empty() && p.median_s > 0;
}

const std::string& denseName() {
  static const std::string name(variant_info(VariantId::dense).name);
  return name;
}

QString defaultTitle(ChartKind kind, SweepMode mode) {
  const bool decode = mode == SweepMode::decode;
  switch (kind) {
    case ChartKind::time:
      return decode ? QObject::tr("Decode step time vs context length")
                    : QObject::tr("Prefill time vs sequence length");
    case ChartKind::throughput:
      return decode ? QObject::tr("Decode throughput vs context length")
                    : QObject::tr("Prefill throughput vs sequence length");
    case ChartKind::gflops:
      return decode ? QObject::tr("Decode compute rate vs context length")
                    : QObject::tr("Prefill compute rate vs sequence length");
    case ChartKind::gbps:
      return decode ? QObject::tr("Decode memory traffic vs context length")
                    : QObject::tr("Prefill memory traffic vs sequence length");
    case ChartKind::speedup:
      return decode ? QObject::tr("Decode speedup over dense attention")
                    : QObject::tr("Prefill speedup over dense attention");
    case ChartKind::kv:
      return QObject::tr("KV-cache size vs context length");
  }
  return {};
}

QString yTitle(ChartKind kind, SweepMode mode) {
  switch (kind) {
    case ChartKind::time:
      return mode == SweepMode::decode ? QObject::tr("median time per decode step (ms)")
                                       : QObject::tr("median time per forward pass (ms)");
    case ChartKind::throughput:
      return QObject::tr("throughput (tokens/s)");
    case ChartKind::gflops:
      return QObject::tr("compute (GFLOP/s)");
    case ChartKind::gbps:
      return QObject::tr("memory traffic (GB/s)");
    case ChartKind::speedup:
      return QObject::tr("speedup over dense (×)");
    case ChartKind::kv:
      return QObject::tr("KV cache (MiB)");
  }
  return {};
}

// Longest and shortest timed repetition (the median when the point carries no list).
std::pair<double, double> timeRange(const SweepPoint& p) {
  if (p.seconds.empty()) return {p.min_s > 0 ? p.min_s : p.median_s, p.median_s};
  const auto [lo, hi] = std::minmax_element(p.seconds.begin(), p.seconds.end());
  return {*lo, *hi};
}

}  // namespace

const QVector<ChartKind>& allChartKinds() {
  static const QVector<ChartKind> kinds = {ChartKind::time,    ChartKind::throughput,
                                           ChartKind::gflops,  ChartKind::gbps,
                                           ChartKind::speedup, ChartKind::kv};
  return kinds;
}

QString chartKindName(ChartKind kind) {
  switch (kind) {
    case ChartKind::time:
      return QStringLiteral("time");
    case ChartKind::throughput:
      return QStringLiteral("throughput");
    case ChartKind::gflops:
      return QStringLiteral("gflops");
    case ChartKind::gbps:
      return QStringLiteral("gbps");
    case ChartKind::speedup:
      return QStringLiteral("speedup");
    case ChartKind::kv:
      return QStringLiteral("kv");
  }
  return {};
}

QString chartKindTitle(ChartKind kind) {
  switch (kind) {
    case ChartKind::time:
      return QObject::tr("Time (ms)");
    case ChartKind::throughput:
      return QObject::tr("Throughput (tokens/s)");
    case ChartKind::gflops:
      return QObject::tr("Compute (GFLOP/s)");
    case ChartKind::gbps:
      return QObject::tr("Memory traffic (GB/s)");
    case ChartKind::speedup:
      return QObject::tr("Speedup over dense");
    case ChartKind::kv:
      return QObject::tr("KV-cache size");
  }
  return {};
}

bool chartKindFromName(const QString& name, ChartKind& out) {
  for (ChartKind k : allChartKinds()) {
    if (chartKindName(k) == name) {
      out = k;
      return true;
    }
  }
  return false;
}

QString chartKindNames() {
  QStringList names;
  for (ChartKind k : allChartKinds()) names.append(chartKindName(k));
  return names.join(QStringLiteral(", "));
}

QString chartStyleName(ChartStyle style) {
  return style == ChartStyle::bar ? QStringLiteral("bar") : QStringLiteral("line");
}

bool chartStyleFromName(const QString& name, ChartStyle& out) {
  if (name == QLatin1String("line")) {
    out = ChartStyle::line;
  } else if (name == QLatin1String("bar")) {
    out = ChartStyle::bar;
  } else {
    return false;
  }
  return true;
}

bool pointValue(const SweepPoint& p, ChartKind kind, double& value, double& low, double& high) {
  if (!finished(p)) return false;
  const auto [tMin, tMax] = timeRange(p);
  // Rates are work / time: the fastest repetition gives the highest rate.
  const auto rate = [&](double v) {
    value = v;
    low = tMax > 0 ? v * p.median_s / tMax : v;
    high = tMin > 0 ? v * p.median_s / tMin : v;
  };
  switch (kind) {
    case ChartKind::time:
      value = p.median_s * 1e3;
      low = tMin * 1e3;
      high = tMax * 1e3;
      break;
    case ChartKind::throughput:
      rate(p.tokens_per_s);
      break;
    case ChartKind::gflops:
      rate(p.gflops);
      break;
    case ChartKind::gbps:
      rate(p.gbps);
      break;
    case ChartKind::speedup:
      return false;  // needs the dense point too: see speedups()
    case ChartKind::kv:
      value = low = high = p.cost.kv_cache_bytes / double(1 << 20);
      break;
  }
  low = std::min(low, value);
  high = std::max(high, value);
  return std::isfinite(value) && value > 0;
}

QVector<double> speedups(const SweepResult& sweep) {
  std::map<std::pair<int64_t, std::string>, double> dense;
  for (const SweepPoint& p : sweep.points) {
    if (p.variant == denseName() && finished(p)) dense[{p.seq_len, p.backend}] = p.median_s;
  }
  QVector<double> out;
  out.reserve(qsizetype(sweep.points.size()));
  for (const SweepPoint& p : sweep.points) {
    const auto it = dense.find({p.seq_len, p.backend});
    out.append(finished(p) && it != dense.end() ? it->second / p.median_s
                                                : std::numeric_limits<double>::quiet_NaN());
  }
  return out;
}

QString describeSweepShape(const SweepResult& sweep) {
  const AttentionProblem& b = sweep.config.base;
  QStringList parts;
  parts << QStringLiteral("B=%1 H=%2 Hkv=%3 Dk=%4 Dv=%5")
               .arg(b.shape.batch)
               .arg(b.shape.heads)
               .arg(b.shape.kv_heads)
               .arg(b.shape.head_dim)
               .arg(b.shape.v_head_dim);
  if (b.causal) parts << QStringLiteral("causal");
  // The knobs of the variants that ran, in the sweep's order.
  for (const std::string& name : sweep.config.variants) {
    const VariantInfo* info = find_variant(name);
    if (!info) continue;
    AttentionProblem p = b;
    p.variant = info->id;
    const QString knobs = QString::fromStdString(describe_params(p)).trimmed();
    if (!knobs.isEmpty()) parts << knobs;
  }
  parts.removeDuplicates();
  return parts.join(QLatin1Char(' '));
}

QString buildChartData(const SweepResult& sweep, const ChartOptions& options, ChartData& out) {
  out = ChartData{};
  out.kind = options.kind;
  out.style = options.style;
  const SweepMode mode = sweep.config.mode;
  out.title = options.title.isEmpty() ? defaultTitle(options.kind, mode) : options.title;
  out.xTitle = mode == SweepMode::decode ? QObject::tr("context length L (tokens)")
                                         : QObject::tr("sequence length L (tokens)");
  out.yTitle = yTitle(options.kind, mode);
  out.logY = options.kind != ChartKind::speedup;
  out.baselineOne = options.kind == ChartKind::speedup;
  if (sweep.points.empty()) {
    return options.emptyText.isEmpty() ? QObject::tr("nothing to chart: the sweep has no points")
                                       : options.emptyText;
  }

  for (const SweepPoint& p : sweep.points) out.skipped += p.skipped.empty() ? 0 : 1;

  QStringList line1;
  line1 << qs(to_string(mode)) << describeSweepShape(sweep)
        << QObject::tr("pattern %1, seed %2").arg(qs(sweep.config.pattern)).arg(sweep.config.seed);
  if (options.kind != ChartKind::kv && options.kind != ChartKind::speedup) {
    line1 << (options.style == ChartStyle::line ? QObject::tr("%1 reps: median, whiskers min–max")
                                                : QObject::tr("%1 reps: median"))
                 .arg(sweep.config.repetitions);
  } else if (options.kind == ChartKind::speedup) {
    line1 << QObject::tr("%1 reps: ratio of medians").arg(sweep.config.repetitions);
  }
  if (out.skipped) line1 << QObject::tr("%n point(s) skipped", nullptr, out.skipped);
  if (sweep.cancelled) line1 << QObject::tr("cancelled: partial sweep");
  QStringList devices;
  for (const std::string& d : sweep.devices) devices << qs(d);
  QStringList line2;
  if (!sweep.machine.empty()) line2 << qs(sweep.machine);
  if (!devices.isEmpty()) line2 << devices.join(QStringLiteral("; "));
  if (!sweep.date.empty()) line2 << qs(sweep.date);
  out.footer << line1.join(QStringLiteral(" · "));
  if (!line2.isEmpty()) out.footer << line2.join(QStringLiteral(" · "));

  int finishedCount = 0;
  for (const SweepPoint& p : sweep.points) finishedCount += finished(p) ? 1 : 0;
  if (finishedCount == 0) {
    return QObject::tr("nothing to chart: no point of the sweep finished (%n skipped)", nullptr,
                       out.skipped);
  }

  // Series identity and order: variants and backends by first appearance.
  QStringList variants, backends;
  for (const SweepPoint& p : sweep.points) {
    if (!finished(p)) continue;
    if (!variants.contains(qs(p.variant))) variants << qs(p.variant);
    if (!backends.contains(qs(p.backend))) backends << qs(p.backend);
  }
  const bool perBackend = options.kind != ChartKind::kv;  // KV bytes do not depend on the backend
  const bool nameBackend = perBackend && backends.size() > 1;

  QVector<double> ratio;
  if (options.kind == ChartKind::speedup) {
    if (!variants.contains(qs(denseName()))) {
      return QObject::tr("a speedup chart needs %1 in the sweep: it is the baseline")
          .arg(qs(denseName()));
    }
    if (variants.size() < 2) {
      return QObject::tr("a speedup chart needs a variant besides %1").arg(qs(denseName()));
    }
    ratio = speedups(sweep);
  }

  for (size_t i = 0; i < sweep.points.size(); ++i) {
    const SweepPoint& p = sweep.points[i];
    double value = 0, low = 0, high = 0;
    if (options.kind == ChartKind::speedup) {
      if (p.variant == denseName() || !std::isfinite(ratio[qsizetype(i)])) continue;
      value = low = high = ratio[qsizetype(i)];
    } else if (!pointValue(p, options.kind, value, low, high)) {
      continue;
    }
    const QString variant = qs(p.variant), backend = perBackend ? qs(p.backend) : QString();
    auto it = std::find_if(out.series.begin(), out.series.end(), [&](const DataSeries& s) {
      return s.variant == variant && s.backend == backend;
    });
    if (it == out.series.end()) {
      DataSeries s;
      s.variant = variant;
      s.backend = backend;
      s.variantIndex = int(variants.indexOf(variant));
      s.backendIndex = perBackend ? int(backends.indexOf(backend)) : 0;
      s.name = nameBackend ? QStringLiteral("%1 · %2").arg(variant, backend) : variant;
      out.series.append(s);
      it = out.series.end() - 1;
    }
    const auto same = std::find_if(it->points.begin(), it->points.end(),
                                   [&](const DataPoint& d) { return d.seqLen == p.seq_len; });
    if (same != it->points.end()) continue;  // kv: the first backend's value stands for all
    it->points.append(DataPoint{p.seq_len, value, low, high});
    if (!out.seqLens.contains(p.seq_len)) out.seqLens.append(p.seq_len);
  }
  if (out.series.isEmpty()) {
    return options.kind == ChartKind::speedup
               ? QObject::tr("no length and backend where both %1 and another variant finished")
                     .arg(qs(denseName()))
               : QObject::tr("nothing to chart: no finished point has a %1 value")
                     .arg(chartKindName(options.kind));
  }
  if (options.kind == ChartKind::throughput) {
    // Keep tick labels short: thousands or millions of tokens per second when rates are large.
    double top = 0;
    for (const DataSeries& s : out.series) {
      for (const DataPoint& p : s.points) top = std::max(top, p.high);
    }
    const double unit = top >= 1e8 ? 1e6 : top >= 1e5 ? 1e3 : 1;
    if (unit > 1) {
      for (DataSeries& s : out.series) {
        for (DataPoint& p : s.points) {
          p.value /= unit;
          p.low /= unit;
          p.high /= unit;
        }
      }
      out.yTitle = unit == 1e6 ? QObject::tr("throughput (million tokens/s)")
                               : QObject::tr("throughput (thousand tokens/s)");
    }
  }
  std::sort(out.seqLens.begin(), out.seqLens.end());
  for (DataSeries& s : out.series) {
    std::sort(s.points.begin(), s.points.end(),
              [](const DataPoint& a, const DataPoint& b) { return a.seqLen < b.seqLen; });
  }
  return {};
}

}  // namespace attnscope::gui::charts
