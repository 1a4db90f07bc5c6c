// The explorer's jobs: inputs and runs are cached (zooming only re-probes the map) and progress is
// throttled to about 20 updates a second. Failures are exceptions; the GuiWorker delivers them.
#include "engine_worker.hpp"

#include <QJsonDocument>
#include <QThread>
#include <algorithm>

#include "attnscope/cost.hpp"
#include "attnscope/error.hpp"
#include "attnscope/host_info.hpp"
#include "attnscope/io.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"
#include "worker.hpp"

namespace attnscope::gui {
namespace {
constexpr size_t kInputsCacheSize = 4;
constexpr size_t kRunCacheSize = 8;
// The map pyramid: 2048 cells per axis (finer than any screen's plot), at most 256 MiB per run (a
// 32-head run gets 1024 cells per axis).
constexpr int64_t kPyramidCells = 2048;
constexpr int64_t kPyramidBytes = int64_t(256) << 20;

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
  trimToBudget();
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
  // The run pools the map's overview as it goes (backends with a tiled path: the CPU's), so the
  // whole map and shallow zooms need no second pass over the scores.
  Probes probes;
  probes.pyramid.cells = kPyramidCells;
  probes.pyramid.max_bytes = kPyramidBytes;
  auto result = std::make_shared<const RunResult>(b.run(p, *in, probes, cancel));
  if (cache) {
    runCache_.push_front({key, in, result});
    if (runCache_.size() > kRunCacheSize) runCache_.pop_back();
    trimToBudget();
  }
  return result;
}

namespace {
int64_t bytesOf(const Inputs& in) {
  int64_t n = 0;
  for (const auto& [name, t] : in.tensors) n += t.numel() * int64_t(sizeof(float));
  return n;
}
int64_t bytesOf(const RunResult& r) {
  int64_t n = (r.o.numel() + r.lse.numel()) * int64_t(sizeof(float));
  if (r.selection) n += r.selection->numel() * int64_t(sizeof(int32_t));
  if (r.final_state) n += r.final_state->numel() * int64_t(sizeof(float));
  for (const auto& [name, t] : r.extra) n += t.numel() * int64_t(sizeof(float));
  for (const auto& [name, t] : r.extra_index) n += t.numel() * int64_t(sizeof(int32_t));
  if (r.pyramid) n += r.pyramid->bytes();
  return n;
}
}  // namespace

void EngineWorker::trimToBudget() {
  // At 128K tokens one run and its inputs are gigabytes: the caches keep what fits a quarter of
  // the machine's memory (at least 1 GiB), oldest out first, the newest run and inputs always.
  const int64_t budget = std::max<int64_t>(int64_t(1) << 30, host::memory_total_bytes() / 4);
  auto total = [&] {
    // Inputs count once, whether the inputs cache or a cached run (or both) holds them.
    std::vector<const Inputs*> seen;
    int64_t n = 0;
    auto add = [&](const InputsPtr& in) {
      if (!in || std::find(seen.begin(), seen.end(), in.get()) != seen.end()) return;
      seen.push_back(in.get());
      n += bytesOf(*in);
    };
    for (const auto& e : inputsCache_) add(e.second);
    for (const CachedRun& c : runCache_) {
      add(c.inputs);
      n += bytesOf(*c.result);
    }
    return n;
  };
  while (runCache_.size() > 1 && total() > budget) runCache_.pop_back();
  // Then inputs no kept run uses, oldest first (a kept run is only reachable with its inputs).
  while (total() > budget) {
    auto victim = std::find_if(inputsCache_.rbegin(), inputsCache_.rend(), [&](const auto& e) {
      return e.second != inputsCache_.front().second && !usedByARun(e.second);
    });
    if (victim == inputsCache_.rend()) break;
    inputsCache_.erase(std::next(victim).base());
  }
}

bool EngineWorker::usedByARun(const InputsPtr& in) const {
  return std::any_of(runCache_.begin(), runCache_.end(),
                     [&](const CachedRun& c) { return c.inputs == in; });
}

void EngineWorker::dropUnusedInputs() {
  std::erase_if(inputsCache_, [&](const auto& e) { return !usedByARun(e.second); });
}

bool EngineWorker::hasInputs(const Workload& w, const AttentionProblem& p) const {
  if (w.fileInputs) return true;
  Workload key = w;
  key.problem = p;
  const QString k = key.inputsKey();
  return std::any_of(inputsCache_.begin(), inputsCache_.end(),
                     [&](const auto& e) { return e.first == k; });
}

bool EngineWorker::hasRun(const Workload& w, const AttentionProblem& p) const {
  // The run cache is keyed by the inputs' address too: a run is only reusable with its inputs.
  if (!w.fileInputs && !hasInputs(w, p)) return false;
  const QString backendName = resolvedBackend(w);
  for (const CachedRun& c : runCache_) {
    if (c.key == problemKey(p, backendName, c.inputs.get())) return true;
  }
  return false;
}

EngineWorker::PhaseShares EngineWorker::phaseShares(const EngineJob& job, const AttentionProblem& p,
                                                    bool haveInputs, bool haveRun) {
  // Rough rates of one core: generating inputs ~5 ns a value, attention ~20 GFLOP/s, the map
  // probe ~(2 Dk + 40) flops an entry at the same rate. Only the ratios matter.
  const Cost cost = cost_of(p);
  const double inputs = haveInputs ? 0.0 : cost.bytes / 4 * 5e-9;
  const double run = haveRun ? 0.0 : cost.flops / 20e9;
  double analysis = cost.flops / 20e9;  // another view's analysis: about a run
  if (job.request.view == ViewKind::map) {
    const ViewRequest& r = job.request;
    const double rows = r.region.isEmpty() ? double(p.shape.q_len) : double(r.region.rows());
    const double cols = r.region.isEmpty() ? double(p.shape.kv_len) : double(r.region.cols());
    const double heads = r.grid ? std::min<double>(16, double(p.shape.heads))
                         : r.headMode == HeadMode::single ? 1.0
                                                          : double(p.shape.heads);
    analysis = rows * cols * heads * (2.0 * double(p.shape.head_dim) + 40) / 20e9;
    // A view no finer than the run's pyramid cells costs next to nothing.
    const double cells = double(kPyramidCells);
    if (rows / std::max(1, r.outRows) >= double(p.shape.q_len) / cells &&
        cols / std::max(1, r.outCols) >= double(p.shape.kv_len) / cells) {
      analysis *= 0.01;
    }
  }
  const double total = std::max(1e-12, inputs + run + analysis);
  PhaseShares s;
  s.inputsEnd = std::clamp(inputs / total, 0.0, 1.0);
  s.runEnd = std::clamp((inputs + run) / total, s.inputsEnd, 1.0);
  return s;
}

JobProgress::JobProgress(const CancelToken& cancel, JobProgressFn progress)
    : cancel_(cancel), progress_(std::move(progress)) {
  cancel.set_progress_callback([this](double fraction) { report(fraction); });
}

void JobProgress::setPhase(const QString& what, double begin, double end) {
  phase_ = what;
  begin_ = begin;
  end_ = end;
  throttle_.reset();
  report(0.0);
}

void JobProgress::report(double fraction) {
  if (!throttle_.due(fraction >= 1.0)) return;
  progress_(begin_ + (end_ - begin_) * std::clamp(fraction, 0.0, 1.0), phase_);
}

ViewResultPtr EngineWorker::compute(const EngineJob& job, const CancelToken& cancel,
                                    const Progress& progress, const Preview& preview) {
  JobProgress bar(cancel, progress);
  const auto setPhase = [&](const QString& what, double begin, double end) {
    bar.setPhase(what, begin, end);
  };

  if (job.workload.model) return computeModel(job, cancel, bar, preview);
  if (modelRun_) {
    // Back to synthetic inputs: the model's captures (and the runs made on them) go now.
    modelRun_.reset();
    runCache_.clear();
    inputsCache_.clear();
  }
  const Workload& w = job.workload;
  const AttentionProblem& p = w.problem;
  p.check();
  if (job.freshRun) {
    inputsCache_.clear();
    runCache_.clear();
  }
  if (job.cachedRunOnly && !hasRun(w, p)) {
    throw Error(tr("the run behind this map is not at hand any more (it is being recomputed or "
                   "was let go to save memory); export again once the map is on screen")
                    .toStdString());
  }
  // The bar gives each phase its expected share of the time, so it moves evenly: inputs, the run
  // and the view's analysis by their rough costs (a cached part costs nothing).
  const PhaseShares shares = phaseShares(job, p, hasInputs(w, p), hasRun(w, p));
  setPhase(tr("preparing inputs"), 0.0, shares.inputsEnd);
  InputsPtr in = w.fileInputs ? w.fileInputs : inputsFor(w, p);
  cancel.throw_if_cancelled();
  setPhase(tr("running %1 on %2").arg(variantName(p.variant), resolvedBackend(w)), shares.inputsEnd,
           shares.runEnd);
  std::shared_ptr<const RunResult> result;
  try {
    result = run(w, p, in, cancel, true);
  } catch (const Cancelled&) {
    // A cancelled run keeps nothing: inputs that no cached run uses go with it (at 128K tokens
    // they are gigabytes).
    in.reset();
    dropUnusedInputs();
    throw;
  }

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

  AnalysisContext ctx{backends_.get(resolvedBackend(w)), p, *in, in, *result, job.request, cancel,
                      [&](const AttentionProblem& q, const InputsPtr& i, bool c) {
                        return run(w, q, i, cancel, c);
                      },
                      // The analyses' phases are fractions of their own part of the bar.
                      [&](const QString& what, double begin, double end) {
                        const double span = 1.0 - shares.runEnd;
                        setPhase(what, shares.runEnd + span * begin, shares.runEnd + span * end);
                      },
                      [&](const AttentionProblem& q) { return inputsFor(w, q); },
                      [&](const ViewResult& first) {
                        if (preview) preview(std::make_shared<const ViewResult>(first));
                      }};
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
