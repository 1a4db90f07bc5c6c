// The explorer's jobs: inputs and runs are cached (zooming only re-probes the map) and progress is
// throttled to about 20 updates a second. Failures are exceptions; the GuiWorker delivers them.
#include "engine_worker.hpp"

#include <QJsonDocument>
#include <QThread>

#include "attnscope/cost.hpp"
#include "attnscope/error.hpp"
#include "attnscope/io.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"
#include "worker.hpp"

namespace attnscope::gui {
namespace {
constexpr size_t kInputsCacheSize = 4;
constexpr size_t kRunCacheSize = 8;
constexpr auto kProgressInterval = std::chrono::milliseconds(50);

QString problemKey(const AttentionProblem& p, const QString& backend, const Inputs* in) {
  Workload w;
  w.problem = p;
  w.backend = backend;
  w.pattern.clear();
  QJsonObject o = w.toJson();
  o["inputs"] = QString::number(reinterpret_cast<quintptr>(in));
  return QString::fromUtf8(QJsonDocument(o).toJson(QJsonDocument::Compact));
}
}  // namespace

InputsPtr EngineWorker::inputsFor(const Workload& w, const AttentionProblem& p) {
  Workload key = w;
  key.problem = p;
  const QString k = key.inputsKey();
  for (auto it = inputsCache_.begin(); it != inputsCache_.end(); ++it) {
    if (it->first == k) return it->second;
  }
  auto in = std::make_shared<const Inputs>(make_inputs(p, w.pattern.toStdString(), w.seed));
  inputsCache_.emplace_front(k, in);
  if (inputsCache_.size() > kInputsCacheSize) inputsCache_.pop_back();
  return in;
}

std::shared_ptr<const RunResult> EngineWorker::run(const Workload& w, const AttentionProblem& p,
                                                   const InputsPtr& in, const CancelToken& cancel,
                                                   bool cache) {
  const QString backendName = resolvedBackend(w);
  const QString key = problemKey(p, backendName, in.get());
  if (cache) {
    for (auto it = runCache_.begin(); it != runCache_.end(); ++it) {
      if (it->key == key) {
        CachedRun hit = *it;  // move to the front
        runCache_.erase(it);
        runCache_.push_front(hit);
        return hit.result;
      }
    }
  }
  Backend& b = backends_.get(backendName);
  if (Support s = b.supports(p); !s.ok) {
    throw Error("backend '" + backendName.toStdString() +
                "' cannot run this problem: " + s.why_not);
  }
  auto result = std::make_shared<const RunResult>(b.run(p, *in, Probes{}, cancel));
  if (cache) {
    runCache_.push_front({key, in, result});
    if (runCache_.size() > kRunCacheSize) runCache_.pop_back();
  }
  return result;
}

ViewResultPtr EngineWorker::compute(const EngineJob& job, const CancelToken& cancel,
                                    const Progress& progress) {
  // The engine reports each phase's own fraction; the bar shows the whole job's.
  QString phase;
  double phaseBegin = 0, phaseEnd = 1;
  Throttle throttle(kProgressInterval);
  const auto report = [&](double fraction) {
    if (!throttle.due(fraction >= 1.0)) return;
    progress(phaseBegin + (phaseEnd - phaseBegin) * std::clamp(fraction, 0.0, 1.0), phase);
  };
  cancel.set_progress_callback(report);
  const auto setPhase = [&](const QString& what, double begin, double end) {
    phase = what;
    phaseBegin = begin;
    phaseEnd = end;
    throttle.reset();
    report(0.0);
  };

  const Workload& w = job.workload;
  const AttentionProblem& p = w.problem;
  p.check();
  if (job.freshRun) {
    inputsCache_.clear();
    runCache_.clear();
  }
  setPhase(tr("preparing inputs"), 0.0, 0.05);
  InputsPtr in = w.fileInputs ? w.fileInputs : inputsFor(w, p);
  cancel.throw_if_cancelled();
  setPhase(tr("running %1 on %2").arg(variantName(p.variant), resolvedBackend(w)), 0.05, 0.5);
  const auto result = run(w, p, in, cancel, true);

  auto out = std::make_shared<ViewResult>();
  out->id = job.id;
  out->request = job.request;
  out->workload = w;
  out->workerThread = QThread::currentThreadId();
  out->runResult = result;
  out->run.describe = QString::fromStdString(p.describe());
  out->run.backend = QString::fromStdString(result->backend);
  out->run.device = QString::fromStdString(backends_.get(resolvedBackend(w)).device());
  out->run.seconds = result->seconds;
  const Cost c = cost_of(p);
  out->run.flops = c.flops;
  out->run.bytes = c.bytes;
  out->run.visiblePairs = c.visible_pairs;

  AnalysisContext ctx{backends_.get(resolvedBackend(w)),
                      p,
                      *in,
                      in,
                      *result,
                      job.request,
                      cancel,
                      [&](const AttentionProblem& q, const InputsPtr& i, bool c) {
                        return run(w, q, i, cancel, c);
                      },
                      setPhase,
                      [&](const AttentionProblem& q) { return inputsFor(w, q); }};
  analyze(ctx, *out);
  return out;
}

Workload EngineWorker::loadFile(const QString& path, VariantId variant) {
  auto in = std::make_shared<Inputs>();
  in->tensors = io::load_tensors(path.toStdString());
  AttentionProblem p = AttentionProblem::defaults(variant);
  variant_info(p.variant).infer_shape(*in, p);
  Workload shape;
  shape.problem = p;
  // Through JSON, like a preset: what the file implies, on the defaults of its variant.
  Workload w;
  Workload::fromJson(shape.toJson(), w);
  w.file = path;
  w.fileInputs = std::move(in);
  return w;
}

}  // namespace attnscope::gui
