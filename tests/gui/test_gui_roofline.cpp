// An honest roofline in the Throughput view (issue 15): a calibration under load is shown as
// unreliable and not remembered; a remembered roof below a run flags the run as a measurement
// problem and re-measures the roof once; the point says which roof (cache or DRAM) applies; Start
// does not move when options change; faded points stay visible in the dark palette. Contention is
// injected through the probe's test seam and roofs through the peak cache: no timing is asserted.
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QTest>
#include <QThread>
#include <QtCharts/QChart>
#include <QtCharts/QScatterSeries>
#include <cmath>
#include <nlohmann/json.hpp>

#include "attnscope/calibrate.hpp"
#include "attnscope/cpu_backend.hpp"
#include "attnscope/host_info.hpp"
#include "attnscope/registry.hpp"
#include "gui_test_support.hpp"
#include "views/throughput_view.hpp"

using namespace attnscope;
using namespace attnscope::gui;

namespace {

using test::waitFor;

Workload tinyWorkload() {
  Workload w = test::smallWorkload(VariantId::dense);
  w.backend = "cpu";
  w.pattern = "random";
  w.problem.shape.head_dim = w.problem.shape.v_head_dim = 16;
  return w;
}

// Replaces the probe's measured run-queue wait while it lives.
struct ContentionOverride {
  explicit ContentionOverride(double f) { set_cpu_contention_override_for_testing(f); }
  ~ContentionOverride() { set_cpu_contention_override_for_testing(-1); }
};

// A fresh cache directory for this test function; returns the peaks.json path.
QString freshCache(const QString& name) {
  const QString dir = test::scratchDir() + "/roofline-cache-" + name;
  QDir(dir).removeRecursively();
  QDir().mkpath(dir);
  qputenv("ATTNSCOPE_CACHE_DIR", dir.toUtf8());
  return dir + "/peaks.json";
}

// Remembers a roof for these backends, as an earlier calibration on this machine would have.
void seedCache(const QString& file, const QStringList& backends, double gflops, double gbps,
               double cacheGbps) {
  nlohmann::json peaks = nlohmann::json::array();
  for (const QString& b : backends) {
    peaks.push_back({{"backend", b.toStdString()},
                     {"device", make_backend(b.toStdString())->device()},
                     {"gflops", gflops},
                     {"gbps", gbps},
                     {"cache_gbps", cacheGbps},
                     {"cache_bytes", 32 << 20},
                     {"reliable", true},
                     {"cpu_model", host::cpu_model()},
                     {"measured_at", "2026-01-01T00:00:00Z"}});
  }
  QFile f(file);
  QVERIFY(f.open(QIODevice::WriteOnly));
  f.write(QByteArray::fromStdString(nlohmann::json{
      {"format", "attnscope device peaks"},
      {"version", 2},
      {"peaks", peaks}}.dump()));
}

void selectCpu(ThroughputView& v) {
  v.backendCombo()->setCurrentIndex(v.backendCombo()->findData("cpu", Qt::UserRole));
}

// Runs the loop until it has `samples` samples, then stops it.
bool runBriefly(ThroughputView& v, int samples = 2) {
  v.start();
  const bool ok = waitFor(
      [&] { return v.runner().samples().size() >= samples || !v.runner().running(); }, 30000);
  v.stop();
  return waitFor([&] { return !v.runner().running(); }, 10000) && ok && v.errorText().isEmpty();
}

double luminance(const QColor& c) {
  const auto lin = [](double x) {
    return x <= 0.04045 ? x / 12.92 : std::pow((x + 0.055) / 1.055, 2.4);
  };
  return 0.2126 * lin(c.redF()) + 0.7152 * lin(c.greenF()) + 0.0722 * lin(c.blueF());
}

// Contrast of `fg` drawn over `bg` (with fg's alpha), WCAG's ratio.
double contrastOver(const QColor& fg, const QColor& bg) {
  const double a = fg.alphaF();
  const QColor seen =
      QColor::fromRgbF(a * fg.redF() + (1 - a) * bg.redF(), a * fg.greenF() + (1 - a) * bg.greenF(),
                       a * fg.blueF() + (1 - a) * bg.blueF());
  const double l1 = luminance(seen), l2 = luminance(bg);
  return (std::max(l1, l2) + 0.05) / (std::min(l1, l2) + 0.05);
}

}  // namespace

class TestGuiRoofline : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() {
    // The triad at its 3 x 16 MiB floor: each calibration here is short.
    qputenv("ATTNSCOPE_MEMORY_LIMIT_MB", "128");
  }

  // Issue 15: a calibration taken while a build kept the cores busy became the remembered roof.
  void calibrationUnderLoadIsShownUnreliableAndNotRemembered() {
    const QString file = freshCache("load");
    const ContentionOverride busy(0.5);  // every repetition waited half its time for a CPU
    ThroughputView v;
    v.setWorkload(tinyWorkload());
    selectCpu(v);
    v.show();
    QVERIFY(waitFor([&] { return v.peak().has_value() && !v.runner().calibrating(); }, 120000));
    QVERIFY(!v.peak()->reliable);
    QVERIFY(!v.peak()->cached);
    QVERIFY2(v.calibrationText().contains("unreliable", Qt::CaseInsensitive),
             qPrintable(v.calibrationText()));
    QVERIFY2(!QFile::exists(file), "a contended calibration was remembered as the roof");
    QVERIFY(cached_peaks().empty());
    // The legend says the roof itself is not to be trusted.
    bool dashed = false;
    for (QAbstractSeries* s : v.roofChart()->series()) {
      dashed = dashed || s->name().contains("unreliable");
    }
    QVERIFY(dashed);
  }

  // Issue 15: prefill was drawn at ~150 % of a roof remembered from a busy calibration.
  void rememberedRoofBelowARunFlagsItAndIsRecheckedOnce() {
    const QString file = freshCache("below");
    // A roof far below anything this machine does, remembered as if measured quietly.
    seedCache(file, {"cpu"}, 0.001, 0.0001, 0.0002);
    const ContentionOverride quiet(0.0);  // the re-check is a clean measurement
    ThroughputView v;
    v.resize(1100, 750);
    v.setWorkload(tinyWorkload());
    selectCpu(v);
    v.show();
    QVERIFY(waitFor([&] { return v.peak().has_value() && !v.runner().calibrating(); }, 30000));
    QVERIFY(v.peak()->cached);
    QCOMPARE(v.peak()->gflops, 0.001);

    v.start();
    QVERIFY(waitFor([&] { return v.currentPoint().has_value(); }, 30000));
    const RooflinePoint point = *v.currentPoint();
    const auto placed = v.placementOf(point);
    QVERIFY(placed.has_value());
    QVERIFY2(placed->above, qPrintable(QString::number(placed->fraction)));
    // Flagged: drawn as a measurement problem, not as this run's point, with a legend entry.
    QVERIFY(waitFor([&] { return v.aboveRoofSeries()->count() == 1; }, 5000));
    QVERIFY(v.aboveRoofSeries()->name().contains("measurement problem"));
    for (QAbstractSeries* s : v.roofChart()->series()) {
      if (s != v.aboveRoofSeries() && s->name().startsWith("this run")) {
        QCOMPARE(static_cast<QScatterSeries*>(s)->count(), 0);
      }
    }
    // The remembered roof is measured again (once), when the loop stops.
    QVERIFY(v.recheckRequested("cpu"));
    QVERIFY(v.runner().calibrating());
    QSignalSpy calibrations(&v.runner(), &ThroughputRunner::calibrationStarted);
    v.stop();
    QVERIFY(waitFor([&] { return !v.runner().running() && !v.runner().calibrating(); }, 120000));
    QVERIFY(v.peak().has_value());
    QVERIFY(!v.peak()->cached);  // measured now
    QVERIFY(v.peak()->reliable);
    QVERIFY(v.peak()->gflops > 0.001);
    // The clean re-measurement replaced the remembered roof.
    QCOMPARE(cached_peaks().size(), size_t(1));
    QVERIFY(cached_peaks()[0].gflops > 0.001);
    // Whatever the new roof says, the point is flagged exactly when it lies above it.
    const auto again = v.placementOf(*v.currentPoint());
    QVERIFY(again.has_value());
    QCOMPARE(v.aboveRoofSeries()->count(), again->above ? 1 : 0);
    // Once a session: a second run above the roof does not re-measure again.
    QVERIFY(runBriefly(v, 1));
    QCOMPARE(calibrations.size(), 0);
    // The export says which roof applies and whether the point lies above it.
    const QJsonArray points = v.exportData().value("roofline_points").toArray();
    QVERIFY(!points.isEmpty());
    for (const QJsonValue& p : points) {
      const QJsonObject o = p.toObject();
      QVERIFY(o.value("roof").toString() == "cache" || o.value("roof").toString() == "memory");
      QVERIFY(o.value("working_set_bytes").toDouble() > 0);
      QVERIFY(o.contains("above_roof"));
    }
  }

  // Issue 15: a decode whose 2 MiB working set sat in cache was placed under the DRAM roof.
  void smallWorkingSetIsPlacedUnderTheCacheRoof() {
    const QString file = freshCache("cache_roof");
    seedCache(file, {"cpu"}, 1e6, 1e3, 1e4);  // roofs far above the run: nothing flagged
    ThroughputView v;
    v.setWorkload(tinyWorkload());
    selectCpu(v);
    v.show();
    QVERIFY(waitFor([&] { return v.peak().has_value() && !v.runner().calibrating(); }, 30000));
    QVERIFY(runBriefly(v));
    const RooflinePoint point = *v.currentPoint();
    QVERIFY(point.workingSetBytes > 0 && point.workingSetBytes < (32 << 20));
    const auto placed = v.placementOf(point);
    QVERIFY(placed.has_value());
    QCOMPARE(placed->roof, Roof::cache);
    QCOMPARE(placed->bandwidth_gbps, 1e4);
    QVERIFY(!placed->above);
    QCOMPARE(v.aboveRoofSeries()->count(), 0);
    QVERIFY(!v.recheckRequested("cpu"));
    bool cacheRoofDrawn = false;
    for (QAbstractSeries* s : v.roofChart()->series()) {
      if (s->name().startsWith("cache roof")) {
        cacheRoofDrawn = static_cast<QXYSeries*>(s)->count() >= 2;
      }
    }
    QVERIFY(cacheRoofDrawn);
  }

  // Habits: Throughput's Start moved when the decode-only field appeared or the backend changed.
  void startButtonStaysPutWhenOptionsChange() {
    const QString file = freshCache("start");
    seedCache(file, {"cpu", "reference"}, 100, 20, 80);  // no calibration needed
    ThroughputView v;
    v.resize(1100, 750);
    v.setWorkload(tinyWorkload());
    selectCpu(v);
    v.show();
    QVERIFY(QTest::qWaitForWindowExposed(&v));
    const auto where = [&] {
      QCoreApplication::processEvents();
      return QRect(v.startButton()->mapTo(&v, QPoint(0, 0)), v.startButton()->size());
    };
    const QRect before = where();
    v.modeCombo()->setCurrentIndex(v.modeCombo()->findData(int(LoopMode::decode)));
    QCOMPARE(where(), before);
    v.backendCombo()->setCurrentIndex(v.backendCombo()->findData("reference", Qt::UserRole));
    QCOMPARE(where(), before);
    v.modeCombo()->setCurrentIndex(v.modeCombo()->findData(int(LoopMode::prefill)));
    QCOMPARE(where(), before);
    QVERIFY(waitFor([&] { return !v.runner().calibrating(); }, 30000));
  }

  // Habits: the dark palette made the faded points of earlier runs invisible.
  void darkPaletteKeepsFadedPointsVisible() {
    const QString file = freshCache("dark");
    seedCache(file, {"cpu"}, 1e6, 1e3, 1e4);
    ThroughputView v;
    v.setWorkload(tinyWorkload());
    selectCpu(v);
    v.show();
    QVERIFY(waitFor([&] { return v.peak().has_value() && !v.runner().calibrating(); }, 30000));
    QVERIFY(runBriefly(v, 1));
    QVERIFY(runBriefly(v, 1));  // the first run is now a faded, earlier point
    QCOMPARE(v.history().size(), qsizetype(1));
    // What the main window does for its dark palette: dark chart theme, dark palette.
    v.roofChart()->setTheme(QChart::ChartThemeDark);
    QPalette dark;
    dark.setColor(QPalette::Window, QColor(45, 45, 48));
    dark.setColor(QPalette::WindowText, QColor(225, 225, 225));
    v.setPalette(dark);
    QCoreApplication::processEvents();
    QVector<QColor> backgrounds;
    const QBrush bg = v.roofChart()->backgroundBrush();
    if (const QGradient* g = bg.gradient()) {
      for (const auto& stop : g->stops()) backgrounds.append(stop.second);
    } else {
      backgrounds.append(bg.color());
    }
    QVERIFY(luminance(backgrounds.front()) < 0.1);  // the theme is dark indeed
    int earlier = 0;
    for (QAbstractSeries* s : v.roofChart()->series()) {
      if (!s->name().startsWith("earlier")) continue;
      auto* scatter = static_cast<QScatterSeries*>(s);
      if (scatter->count() == 0) continue;
      ++earlier;
      for (const QColor& b : backgrounds) {
        QVERIFY2(contrastOver(scatter->color(), b) >= 3.0,
                 qPrintable(QStringLiteral("%1 on %2: %3")
                                .arg(scatter->color().name(QColor::HexArgb), b.name())
                                .arg(contrastOver(scatter->color(), b))));
        QVERIFY(contrastOver(scatter->pointLabelsColor(), b) >= 3.0);
      }
    }
    QCOMPARE(earlier, 1);
  }
};

QTEST_MAIN(TestGuiRoofline)
#include "test_gui_roofline.moc"
