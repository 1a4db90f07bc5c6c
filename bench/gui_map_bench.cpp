// How fast the explorer's attention map keeps up with the hand at long context: the explorer's own
// controller and worker (the GUI's code path, offscreen), a HeatmapWidget painting each frame.
// Times, per shape: the run, run end -> the whole map, zoom and pan within the run's pyramid, a
// deep zoom's first (preview) and exact frames, and Esc during the run and during a deep zoom
// (until the window is idle, and until the worker is free again). JSON out; never in CTest timing.
//
//   attnscope_gui_map_bench [--out FILE.json] [--smoke]
#include <QApplication>
#include <QElapsedTimer>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <cstdio>
#include <functional>

#include "attnscope/host_info.hpp"
#include "attnscope/problem.hpp"
#include "explorer_controller.hpp"
#include "heatmap_widget.hpp"

using namespace attnscope;
using namespace attnscope::gui;

namespace {

struct Frame {
  double ms = -1;         // since the request
  bool preview = false;   // a coarse first frame
  double runSeconds = 0;  // the run's own time, as the engine reported it
  int rows = 0, cols = 0;
};

class Bench {
 public:
  Bench() {
    heatmap_.resize(900, 860);
    QObject::connect(&c_, &ExplorerController::resultReady, [this](const ViewResultPtr& r) {
      Frame f;
      if (!r->maps.isEmpty()) {
        heatmap_.setMap(r->maps.front());
        heatmap_.grab();  // the frame as the window would paint it
        f.rows = r->maps.front().rows;
        f.cols = r->maps.front().cols;
      }
      f.ms = double(clock_.nsecsElapsed()) / 1e6;
      f.preview = r->preview;
      f.runSeconds = r->run.seconds;
      frames_.push_back(f);
      if (!r->preview) done_ = true;
    });
    QObject::connect(&c_, &ExplorerController::progressChanged,
                     [this](double, const QString& phase) {
                       if (phase == QObject::tr("attention map") && mapPhaseMs_ < 0) {
                         mapPhaseMs_ = double(clock_.nsecsElapsed()) / 1e6;
                       }
                     });
    QObject::connect(&c_, &ExplorerController::errorOccurred, [this](const QString& e) {
      std::fprintf(stderr, "error: %s\n", qPrintable(e));
      done_ = true;
    });
    QObject::connect(&c_, &ExplorerController::cancelled,
                     [this] { cancelledMs_ = double(clock_.nsecsElapsed()) / 1e6; });
  }

  // Starts a request and pumps events until its final frame (or `until` says stop).
  void start(const std::function<void()>& request) {
    frames_.clear();
    done_ = false;
    mapPhaseMs_ = cancelledMs_ = -1;
    clock_.start();
    request();
  }
  void pumpUntil(const std::function<bool()>& stop) {
    while (!stop()) QCoreApplication::processEvents(QEventLoop::AllEvents, 5);
  }
  void finish() {
    pumpUntil([this] { return done_; });
  }

  ExplorerController c_;
  HeatmapWidget heatmap_;
  QElapsedTimer clock_;
  QVector<Frame> frames_;
  bool done_ = false;
  double mapPhaseMs_ = -1, cancelledMs_ = -1;
};

ViewRequest mapRequest(Region region = {}) {
  ViewRequest r;
  r.view = ViewKind::map;
  r.region = region;
  r.outRows = r.outCols = 768;
  return r;
}

QJsonObject frameJson(const QVector<Frame>& frames) {
  QJsonObject o;
  for (const Frame& f : frames) {
    o[f.preview ? "first_frame_ms" : "final_frame_ms"] = f.ms;
    o[f.preview ? "first_frame_cells" : "final_frame_cells"] =
        QStringLiteral("%1x%2").arg(f.rows).arg(f.cols);
  }
  if (!o.contains("first_frame_ms") && !frames.isEmpty()) o["first_frame_ms"] = frames.back().ms;
  return o;
}

QJsonObject measure(Bench& b, const QString& name, const Workload& w) {
  QJsonObject out{{"name", name}, {"describe", QString::fromStdString(w.problem.describe())}};
  std::fprintf(stderr, "%s: %s\n", qPrintable(name), w.problem.describe().c_str());
  const qint64 lq = w.problem.shape.q_len, lk = w.problem.shape.kv_len;

  // 1. The run and its whole map.
  b.start([&] {
    b.c_.setViewRequest(mapRequest());
    b.c_.setWorkload(w);
    b.c_.recompute();
  });
  b.finish();
  const Frame whole = b.frames_.back();
  out["run_s"] = whole.runSeconds;
  out["whole_map_after_run_ms"] = whole.ms - b.mapPhaseMs_;
  out["whole_map_share_of_run"] = (whole.ms - b.mapPhaseMs_) / 1000.0 / whole.runSeconds;
  out["job_total_ms"] = whole.ms;

  // 2. Zoom and pan within the pyramid (a quarter of the map, then moved by an eighth).
  const Region quarter{lq / 4, lq * 3 / 4, lk / 4, lk * 3 / 4};
  b.start([&] { b.c_.setViewRequest(mapRequest(quarter), true); });
  b.finish();
  out["zoom_in_pyramid"] = frameJson(b.frames_);
  const Region moved{quarter.row0 + lq / 8, quarter.row1 + lq / 8, quarter.col0 + lk / 8,
                     quarter.col1 + lk / 8};
  b.start([&] { b.c_.setViewRequest(mapRequest(moved), true); });
  b.finish();
  out["pan_in_pyramid"] = frameJson(b.frames_);
  b.start([&] { b.c_.setViewRequest(mapRequest(), true); });
  b.finish();
  out["reset_zoom"] = frameJson(b.frames_);

  // 3. A deep zoom: 1/16 of each axis, finer than the pyramid's cells: preview, then exact.
  const Region deep{lq / 2, lq / 2 + lq / 16, lk / 2 - lk / 16, lk / 2};
  b.start([&] { b.c_.setViewRequest(mapRequest(deep), true); });
  b.finish();
  out["deep_zoom"] = frameJson(b.frames_);

  // 4. Esc during a deep zoom's probe, then during a fresh run: until the window is idle, and until
  // the worker answers the next (cached, whole-map) request.
  const Region deep2{lq / 4, lq / 4 + lq / 16, lk / 8, lk / 8 + lk / 16};
  auto esc = [&](const char* key, const std::function<void()>& request, int afterMs) {
    b.start(request);
    b.pumpUntil([&] { return b.clock_.elapsed() >= afterMs || b.done_; });
    const bool finishedFirst = b.done_;
    const double t0 = double(b.clock_.nsecsElapsed()) / 1e6;
    b.c_.cancel();
    QCoreApplication::processEvents();
    const double idle = b.cancelledMs_ >= 0 ? b.cancelledMs_ - t0 : -1;
    // The next request is the first workload's whole map, answered from the cached run: what it
    // waits for beyond that is the cancelled job giving up.
    b.frames_.clear();
    b.done_ = false;
    b.c_.setWorkload(w);
    b.c_.setViewRequest(mapRequest(), true);
    b.finish();
    out[key] = QJsonObject{{"cancelled_at_ms", t0},
                           {"finished_before_cancel", finishedFirst},
                           {"window_idle_ms", idle},
                           {"worker_free_ms", b.frames_.back().ms - t0}};
  };
  esc(
      "esc_during_deep_zoom", [&] { b.c_.setViewRequest(mapRequest(deep2), true); }, 60);
  Workload fresh = w;
  fresh.seed += 1;
  esc(
      "esc_during_run",
      [&] {
        b.c_.setWorkload(fresh);
        b.c_.recompute();
      },
      int(whole.runSeconds * 300));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  qputenv("QT_QPA_PLATFORM", "offscreen");
  QApplication app(argc, argv);
  QString outPath = QStringLiteral("gui_map_bench.json");
  bool smoke = false;
  for (int i = 1; i < argc; ++i) {
    const QString a = QString::fromLocal8Bit(argv[i]);
    if (a == "--smoke") smoke = true;
    if (a == "--out" && i + 1 < argc) outPath = QString::fromLocal8Bit(argv[++i]);
  }
  Bench bench;
  QJsonArray results;
  Workload dense = Workload::defaults();
  dense.problem = AttentionProblem::defaults(VariantId::dense);
  dense.problem.shape = {1, 8, 8, 32768, 32768, 64, 64};
  dense.problem.causal = true;
  dense.pattern = QStringLiteral("local");
  dense.backend = QStringLiteral("cpu");
  Workload moba = dense;
  moba.problem = AttentionProblem::defaults(VariantId::moba);
  moba.problem.shape = {1, 8, 8, 131072, 131072, 64, 64};
  moba.problem.moba.block_size = 4096;
  moba.problem.moba.top_k = 4;
  if (smoke) {
    dense.problem.shape.q_len = dense.problem.shape.kv_len = 1024;
    moba.problem.shape.q_len = moba.problem.shape.kv_len = 2048;
    moba.problem.moba.block_size = 256;
  }
  results.append(measure(bench, QStringLiteral("dense_causal_32k"), dense));
  results.append(measure(bench, QStringLiteral("moba_131k"), moba));
  const QJsonObject doc{{"machine", QString::fromStdString(host::cpu_model())},
                        {"threads", QThread::idealThreadCount()},
                        {"results", results}};
  QFile f(outPath);
  if (!f.open(QIODevice::WriteOnly)) {
    std::fprintf(stderr, "cannot write %s\n", qPrintable(outPath));
    return 1;
  }
  f.write(QJsonDocument(doc).toJson());
  std::printf("%s\n", QJsonDocument(doc).toJson().constData());
  return 0;
}
