// What the views of a model on a text share: the page shown until a model is open (it says what
// the view is for and offers the folder picker), and the layer picker.
#pragma once

#include <QComboBox>
#include <QLabel>
#include <QPushButton>
#include <QWidget>

namespace attnscope::gui {

class NeedModelPage : public QWidget {
  Q_OBJECT

 public:
  // `what`: one sentence on what the view shows once a model is open.
  explicit NeedModelPage(const QString& what, QWidget* parent = nullptr);
  QPushButton* openButton() const { return open_; }

 signals:
  void openModelRequested();

 private:
  QPushButton* open_;
};

// Refills `combo` with "layer 0" … "layer N-1" when the count changed, keeping the choice.
void refillLayers(QComboBox* combo, int layers);

}  // namespace attnscope::gui
