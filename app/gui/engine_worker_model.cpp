// The explorer's jobs on a model workload: one forward of the model on the text with every layer's
// q, k, v and lse captured (cached: a new layer, head, zoom or token is only a new analysis), then
// the view's analysis on the layer it shows: the map views through the same probe as synthetic
// inputs, the text view's row of attention, the head atlas's statistics, the what-if forwards.
#include <QJsonDocument>
#include <QThread>
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "attnscope/cost.hpp"
#include "attnscope/error.hpp"
#include "attnscope/head_stats.hpp"
#include "attnscope/probes.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/whatif.hpp"
#include "engine_worker.hpp"

namespace attnscope::gui {

struct EngineWorker::ModelRun {
  QString key;
  std::shared_ptr<const LoadedModel> model;
  std::shared_ptr<const ModelText> text;
  std::shared_ptr<const ForwardResult> forward;
  std::vector<HeadStatTable> textStats;  // the atlas's text statistics, once asked for
  // The last layer whose K/V were repeated to MHA (compare view), and those inputs: one layer's
  // worth, however many layers are compared in turn.
  int expandedLayer = -1;
  InputsPtr expanded;
  // What-if points measured on this forward, by the replacement's JSON: a sweep cancelled by a
  // tab switch resumes where it stopped, and revisiting the tab costs nothing.
  std::map<QString, ViewResult::WhatIfPoint> whatIf;
};

namespace {

QString modelRunKey(const Workload& w) {
  return QStringLiteral("%1|%2|%3")
      .arg(quintptr(w.model.get()))
      .arg(quintptr(w.text.get()))
      .arg(resolvedBackend(w));
}

// The layer's own MHA K/V: each kv head repeated over its query group. Exact: GQA is MHA with
// shared heads, so the compare view's MHA-shaped side A sees the model's own attention.
Inputs expandKv(const Inputs& in, int64_t heads) {
  Inputs out;
  out.set("q", in.at("q"));
  for (const char* name : {"k", "v"}) {
    const Tensor& t = in.at(name);
    const int64_t kvHeads = t.dim(1), L = t.dim(2), D = t.dim(3), group = heads / kvHeads;
    Tensor e({t.dim(0), heads, L, D});
    for (int64_t b = 0; b < t.dim(0); ++b) {
      for (int64_t h = 0; h < heads; ++h) {
        const float* src = t.data() + ((b * kvHeads + h / group) * L) * D;
        std::copy(src, src + L * D, e.data() + ((b * heads + h) * L) * D);
      }
    }
    out.set(name, std::move(e));
  }
  return out;
}

// Row `token` of the chosen layers' and heads' maps, exact (attention_tile: exp(s - lse) from the
// captured q, k and the run's lse), pooled over them by mean or max; NaN after the token (keys the
// query cannot see at all) so the view can tell "0 weight" from "not in its past".
QVector<float> tokenRow(const ForwardResult& f, const ViewRequest& r, const CancelToken& cancel) {
  const int64_t L = int64_t(f.ids.size());
  const int64_t token = std::clamp<int64_t>(r.token, 0, L - 1);
  const int64_t layers = int64_t(f.layers.size());
  const int64_t first = r.allLayers ? 0 : std::clamp<int64_t>(r.layer, 0, layers - 1);
  const int64_t last = r.allLayers ? layers - 1 : first;
  const bool maxMode = r.headMode == HeadMode::max;
  std::vector<double> acc(static_cast<size_t>(token + 1), 0.0);
  std::vector<float> row(static_cast<size_t>(L));
  int64_t count = 0;
  for (int64_t l = first; l <= last; ++l) {
    const LayerAttention& la = f.layers[size_t(l)];
    const int64_t H = la.problem.shape.heads;
    const bool single = r.headMode == HeadMode::single || r.headMode == HeadMode::group;
    const int64_t h0 = single ? std::clamp<int64_t>(r.head, 0, H - 1) : 0;
    const int64_t h1 = single ? h0 + 1 : H;
    for (int64_t h = h0; h < h1; ++h) {
      cancel.throw_if_cancelled();
      attention_tile(la.problem, la.inputs, la.result, 0, h, token, token + 1, 0, token + 1,
                     row.data());
      for (int64_t j = 0; j <= token; ++j) {
        acc[size_t(j)] = maxMode ? std::max(acc[size_t(j)], double(row[size_t(j)]))
                                 : acc[size_t(j)] + double(row[size_t(j)]);
      }
      ++count;
    }
    cancel.report(double(l - first + 1) / double(last - first + 1));
  }
  QVector<float> out(L, std::numeric_limits<float>::quiet_NaN());
  for (int64_t j = 0; j <= token; ++j) {
    out[j] = float(maxMode ? acc[size_t(j)] : acc[size_t(j)] / double(std::max<int64_t>(1, count)));
  }
  return out;
}

const HeadStatTable* findStat(const std::vector<HeadStatTable>& tables, HeadStat s) {
  for (const HeadStatTable& t : tables) {
    if (t.stat == s) return &t;
  }
  return nullptr;
}

void putAtlas(const HeadStatTable& t, ViewResult& out) {
  out.atlasLayers = int(t.layers);
  out.atlasHeads = int(t.heads);
  out.atlas = QVector<double>(t.values.begin(), t.values.end());
  const std::string_view title = head_stat_title(t.stat);
  out.atlasTitle = QString::fromUtf8(title.data(), qsizetype(title.size()));
  out.atlasTokens = t.tokens;
  out.note = QString::fromStdString(t.note);
}

// Keys a replacement lets its queries see, over the causal pairs dense sees: 1 - that is its
// sparsity on this text.
double sparsityOf(const AttentionProblem& variant, const AttentionProblem& own) {
  AttentionProblem p = variant;
  p.shape = own.shape;
  p.causal = true;
  p.scale = own.effective_scale();
  const double dense = double(visible_pairs_dense(own));
  return dense > 0 ? 1.0 - double(visible_pairs(p)) / dense : 0.0;
}
}  // namespace

bool EngineWorker::hasModelRun(const Workload& w) const {
  return modelRun_ && modelRun_->key == modelRunKey(w);
}

std::shared_ptr<EngineWorker::ModelRun> EngineWorker::modelRun(const Workload& w,
                                                               const CancelToken& cancel) {
  if (hasModelRun(w)) return modelRun_;
  // The old forward goes first: two 1B-model captures need not fit side by side.
  modelRun_.reset();
  runCache_.clear();
  inputsCache_.clear();
  ForwardOptions options;
  options.backend = resolvedBackend(w).toStdString();
  options.keep_logits = false;
  options.capture = true;
  options.cancel = cancel;
  ++forwardsStarted_;
  auto run = std::make_shared<ModelRun>();
  run->key = modelRunKey(w);
  run->model = w.model;
  run->text = w.text;
  run->forward =
      std::make_shared<const ForwardResult>(w.model->model.forward(w.text->ids, options));
  modelRun_ = run;
  return run;
}

ViewResultPtr EngineWorker::computeModel(const EngineJob& job, const CancelToken& cancel,
                                         JobProgress& bar, const Preview& preview) {
  const auto setPhase = [&](const QString& what, double begin, double end) {
    bar.setPhase(what, begin, end);
  };

  const Workload& w = job.workload;
  const ViewKind view = job.request.view;
  if (view != ViewKind::map && view != ViewKind::compare && view != ViewKind::text &&
      view != ViewKind::atlas && view != ViewKind::whatif) {
    // The other views read the model's shape (KV cache) or run their own work: no forward.
    auto out = std::make_shared<ViewResult>();
    out->id = job.id;
    out->request = job.request;
    out->workload = w;
    out->workerThread = QThread::currentThreadId();
    out->run.describe = w.model->name + QStringLiteral(": ") + w.model->summary();
    out->run.backend = resolvedBackend(w);
    out->run.device = QString::fromStdString(backends_.get(resolvedBackend(w)).device());
    if (view == ViewKind::blocks || view == ViewKind::state) {
      out->note = tr(
          "A model's layers run dense attention (or its own sliding window): this "
          "view is for synthetic inputs. The What-if view runs the sparse variants on the model.");
    }
    return out;
  }
  if (!w.text) {
    throw Error((w.textError.isEmpty() ? tr("type a text (or open a .txt) for the model to read")
                                       : tr("the text cannot run: %1").arg(w.textError))
                    .toStdString());
  }
  if (job.freshRun) {
    modelRun_.reset();
    probeStats_.clear();
    runCache_.clear();
    inputsCache_.clear();
  }
  if (job.cachedRunOnly && !hasModelRun(w)) {
    throw Error(tr("the model's run behind this view is not at hand any more; export again once "
                   "the view is on screen")
                    .toStdString());
  }
  const bool haveRun = hasModelRun(w);
  // The forward is nearly all of a first answer; the what-if's own forwards are all of its.
  const double forwardEnd = haveRun ? 0.0 : view == ViewKind::whatif ? 0.2 : 0.85;
  const ModelConfig& config = w.model->model.config();
  setPhase(tr("running %1 on %2 tokens (%3 layers) on %4")
               .arg(w.model->name)
               .arg(w.text->length())
               .arg(config.layers)
               .arg(resolvedBackend(w)),
           0.0, forwardEnd);
  if (job.modelState) job.modelState->inForward = !haveRun;
  const std::shared_ptr<ModelRun> mr = modelRun(w, cancel);
  if (job.modelState) {
    job.modelState->inForward = false;
    // A newer request on this text came in during the forward: it runs next, on this forward.
    if (job.modelState->superseded) return nullptr;
  }
  const ForwardResult& f = *mr->forward;

  auto out = std::make_shared<ViewResult>();
  out->id = job.id;
  out->request = job.request;
  out->workload = w;
  out->workerThread = QThread::currentThreadId();
  out->tokens = w.text->tokens;
  out->layers = int(f.layers.size());
  out->layer = std::clamp(job.request.layer, 0, std::max(0, out->layers - 1));
  out->perplexity = f.perplexity();
  const LayerAttention& la = f.layers[size_t(out->layer)];
  out->run.describe = tr("%1 on %2 tokens, layer %3 of %4: %5")
                          .arg(w.model->name)
                          .arg(w.text->length())
                          .arg(out->layer)
                          .arg(out->layers)
                          .arg(QString::fromStdString(la.problem.describe()));
  out->run.backend = resolvedBackend(w);
  out->run.device = QString::fromStdString(backends_.get(resolvedBackend(w)).device());
  out->run.seconds = f.seconds.total;
  const Cost c = cost_of(la.problem);
  out->run.flops = c.flops * double(out->layers);
  out->run.bytes = c.bytes * double(out->layers);
  out->run.visiblePairs = c.visible_pairs * out->layers;

  const auto analysis = [&](const QString& what, double begin, double end) {
    const double span = 1.0 - forwardEnd;
    setPhase(what, forwardEnd + span * begin, forwardEnd + span * end);
  };
  switch (view) {
    case ViewKind::map:
    case ViewKind::blocks:
    case ViewKind::compare: {
      // The layer's attention as the problem: the map probe and the compare view's runs work on
      // it exactly as on synthetic inputs. Aliasing pointers keep the whole forward alive.
      InputsPtr in(mr->forward, &la.inputs);
      // No out->runResult: a result kept by a view would pin the whole captured forward.
      const int64_t heads = la.problem.shape.heads;
      AnalysisContext ctx{
          backends_.get(resolvedBackend(w)),
          la.problem,
          la.inputs,
          in,
          la.result,
          job.request,
          cancel,
          [&](const AttentionProblem& q, const InputsPtr& i, bool cache) {
            return run(w, q, i, cancel, cache);
          },
          analysis,
          [&](const AttentionProblem& q) -> InputsPtr {
            if (q.shape.q_len != la.problem.shape.q_len || q.shape.heads != heads ||
                q.shape.head_dim != la.problem.shape.head_dim) {
              throw Error(tr("this comparison needs inputs of another shape than the model's "
                             "q, k, v")
                              .toStdString());
            }
            if (q.shape.kv_heads == la.problem.shape.kv_heads) return in;
            // Kept per layer: the run cache is keyed by the inputs' address, so the same layer's
            // MHA side must be the same object on every request.
            if (mr->expandedLayer != out->layer || !mr->expanded) {
              mr->expanded.reset();  // the old layer's copy goes before the new one is made
              mr->expanded = std::make_shared<const Inputs>(expandKv(la.inputs, heads));
              mr->expandedLayer = out->layer;
            }
            return mr->expanded;
          },
          [&](const ViewResult& first) {
            if (!preview) return;
            auto frame = std::make_shared<ViewResult>(first);
            frame->tokens = out->tokens;
            frame->layer = out->layer;
            frame->layers = out->layers;
            frame->perplexity = out->perplexity;
            preview(frame);
          }};
      analyze(ctx, *out);
      break;
    }
    case ViewKind::text:
      analysis(tr("attention of token %1").arg(job.request.token), 0.0, 1.0);
      out->token = job.request.token < 0
                       ? -1
                       : int(std::min<int64_t>(job.request.token, w.text->length() - 1));
      if (out->token >= 0) out->tokenWeights = tokenRow(f, job.request, cancel);
      break;
    case ViewKind::atlas: {
      const std::optional<HeadStat> stat = head_stat_from_key(job.request.stat.toStdString());
      if (!stat) {
        throw Error(tr("unknown head statistic '%1'").arg(job.request.stat).toStdString());
      }
      HeadStatsOptions options;
      options.backend = resolvedBackend(w).toStdString();
      options.cancel = cancel;
      if (head_stat_needs_probe_text(*stat)) {
        const QString key = resolvedBackend(w) + QLatin1Char('|') + job.request.stat;
        std::erase_if(probeStats_, [](const ProbeStat& e) { return e.model.expired(); });
        std::shared_ptr<const HeadStatTable> table;
        for (const ProbeStat& e : probeStats_) {
          if (e.key == key && e.model.lock() == w.model) table = e.table;
        }
        if (!table) {
          analysis(*stat == HeadStat::induction
                       ? tr("induction test: the model on a repeated random sequence")
                       : tr("retrieval test: the model on a needle in a haystack"),
                   0.0, 1.0);
          table = std::make_shared<const HeadStatTable>(
              *stat == HeadStat::induction ? induction_scores(w.model->model, options)
                                           : retrieval_scores(w.model->model, options));
          probeStats_.push_front({w.model, key, table});
          if (probeStats_.size() > 8) probeStats_.pop_back();
        }
        putAtlas(*table, *out);
      } else {
        if (mr->textStats.empty()) {
          analysis(tr("head statistics of %1 layers").arg(out->layers), 0.0, 1.0);
          mr->textStats = text_head_stats(f, options);
        }
        const HeadStatTable* table = findStat(mr->textStats, *stat);
        if (!table)
          throw Error("the head statistics lack '" + job.request.stat.toStdString() + "'");
        putAtlas(*table, *out);
      }
      break;
    }
    case ViewKind::whatif: {
      const ViewRequest& r = job.request;
      QVector<qint64> values = r.sweepValues;
      const VariantInfo& info = variant_info(r.whatIf.variant);
      const ParamSpec* swept = nullptr;
      for (const ParamSpec& p : info.params) {
        if (QString::fromUtf8(p.key.data(), qsizetype(p.key.size())) == r.sweepKey) swept = &p;
      }
      if (!r.sweepKey.isEmpty() && !swept) {
        throw Error(
            tr("%1 has no knob '%2'").arg(variantName(r.whatIf.variant), r.sweepKey).toStdString());
      }
      if (!swept || values.isEmpty()) values = {swept ? qint64(swept->get(r.whatIf)) : 0};
      for (int x = 0; x < values.size(); ++x) {
        WhatIfRequest req;
        req.variant = r.whatIf;
        if (swept) swept->set(req.variant, values[x]);
        req.backend = resolvedBackend(w).toStdString();
        Workload keyed;
        keyed.problem = req.variant;
        const QString key = QString::fromUtf8(QJsonDocument(keyed.toJson()).toJson());
        if (auto hit = mr->whatIf.find(key); hit != mr->whatIf.end()) {
          ViewResult::WhatIfPoint pt = hit->second;
          pt.knob = values[x];
          out->whatIf.append(pt);
          continue;
        }
        // The forward already run (same text, same backend) is the dense side of every point.
        req.dense = mr->forward;
        // Each point is its share of the bar; the caller's cancel reaches its forward.
        const double points = double(values.size());
        analysis(values.size() > 1 ? tr("what-if %1 of %2: %3 = %4")
                                         .arg(x + 1)
                                         .arg(values.size())
                                         .arg(r.sweepKey)
                                         .arg(values[x])
                                   : tr("what-if: the model with %1 and with dense attention")
                                         .arg(variantName(r.whatIf.variant)),
                 double(x) / points, double(x + 1) / points);
        req.cancel = cancel;  // its 0..1 lands in this point's slice of the bar
        const WhatIfReport rep = what_if(w.model->model, w.text->ids, req);
        cancel.throw_if_cancelled();
        ViewResult::WhatIfPoint pt;
        pt.knob = values[x];
        pt.variant = QString::fromStdString(rep.variant);
        pt.ppl = rep.ppl;
        pt.pplDense = rep.ppl_dense;
        pt.klMean = rep.kl_mean;
        pt.sparsity = sparsityOf(req.variant, la.problem);
        const int64_t H = la.problem.shape.heads;
        pt.recall = QVector<double>(out->layers * H, std::numeric_limits<double>::quiet_NaN());
        double sum = 0;
        int64_t n = 0;
        for (const WhatIfLayer& wl : rep.layers) {
          for (int64_t h = 0; h < H && h < int64_t(wl.recall.size()); ++h) {
            pt.recall[wl.layer * H + h] = wl.recall[size_t(h)];
            sum += wl.recall[size_t(h)];
            ++n;
          }
        }
        pt.meanRecall = n > 0 ? sum / double(n) : 0.0;
        mr->whatIf[key] = pt;
        out->whatIf.append(pt);
      }
      break;
    }
    case ViewKind::state:
      out->note = tr("The model's layers have no recurrent state: this view is for %1.")
                      .arg(QStringLiteral("Gated DeltaNet"));
      break;
    case ViewKind::learn:
    case ViewKind::kv:
    case ViewKind::throughput:
    case ViewKind::benchmark:
      break;
  }
  return out;
}

}  // namespace attnscope::gui
