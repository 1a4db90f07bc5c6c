// The text view. The tokens come with the workload (the panel tokenizes), so the text is there
// to click before the model has run; the tint arrives with the worker's answer.
#include "views/text_view.hpp"

#include <QHBoxLayout>
#include <QJsonArray>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <numeric>

namespace attnscope::gui {
namespace {
constexpr int kTopKeys = 5;

QString shown(QString token) {
  token.replace(QLatin1Char('\n'), QStringLiteral("↵"));
  token.replace(QLatin1Char('\t'), QStringLiteral("→"));
  return token;
}
}  // namespace

TextView::TextView(QWidget* parent) : ResultView(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  layerCombo_ = new QComboBox;
  layerCombo_->setToolTip(tr("The layer whose attention tints the text."));
  headCombo_ = new QComboBox;
  headCombo_->setToolTip(tr("One head, or the mean or max over the layer's heads."));
  allLayers_ = new QCheckBox(tr("all layers"));
  allLayers_->setToolTip(tr("Pool over every layer's heads (mean or max) instead of one layer."));
  bar->addWidget(new QLabel(tr("Layer:")));
  bar->addWidget(layerCombo_);
  bar->addWidget(new QLabel(tr("Heads:")));
  bar->addWidget(headCombo_);
  bar->addWidget(allLayers_);
  bar->addStretch();
  layout->addLayout(bar);
  stack_ = new QStackedWidget;
  needModel_ = new NeedModelPage(
      tr("<b>The text view</b> shows your text as the model's tokens. Click a token and every "
         "earlier token is tinted by how much it attends there."));
  text_ = new TokenTextWidget;
  stack_->addWidget(needModel_);
  stack_->addWidget(text_);
  layout->addWidget(stack_, 1);
  summary_ = new QLabel;
  summary_->setObjectName("textSummary");
  summary_->setWordWrap(true);
  summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(summary_);

  connect(needModel_, &NeedModelPage::openModelRequested, this, &TextView::openModelRequested);
  connect(text_, &TokenTextWidget::tokenClicked, this, [this] {
    text_->setWeights({}, 1);  // the old token's tint would be read as the new one's
    summary_->setText(tr("computing the attention of token %1…").arg(text_->selected()));
    emit requestChanged();
  });
  connect(text_, &TokenTextWidget::hoverText, this, &ViewBase::hoverText);
  for (QComboBox* c : {layerCombo_, headCombo_}) {
    connect(c, &QComboBox::currentIndexChanged, this, [this] { emit requestChanged(); });
  }
  connect(allLayers_, &QCheckBox::toggled, this, [this](bool on) {
    layerCombo_->setEnabled(!on);
    // Over every layer one head index means nothing: pool the heads.
    if (on && headCombo_->currentData().toInt() >= 0) {
      headCombo_->setCurrentIndex(headCombo_->findData(-1));
    }
    emit requestChanged();
  });
  stale_ = new StaleOverlay(this);
  setWorkload(workload_);
}

void TextView::setWorkload(const Workload& w) {
  ResultView::setWorkload(w);
  const bool model = bool(w.model);
  stack_->setCurrentWidget(model ? static_cast<QWidget*>(text_) : needModel_);
  for (QWidget* c : {static_cast<QWidget*>(layerCombo_), static_cast<QWidget*>(headCombo_),
                     static_cast<QWidget*>(allLayers_)}) {
    c->setVisible(model);
  }
  if (!model) {
    summary_->clear();
    return;
  }
  const ModelConfig& c = w.model->model.config();
  refillLayers(layerCombo_, int(c.layers));
  if (headCombo_->count() != c.heads + 2) {
    const QSignalBlocker block(headCombo_);
    const int current = headCombo_->currentIndex();
    headCombo_->clear();
    headCombo_->addItem(tr("mean over heads"), -1);
    headCombo_->addItem(tr("max over heads"), -2);
    for (int h = 0; h < c.heads; ++h) headCombo_->addItem(tr("head %1").arg(h), h);
    headCombo_->setCurrentIndex(std::clamp(current, 0, headCombo_->count() - 1));
  }
  // Only a new text resets the selection; the same text keeps it (a backend change, say).
  if (w.text != shownText_) {
    shownText_ = w.text;
    text_->setTokens(w.text ? w.text->tokens : std::make_shared<const QStringList>());
    summary_->setText(w.text ? tr("Click a token to see where it attends.") : QString());
  }
}

void TextView::fillRequest(ViewRequest& r) const {
  r.view = ViewKind::text;
  r.layer = std::max(0, layerCombo_->currentData().toInt());
  const int head = headCombo_->currentData().toInt();
  r.head = std::max(0, head);
  r.headMode = head >= 0 ? HeadMode::single : head == -1 ? HeadMode::mean : HeadMode::max;
  r.allLayers = allLayers_->isChecked();
  r.token = text_->selected();
}

void TextView::showResult(const ViewResultPtr& result) {
  ResultView::showResult(result);
  const ViewResult& r = *result;
  // Weights of another text (a result delivered after an edit) would tint the wrong tokens.
  if (r.token < 0 || r.tokenWeights.isEmpty() || r.workload.text != shownText_) {
    text_->setWeights({}, 1);
    updateSummary();
    return;
  }
  if (text_->selected() != r.token) text_->setSelected(r.token);
  float top = 0;
  for (float v : r.tokenWeights) {
    if (!std::isnan(v)) top = std::max(top, v);
  }
  text_->setWeights(r.tokenWeights, top > 0 ? top : 1.0f);
  updateSummary();
}

void TextView::updateSummary() {
  if (!last_ || last_->token < 0 || last_->tokenWeights.isEmpty() || !last_->tokens ||
      last_->workload.text != shownText_) {
    summary_->setText(last_ && last_->tokens ? tr("Click a token to see where it attends.")
                                             : QString());
    return;
  }
  const ViewResult& r = *last_;
  const QStringList& tokens = *r.tokens;
  std::vector<int> order(size_t(r.token + 1));
  std::iota(order.begin(), order.end(), 0);
  const int n = std::min<int>(kTopKeys, int(order.size()));
  std::partial_sort(order.begin(), order.begin() + n, order.end(),
                    [&](int a, int b) { return r.tokenWeights[a] > r.tokenWeights[b]; });
  QStringList top;
  for (int x = 0; x < n; ++x) {
    const int j = order[size_t(x)];
    top << QStringLiteral("'%1' (%2) %3")
               .arg(shown(tokens.value(j)).toHtmlEscaped())
               .arg(j)
               .arg(double(r.tokenWeights[j]), 0, 'f', 3);
  }
  const ViewRequest& q = r.request;
  const QString heads = q.headMode == HeadMode::single ? tr("head %1").arg(q.head)
                        : q.headMode == HeadMode::max  ? tr("max over heads")
                                                       : tr("mean over heads");
  const QString where = q.allLayers ? tr("all layers") : tr("layer %1").arg(r.layer);
  summary_->setText(tr("Token '%1' (%2), %3, %4 attends most to: %5")
                        .arg(shown(tokens.value(r.token)).toHtmlEscaped())
                        .arg(r.token)
                        .arg(where, heads, top.join(QStringLiteral(", "))));
}

void TextView::applySettings(const QJsonObject& s) {
  if (s.contains("layer")) layerCombo_->setCurrentIndex(s.value("layer").toInt());
  if (s.contains("all_layers")) allLayers_->setChecked(s.value("all_layers").toBool());
  if (s.contains("token") && text_->tokenCount() > 0) {
    text_->setSelected(std::clamp(s.value("token").toInt(), 0, text_->tokenCount() - 1));
  }
}

QJsonObject TextView::exportData() const {
  QJsonObject o;
  if (!last_ || !last_->tokens) return o;
  const ViewResult& r = *last_;
  QJsonArray tokens, weights;
  for (const QString& t : *r.tokens) tokens.append(t);
  for (float v : r.tokenWeights) weights.append(std::isnan(v) ? QJsonValue() : QJsonValue(v));
  o["tokens"] = tokens;
  o["query_token"] = r.token;
  o["layer"] = r.request.allLayers ? QJsonValue("all") : QJsonValue(r.layer);
  o["heads"] = r.request.headMode == HeadMode::single ? QJsonValue(r.request.head)
               : r.request.headMode == HeadMode::max  ? QJsonValue("max")
                                                      : QJsonValue("mean");
  // weights[j]: the attention of query_token to token j, exact; null after the query token.
  o["weights"] = weights;
  return o;
}

QString TextView::exportCsv() const {
  if (!last_ || !last_->tokens) return {};
  const ViewResult& r = *last_;
  QString s = QStringLiteral(
                  "# attention of token %1 to each token (empty: later tokens)\n"
                  "index,token,weight\n")
                  .arg(r.token);
  for (int j = 0; j < r.tokens->size(); ++j) {
    QString t = r.tokens->at(j);
    t.replace(QLatin1Char('"'), QStringLiteral("\"\""));
    const float v = j < r.tokenWeights.size() ? r.tokenWeights[j] : NAN;
    s += QStringLiteral("%1,\"%2\",%3\n")
             .arg(j)
             .arg(t, std::isnan(v) ? QString() : QString::number(double(v), 'g', 8));
  }
  return s;
}

}  // namespace attnscope::gui
