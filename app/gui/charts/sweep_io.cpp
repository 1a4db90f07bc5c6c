// Sweep JSON and CSV files. The JSON is the engine's own (sweep_to_json / sweep_from_json), so a
// file from the CLI, the GUI or a previous session charts the same; the CSV is for spreadsheets.
#include "charts/sweep_io.hpp"

#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QObject>
#include <QStringList>
#include <algorithm>
#include <cmath>
#include <exception>
#include <new>

#include "charts/chart_data.hpp"
#include "output_files.hpp"

namespace attnscope::gui::charts {
namespace {

QString csvField(const QString& s) {
  if (!s.contains(QLatin1Char(',')) && !s.contains(QLatin1Char('"')) &&
      !s.contains(QLatin1Char('\n'))) {
    return s;
  }
  QString quoted = s;
  quoted.replace(QLatin1String("\""), QLatin1String("\"\""));
  return QLatin1Char('"') + quoted + QLatin1Char('"');
}

QString num(double v) {
  if (!std::isfinite(v)) return {};
  return QString::number(v, 'g', 10);
}

}  // namespace

QString loadSweepFile(const QString& path, SweepResult& out) {
  const QFileInfo info(path);
  if (!info.exists()) return QObject::tr("%1: no such file").arg(path);
  if (info.isDir()) return QObject::tr("%1: is a directory, not a sweep JSON file").arg(path);
  if (!info.isFile()) return QObject::tr("%1: not a regular file").arg(path);
  // Sweep files are kilobytes; anything this large is not one and would only exhaust memory.
  constexpr qint64 kMaxSweepBytes = qint64(256) << 20;
  if (info.size() > kMaxSweepBytes) {
    return QObject::tr("%1: too large for a sweep file (%2 MiB; at most %3 MiB)")
        .arg(path)
        .arg(info.size() >> 20)
        .arg(kMaxSweepBytes >> 20);
  }
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) {
    return QObject::tr("cannot read %1: %2").arg(path, f.errorString());
  }
  const QByteArray bytes = f.readAll();
  try {
    out = sweep_from_json(bytes.toStdString());
  } catch (const std::bad_alloc&) {
    return QObject::tr("%1: out of memory while reading the sweep").arg(path);
  } catch (const std::exception& e) {
    return QObject::tr("%1: %2").arg(path, QString::fromStdString(e.what()));
  }
  return {};
}

QString sweepToCsv(const SweepResult& sweep) {
  // The configuration exactly as the JSON file carries it (context.attnscope), plus the date.
  QJsonObject config = QJsonDocument::fromJson(QByteArray::fromStdString(sweep_to_json(sweep)))
                           .object()
                           .value(QStringLiteral("context"))
                           .toObject()
                           .value(QStringLiteral("attnscope"))
                           .toObject();
  config.insert(QStringLiteral("date"), QString::fromStdString(sweep.date));
  QString s = QStringLiteral("# attnscope ") +
              QString::fromUtf8(QJsonDocument(config).toJson(QJsonDocument::Compact)) +
              QStringLiteral("\n# shape: ") + describeSweepShape(sweep) +
              QStringLiteral("\n# machine: ") + QString::fromStdString(sweep.machine);
  for (const std::string& d : sweep.devices) {
    s += QStringLiteral("\n# device: ") + QString::fromStdString(d);
  }
  s += QStringLiteral("\n# date: ") + QString::fromStdString(sweep.date);
  if (sweep.cancelled) s += QStringLiteral("\n# cancelled: the sweep stopped early");
  s += QStringLiteral(
      "\nmode,variant,backend,seq_len,batch,heads,kv_heads,q_len,kv_len,head_dim,v_head_dim,"
      "causal,threads,repetitions,median_ms,mean_ms,min_ms,max_ms,stddev_ms,tokens_per_s,"
      "gflops,gbps,flops,bytes,kv_cache_bytes,kv_bytes_per_token,speedup_vs_dense,skipped\n");
  const QVector<double> ratio = speedups(sweep);
  const QString mode = QString::fromStdString(to_string(sweep.config.mode));
  for (size_t i = 0; i < sweep.points.size(); ++i) {
    const SweepPoint& p = sweep.points[i];
    const ProblemShape& sh = p.problem.shape;
    const bool ran = p.skipped.empty();
    const double maxS =
        p.seconds.empty() ? p.median_s : *std::max_element(p.seconds.begin(), p.seconds.end());
    QStringList row;
    row << mode << csvField(QString::fromStdString(p.variant))
        << csvField(QString::fromStdString(p.backend)) << QString::number(p.seq_len)
        << QString::number(sh.batch) << QString::number(sh.heads) << QString::number(sh.kv_heads)
        << QString::number(sh.q_len) << QString::number(sh.kv_len) << QString::number(sh.head_dim)
        << QString::number(sh.v_head_dim)
        << (p.problem.causal ? QStringLiteral("true") : QStringLiteral("false"))
        << QString::number(p.threads) << QString::number(p.seconds.size());
    if (ran) {
      row << num(p.median_s * 1e3) << num(p.mean_s * 1e3) << num(p.min_s * 1e3) << num(maxS * 1e3)
          << num(p.stddev_s * 1e3) << num(p.tokens_per_s) << num(p.gflops) << num(p.gbps);
    } else {
      for (int k = 0; k < 8; ++k) row << QString();
    }
    row << num(p.cost.flops) << num(p.cost.bytes) << num(p.cost.kv_cache_bytes)
        << num(p.cost.kv_bytes_per_token) << num(ratio[qsizetype(i)])
        << csvField(QString::fromStdString(p.skipped));
    s += row.join(QLatin1Char(',')) + QLatin1Char('\n');
  }
  return s;
}

QString sweepDataBytes(const SweepResult& sweep, const QString& path, QByteArray& bytes) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  bytes.clear();
  try {
    if (suffix == QLatin1String("json")) {
      bytes = QByteArray::fromStdString(sweep_to_json(sweep));
    } else if (suffix == QLatin1String("csv")) {
      bytes = sweepToCsv(sweep).toUtf8();
    } else {
      return QObject::tr("unknown data format '%1' (use .csv or .json)")
          .arg(suffix.isEmpty() ? path : QStringLiteral(".") + suffix);
    }
  } catch (const std::exception& e) {
    return QObject::tr("cannot serialize the sweep: %1").arg(QString::fromStdString(e.what()));
  }
  return {};
}

QString saveSweepData(const SweepResult& sweep, const QString& path) {
  QByteArray bytes;
  if (QString e = sweepDataBytes(sweep, path, bytes); !e.isEmpty()) return e;
  return writeOutputFile(path, bytes);
}

}  // namespace attnscope::gui::charts
