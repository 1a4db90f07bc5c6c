// Rewrites are a short table of patterns, each tied to the flag or format it replaces, so a new
// engine message either matches one or passes through unchanged (never garbled).
#include "wording.hpp"

#include <QObject>
#include <QRegularExpression>
#include <cmath>

#include "live/model_presets.hpp"

namespace attnscope::gui {

QString guiWording(const QString& message) {
  QString s = message;
  // "(run with --precision fp32 here)", "use --precision bf16 or fp32": what to choose.
  static const QRegularExpression runWith(
      QStringLiteral("run with --precision ([a-z0-9]+)( here)?"));
  s.replace(runWith, QObject::tr("choose Precision \\1 in the workload panel"));
  static const QRegularExpression use(
      QStringLiteral("use --precision ([a-z0-9]+(?: or [a-z0-9]+)?)"));
  s.replace(use, QObject::tr("choose Precision \\1 in the workload panel"));
  s.replace(QStringLiteral("drop --non-causal"), QObject::tr("tick Causal in the workload panel"));
  s.replace(QStringLiteral("--non-causal"), QObject::tr("Causal unticked"));
  s.replace(QStringLiteral("--precision"), QObject::tr("Precision"));
  // "2.03e+03 GiB" (an ostream's default precision) as "1.98 TiB".
  static const QRegularExpression sci(
      QStringLiteral("([0-9]+(?:\\.[0-9]+)?e[+-]?[0-9]+) (B|KiB|MiB|GiB|TiB)\\b"));
  static const QStringList units = {"B", "KiB", "MiB", "GiB", "TiB"};
  QRegularExpressionMatch m;
  qsizetype from = 0;
  while ((m = sci.match(s, from)).hasMatch()) {
    bool ok = false;
    const double value = m.captured(1).toDouble(&ok);
    const double bytes = value * std::pow(1024.0, double(units.indexOf(m.captured(2))));
    const QString human = ok && std::isfinite(bytes) ? humanBytes(bytes) : m.captured(0);
    s.replace(m.capturedStart(0), m.capturedLength(0), human);
    from = m.capturedStart(0) + human.size();
  }
  return s;
}

QString backendUnavailableTip(const QString& backend, const QString& whyNot) {
  if (backend == QLatin1String("cuda")) {
    static const QRegularExpression noDevice(
        QStringLiteral("no (usable )?CUDA device|no CUDA-capable device|driver|no device"),
        QRegularExpression::CaseInsensitiveOption);
    if (noDevice.match(whyNot).hasMatch()) {
      return QObject::tr(
          "Unavailable: no NVIDIA GPU was found on this machine, so the cuda backend cannot run "
          "here; the cpu backend computes everything the views show.");
    }
  }
  return QObject::tr("Unavailable: %1").arg(guiWording(whyNot));
}

}  // namespace attnscope::gui
