// LearnView: the guided demos: pick one, read what it shows (with the formulas), open it to set
// the workload and switch to the view it explains.
#pragma once

#include <QListWidget>
#include <QPushButton>
#include <QTextBrowser>

#include "view_base.hpp"

namespace attnscope::gui {

class LearnView : public ViewBase {
  Q_OBJECT

 public:
  // Smallest text size of the explanations, in pixels: 70 % of it (Qt's sub- and superscripts)
  // is still 9 px.
  static constexpr int kMinTextPx = 13;
  explicit LearnView(QWidget* parent = nullptr);

  ViewKind kind() const override { return ViewKind::learn; }
  void applySettings(const QJsonObject& s) override;
  QJsonObject exportData() const override;
  QString exportCsv() const override;
  void selectPreset(const QString& name);
  QString currentPreset() const;
  QTextBrowser* browser() const { return text_; }

 signals:
  void presetRequested(const QString& name);

 private:
  void showPreset(int row);
  QListWidget* list_;
  QTextBrowser* text_;
  QPushButton* open_;
};

}  // namespace attnscope::gui
