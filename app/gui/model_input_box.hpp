// ModelInputBox: the workload panel's third source of inputs beside a pattern and a tensor file:
// a Hugging Face model folder (picker or drop) and the text it reads (typed, pasted or opened from
// a .txt). It only collects them; the panel tokenizes and the worker opens the folder.
#pragma once

#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QTimer>
#include <QWidget>
#include <memory>

#include "model_text.hpp"

namespace attnscope::gui {

class ModelInputBox : public QWidget {
  Q_OBJECT

 public:
  explicit ModelInputBox(QWidget* parent = nullptr);

  // The folder being opened (shown greyed with "opening…" until setModel or setFailure).
  void setOpening(const QString& dir);
  void setModel(const std::shared_ptr<const LoadedModel>& model);  // null: no model
  void setFailure(const QString& dir, const QString& message);
  // The text box's content, set without emitting textEdited.
  void setText(const QString& text);
  QString text() const { return text_->toPlainText(); }
  // Under the text: "412 tokens" or why the text cannot run (red).
  void setTextNote(const QString& note, bool error);
  QString textNote() const { return textNote_->text(); }
  QString statusText() const { return status_->text(); }

  QPlainTextEdit* textEdit() const { return text_; }
  QPushButton* openButton() const { return open_; }

  // A folder holding config.json (what a dropped folder must be to count as a model).
  static bool isModelFolder(const QString& path);

 signals:
  void openRequested(const QString& dir);
  void clearRequested();
  // The text after a pause in typing (or at once for a pasted or opened text).
  void textEdited(const QString& text);

 private:
  void browse();
  void openTextFile();

  QLineEdit* dir_;
  QPushButton* open_;
  QPushButton* clear_;
  QLabel* status_;
  QPlainTextEdit* text_;
  QPushButton* openText_;
  QLabel* textNote_;
  QTimer typing_;
  bool updating_ = false;
};

}  // namespace attnscope::gui
