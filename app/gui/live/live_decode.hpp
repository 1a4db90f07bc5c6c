// Live decode for the KV cache view: a DecodeSession (prefill a batch of sequences of different
// lengths, then step token by token) on a worker thread. The session is shared with the UI thread,
// which reads the cache's thread-safe stats()/page_map()/audit() whenever it likes; the loop
// sends its progress as values (queued calls) and stops promptly on cancel.
#pragma once

#include <QJsonObject>
#include <QMetaType>
#include <QObject>
#include <QString>
#include <QThread>
#include <QVector>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/cancel.hpp"
#include "attnscope/decode.hpp"
#include "attnscope/decode_session.hpp"
#include "attnscope/kv_cache.hpp"
#include "worker.hpp"
#include "workload.hpp"

namespace attnscope::gui {

struct LiveDecodeConfig {
  AttentionProblem problem;  // variant, heads, dims, knobs (batch and lengths are ignored)
  QString pattern = QStringLiteral("random");
  quint64 seed = 1;
  QString backend;  // empty: the preferred available backend
  QVector<qint64> promptLengths{64, 96, 128, 160};
  qint64 targetLength = 512;  // a sequence reaching it is released
  qint64 pageSize = 0;        // 0: default_page_size(variant)
  int stepDelayMs = 0;        // pacing: 0 = as fast as possible

  QJsonObject toJson() const;
  // Parses "64, 96, 128"; returns an error message, empty on success.
  static QString parsePrompts(const QString& text, QVector<qint64>& out);
  // Checks the batch against the target length; empty when fine (the engine checks the rest).
  QString check() const;
};

// The engine objects of one live run. Created on the worker thread; the UI thread only calls the
// cache's thread-safe accounting (stats, page_map, audit). The backend outlives the session.
struct LiveDecodeRun {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<DecodeSession> session;
  QString device;
  const PagedKvCache& cache() const { return session->cache(); }
};
using LiveDecodeRunPtr = std::shared_ptr<const LiveDecodeRun>;

// One consistent reading of the cache, taken on any thread.
struct KvSnapshot {
  KvCacheStats stats;
  std::vector<KvSequenceMap> sequences;
  std::optional<std::string> audit;  // nullopt: accounting consistent
  static KvSnapshot of(const PagedKvCache& cache);
};

struct LiveDecodeProgress {
  QString phase;               // "prefilling", "decoding", "finished", "stopped"
  qint64 steps = 0;            // decode steps taken
  qint64 tokens = 0;           // tokens produced by decode steps (all rows)
  double tokensPerSecond = 0;  // decode tokens over the engine's own step time
  double stepSeconds = 0;      // the last step
  QVector<qint64> lengths;     // per row
  QVector<bool> released;      // per row
};

// The UI thread's handle: start, stop, state. The loop runs on the runner's GuiWorker; a new start
// supersedes the old run. Stop cancels the token; the loop notices within one decode step (and the
// pacing sleep polls every 10 ms).
class LiveDecodeRunner : public QObject {
  Q_OBJECT

 public:
  explicit LiveDecodeRunner(QObject* parent = nullptr);
  ~LiveDecodeRunner() override;

  bool running() const { return worker_.busy(); }
  LiveDecodeRunPtr current() const { return run_; }
  const LiveDecodeProgress& lastProgress() const { return progress_; }
  QString lastError() const { return error_; }
  QThread* workerThread() { return worker_.thread(); }

 public slots:
  void start(const attnscope::gui::LiveDecodeConfig& config);
  void stop();

 signals:
  void started();
  void sessionReady(attnscope::gui::LiveDecodeRunPtr run);
  void progress(const attnscope::gui::LiveDecodeProgress& p);
  void stopped(bool cancelled, const QString& error);

 private:
  LiveDecodeRunPtr run_;
  LiveDecodeProgress progress_;
  QString error_;
  GuiWorker worker_{QStringLiteral("attnscope-live-decode")};
};

}  // namespace attnscope::gui

Q_DECLARE_METATYPE(attnscope::gui::LiveDecodeRunPtr)
Q_DECLARE_METATYPE(attnscope::gui::LiveDecodeProgress)
