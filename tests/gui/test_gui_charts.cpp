// Benchmark charts and the Benchmark view: the chart data of every kind, exports that decode (PNG
// at the requested DPI, SVG as XML, PDF), byte-identical SVG from the same JSON (twice, and from
// the view vs `attnscope chart`), the chart subcommand's files and its one-line errors, the sweep
// data as JSON (exactly sweep_to_json) and CSV, and the view running and cancelling real sweeps.
#include <QFile>
#include <QProcess>
#include <QSignalSpy>
#include <QSvgRenderer>
#include <QTest>
#include <QXmlStreamReader>
#include <cmath>

#include "attnscope/cost.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/sweep.hpp"
#include "charts/chart_data.hpp"
#include "charts/sweep_chart.hpp"
#include "charts/sweep_io.hpp"
#include "gui_test_support.hpp"
#include "views/benchmark_view.hpp"

using namespace attnscope;
using namespace attnscope::gui;
using namespace attnscope::gui::charts;

namespace {

// A small, fully known sweep: dense and swa (one skipped point), three lengths, given backends.
SweepResult handMadeSweep(const std::vector<std::string>& backends = {"cpu"}) {
  SweepResult r;
  r.config.variants = {"dense", "swa"};
  r.config.seq_lens = {512, 1024, 2048};
  r.config.backends = backends;
  r.config.repetitions = 3;
  r.config.base = AttentionProblem::defaults(VariantId::dense);
  r.config.base.causal = true;
  r.config.base.swa.window = 256;
  r.config.pattern = "random";
  r.machine = "Test CPU (4 logical CPUs), 16.0 GiB";
  for (const std::string& b : backends) r.devices.push_back(b + " (test device)");
  r.date = "2026-11-22T10:00:00Z";
  for (const std::string& v : r.config.variants) {
    for (int64_t L : r.config.seq_lens) {
      for (size_t bi = 0; bi < backends.size(); ++bi) {
        SweepPoint p;
        p.variant = v;
        p.backend = backends[bi];
        p.seq_len = L;
        p.threads = 4;
        p.problem = r.config.base;
        p.problem.variant = find_variant(v)->id;
        p.problem.shape.q_len = p.problem.shape.kv_len = L;
        p.cost = cost_of(p.problem);
        if (v == "swa" && L == 2048 && bi == 0) {
          p.skipped = "too large for this test";
          r.points.push_back(p);
          continue;
        }
        const double base = 1e-3 * double(L * L) / (512.0 * 512.0) * (v == "swa" ? 0.5 : 1.0) *
                            (1.0 + 0.5 * double(bi));
        p.seconds = {base * 1.1, base, base * 0.95};
        p.median_s = base;
        p.min_s = base * 0.95;
        p.mean_s = (base * 1.1 + base + base * 0.95) / 3;
        p.stddev_s = base * 0.08;
        p.tokens_per_s = double(L) / base;
        p.gflops = p.cost.flops / base / 1e9;
        p.gbps = p.cost.bytes / base / 1e9;
        r.points.push_back(p);
      }
    }
  }
  return r;
}

ChartOptions opts(ChartKind kind, ChartStyle style = ChartStyle::line) {
  ChartOptions o;
  o.kind = kind;
  o.style = style;
  return o;
}

QString writeFixture(const QString& name, const SweepResult& r) {
  const QString path = test::scratchDir() + "/" + name;
  QFile f(path);
  if (!f.open(QIODevice::WriteOnly)) return {};
  f.write(QByteArray::fromStdString(sweep_to_json(r)));
  return path;
}

QByteArray readAll(const QString& path) {
  QFile f(path);
  return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

struct Run {
  int code = -1;
  QString err;
};
Run runChart(const QStringList& args) {
  QProcess p;
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  env.remove("QT_QPA_PLATFORM");  // the subcommand must choose offscreen by itself
  p.setProcessEnvironment(env);
  p.start(QStringLiteral(ATTNSCOPE_GUI_EXE), QStringList{"chart"} + args);
  if (!p.waitForFinished(60000)) return {};
  Run r;
  r.code = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
  r.err = QString::fromUtf8(p.readAllStandardError());
  return r;
}

QStringList nonEmptyLines(const QString& s) {
  return s.split('\n', Qt::SkipEmptyParts);
}

bool isSvgXml(const QByteArray& bytes) {
  QXmlStreamReader xml(bytes);
  QString root;
  int elements = 0;
  while (!xml.atEnd()) {
    if (xml.readNext() == QXmlStreamReader::StartElement) {
      if (root.isEmpty()) root = xml.name().toString();
      ++elements;
    }
  }
  return !xml.hasError() && root == "svg" && elements > 20;
}

}  // namespace

class TestGuiCharts : public QObject {
  Q_OBJECT

 private slots:
  void kindNamesRoundTrip() {
    for (ChartKind k : allChartKinds()) {
      ChartKind back;
      QVERIFY(chartKindFromName(chartKindName(k), back));
      QCOMPARE(back, k);
    }
    ChartKind k;
    QVERIFY(!chartKindFromName("latency", k));
    ChartStyle s;
    QVERIFY(chartStyleFromName("bar", s) && s == ChartStyle::bar);
    QVERIFY(!chartStyleFromName("pie", s));
  }

  void chartDataOfEveryKind() {
    const SweepResult r = handMadeSweep();
    for (ChartKind k : allChartKinds()) {
      ChartData d;
      QVERIFY2(buildChartData(r, opts(k, ChartStyle::line), d).isEmpty(),
               qPrintable(chartKindName(k)));
      // swa did not run at 2048, so there is no speedup there.
      const QVector<int64_t> lengths =
          k == ChartKind::speedup ? QVector<int64_t>{512, 1024} : QVector<int64_t>{512, 1024, 2048};
      QCOMPARE(d.seqLens, lengths);
      QCOMPARE(d.skipped, 1);
      QVERIFY(!d.title.isEmpty() && !d.xTitle.isEmpty() && !d.yTitle.isEmpty());
      QCOMPARE(d.footer.size(), 2);
      QVERIFY(d.footer[1].contains("Test CPU") && d.footer[1].contains("2026-11-22"));
      if (k == ChartKind::speedup) {
        QCOMPARE(d.series.size(), 1);  // swa over dense; dense itself is the baseline line
        QCOMPARE(d.series[0].points.size(), 2);
        QCOMPARE(d.series[0].points[0].value, 2.0);
      } else {
        QCOMPARE(d.series.size(), 2);
        QCOMPARE(d.series[0].name, QString("dense"));
        QCOMPARE(d.series[0].points.size(), 3);
        QCOMPARE(d.series[1].points.size(), 2);  // the skipped point is not drawn
      }
    }
    ChartData time;
    QVERIFY(buildChartData(r, opts(ChartKind::time, ChartStyle::line), time).isEmpty());
    QCOMPARE(time.series[0].points[0].value, 1.0);  // 1 ms at 512
    QCOMPARE(time.series[0].points[0].low, 0.95);
    QCOMPARE(time.series[0].points[0].high, 1.1);
    ChartData tput;
    QVERIFY(buildChartData(r, opts(ChartKind::throughput, ChartStyle::line), tput).isEmpty());
    QVERIFY(tput.series[0].points[0].high > tput.series[0].points[0].value);  // fastest rep
    // Two backends: one series per variant x backend, named with the backend.
    ChartData two;
    QVERIFY(buildChartData(handMadeSweep({"cpu", "reference"}), {}, two).isEmpty());
    QCOMPARE(two.series.size(), 4);
    QCOMPARE(two.series[1].name, QString("dense · reference"));
    // KV bytes do not depend on the backend: one series per variant.
    ChartData kv;
    QVERIFY(buildChartData(handMadeSweep({"cpu", "reference"}), opts(ChartKind::kv), kv).isEmpty());
    QCOMPARE(kv.series.size(), 2);
  }

  void chartErrorsAreMessages() {
    ChartData d;
    QVERIFY(!buildChartData(SweepResult{}, {}, d).isEmpty());
    SweepResult noDense = handMadeSweep();
    std::erase_if(noDense.points, [](const SweepPoint& p) { return p.variant == "dense"; });
    QVERIFY(buildChartData(noDense, opts(ChartKind::speedup), d).contains("baseline"));
    SweepResult allSkipped = handMadeSweep();
    for (SweepPoint& p : allSkipped.points) p.skipped = "no";
    QVERIFY(!buildChartData(allSkipped, {}, d).isEmpty());

    SweepChart chart;
    QVERIFY(!chart.setSweep(SweepResult{}, {}).isEmpty());
    const QString dir = test::scratchDir();
    QVERIFY(!chart.save(dir + "/empty.svg").isEmpty());  // an error chart is never written
    QVERIFY(!QFile::exists(dir + "/empty.svg"));
    QVERIFY(chart.setSweep(handMadeSweep(), {}).isEmpty());
    QVERIFY(chart.save(dir + "/chart.bmp").contains(".bmp"));
    QVERIFY(!chart.save("/nonexistent-dir/attnscope/chart.png").isEmpty());
    QVERIFY(!chart.save(dir + "/chart.png", 5).isEmpty());  // dpi out of range
  }

  void pngAtRequestedDpi() {
    SweepChart chart;
    QVERIFY(chart.setSweep(handMadeSweep(), {}).isEmpty());
    const QString path = test::scratchDir() + "/chart.png";
    QFile::remove(path);
    QVERIFY(chart.save(path, 192).isEmpty());
    const QImage img(path);
    QVERIFY(!img.isNull());
    QCOMPARE(img.size(), QSize(1920, 1200));  // 960 x 600 at 2x
    QCOMPARE(img.dotsPerMeterX(), int(std::lround(192 / 0.0254)));
    QVERIFY(chart.save(path, 96).isEmpty());
    QCOMPARE(QImage(path).size(), QSize(960, 600));
  }

  void svgParsesAsXml() {
    for (ChartStyle style : {ChartStyle::line, ChartStyle::bar}) {
      SweepChart chart;
      QVERIFY(chart.setSweep(handMadeSweep(), opts(ChartKind::speedup, style)).isEmpty());
      const QString path = test::scratchDir() + "/chart.svg";
      QFile::remove(path);
      QVERIFY(chart.save(path).isEmpty());
      const QByteArray bytes = readAll(path);
      QVERIFY(isSvgXml(bytes));
      QVERIFY(QSvgRenderer(bytes).isValid());
      QVERIFY(bytes.contains("DejaVu Sans"));
    }
  }

  void pdfHasHeader() {
    SweepChart chart;
    QVERIFY(chart.setSweep(handMadeSweep(), opts(ChartKind::kv, ChartStyle::line)).isEmpty());
    const QString path = test::scratchDir() + "/chart.pdf";
    QFile::remove(path);
    QVERIFY(chart.save(path, 300).isEmpty());
    QVERIFY(readAll(path).startsWith("%PDF"));
  }

  void sameJsonSameSvg() {
    const QString fixture = writeFixture("sweep-same.json", handMadeSweep({"cpu", "reference"}));
    for (ChartKind kind : allChartKinds()) {
      for (ChartStyle style : {ChartStyle::line, ChartStyle::bar}) {
        SweepResult a, b;
        QVERIFY(loadSweepFile(fixture, a).isEmpty());
        QVERIFY(loadSweepFile(fixture, b).isEmpty());
        SweepChart one, two;
        QVERIFY(one.setSweep(a, opts(kind, style)).isEmpty());
        QVERIFY(two.setSweep(b, opts(kind, style)).isEmpty());
        const QByteArray svg = one.toSvg();
        QVERIFY(!svg.isEmpty());
        QVERIFY2(svg == two.toSvg(), qPrintable(chartKindName(kind)));
        QVERIFY(svg == one.toSvg());  // rendering twice changes nothing
      }
    }
  }

  void viewAndCommandWriteTheSameSvg() {
    const QString fixture = writeFixture("sweep-view-cli.json", handMadeSweep());
    BenchmarkView view;
    view.resize(1300, 800);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    QVERIFY2(view.openSweep(fixture).isEmpty(), qPrintable(view.status()));
    QCOMPARE(view.selectedVariants(), (QStringList{"dense", "swa"}));
    for (const auto& [kind, style] : {std::pair{ChartKind::time, ChartStyle::line},
                                      std::pair{ChartKind::speedup, ChartStyle::bar},
                                      std::pair{ChartKind::kv, ChartStyle::line}}) {
      view.setChartOptions(opts(kind, style));
      QTest::qWait(20);  // let the canvas paint the chart on screen first
      const QString fromView = test::scratchDir() + "/view.svg";
      const QString fromCli = test::scratchDir() + "/cli.svg";
      QFile::remove(fromView);
      QFile::remove(fromCli);
      QVERIFY(view.exportChart(fromView).isEmpty());
      const Run r = runChart({fixture, "--kind", chartKindName(kind), "--style",
                              chartStyleName(style), "--out", fromCli});
      QVERIFY2(r.code == 0, qPrintable(r.err));
      const QByteArray a = readAll(fromView), b = readAll(fromCli);
      QVERIFY(!a.isEmpty());
      QVERIFY2(a == b, qPrintable(chartKindName(kind)));
    }
  }

  void commandWritesEveryFormat() {
    const QString fixture = writeFixture("sweep-cli.json", handMadeSweep());
    const QString dir = test::scratchDir();
    for (const char* name : {"cli.png", "cli.svg", "cli.pdf", "cli.csv"}) {
      QFile::remove(dir + "/" + QLatin1String(name));
    }
    Run r = runChart({fixture, "--kind", "throughput", "--style", "bar", "--out", dir + "/cli.png",
                      "--dpi", "144", "--csv", dir + "/cli.csv", "--title", "My sweep"});
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QCOMPARE(QImage(dir + "/cli.png").size(), QSize(1440, 900));
    QVERIFY(QImage(dir + "/cli.png").text("Title") == "My sweep");
    const QStringList csv = QString::fromUtf8(readAll(dir + "/cli.csv")).split('\n');
    QVERIFY(csv[0].startsWith("# attnscope {"));
    QVERIFY(csv[0].contains("\"seq_lens\""));
    QVERIFY(QString::fromUtf8(readAll(dir + "/cli.csv")).contains("# machine: Test CPU"));
    const int header = int(csv.indexOf(QRegularExpression("^mode,variant,backend,seq_len.*")));
    QVERIFY(header > 0);
    QCOMPARE(csv.size() - header - 2, 6);  // six points, then the final newline
    r = runChart({fixture, "--kind", "gflops", "--out", dir + "/cli.svg"});
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QVERIFY(isSvgXml(readAll(dir + "/cli.svg")));
    r = runChart({fixture, "--kind", "gbps", "--out", dir + "/cli.pdf"});
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QVERIFY(readAll(dir + "/cli.pdf").startsWith("%PDF"));
  }

  void commandErrorsAreOneLine() {
    const QString dir = test::scratchDir();
    const QString malformed = dir + "/malformed.json";
    {
      QFile f(malformed);
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write("{\"context\": {\"attnscope\": ");
    }
    const QString good = writeFixture("sweep-errors.json", handMadeSweep());
    const QString out = dir + "/never.png";
    QFile::remove(out);
    const QList<QStringList> cases = {
        {malformed, "--kind", "time", "--out", out},
        {dir + "/missing.json", "--kind", "time", "--out", out},
        {good, "--kind", "latency", "--out", out},
        {good, "--kind", "time", "--style", "pie", "--out", out},
        {good, "--kind", "time", "--out", dir + "/never.bmp"},
        {good, "--kind", "time"},
        {good, "--kind", "time", "--out", out, "--dpi", "abc"},
        {good, "--kind", "time", "--out", "/nonexistent-dir/attnscope/x.png"},
        {good, "--bogus"},
    };
    for (const QStringList& args : cases) {
      const Run r = runChart(args);
      QVERIFY2(r.code == 1, qPrintable(args.join(' ') + " -> " + QString::number(r.code)));
      const QStringList lines = nonEmptyLines(r.err);
      QVERIFY2(lines.size() == 1 && lines[0].startsWith("attnscope: chart: "), qPrintable(r.err));
    }
    QVERIFY(!QFile::exists(out));
    QVERIFY(runChart({malformed, "--out", out}).err.contains("malformed.json"));
  }

  void dataExports() {
    const SweepResult r = handMadeSweep();
    const QString dir = test::scratchDir();
    QVERIFY(saveSweepData(r, dir + "/data.json").isEmpty());
    QCOMPARE(readAll(dir + "/data.json"), QByteArray::fromStdString(sweep_to_json(r)));
    SweepResult back;
    QVERIFY(loadSweepFile(dir + "/data.json", back).isEmpty());
    QCOMPARE(back.points.size(), r.points.size());
    QCOMPARE(QString::fromStdString(back.machine), QString::fromStdString(r.machine));
    QVERIFY(saveSweepData(r, dir + "/data.csv").isEmpty());
    const QString csv = QString::fromUtf8(readAll(dir + "/data.csv"));
    QVERIFY(csv.contains("# device: cpu (test device)"));
    QVERIFY(csv.contains("swa,cpu,2048"));
    QVERIFY(csv.contains("too large for this test"));
    QVERIFY(!saveSweepData(r, dir + "/data.xml").isEmpty());
    QVERIFY(!saveSweepData(r, "/nonexistent-dir/attnscope/data.json").isEmpty());
    QVERIFY(!loadSweepFile(dir, back).isEmpty());  // a directory
  }

  void mainWindowHasTheView() {
    ViewKind k;
    QVERIFY(viewFromName("benchmark", k) && k == ViewKind::benchmark);
    MainWindow window(MainWindow::Options{false, false});
    auto* view = qobject_cast<BenchmarkView*>(window.view(ViewKind::benchmark));
    QVERIFY(view);
    // Variants and backends are the registry's.
    window.setCurrentView(ViewKind::benchmark);
    QVERIFY(view->openSweep(writeFixture("sweep-window.json", handMadeSweep())).isEmpty());
    const QString path = test::scratchDir() + "/window.svg";
    QFile::remove(path);
    QVERIFY(window.exportFigureTo(path).isEmpty());
    QCOMPARE(readAll(path), view->chart().toSvg());
    QVERIFY(window.exportDataTo(test::scratchDir() + "/window.json").isEmpty());
    QCOMPARE(readAll(test::scratchDir() + "/window.json"),
             QByteArray::fromStdString(sweep_to_json(view->sweep())));
  }

  void viewRunsASweep() {
    BenchmarkView view;
    view.setWorkload(test::smallWorkload());
    view.setSelectedVariants({"dense", "swa"});
    view.setSelectedBackends({"cpu"});
    view.setSeqLens("64, 128");
    view.setRepetitions(2);
    QCOMPARE(view.selectedVariants(), (QStringList{"dense", "swa"}));
    QSignalSpy points(&view, &BenchmarkView::pointAdded);
    QSignalSpy finished(&view, &BenchmarkView::sweepFinished);
    QVERIFY(view.startSweep().isEmpty());
    QVERIFY(view.running());  // the sweep runs on the worker: startSweep returned at once
    QVERIFY(!view.startSweep().isEmpty());  // one at a time
    QVERIFY(finished.wait(30000));
    QCOMPARE(finished.first().first().toBool(), false);
    QVERIFY(!view.running());
    QCOMPARE(points.size(), 4);
    const SweepResult& r = view.sweep();
    QCOMPARE(r.points.size(), size_t(4));
    for (const SweepPoint& p : r.points) {
      QVERIFY2(p.skipped.empty(), p.skipped.c_str());
      QCOMPARE(p.seconds.size(), size_t(2));
      QCOMPARE(p.problem.shape.heads, int64_t(2));
    }
    QVERIFY(!r.machine.empty() && !r.devices.empty());
    QVERIFY(view.chart().error().isEmpty());
    QCOMPARE(view.chart().data().series.size(), 2);
    // The exported JSON redraws to the same chart.
    const QString json = test::scratchDir() + "/ran.json";
    QVERIFY(view.exportSweepData(json).isEmpty());
    SweepResult back;
    QVERIFY(loadSweepFile(json, back).isEmpty());
    SweepChart redraw;
    QVERIFY(redraw.setSweep(back, view.chart().options()).isEmpty());
    QCOMPARE(redraw.toSvg(), view.chart().toSvg());
  }

  void viewCancelsCleanly() {
    BenchmarkView view;
    view.setWorkload(test::smallWorkload());
    view.setSelectedVariants({"dense", "swa"});
    view.setSelectedBackends({"cpu"});
    view.setSeqLens("64, 128, 256, 512, 1024, 2048, 4096");
    view.setRepetitions(3);
    QSignalSpy finished(&view, &BenchmarkView::sweepFinished);
    // Cancel with the button as soon as the first point is in.
    const auto first = connect(&view, &BenchmarkView::pointAdded, &view, [&view](int n) {
      if (n == 1) view.cancelButton()->click();
    });
    QVERIFY(view.startSweep().isEmpty());
    QVERIFY(finished.wait(30000));
    QCOMPARE(finished.first().first().toBool(), true);
    QVERIFY(view.sweep().cancelled);
    QVERIFY(view.sweep().points.size() >= 1 && view.sweep().points.size() < 14);
    QVERIFY(view.status().contains("cancelled"));
    QVERIFY(view.runButton()->isEnabled() && !view.cancelButton()->isEnabled());
    QVERIFY(view.chart().error().isEmpty());  // finished points stay on the chart
    QVERIFY(view.chart().data().footer[0].contains("cancelled"));
    disconnect(first);

    // Cancelled from the progress bar's first report: the worker is still usable afterwards.
    finished.clear();
    auto* bar = view.findChild<QProgressBar*>();
    QVERIFY(bar);
    const auto c = connect(bar, &QProgressBar::valueChanged, &view, [&view](int v) {
      if (v > 0) view.cancelSweep();
    });
    QVERIFY(view.startSweep().isEmpty());
    QVERIFY(finished.wait(30000));
    QCOMPARE(finished.first().first().toBool(), true);
    disconnect(c);
    finished.clear();
    view.setSeqLens("64");
    QVERIFY(view.startSweep().isEmpty());
    QVERIFY(finished.wait(30000));
    QCOMPARE(finished.first().first().toBool(), false);
  }

  void viewRejectsBadInput() {
    BenchmarkView view;
    view.setWorkload(test::smallWorkload());
    view.setSelectedBackends({"cpu"});
    view.setSeqLens("64, abc");
    QVERIFY(view.startSweep().contains("abc"));
    view.setSeqLens("64, 64");
    QVERIFY(!view.startSweep().isEmpty());
    view.setSeqLens("64");
    view.setSelectedVariants({});
    QVERIFY(!view.startSweep().isEmpty());
    QVERIFY(!view.running());
    QVERIFY(!view.openSweep(test::scratchDir() + "/does-not-exist.json").isEmpty());
    QVERIFY(!view.exportSweepData(test::scratchDir() + "/nothing.json").isEmpty());
  }

  void destroyingARunningViewIsSafe() {
    auto* view = new BenchmarkView;
    view->setWorkload(test::smallWorkload());
    view->setSelectedBackends({"cpu"});
    view->setSeqLens("256, 512, 1024, 2048, 4096");
    QVERIFY(view->startSweep().isEmpty());
    QTest::qWait(30);
    delete view;  // cancels and joins the worker
  }
};

QTEST_MAIN(TestGuiCharts)
#include "test_gui_charts.moc"
