// The overlay lets mouse events through (hover still reads the old values, labelled as old) and
// is raised above the view's children whenever it is shown, so late-added children stay under it.
#include "views/stale_overlay.hpp"

#include <QEvent>
#include <QPainter>

namespace attnscope::gui {

StaleOverlay::StaleOverlay(QWidget* view) : QWidget(view) {
  setObjectName(QStringLiteral("staleOverlay"));
  setAttribute(Qt::WA_TransparentForMouseEvents);
  setAttribute(Qt::WA_NoSystemBackground);
  view->installEventFilter(this);
  setGeometry(view->rect());
  hide();
}

void StaleOverlay::setLabel(const QString& label) {
  label_ = label;
  setToolTip(label);
  if (label.isEmpty()) {
    hide();
    return;
  }
  setGeometry(parentWidget()->rect());
  raise();
  show();
  update();
}

bool StaleOverlay::eventFilter(QObject* watched, QEvent* event) {
  if (watched == parentWidget() && event->type() == QEvent::Resize) {
    setGeometry(parentWidget()->rect());
  }
  return QWidget::eventFilter(watched, event);
}

void StaleOverlay::paintEvent(QPaintEvent*) {
  QPainter p(this);
  const QColor window = palette().color(QPalette::Window);
  QColor veil = window;
  veil.setAlpha(150);  // the old picture stays readable underneath, visibly faded
  p.fillRect(rect(), veil);
  QFont f = font();
  f.setBold(true);
  p.setFont(f);
  const QFontMetrics fm(f);
  const QString text = fm.elidedText(label_, Qt::ElideRight, std::max(40, width() - 40));
  const QRect box = fm.boundingRect(text).adjusted(-12, -6, 12, 6);
  const QRect placed(QPoint((width() - box.width()) / 2, 12), box.size());
  p.setRenderHint(QPainter::Antialiasing);
  p.setPen(palette().color(QPalette::Mid));
  p.setBrush(window);
  p.drawRoundedRect(placed, 6, 6);
  p.setPen(palette().color(QPalette::WindowText));
  p.drawText(placed, Qt::AlignCenter, text);
}

}  // namespace attnscope::gui
