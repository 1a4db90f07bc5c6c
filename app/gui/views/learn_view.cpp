// Learn view: a list of demos and a QTextBrowser with each one's explanation. HTML with Unicode
// math renders legibly without a TeX engine; the stylesheet only sets spacing and the formula font.
#include "learn_view.hpp"

#include <QFontInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QSplitter>
#include <QVBoxLayout>

#include "presets.hpp"

namespace attnscope::gui {

LearnView::LearnView(QWidget* parent) : ViewBase(parent) {
  auto* layout = new QHBoxLayout(this);
  auto* splitter = new QSplitter;
  auto* left = new QWidget;
  auto* leftLayout = new QVBoxLayout(left);
  leftLayout->setContentsMargins(0, 0, 0, 0);
  leftLayout->addWidget(new QLabel(tr("<b>Guided demos</b>")));
  list_ = new QListWidget;
  list_->setWordWrap(true);
  for (const Preset& p : presets()) {
    auto* item = new QListWidgetItem(p.title, list_);
    item->setData(Qt::UserRole, p.name);
    item->setToolTip(p.summary);
  }
  leftLayout->addWidget(list_, 1);
  open_ = new QPushButton(tr("Open this demo"));
  open_->setToolTip(tr("Sets the workload and switches to the view the demo explains."));
  leftLayout->addWidget(open_);
  splitter->addWidget(left);
  text_ = new QTextBrowser;
  text_->setOpenExternalLinks(true);
  // Qt draws <sub> and <sup> at 70 % of the text around them; the formulas' indices must stay
  // readable (at least 9 px), so the text is at least kMinTextPx.
  if (QFont f = text_->font(); QFontInfo(f).pixelSize() < kMinTextPx) {
    f.setPixelSize(kMinTextPx);
    text_->setFont(f);
  }
  text_->document()->setDefaultStyleSheet(
      "p { margin-bottom: 8px; } .f { font-family: 'DejaVu Serif', serif; font-size: 115%; "
      "margin-left: 24px; } h2 { margin-bottom: 6px; }");
  splitter->addWidget(text_);
  splitter->setStretchFactor(1, 3);
  splitter->setSizes({340, 680});
  layout->addWidget(splitter);

  connect(list_, &QListWidget::currentRowChanged, this, &LearnView::showPreset);
  connect(open_, &QPushButton::clicked, this, [this] {
    if (!currentPreset().isEmpty()) emit presetRequested(currentPreset());
  });
  connect(list_, &QListWidget::itemDoubleClicked, this, [this] {
    if (!currentPreset().isEmpty()) emit presetRequested(currentPreset());
  });
  if (list_->count() > 0) list_->setCurrentRow(0);
}

void LearnView::showPreset(int row) {
  const QList<Preset>& all = presets();
  if (row < 0 || row >= all.size()) return;
  const Preset& p = all[row];
  text_->setHtml(QStringLiteral("<h2>%1</h2>%2").arg(p.title.toHtmlEscaped(), p.html));
}

void LearnView::selectPreset(const QString& name) {
  for (int i = 0; i < list_->count(); ++i) {
    if (list_->item(i)->data(Qt::UserRole).toString() == name) list_->setCurrentRow(i);
  }
}

QString LearnView::currentPreset() const {
  const QListWidgetItem* item = list_->currentItem();
  return item ? item->data(Qt::UserRole).toString() : QString();
}

void LearnView::applySettings(const QJsonObject& s) {
  if (s.contains("preset")) selectPreset(s.value("preset").toString());
}

QJsonObject LearnView::exportData() const {
  return {{"view", "learn"}, {"preset", currentPreset()}, {"html", text_->toHtml()}};
}

QString LearnView::exportCsv() const {
  return QStringLiteral("preset\n%1\n").arg(currentPreset());
}

}  // namespace attnscope::gui
