// The worker's job loop: inputs and runs are cached (zooming only re-probes the map), progress is
// throttled to about 20 updates a second, and every engine exception becomes a signal.
#include "engine_worker.hpp"

#include <QJsonDocument>
#include <QThread>
#include <new>

#include "attnscope/cost.hpp"
#include "attnscope/error.hpp"
#include "attnscope/io.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"

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

EngineWorker::EngineWorker(QObject* parent) : QObject(parent) {}
EngineWorker::~EngineWorker() = default;

Backend& EngineWorker::backend(const QString& name) {
  auto it = backends_.find(name);
  if (it == backends_.end()) {
    it = backends_.emplace(name, make_backend(name.toStdString())).first;
  }
  return *it->second;
}

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
  Backend& b = backend(backendName);
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

void EngineWorker::reportProgress(quint64 id, double fraction) {
  // Called by the engine on this thread, possibly thousands of times: emit at most every 50 ms.
  const auto now = std::chrono::steady_clock::now();
  if (now - lastReport_ < kProgressInterval && fraction < 1.0) return;
  lastReport_ = now;
  emit progress(id, phaseBegin_ + (phaseEnd_ - phaseBegin_) * std::clamp(fraction, 0.0, 1.0),
                phase_);
}

void EngineWorker::process(JobPtr job) {
  if (job->id < newest_.load()) return;  // superseded before it started
  const quint64 id = job->id;
  const CancelToken& cancel = job->cancel;
  cancel.set_progress_callback([this, id](double f) { reportProgress(id, f); });
  const auto setPhase = [this, id](const QString& what, double begin, double end) {
    phase_ = what;
    phaseBegin_ = begin;
    phaseEnd_ = end;
    lastReport_ = {};
    reportProgress(id, 0.0);
  };
  try {
    const Workload& w = job->workload;
    const AttentionProblem& p = w.problem;
    p.check();
    setPhase(tr("preparing inputs"), 0.0, 0.05);
    InputsPtr in = w.fileInputs ? w.fileInputs : inputsFor(w, p);
    cancel.throw_if_cancelled();
    setPhase(tr("running %1 on %2").arg(variantName(p.variant), resolvedBackend(w)), 0.05, 0.5);
    const auto result = run(w, p, in, cancel, true);

    auto out = std::make_shared<ViewResult>();
    out->id = id;
    out->request = job->request;
    out->workload = w;
    out->workerThread = QThread::currentThreadId();
    out->runResult = result;
    out->run.describe = QString::fromStdString(p.describe());
    out->run.backend = QString::fromStdString(result->backend);
    out->run.device = QString::fromStdString(backend(resolvedBackend(w)).device());
    out->run.seconds = result->seconds;
    const Cost c = cost_of(p);
    out->run.flops = c.flops;
    out->run.bytes = c.bytes;
    out->run.visiblePairs = c.visible_pairs;

    AnalysisContext ctx{backend(resolvedBackend(w)),
                        p,
                        *in,
                        in,
                        *result,
                        job->request,
                        cancel,
                        [&](const AttentionProblem& q, const InputsPtr& i, bool c) {
                          return run(w, q, i, cancel, c);
                        },
                        setPhase,
                        [&](const AttentionProblem& q) { return inputsFor(w, q); }};
    switch (job->request.view) {
      case ViewKind::map:
        analyzeMap(ctx, *out);
        break;
      case ViewKind::blocks:
        analyzeBlocks(ctx, *out);
        break;
      case ViewKind::compare:
        analyzeCompare(ctx, *out);
        break;
      case ViewKind::deltanet:
        analyzeDeltaNet(ctx, *out);
        break;
      case ViewKind::learn:
      case ViewKind::kv:  // the KV and throughput views run their own live loops
      case ViewKind::throughput:
      case ViewKind::benchmark:  // sweeps run on the Benchmark view's own worker thread
        break;
    }
    cancel.set_progress_callback({});
    emit finished(out);
  } catch (const Cancelled&) {
    cancel.set_progress_callback({});
    emit cancelled(id);
  } catch (const Error& e) {
    cancel.set_progress_callback({});
    emit failed(id, QString::fromStdString(e.what()));
  } catch (const std::bad_alloc&) {
    cancel.set_progress_callback({});
    emit failed(id, tr("out of memory: this problem is too large for this machine; reduce the "
                       "sequence length, heads or batch"));
  } catch (const std::exception& e) {
    cancel.set_progress_callback({});
    emit failed(id, tr("unexpected engine error: %1").arg(QString::fromStdString(e.what())));
  }
}

void EngineWorker::loadFile(quint64 id, const QString& path, int variant) {
  try {
    auto in = std::make_shared<Inputs>();
    in->tensors = io::load_tensors(path.toStdString());
    AttentionProblem p = AttentionProblem::defaults(static_cast<VariantId>(variant));
    variant_info(p.variant).infer_shape(*in, p);
    Workload w;
    w.problem = p;
    const QString shape =
        QString::fromUtf8(QJsonDocument(w.toJson()).toJson(QJsonDocument::Compact));
    emit fileLoaded(id, path, in, shape);
  } catch (const std::bad_alloc&) {
    emit fileFailed(id, path, tr("out of memory while loading the file"));
  } catch (const std::exception& e) {
    emit fileFailed(id, path, QString::fromStdString(e.what()));
  }
}

}  // namespace attnscope::gui
