// A Hugging Face model folder and a text as the explorer's inputs: instead of a synthetic pattern,
// each layer's own q, k, v on the user's text (docs/models.md). Both are immutable and shared, so
// a Workload that carries them copies two pointers.
#pragma once

#include <QString>
#include <QStringList>
#include <cstdint>
#include <memory>
#include <vector>

#include "attnscope/model.hpp"

namespace attnscope::gui {

struct LoadedModel {
  QString dir;   // as opened (absolute)
  QString name;  // the folder's name: "SmolLM2-135M"
  Model model;
  // One line for the panel: "llama · 30 layers · d 576 · 9 heads (3 kv) × 64 · 135 M params ·
  // BF16 · context 8192".
  QString summary() const;
  qint64 contextLength() const { return model.config().max_positions; }

  // Opens DIR (config.json, the weights' headers, tokenizer.json): reads no weights. Throws Error
  // with the reason (not a folder, no config.json, an unsupported model, no tokenizer.json).
  static std::shared_ptr<const LoadedModel> open(const QString& dir);
};

struct ModelText {
  QString text;
  QString sha256;                             // of the UTF-8 text: names it in exports
  std::vector<int32_t> ids;                   // as the model's tokenizer encodes it
  std::shared_ptr<const QStringList> tokens;  // Tokenizer::token_display of each id

  // Tokenizes `text` with `model`'s tokenizer (on the caller's thread: the UI's). Throws Error for
  // an empty text, more bytes than about 16 per position of the model's context (refused before
  // tokenizing), or (GPT-2) more tokens than its positions; RoPE models read past their context.
  static std::shared_ptr<const ModelText> make(const LoadedModel& model, const QString& text);
  qint64 length() const { return qint64(ids.size()); }
};

}  // namespace attnscope::gui
