// The model source's widgets. Typing is debounced here (a forward per keystroke would be absurd);
// the panel turns the text into tokens and the workload.
#include "model_input_box.hpp"

#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QSettings>
#include <QStringDecoder>
#include <QVBoxLayout>

namespace attnscope::gui {

namespace {
// A text box holds what a CPU forward can read in minutes, not a book.
constexpr qint64 kMaxTextBytes = 4 << 20;
}  // namespace

ModelInputBox::ModelInputBox(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  dir_ = new QLineEdit;
  dir_->setReadOnly(true);
  dir_->setPlaceholderText(tr("drop a model folder here"));
  dir_->setToolTip(
      tr("A Hugging Face model folder (config.json, *.safetensors, tokenizer.json): the model "
         "reads your text and every layer's own attention is shown. Supported: Llama, Mistral, "
         "Qwen2, Qwen3 and GPT-2 families."));
  open_ = new QPushButton(tr("Open…"));
  open_->setToolTip(tr("Open a model folder."));
  clear_ = new QPushButton(tr("Clear"));
  clear_->setToolTip(tr("Back to synthetic inputs."));
  auto* row = new QHBoxLayout;
  row->addWidget(dir_, 1);
  row->addWidget(open_);
  row->addWidget(clear_);
  layout->addLayout(row);
  status_ = new QLabel;
  status_->setObjectName("modelStatus");
  status_->setWordWrap(true);
  status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(status_);
  text_ = new QPlainTextEdit;
  text_->setObjectName("modelText");
  text_->setPlaceholderText(tr("Type or paste the text the model reads…"));
  text_->setMinimumHeight(90);
  text_->setTabChangesFocus(true);
  layout->addWidget(text_);
  openText_ = new QPushButton(tr("Open .txt…"));
  textNote_ = new QLabel;
  textNote_->setObjectName("modelTextNote");
  textNote_->setWordWrap(true);
  textNote_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  auto* textRow = new QHBoxLayout;
  textRow->addWidget(textNote_, 1);
  textRow->addWidget(openText_);
  layout->addLayout(textRow);

  typing_.setSingleShot(true);
  typing_.setInterval(600);
  connect(&typing_, &QTimer::timeout, this, [this] { emit textEdited(text()); });
  connect(text_, &QPlainTextEdit::textChanged, this, [this] {
    if (!updating_) typing_.start();
  });
  connect(open_, &QPushButton::clicked, this, &ModelInputBox::browse);
  connect(clear_, &QPushButton::clicked, this, &ModelInputBox::clearRequested);
  connect(openText_, &QPushButton::clicked, this, &ModelInputBox::openTextFile);
  setModel(nullptr);
}

bool ModelInputBox::isModelFolder(const QString& path) {
  const QFileInfo info(path);
  return info.isDir() && QFileInfo::exists(path + QStringLiteral("/config.json"));
}

void ModelInputBox::setOpening(const QString& dir) {
  dir_->setText(dir);
  status_->setStyleSheet({});
  status_->setText(tr("opening %1…").arg(QFileInfo(dir).fileName()));
  clear_->setEnabled(true);
}

void ModelInputBox::setModel(const std::shared_ptr<const LoadedModel>& model) {
  const bool have = bool(model);
  dir_->setText(have ? model->dir : QString());
  status_->setStyleSheet({});
  status_->setText(have ? QStringLiteral("<b>%1</b><br>%2")
                              .arg(model->name.toHtmlEscaped(), model->summary().toHtmlEscaped())
                        : QString());
  status_->setVisible(have);
  clear_->setEnabled(have);
  text_->setVisible(have);
  openText_->setVisible(have);
  textNote_->setVisible(have);
}

void ModelInputBox::setFailure(const QString& dir, const QString& message) {
  dir_->setText(dir);
  status_->setVisible(true);
  status_->setStyleSheet(QStringLiteral("color: #c0392b;"));
  status_->setText(message.toHtmlEscaped());
  clear_->setEnabled(true);
}

void ModelInputBox::setText(const QString& text) {
  updating_ = true;
  typing_.stop();
  text_->setPlainText(text);
  updating_ = false;
}

void ModelInputBox::setTextNote(const QString& note, bool error) {
  textNote_->setStyleSheet(error ? QStringLiteral("color: #c0392b;") : QString());
  textNote_->setText(note);
}

void ModelInputBox::browse() {
  QSettings settings;
  const QString dir = QFileDialog::getExistingDirectory(this, tr("Open a model folder"),
                                                        settings.value("model/dir").toString());
  if (!dir.isEmpty()) emit openRequested(dir);
}

void ModelInputBox::openTextFile() {
  const QString path = QFileDialog::getOpenFileName(this, tr("Open a text"), {},
                                                    tr("Text (*.txt *.md);;All files (*)"));
  if (path.isEmpty()) return;
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) {
    setTextNote(tr("cannot read %1: %2").arg(path, f.errorString()), true);
    return;
  }
  if (f.size() > kMaxTextBytes) {
    setTextNote(tr("%1 is %2 MiB; the text box takes at most %3 MiB")
                    .arg(path)
                    .arg(double(f.size()) / (1 << 20), 0, 'f', 1)
                    .arg(kMaxTextBytes >> 20),
                true);
    return;
  }
  QStringDecoder utf8(QStringDecoder::Utf8);
  const QString content = utf8(f.readAll());
  if (utf8.hasError()) {
    setTextNote(tr("%1 is not UTF-8 text").arg(path), true);
    return;
  }
  setText(content);
  emit textEdited(text());
}

}  // namespace attnscope::gui
