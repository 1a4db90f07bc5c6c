// Hostile input: the built `attnscope` binary run over a table of invocations meant to break it
// (absurd screenshot sizes, missing or clashing output folders, the input as its own output) and a
// few valid ones. A refusal exits non-zero with exactly one "attnscope: " line on stderr, leaves no
// output (and no temporary file) behind and never touches the inputs; a valid run exits 0 with
// nothing on stderr and writes decodable files. In-process rows do the same for workload and
// preset JSON (non-integer and overflowing dimensions, bad seeds, non-object documents).
#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QSvgRenderer>
#include <QTest>
#include <limits>

#include "attnscope/cost.hpp"
#include "attnscope/sweep.hpp"
#include "exporter.hpp"
#include "gui_test_support.hpp"
#include "headless.hpp"
#include "presets.hpp"

using namespace attnscope;
using namespace attnscope::gui;

namespace {

// A tiny sweep: dense at two lengths on one backend.
SweepResult tinySweep() {
  SweepResult r;
  r.config.variants = {"dense"};
  r.config.seq_lens = {128, 256};
  r.config.backends = {"cpu"};
  r.config.repetitions = 1;
  r.config.base = AttentionProblem::defaults(VariantId::dense);
  r.config.pattern = "random";
  r.machine = "Test CPU";
  r.devices = {"cpu (test device)"};
  r.date = "2026-01-01T00:00:00Z";
  for (int64_t L : r.config.seq_lens) {
    SweepPoint p;
    p.variant = "dense";
    p.backend = "cpu";
    p.seq_len = L;
    p.threads = 1;
    p.problem = r.config.base;
    p.problem.shape.q_len = p.problem.shape.kv_len = L;
    p.cost = cost_of(p.problem);
    const double s = 1e-3 * double(L) / 128.0;
    p.seconds = {s};
    p.median_s = p.mean_s = p.min_s = s;
    p.tokens_per_s = double(L) / s;
    p.gflops = p.cost.flops / s / 1e9;
    p.gbps = p.cost.bytes / s / 1e9;
    r.points.push_back(p);
  }
  return r;
}

bool writeFile(const QString& path, const QByteArray& bytes) {
  QFile f(path);
  return f.open(QIODevice::WriteOnly) && f.write(bytes) == bytes.size();
}

// Every entry of a folder (files and folders, hidden ones too) with a hash of each file's bytes:
// equal before and after means nothing was changed, added (a stray temporary file) or removed.
QMap<QString, QByteArray> snapshot(const QString& dir) {
  QMap<QString, QByteArray> out;
  const QDir d(dir);
  for (const QFileInfo& info :
       d.entryInfoList(QDir::AllEntries | QDir::Hidden | QDir::System | QDir::NoDotAndDotDot)) {
    QByteArray hash = "<folder>";
    if (!info.isDir()) {
      QFile f(info.filePath());
      hash = f.open(QIODevice::ReadOnly)
                 ? QCryptographicHash::hash(f.readAll(), QCryptographicHash::Sha256).toHex()
                 : QByteArray("<unreadable>");
    }
    out.insert(info.fileName(), hash);
  }
  return out;
}

QStringList nonEmptyLines(const QString& s) {
  return s.split('\n', Qt::SkipEmptyParts);
}

struct Run {
  bool finished = false;
  bool crashed = false;
  int code = -1;
  QString out, err;
};

// Runs the GUI binary; `platform` non-empty sets QT_QPA_PLATFORM as a caller would (main() must
// still print nothing but its own line), `ulimitKb` > 0 runs it under `ulimit -v`.
Run runBinary(const QStringList& args, const QString& platform, int ulimitKb) {
  QProcess p;
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  env.remove("QT_QPA_PLATFORM");
  env.remove("QT_LOGGING_RULES");  // the binary's own filtering is under test, not CTest's
  if (!platform.isEmpty()) env.insert("QT_QPA_PLATFORM", platform);
  p.setProcessEnvironment(env);
  if (ulimitKb > 0) {
    p.start("/bin/sh",
            QStringList{"-c", QStringLiteral("ulimit -v %1 && exec \"$0\" \"$@\"").arg(ulimitKb),
                        QStringLiteral(ATTNSCOPE_GUI_EXE)} +
                args);
  } else {
    p.start(QStringLiteral(ATTNSCOPE_GUI_EXE), args);
  }
  Run r;
  if (!p.waitForFinished(60000)) {
    p.kill();
    p.waitForFinished(5000);
    return r;
  }
  r.finished = true;
  r.crashed = p.exitStatus() != QProcess::NormalExit;
  r.code = p.exitCode();
  r.out = QString::fromUtf8(p.readAllStandardOutput());
  r.err = QString::fromUtf8(p.readAllStandardError());
  return r;
}

}  // namespace

class TestGuiHostile : public QObject {
  Q_OBJECT

  QString root_, in_;
  int row_ = 0;

 private slots:
  void initTestCase() {
    root_ = test::scratchDir() + "/hostile";
    QDir(root_).removeRecursively();
    in_ = root_ + "/in";
    QVERIFY(QDir().mkpath(in_));
    const QByteArray sweep = QByteArray::fromStdString(sweep_to_json(tinySweep()));
    QVERIFY(writeFile(in_ + "/sweep.json", sweep));
    QVERIFY(writeFile(in_ + "/sweep-as.png", sweep));  // a sweep whose name is a chart's
    QVERIFY(writeFile(in_ + "/old-chart.svg", "<svg>an earlier chart, to be kept</svg>"));
    QVERIFY(QDir().mkpath(in_ + "/folder.png"));
  }

  // ---- the binary --------------------------------------------------------------------------

  void invocations_data() {
    QTest::addColumn<QStringList>("args");     // {in}: the inputs, {out}: a fresh folder
    QTest::addColumn<bool>("succeeds");        // exit 0, else non-zero (never a crash)
    QTest::addColumn<QString>("mention");      // refusals: in the one line, exactly once
    QTest::addColumn<QStringList>("outputs");  // exactly what {out} holds afterwards
    QTest::addColumn<QString>("platform");     // QT_QPA_PLATFORM set by the caller
    QTest::addColumn<int>("ulimitKb");         // run under ulimit -v

    const QStringList shot{"--preset", "first-look", "--view", "map", "--screenshot"};
    const auto size = [&](const QString& file, const QString& wxh) {
      return shot + QStringList{file, "--size", wxh};
    };
    // 1. Screenshot sizes: parsed strictly and refused before any window exists.
    QTest::newRow("size-tall") << size("{out}/a.png", "1200x99999999") << false << "16384"
                               << QStringList{} << QString() << 0;
    QTest::newRow("size-wide") << size("{out}/a.png", "99999999x800") << false << "16384"
                               << QStringList{} << QString() << 0;
    QTest::newRow("size-negative") << size("{out}/a.png", "-5x99999999") << false << "-5x99999999"
                                   << QStringList{} << QString() << 0;
    QTest::newRow("size-svg") << size("{out}/a.svg", "1200x99999999") << false << "16384"
                              << QStringList{} << QString() << 0;
    QTest::newRow("size-60000-under-16GiB") << size("{out}/a.png", "60000x60000") << false
                                            << "16384" << QStringList{} << QString() << 16777216;
    QTest::newRow("size-just-over") << size("{out}/a.png", "16385x16384") << false << "16385"
                                    << QStringList{} << QString() << 0;
    QTest::newRow("size-zero") << size("{out}/a.png", "0x0") << false << "0x0" << QStringList{}
                               << QString() << 0;
    QTest::newRow("size-garbage") << size("{out}/a.png", "abc") << false << "'abc'" << QStringList{}
                                  << QString() << 0;
    QTest::newRow("size-three-parts") << size("{out}/a.png", "1200x800x2") << false << "1200x800x2"
                                      << QStringList{} << QString() << 0;
    QTest::newRow("size-fraction") << size("{out}/a.png", "640.5x480") << false << "640.5x480"
                                   << QStringList{} << QString() << 0;
    QTest::newRow("size-blank") << size("{out}/a.png", " 640x480") << false << "640x480"
                                << QStringList{} << QString() << 0;
    QTest::newRow("size-20-digits") << size("{out}/a.png", "1200x99999999999999999999") << false
                                    << "16384" << QStringList{} << QString() << 0;
    QTest::newRow("size-caller-chose-offscreen") << size("{out}/a.png", "1200x99999999") << false
                                                 << "16384" << QStringList{} << "offscreen" << 0;
    // Screenshot targets and arguments.
    QTest::newRow("shot-missing-folder") << size("{out}/missing_dir/a.png", "640x480") << false
                                         << "missing_dir" << QStringList{} << QString() << 0;
    QTest::newRow("shot-is-a-folder") << size("{in}/folder.png", "640x480") << false << "folder.png"
                                      << QStringList{} << QString() << 0;
    QTest::newRow("shot-bad-suffix")
        << size("{out}/a.bmp", "640x480") << false << "a.bmp" << QStringList{} << QString() << 0;
    QTest::newRow("shot-unknown-preset")
        << QStringList{"--preset", "nope", "--screenshot", "{out}/a.png"} << false << "nope"
        << QStringList{} << QString() << 0;
    QTest::newRow("unknown-option") << shot + QStringList{"{out}/a.png", "--bogus"} << false
                                    << "bogus" << QStringList{} << QString() << 0;
    QTest::newRow("missing-value") << QStringList{"--preset", "first-look", "--screenshot"} << false
                                   << "--screenshot" << QStringList{} << QString() << 0;
    QTest::newRow("stray-argument") << shot + QStringList{"{out}/a.png", "stray"} << false
                                    << "stray" << QStringList{} << QString() << 0;
    // 4. Charts: every output checked before anything is written; never the input.
    const QStringList chart{"chart", "{in}/sweep.json"};
    QTest::newRow("chart-csv-missing-folder")
        << chart + QStringList{"--out", "{out}/chart.svg", "--csv", "{out}/missing_dir/x.csv"}
        << false << "missing_dir" << QStringList{} << QString() << 0;
    QTest::newRow("chart-out-missing-folder")
        << chart + QStringList{"--out", "{out}/missing_dir/c.png", "--csv", "{out}/x.csv"} << false
        << "missing_dir" << QStringList{} << QString() << 0;
    QTest::newRow("chart-keeps-an-existing-chart")
        << chart + QStringList{"--out", "{in}/old-chart.svg", "--csv", "{out}/missing_dir/x.csv"}
        << false << "missing_dir" << QStringList{} << QString() << 0;
    QTest::newRow("chart-out-is-a-folder")
        << chart + QStringList{"--out", "{in}/folder.png"} << false << "folder.png" << QStringList{}
        << QString() << 0;
    QTest::newRow("chart-out-is-the-input")
        << QStringList{"chart", "{in}/sweep-as.png", "--out", "{in}/sweep-as.png"} << false
        << "sweep-as.png" << QStringList{} << QString() << 0;
    // 5. A missing input is named once, not "cannot read X: X: ...".
    QTest::newRow("chart-missing-input")
        << QStringList{"chart", "{in}/missing.json", "--out", "{out}/c.png"} << false
        << "missing.json" << QStringList{} << QString() << 0;
    QTest::newRow("chart-input-is-a-folder")
        << QStringList{"chart", "{in}", "--out", "{out}/c.png"} << false << "is a directory"
        << QStringList{} << QString() << 0;
    QTest::newRow("chart-input-is-a-device")
        << QStringList{"chart", "/dev/zero", "--out", "{out}/c.png"} << false << "/dev/zero"
        << QStringList{} << QString() << 0;
    QTest::newRow("chart-huge-dpi") << chart + QStringList{"--out", "{out}/c.png", "--dpi", "99999"}
                                    << false << "99999" << QStringList{} << QString() << 0;
    QTest::newRow("chart-empty-csv") << chart + QStringList{"--out", "{out}/c.png", "--csv", ""}
                                     << false << "--csv" << QStringList{} << QString() << 0;
    // Valid invocations.
    QTest::newRow("ok-png-640x480") << size("{out}/a.png", "640x480") << true << QString()
                                    << QStringList{"a.png"} << QString() << 0;
    QTest::newRow("ok-svg-caller-chose-offscreen")
        << size("{out}/a.svg", "800x600") << true << QString() << QStringList{"a.svg"}
        << "offscreen" << 0;
    QTest::newRow("ok-png-under-16GiB") << size("{out}/a.png", "1200x800") << true << QString()
                                        << QStringList{"a.png"} << QString() << 16777216;
    QTest::newRow("ok-chart-png-and-csv")
        << chart + QStringList{"--out", "{out}/c.png", "--csv", "{out}/c.csv"} << true << QString()
        << QStringList{"c.csv", "c.png"} << QString() << 0;
    QTest::newRow("ok-list-presets")
        << QStringList{"--list-presets"} << true << QString() << QStringList{} << QString() << 0;
  }

  void invocations() {
    QFETCH(QStringList, args);
    QFETCH(bool, succeeds);
    QFETCH(QString, mention);
    QFETCH(QStringList, outputs);
    QFETCH(QString, platform);
    QFETCH(int, ulimitKb);
#if defined(__SANITIZE_ADDRESS__)
    // AddressSanitizer reserves terabytes of address space for its shadow and cannot start under
    // a `ulimit -v`; the release build runs these rows.
    if (ulimitKb > 0) QSKIP("ulimit -v rows do not run under AddressSanitizer");
#endif

    const QString out = root_ + QStringLiteral("/out%1").arg(++row_);
    QDir(out).removeRecursively();
    QVERIFY(QDir().mkpath(out));
    for (QString& a : args) a.replace("{in}", in_).replace("{out}", out);
    const QMap<QString, QByteArray> inputsBefore = snapshot(in_);

    const Run r = runBinary(args, platform, ulimitKb);
    const QString what = args.join(' ') + "\nstderr:\n" + r.err;
    QVERIFY2(r.finished, qPrintable("timed out: " + what));
    QVERIFY2(!r.crashed, qPrintable("crashed: " + what));
    QVERIFY2(snapshot(in_) == inputsBefore, qPrintable("inputs changed: " + what));
    QStringList written = snapshot(out).keys();
    written.sort();
    QVERIFY2(written == outputs,
             qPrintable("left in the output folder: " + written.join(", ") + "\n" + what));
    if (!succeeds) {
      QVERIFY2(r.code != 0, qPrintable("exit 0: " + what));
      const QStringList lines = nonEmptyLines(r.err);
      QVERIFY2(lines.size() == 1, qPrintable("not one line: " + what));
      QVERIFY2(lines[0].startsWith("attnscope: "), qPrintable(what));
      QVERIFY2(!lines[0].contains("no error occurred"), qPrintable(what));
      QVERIFY2(lines[0].count(mention) == 1,
               qPrintable(QStringLiteral("'%1' not named exactly once: ").arg(mention) + what));
      return;
    }
    QVERIFY2(r.code == 0, qPrintable(QStringLiteral("exit %1: ").arg(r.code) + what));
    QVERIFY2(r.err.isEmpty(), qPrintable("stderr on success: " + what));
    for (const QString& name : outputs) {
      const QString path = out + "/" + name;
      if (name.endsWith(".png")) {
        const QImage image(path);
        QVERIFY2(!image.isNull(), qPrintable(path));
        // The window never shrinks below its minimum size, so 640x480 may come out larger.
        if (args.contains("640x480")) QVERIFY(image.width() >= 640 && image.height() >= 480);
      } else if (name.endsWith(".svg")) {
        QVERIFY2(QSvgRenderer(path).isValid(), qPrintable(path));
      } else if (name.endsWith(".csv")) {
        QFile f(path);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QVERIFY(f.readAll().startsWith("# attnscope "));
      }
    }
    if (args.contains("--list-presets")) QVERIFY(r.out.contains("first-look"));
  }

  // ---- the same checks in-process ---------------------------------------------------------

  void screenshotSizes() {
    int w = 0, h = 0;
    QVERIFY(parseScreenshotSize("1x1", w, h).isEmpty());
    QCOMPARE(QSize(w, h), QSize(1, 1));
    QVERIFY(parseScreenshotSize("16384X16384", w, h).isEmpty());
    QCOMPARE(QSize(w, h), QSize(16384, 16384));
    for (const char* bad :
         {"", "x", "1200", "1200x", "x800", "0x800", "1200x0", "-1x800", "+1x800", "1200x800 ",
          "1200*800", "1e3x800", "16385x1", "4294967297x1", "99999999999999999999999x1"}) {
      const QString e = parseScreenshotSize(QString::fromLatin1(bad), w, h);
      QVERIFY2(!e.isEmpty() && !e.contains('\n'), bad);
      QVERIFY2(e.contains("16384"), qPrintable(e));
    }
    // The render path refuses on its own, whatever the caller checked.
    QString message;
    QCOMPARE(renderHeadless("first-look", "map", root_ + "/never.png", &message, 1200, 99999999),
             2);
    QVERIFY(message.contains("16384"));
    QVERIFY(!QFile::exists(root_ + "/never.png"));
  }

  // A figure export whose image would be too large is refused before any paint device exists,
  // and an existing file at the target is left as it was.
  void oversizedFigureExportIsRefused() {
    QWidget widget;
    widget.resize(2000, 1500);
    const QString path = root_ + "/figure.png";
    QVERIFY(writeFile(path, "an earlier figure"));
    const QString e = exportFigure(&widget, path, 1200);  // 25000 x 18750 pixels
    QVERIFY2(e.contains("16384") && !e.contains('\n'), qPrintable(e));
    QFile f(path);
    QVERIFY(f.open(QIODevice::ReadOnly));
    QCOMPARE(f.readAll(), QByteArray("an earlier figure"));
    QVERIFY(exportFigure(&widget, root_ + "/missing_dir/figure.svg").contains("no such folder"));
    QVERIFY(exportFigure(&widget, root_ + "/figure-small.png", 96).isEmpty());
    QCOMPARE(QImage(root_ + "/figure-small.png").size(), QSize(2000, 1500));
  }

  void workloadJson_data() {
    QTest::addColumn<QByteArray>("json");
    QTest::addColumn<QString>("error");  // a substring of the message; empty: accepted
    QTest::addColumn<QString>("seed");   // accepted rows: the seed read, when not empty

    // 2. Overflowing and non-integer dimensions.
    QTest::newRow("mla-nope-int64-max")
        << QByteArray(R"({"variant":"mla","mla":{"nope_dim":9223372036854775807}})")
        << "'mla.nope_dim' + 'mla.rope_dim' overflows" << QString();
    QTest::newRow("mla-both-int64-min")
        << QByteArray(R"({"variant":"mla","mla":{"nope_dim":-9223372036854775808,"rope_dim":-1}})")
        << "overflows" << QString();
    QTest::newRow("fractional") << QByteArray(R"({"head_dim":64.5})")
                                << "'head_dim' must be an integer, got 64.5" << QString();
    QTest::newRow("huge-float") << QByteArray(R"({"q_len":1e300})")
                                << "'q_len' must be an integer, got 1e+300" << QString();
    QTest::newRow("string-number")
        << QByteArray(R"({"heads":"4"})") << "'heads' must be an integer, got \"4\"" << QString();
    QTest::newRow("null") << QByteArray(R"({"kv_len":null})")
                          << "'kv_len' must be an integer, got null" << QString();
    QTest::newRow("nested-fraction") << QByteArray(R"({"swa":{"window":2.5}})")
                                     << "'swa.window' must be an integer, got 2.5" << QString();
    QTest::newRow("nested-not-object")
        << QByteArray(R"({"mla":[1,2]})") << "'mla' must be an object" << QString();
    QTest::newRow("bool-as-number")
        << QByteArray(R"({"causal":1})") << "'causal' must be true or false, got 1" << QString();
    QTest::newRow("variant-not-string")
        << QByteArray(R"({"variant":5})") << "'variant' must be a string" << QString();
    QTest::newRow("scale-string") << QByteArray(R"({"scale":"big"})") << "'scale' must be a number"
                                  << QString();
    // Seeds.
    QTest::newRow("seed-letters") << QByteArray(R"({"seed":"abc"})") << "'seed'" << QString();
    QTest::newRow("seed-2^64") << QByteArray(R"({"seed":"18446744073709551616"})") << "'seed'"
                               << QString();
    QTest::newRow("seed-negative-string")
        << QByteArray(R"({"seed":"-1"})") << "'seed'" << QString();
    QTest::newRow("seed-blank") << QByteArray(R"({"seed":" 5"})") << "'seed'" << QString();
    QTest::newRow("seed-empty") << QByteArray(R"({"seed":""})") << "'seed'" << QString();
    QTest::newRow("seed-negative-number") << QByteArray(R"({"seed":-1})") << "'seed'" << QString();
    QTest::newRow("seed-fraction") << QByteArray(R"({"seed":1.5})") << "'seed'" << QString();
    // Old and ordinary files keep loading.
    QTest::newRow("seed-max-string")
        << QByteArray(R"({"seed":"18446744073709551615"})") << QString() << "18446744073709551615";
    QTest::newRow("seed-number") << QByteArray(R"({"seed":42})") << QString() << "42";
    QTest::newRow("seed-string") << QByteArray(R"({"seed":"7"})") << QString() << "7";
    QTest::newRow("integral-double")
        << QByteArray(R"({"head_dim":64.0})") << QString() << QString();
    QTest::newRow("scale-null") << QByteArray(R"({"scale":null})") << QString() << QString();
    QTest::newRow("defaults-round-trip")
        << QJsonDocument(Workload::forVariant(VariantId::mla).toJson()).toJson() << QString()
        << "1";
  }

  void workloadJson() {
    QFETCH(QByteArray, json);
    QFETCH(QString, error);
    QFETCH(QString, seed);
    QJsonParseError parse;
    const QJsonDocument doc = QJsonDocument::fromJson(json, &parse);
    QVERIFY2(doc.isObject(), qPrintable(parse.errorString()));
    Workload w;
    const QString e = Workload::fromJson(doc.object(), w);
    if (error.isEmpty()) {
      QVERIFY2(e.isEmpty(), qPrintable(e));
      if (!seed.isEmpty()) QCOMPARE(QString::number(w.seed), seed);
    } else {
      QVERIFY2(e.contains(error), qPrintable(e));
      QVERIFY(!e.contains('\n'));
    }
  }

  void presetJson_data() {
    QTest::addColumn<QByteArray>("json");
    QTest::addColumn<QString>("error");  // a substring of the message; empty: accepted

    // 3. Documents that are not an object say what they are.
    QTest::newRow("array") << QByteArray("[]") << "expected a JSON object, got an array";
    QTest::newRow("array-of-objects")
        << QByteArray(R"([{"name":"x"}])") << "expected a JSON object, got an array";
    QTest::newRow("not-json") << QByteArray("not json") << "invalid JSON at offset";
    QTest::newRow("empty") << QByteArray("") << "invalid JSON";
    QTest::newRow("truncated") << QByteArray(R"({"name": "x", )") << "invalid JSON at offset";
    // Types of the preset's own fields.
    QTest::newRow("workload-array") << QByteArray(R"({"name":"x","workload":[]})")
                                    << "'workload' must be an object, got an array";
    QTest::newRow("views-string") << QByteArray(R"({"name":"x","views":"map"})")
                                  << "'views' must be an array";
    QTest::newRow("name-number") << QByteArray(R"({"name":5})") << "'name' must be a string";
    // Dimensions go through Workload::fromJson.
    QTest::newRow("fractional-dim") << QByteArray(R"({"name":"x","workload":{"head_dim":64.5}})")
                                    << "preset x: 'head_dim' must be an integer, got 64.5";
    QTest::newRow("huge-float-dim") << QByteArray(R"({"name":"x","workload":{"heads":1e300}})")
                                    << "preset x: 'heads' must be an integer, got 1e+300";
    QTest::newRow("overflow")
        << QByteArray(
               R"({"name":"x","workload":{"variant":"mla","mla":{"nope_dim":9223372036854775807}}})")
        << "overflows";
    QTest::newRow("valid") << QByteArray(R"({"name":"x","view":"map","workload":{"heads":2}})")
                           << QString();
  }

  void presetJson() {
    QFETCH(QByteArray, json);
    QFETCH(QString, error);
    Preset p;
    const QString e = parsePreset(json, p);
    if (error.isEmpty()) {
      QVERIFY2(e.isEmpty(), qPrintable(e));
      QCOMPARE(p.name, QStringLiteral("x"));
      return;
    }
    QVERIFY2(e.contains(error), qPrintable(e));
    QVERIFY2(!e.contains("no error occurred"), qPrintable(e));
    QVERIFY(!e.contains('\n'));
  }

  // A saved workload that would overflow falls back to the defaults (no undefined behaviour).
  void savedOverflowingWorkloadIsIgnored() {
    QStandardPaths::setTestModeEnabled(true);  // QSettings under ~/.qttest, not the user's
    QCoreApplication::setOrganizationName("attnscope-hostile-tests");
    QCoreApplication::setApplicationName("attnscope-hostile-tests");
    QSettings().clear();
    QJsonObject saved = Workload::forVariant(VariantId::mla).toJson();
    QJsonObject mla = saved.value("mla").toObject();
    mla["nope_dim"] = QJsonValue(qint64(std::numeric_limits<qint64>::max()));
    saved["mla"] = mla;
    QSettings().setValue("workload/last", QJsonDocument(saved).toJson(QJsonDocument::Compact));
    {
      MainWindow w;
      QCOMPARE(w.controller().workload().problem.variant, Workload::defaults().problem.variant);
    }
    QSettings().clear();
  }

  // 5. A tensor file that cannot be loaded is named once in the message.
  void loadErrorNamesTheFileOnce() {
    const QString path = root_ + "/missing-tensors.safetensors";
    ExplorerController c;
    QSignalSpy errors(&c, &ExplorerController::errorOccurred);
    c.loadFile(path);
    QVERIFY(errors.wait(10000));
    const QString e = errors.first().at(0).toString();
    QVERIFY2(e.count("missing-tensors.safetensors") == 1, qPrintable(e));
  }
};

QTEST_MAIN(TestGuiHostile)
#include "test_gui_hostile.moc"
