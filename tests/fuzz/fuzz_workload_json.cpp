// Fuzz harness: the GUI's Workload::fromJson (app/gui/workload.hpp; docs/fuzzing.md), which reads
// presets, QSettings and exported configurations. The input is a JSON document.
// Properties: fromJson never throws (it reports errors as a message); when it refuses, `out` is
// untouched; an accepted workload goes through toJson, JSON text and fromJson again to the same
// workload (every problem field, pattern, seed; the backend as resolvedBackend names it), both in
// memory and through the bytes a file would hold; inputsKey/runKey do not throw.
#include <QByteArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QJsonParseError>
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "workload.hpp"

using namespace attnscope;
using attnscope::fuzz::finding;
using attnscope::fuzz::require;
using attnscope::gui::Workload;

namespace {

std::string workload_difference(const Workload& a, const Workload& b) {
  if (std::string d = fuzz::problem_difference(a.problem, b.problem); !d.empty()) {
    return "problem." + d;
  }
  if (a.pattern != b.pattern) return "pattern";
  if (a.seed != b.seed) return "seed";
  if (a.backend != b.backend) return "backend";
  if (a.file != b.file) return "file";
  return {};
}

Workload sentinel() {
  Workload w = Workload::forVariant(VariantId::moba);
  w.pattern = QStringLiteral("sentinel pattern");
  w.seed = 987654321;
  w.backend = QStringLiteral("sentinel backend");
  return w;
}

// Calls fromJson; its contract is an error message, so any exception is a finding.
QString from_json(const QJsonObject& o, Workload& out, const char* what) {
  try {
    return Workload::fromJson(o, out);
  } catch (...) {
    finding(std::string("Workload::fromJson threw ") + fuzz::current_exception_type() + " " + what);
  }
}

QJsonObject to_json(const Workload& w) {
  try {
    return w.toJson();
  } catch (const std::exception& e) {
    finding("Workload::toJson threw " + fuzz::current_exception_type() + " (" + e.what() +
            ") on a workload fromJson accepted");
  }
}

void require_round_trip(const Workload& w, const QJsonObject& o, const char* how) {
  Workload back = sentinel();
  const QString e = from_json(o, back, how);
  require(e.isEmpty(),
          std::string("fromJson refused what toJson wrote (") + how + "): " + e.toStdString());
  Workload expected = w;
  expected.backend = gui::resolvedBackend(w);  // toJson names the backend it would use
  const std::string d = workload_difference(expected, back);
  require(d.empty(), std::string("toJson -> fromJson (") + how + ") changed " + d);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const QByteArray bytes(reinterpret_cast<const char*>(data), static_cast<qsizetype>(size));
  QJsonParseError err;
  const QJsonDocument doc = QJsonDocument::fromJson(bytes, &err);
  if (!doc.isObject()) return 0;

  const Workload untouched = sentinel();
  Workload w = untouched;
  if (!from_json(doc.object(), w, "on the input").isEmpty()) {
    const std::string d = workload_difference(w, untouched);
    require(d.empty(), "a refused fromJson changed its output (" + d + ")");
    return 0;
  }
  const QJsonObject o = to_json(w);
  require_round_trip(w, o, "in memory");
  const QByteArray text = QJsonDocument(o).toJson(QJsonDocument::Compact);
  const QJsonDocument reread = QJsonDocument::fromJson(text, &err);
  require(reread.isObject(), "Qt cannot parse the JSON text of toJson: " +
                                 err.errorString().toStdString() + ": " + text.toStdString());
  require_round_trip(w, reread.object(), "through JSON text");
  try {
    (void)w.inputsKey();
    (void)w.runKey();
  } catch (...) {
    finding("inputsKey/runKey threw " + fuzz::current_exception_type());
  }
  return 0;
}
