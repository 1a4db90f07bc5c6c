// TokenTextWidget: the text of a model's input as token chips in reading order. A click selects a
// query token; every token is tinted by a weight (how much the selected token attends to it).
// Painted, not built from widgets: a context of 32K tokens lays out once per width and paints
// only the lines in view.
#pragma once

#include <QAbstractScrollArea>
#include <QStringList>
#include <QVector>
#include <memory>
#include <vector>

#include "colormap.hpp"

namespace attnscope::gui {

class TokenTextWidget : public QAbstractScrollArea {
  Q_OBJECT

 public:
  explicit TokenTextWidget(QWidget* parent = nullptr);

  // Display strings (Tokenizer::token_display); resets the selection and the weights.
  void setTokens(std::shared_ptr<const QStringList> tokens);
  int tokenCount() const;
  // weights[j] in [0, 1]: the selected token's attention to token j; NaN: not visible to it
  // (masked, e.g. a later token); empty: no tint. `scaleMax` maps to the full colour (the row's
  // max, or 1). Repaints only: the layout does not depend on weights.
  void setWeights(QVector<float> weights, float scaleMax);
  // -1: none. Scrolls the token into view; emits nothing.
  void setSelected(int index);
  int selected() const { return selected_; }
  void setColormap(ColormapId id);

  // Token i's chip in viewport coordinates (empty if there is no such token), and the token at a
  // viewport point (-1 if none).
  QRect tokenRect(int index) const;
  int tokenAt(const QPoint& viewportPos) const;

  QSize sizeHint() const override { return {480, 320}; }

 signals:
  void tokenClicked(int index);  // a left click on a chip, or Left/Right (also selects it)
  // "token 'tok' (j): p = 0.0123" with a weight, "token 'tok' (j)" without; empty on leaving.
  void hoverText(const QString& text);

 protected:
  void paintEvent(QPaintEvent* e) override;
  void resizeEvent(QResizeEvent* e) override;
  void mousePressEvent(QMouseEvent* e) override;
  void mouseReleaseEvent(QMouseEvent* e) override;
  void mouseMoveEvent(QMouseEvent* e) override;
  void leaveEvent(QEvent* e) override;
  void keyPressEvent(QKeyEvent* e) override;
  void changeEvent(QEvent* e) override;
  void scrollContentsBy(int dx, int dy) override;
  bool viewportEvent(QEvent* e) override;

 private:
  // Per token, independent of the width: measured once per token list and font.
  struct Chip {
    float gap = 0;        // the token's leading spaces, as space before the chip
    float textWidth = 0;  // of its visible text
    quint8 newlines = 0;  // "\n"s in it: the line ends after it (more than one: a paragraph)
  };
  void measure();
  void ensureLayout() const;
  void invalidateLayout();
  void updateScrollRange() const;
  int legendHeight() const;
  int textHeight() const;  // of the viewport, above the legend
  void scrollToToken(int index);
  QString chipText(int index) const;
  QString tokenName(int index) const;  // "token 'tok' (j)"
  QString describe(int index) const;   // and its weight
  void selectAndEmit(int index);
  void setHovered(int index);
  void paintLegend(QPainter& p) const;

  std::shared_ptr<const QStringList> tokens_;
  std::vector<Chip> chips_;
  QVector<float> weights_;
  float scaleMax_ = 1;
  int selected_ = -1;
  ColormapId colormap_ = ColormapId::viridis;
  int hovered_ = -1;

  // Layout for one viewport width, in content coordinates (y grows down the whole text).
  mutable int layoutWidth_ = -1;
  mutable std::vector<QRect> rects_;    // per token
  mutable std::vector<int> lineFirst_;  // first token of each line
  mutable std::vector<int> lineTop_;    // y of each line, ascending
  mutable int contentHeight_ = 0;
};

}  // namespace attnscope::gui
