// StaleOverlay: greys a result view's picture and says why it is not the answer to the current
// request ("previous result · computing…", "· cancelled", "· the current settings failed"). A child
// widget over the whole view, so every result view gets it the same way, whatever it draws
// (heatmaps, charts, text).
#pragma once

#include <QString>
#include <QWidget>

namespace attnscope::gui {

class StaleOverlay : public QWidget {
  Q_OBJECT

 public:
  // Covers `view` (and follows its size); hidden until a label is set.
  explicit StaleOverlay(QWidget* view);

  // Non-empty: grey the picture and show `label`; empty: the picture is current, hide.
  void setLabel(const QString& label);
  QString label() const { return label_; }

 protected:
  bool eventFilter(QObject* watched, QEvent* event) override;
  void paintEvent(QPaintEvent* event) override;

 private:
  QString label_;
};

}  // namespace attnscope::gui
