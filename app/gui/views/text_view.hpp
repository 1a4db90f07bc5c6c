// TextView: the model's input text as token chips; click a token and every earlier token is
// tinted by how much it attends there (one head, the mean or max over a layer's heads, or over
// every layer). The worker computes the row exactly from the captured q, k and lse.
#pragma once

#include <QCheckBox>
#include <QComboBox>
#include <QLabel>
#include <QStackedWidget>

#include "view_base.hpp"
#include "views/model_views.hpp"
#include "views/stale_overlay.hpp"
#include "views/token_text_widget.hpp"

namespace attnscope::gui {

class TextView : public ResultView {
  Q_OBJECT

 public:
  explicit TextView(QWidget* parent = nullptr);

  ViewKind kind() const override { return ViewKind::text; }
  void fillRequest(ViewRequest& r) const override;
  void showResult(const ViewResultPtr& result) override;
  void setWorkload(const Workload& w) override;
  void applySettings(const QJsonObject& s) override;
  QJsonObject exportData() const override;
  QString exportCsv() const override;
  void setColormap(ColormapId id) override { text_->setColormap(id); }
  void showStale(const QString& label) override { stale_->setLabel(label); }
  QWidget* figure() override { return stack_->currentWidget(); }

  TokenTextWidget* tokens() const { return text_; }
  NeedModelPage* needModel() const { return needModel_; }
  QComboBox* layerCombo() const { return layerCombo_; }
  QComboBox* headCombo() const { return headCombo_; }
  QCheckBox* allLayersCheck() const { return allLayers_; }
  // What the worker's row says: the top keys of the selected token.
  QString summary() const { return summary_->text(); }

 signals:
  void openModelRequested();

 private:
  void updateSummary();

  QComboBox* layerCombo_;
  QComboBox* headCombo_;
  QCheckBox* allLayers_;
  QLabel* summary_;
  QStackedWidget* stack_;
  NeedModelPage* needModel_;
  TokenTextWidget* text_;
  StaleOverlay* stale_;
  std::shared_ptr<const ModelText> shownText_;  // the text whose tokens are laid out
};

}  // namespace attnscope::gui
