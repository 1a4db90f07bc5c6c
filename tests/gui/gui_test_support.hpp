// Helpers shared by the GUI tests: small workloads that the reference backend answers in
// milliseconds, a scratch directory, and waiting for the window or controller without blocking.
#pragma once

#include <QCoreApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QSignalSpy>
#include <QTest>
#include <QThread>

#include "headless.hpp"
#include "main_window.hpp"
#include "workload.hpp"

namespace attnscope::gui::test {

inline Workload smallWorkload(VariantId id = VariantId::dense) {
  Workload w = Workload::forVariant(id);
  w.problem.shape.heads = 2;
  w.problem.shape.kv_heads = 2;
  w.problem.shape.q_len = w.problem.shape.kv_len = 64;
  w.problem.moba.block_size = 16;
  w.problem.moba.top_k = 2;
  w.problem.swa.window = 16;
  w.problem.gated_delta.chunk_size = 16;
  w.problem.nsa = {16, 3, 16};
  w.problem.dsa = {16, 4, 16, false};
  normalize_shape(w.problem);  // a shared latent has one kv head
  return w;
}

inline QString scratchDir() {
  QDir().mkpath(QStringLiteral(ATTNSCOPE_TEST_TMP));
  return QStringLiteral(ATTNSCOPE_TEST_TMP);
}

// Waits until the controller is idle; returns false on timeout.
inline bool waitIdle(ExplorerController& c, int timeoutMs = 20000) {
  QElapsedTimer t;
  t.start();
  while (t.elapsed() < timeoutMs) {
    QCoreApplication::processEvents(QEventLoop::AllEvents, 20);
    if (!c.busy() && !c.pending()) return true;
    QTest::qWait(5);
  }
  return false;
}

// Pumps events until pred() holds or the time is up; returns pred() at the end.
template <class Pred>
bool waitFor(Pred pred, int timeoutMs) {
  QElapsedTimer t;
  t.start();
  while (t.elapsed() < timeoutMs) {
    QCoreApplication::processEvents(QEventLoop::AllEvents, 10);
    if (pred()) return true;
    QThread::msleep(2);
  }
  return pred();
}

}  // namespace attnscope::gui::test
