#include "views/model_views.hpp"

#include <QSignalBlocker>
#include <QVBoxLayout>
#include <algorithm>

namespace attnscope::gui {

NeedModelPage::NeedModelPage(const QString& what, QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->addStretch();
  auto* text = new QLabel(
      what + QStringLiteral("<br><br>") +
      tr("Open a Hugging Face model folder (config.json, *.safetensors, tokenizer.json) in the "
         "Workload panel, under <i>Inputs → Model</i>, or drop the folder on the window. Llama, "
         "Mistral, Qwen2, Qwen3 and GPT-2 models run on the CPU."));
  text->setObjectName("needModelText");
  text->setWordWrap(true);
  text->setAlignment(Qt::AlignCenter);
  text->setMaximumWidth(560);
  layout->addWidget(text, 0, Qt::AlignHCenter);
  open_ = new QPushButton(tr("Open model folder…"));
  open_->setObjectName("openModelButton");
  layout->addWidget(open_, 0, Qt::AlignHCenter);
  layout->addStretch();
  connect(open_, &QPushButton::clicked, this, &NeedModelPage::openModelRequested);
}

void refillLayers(QComboBox* combo, int layers) {
  if (combo->count() == layers) return;
  const QSignalBlocker block(combo);
  const int current = std::max(0, combo->currentIndex());
  combo->clear();
  for (int l = 0; l < layers; ++l) combo->addItem(QObject::tr("layer %1").arg(l), l);
  combo->setCurrentIndex(std::min(current, layers - 1));
}

}  // namespace attnscope::gui
