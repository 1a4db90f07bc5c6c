// Unit tests of the GUI's value types: colormaps, workload JSON round trips and preset parsing.
// No window and no worker: these pin down the pieces the views and exports are built from.
#include <QJsonDocument>
#include <QTest>

#include "colormap.hpp"
#include "gui_test_support.hpp"
#include "presets.hpp"
#include "view_result.hpp"

using namespace attnscope;
using namespace attnscope::gui;

class TestGuiUnits : public QObject {
  Q_OBJECT

 private slots:
  void viridisMatchesPublishedEndpoints() {
    // matplotlib: viridis(0) = #440154, viridis(1) = #fde725; magma(0) = #000004, (1) = #fcfdbf.
    const auto near = [](QRgb a, QRgb b) {
      return std::abs(qRed(a) - qRed(b)) <= 6 && std::abs(qGreen(a) - qGreen(b)) <= 6 &&
             std::abs(qBlue(a) - qBlue(b)) <= 6;
    };
    QVERIFY(near(Colormap::get(ColormapId::viridis).at(0), qRgb(0x44, 0x01, 0x54)));
    QVERIFY(near(Colormap::get(ColormapId::viridis).at(1), qRgb(0xfd, 0xe7, 0x25)));
    QVERIFY(near(Colormap::get(ColormapId::magma).at(0), qRgb(0x00, 0x00, 0x04)));
    QVERIFY(near(Colormap::get(ColormapId::magma).at(1), qRgb(0xfc, 0xfd, 0xbf)));
  }

  void colormapLightnessIsMonotonic() {
    // Perceptually uniform maps get lighter along the whole range (a rough check with Rec. 709).
    for (ColormapId id : {ColormapId::viridis, ColormapId::magma}) {
      const QVector<QRgb>& lut = Colormap::get(id).lut();
      QCOMPARE(lut.size(), 256);
      double last = -1;
      for (int i = 0; i < 256; i += 8) {
        const double y = 0.2126 * qRed(lut[i]) + 0.7152 * qGreen(lut[i]) + 0.0722 * qBlue(lut[i]);
        QVERIFY2(y > last - 1.0,
                 qPrintable(QStringLiteral("%1 at %2").arg(Colormap::get(id).name()).arg(i)));
        last = y;
      }
    }
  }

  void logScaleSpansDecades() {
    ValueScale s;
    s.mode = ScaleMode::log;
    s.vmax = 1.0;
    s.decades = 4;
    QCOMPARE(s.normalize(1.0), 1.0);
    QVERIFY(std::abs(s.normalize(1e-2) - 0.5) < 1e-12);
    QCOMPARE(s.normalize(0.0), 0.0);
    QVERIFY(std::abs(s.valueAt(0.5) - 1e-2) < 1e-12);
  }

  void workloadJsonRoundTrips() {
    Workload w = test::smallWorkload(VariantId::moba);
    w.seed = 1234567890123ull;
    w.pattern = "needle";
    w.problem.scale = 0.25;
    Workload back;
    QVERIFY(Workload::fromJson(w.toJson(), back).isEmpty());
    QCOMPARE(back.runKey(), w.runKey());
    QCOMPARE(back.seed, w.seed);
    QCOMPARE(back.toJson().value("describe").toString(),
             QString::fromStdString(w.problem.describe()));
  }

  void workloadPrecisionRoundTripsAndUnknownIsReported() {
    Workload w = test::smallWorkload(VariantId::dense);
    w.problem.precision = Precision::bf16;
    Workload back;
    QVERIFY(Workload::fromJson(w.toJson(), back).isEmpty());
    QCOMPARE(back.problem.precision, Precision::bf16);
    QCOMPARE(w.toJson().value("precision").toString(), QStringLiteral("bf16"));
    QJsonObject bad = w.toJson();
    bad["precision"] = "fp8";
    const QString e = Workload::fromJson(bad, back);
    QVERIFY(e.contains("fp8"));
    QVERIFY(e.contains("bf16"));
    QJsonObject old = w.toJson();  // files saved before precision existed read as fp32
    old.remove("precision");
    QVERIFY(Workload::fromJson(old, back).isEmpty());
    QCOMPARE(back.problem.precision, Precision::fp32);
  }

  void unknownVariantIsReported() {
    Workload w;
    const QString e = Workload::fromJson(QJsonObject{{"variant", "nonsense"}}, w);
    QVERIFY(e.contains("nonsense"));
  }

  void presetsParseAndNameKnownViews() {
    QVERIFY(presets().size() >= 6);
    for (const Preset& p : presets()) {
      QVERIFY(!p.name.isEmpty());
      QVERIFY(!p.html.isEmpty());
      QVERIFY(p.views.contains(p.view));
      Workload w;
      QVERIFY(Workload::fromJson(p.workload, w).isEmpty());
      QVERIFY2(!w.problem.validate(), qPrintable(p.name));
    }
    Preset bad;
    QVERIFY(!parsePreset("{\"name\": \"x\", \"view\": \"nowhere\"}", bad).isEmpty());
    QVERIFY(!parsePreset("not json", bad).isEmpty());
  }

  void viewNamesRoundTrip() {
    for (ViewKind v : allViews()) {
      ViewKind back;
      QVERIFY(viewFromName(viewName(v), back));
      QCOMPARE(int(back), int(v));
    }
  }
};

QTEST_MAIN(TestGuiUnits)
#include "test_gui_units.moc"
