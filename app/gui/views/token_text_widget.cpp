// Token chips laid out like running text. Widths are measured once per token list and font, the
// layout once per viewport width, and a paint touches only the lines in the exposed rectangle:
// 32K tokens scroll and re-tint like a short sentence.
#include "views/token_text_widget.hpp"

#include <QHash>
#include <QKeyEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QScrollBar>
#include <algorithm>
#include <cmath>

#include "heatmap_widget.hpp"

namespace attnscope::gui {
namespace {
constexpr int kMargin = 6;
constexpr int kPad = 4;      // text inside a chip, either side
constexpr int kSpacing = 2;  // between chips on a line
constexpr int kLeading = 4;  // between lines
constexpr int kMaxGapSpaces = 8;
// A pathological token (a whole file without spaces) is cut before measuring; its chip is elided
// to the line anyway.
constexpr int kMaxChipChars = 160;
constexpr int kHoverTokenChars = 40;

// Leading spaces become the gap before the chip; a token of only spaces keeps them as text.
int leadingSpaces(const QString& t) {
  int n = 0;
  while (n < t.size() && t[n] == QLatin1Char(' ')) ++n;
  return n == t.size() ? 0 : n;
}

int countNewlines(const QString& t) {
  int n = 0;
  for (QChar c : t) {
    const char16_t u = c.unicode();
    n += u == u'\n' || u == 0x85 || u == 0x2028 || u == 0x2029;
  }
  return n;
}

double luminance(QRgb c) {
  return 0.2126 * qRed(c) + 0.7152 * qGreen(c) + 0.0722 * qBlue(c);
}
}  // namespace

TokenTextWidget::TokenTextWidget(QWidget* parent) : QAbstractScrollArea(parent) {
  // A scroll bar that comes and goes would change the width, hence the layout, hence the need
  // for the bar: keep it.
  setVerticalScrollBarPolicy(Qt::ScrollBarAlwaysOn);
  setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  setFocusPolicy(Qt::StrongFocus);
  viewport()->setMouseTracking(true);
  viewport()->setBackgroundRole(QPalette::Base);
}

void TokenTextWidget::setTokens(std::shared_ptr<const QStringList> tokens) {
  tokens_ = std::move(tokens);
  weights_.clear();
  scaleMax_ = 1;
  selected_ = -1;
  hovered_ = -1;
  measure();
  invalidateLayout();
  verticalScrollBar()->setValue(0);
  viewport()->update();
}

int TokenTextWidget::tokenCount() const {
  return tokens_ ? int(tokens_->size()) : 0;
}

void TokenTextWidget::setWeights(QVector<float> weights, float scaleMax) {
  const bool legendChanged = weights.isEmpty() != weights_.isEmpty();
  weights_ = std::move(weights);
  scaleMax_ = scaleMax > 0 && std::isfinite(scaleMax) ? scaleMax : 1.0f;
  if (legendChanged) updateScrollRange();  // the legend takes or gives back a strip
  viewport()->update();
}

void TokenTextWidget::setSelected(int index) {
  selected_ = index >= 0 && index < tokenCount() ? index : -1;
  if (selected_ >= 0) scrollToToken(selected_);
  viewport()->update();
}

void TokenTextWidget::setColormap(ColormapId id) {
  colormap_ = id;
  viewport()->update();
}

QString TokenTextWidget::chipText(int index) const {
  const QString& t = (*tokens_)[index];
  const int lead = leadingSpaces(t);
  return visibleToken(t.mid(lead, kMaxChipChars));
}

void TokenTextWidget::measure() {
  chips_.assign(size_t(tokenCount()), Chip{});
  if (chips_.empty()) return;
  const QFontMetricsF fm(font());
  const float space = float(fm.horizontalAdvance(QLatin1Char(' ')));
  // A text repeats the same few thousand tokens: shape each distinct string once.
  QHash<QString, float> widths;
  for (int i = 0; i < tokenCount(); ++i) {
    const QString& t = (*tokens_)[i];
    Chip& c = chips_[size_t(i)];
    c.gap = space * float(std::min(leadingSpaces(t), kMaxGapSpaces));
    c.newlines = quint8(std::min(countNewlines(t), 255));
    auto it = widths.constFind(t);
    if (it == widths.constEnd()) {
      it = widths.insert(t, float(fm.horizontalAdvance(chipText(i))));
    }
    c.textWidth = *it;
  }
}

void TokenTextWidget::invalidateLayout() {
  layoutWidth_ = -1;
  ensureLayout();
}

void TokenTextWidget::ensureLayout() const {
  const int width = viewport()->width();
  if (layoutWidth_ == width) return;
  layoutWidth_ = width;
  const int n = tokenCount();
  const QFontMetrics fm(font());
  const int chipHeight = fm.height() + 4, lineHeight = chipHeight + kLeading;
  const double right = std::max(width - kMargin, kMargin + 4 * kPad);
  const double widest = right - kMargin;
  rects_.resize(size_t(n));
  lineFirst_.clear();
  lineTop_.clear();
  double x = kMargin;
  int y = kMargin;
  bool fresh = true;  // nothing on the current line yet
  for (int i = 0; i < n; ++i) {
    const Chip& c = chips_[size_t(i)];
    const double w = std::min(widest, std::ceil(c.textWidth) + 2.0 * kPad);
    if (!fresh && x + c.gap + w > right) {
      y += lineHeight;
      x = kMargin;
      fresh = true;
    }
    if (fresh) {
      lineFirst_.push_back(i);
      lineTop_.push_back(y);
    } else {
      x += c.gap;  // a wrapped line starts flush left, as text does
    }
    rects_[size_t(i)] = QRect(int(std::lround(x)), y, int(w), chipHeight);
    x += w + kSpacing;
    fresh = false;
    if (c.newlines > 0) {
      y += lineHeight + (c.newlines > 1 ? lineHeight / 2 : 0);
      x = kMargin;
      fresh = true;
    }
  }
  contentHeight_ = (fresh ? y : y + lineHeight) + kMargin;
  updateScrollRange();
}

int TokenTextWidget::legendHeight() const {
  return weights_.isEmpty() ? 0 : QFontMetrics(font()).height() + 10;
}

int TokenTextWidget::textHeight() const {
  return std::max(0, viewport()->height() - legendHeight());
}

void TokenTextWidget::updateScrollRange() const {
  // Called from ensureLayout() for accessors that need the geometry; the scroll bar is state of
  // the view, not of the token list.
  QScrollBar* bar = verticalScrollBar();
  const int page = textHeight();
  bar->setRange(0, std::max(0, contentHeight_ - page));
  bar->setPageStep(std::max(1, page));
  bar->setSingleStep(QFontMetrics(font()).height() + 4 + kLeading);
}

void TokenTextWidget::scrollToToken(int index) {
  ensureLayout();
  const QRect r = rects_[size_t(index)];
  QScrollBar* bar = verticalScrollBar();
  const int top = bar->value(), page = textHeight();
  if (r.top() - kMargin < top) {
    bar->setValue(r.top() - kMargin);
  } else if (r.bottom() + kMargin > top + page) {
    bar->setValue(r.bottom() + kMargin - page + 1);
  }
}

QRect TokenTextWidget::tokenRect(int index) const {
  if (index < 0 || index >= tokenCount()) return {};
  ensureLayout();
  return rects_[size_t(index)].translated(0, -verticalScrollBar()->value());
}

int TokenTextWidget::tokenAt(const QPoint& viewportPos) const {
  if (tokenCount() == 0 || viewportPos.y() >= textHeight() || viewportPos.y() < 0) return -1;
  ensureLayout();
  const QPoint p = viewportPos + QPoint(0, verticalScrollBar()->value());
  const auto line = std::upper_bound(lineTop_.begin(), lineTop_.end(), p.y());
  if (line == lineTop_.begin()) return -1;
  const size_t l = size_t(line - lineTop_.begin()) - 1;
  const int first = lineFirst_[l];
  const int end = l + 1 < lineFirst_.size() ? lineFirst_[l + 1] : tokenCount();
  // The chip starting at or before x on this line, if x is inside it.
  const auto it = std::upper_bound(rects_.begin() + first, rects_.begin() + end, p.x(),
                                   [](int x, const QRect& r) { return x < r.left(); });
  if (it == rects_.begin() + first) return -1;
  const int k = int(it - rects_.begin()) - 1;
  return rects_[size_t(k)].contains(p) ? k : -1;
}

QString TokenTextWidget::tokenName(int index) const {
  QString tok = visibleToken((*tokens_)[index].left(kHoverTokenChars + 1));
  if (tok.size() > kHoverTokenChars) tok = tok.left(kHoverTokenChars - 1) + QChar(0x2026);
  return tr("token '%1' (%2)").arg(tok, QString::number(index));  // one pass: tok may hold "%1"
}

QString TokenTextWidget::describe(int index) const {
  if (index < 0 || index >= tokenCount()) return {};
  if (index < weights_.size() && !std::isnan(weights_[index])) {
    return tr("%1: p = %2").arg(tokenName(index), formatMapValue(weights_[index]));
  }
  return tokenName(index);
}

void TokenTextWidget::paintEvent(QPaintEvent* e) {
  QPainter p(viewport());
  p.setFont(font());  // the font the chips were measured in
  const QRect exposed = e->rect();
  p.fillRect(exposed, palette().base());
  const int text = textHeight();
  if (tokenCount() > 0 && exposed.top() < text) {
    ensureLayout();
    const int scroll = verticalScrollBar()->value();
    const QFontMetrics fm(font());
    const int chipHeight = fm.height() + 4;
    const int y0 = exposed.top() + scroll, y1 = std::min(exposed.bottom(), text - 1) + scroll;
    // Lines whose chips reach into [y0, y1]: tops in (y0 - chipHeight, y1].
    const size_t firstLine = size_t(
        std::upper_bound(lineTop_.begin(), lineTop_.end(), y0 - chipHeight) - lineTop_.begin());
    const size_t endLine =
        size_t(std::upper_bound(lineTop_.begin(), lineTop_.end(), y1) - lineTop_.begin());
    if (firstLine < endLine) {
      const int first = lineFirst_[firstLine];
      const int end = endLine < lineFirst_.size() ? lineFirst_[endLine] : tokenCount();
      p.setClipRect(QRect(0, 0, viewport()->width(), text));
      p.translate(0, -scroll);
      p.setRenderHint(QPainter::Antialiasing, true);
      const Colormap& cm = Colormap::get(colormap_);
      const QColor plainText = palette().color(QPalette::Text);
      QColor maskedText = plainText;
      maskedText.setAlphaF(0.45f);
      QColor plainFill = palette().color(QPalette::AlternateBase);
      QColor border = palette().color(QPalette::Mid);
      border.setAlpha(110);
      for (int i = first; i < end; ++i) {
        const QRectF r = QRectF(rects_[size_t(i)]).adjusted(0.5, 0.5, -0.5, -0.5);
        const float w = i < weights_.size() ? weights_[i] : NAN;
        const bool tinted = !weights_.isEmpty() && !std::isnan(w);
        QColor textColour = plainText;
        if (tinted) {
          const QRgb fill = cm.at(std::clamp(double(w) / scaleMax_, 0.0, 1.0));
          p.setPen(Qt::NoPen);
          p.setBrush(QColor(fill));
          p.drawRoundedRect(r, 3, 3);
          textColour = luminance(fill) > 140 ? Qt::black : Qt::white;
        } else if (!weights_.isEmpty()) {
          textColour = maskedText;  // masked: the selected token cannot see it
        } else {
          p.setPen(border);
          p.setBrush(plainFill);
          p.drawRoundedRect(r, 3, 3);
        }
        if (i == selected_) {
          // Two rings, dark and light, so the outline shows on every colour of the map.
          p.setBrush(Qt::NoBrush);
          p.setPen(QPen(palette().color(QPalette::Text), 2));
          p.drawRoundedRect(r.adjusted(-1, -1, 1, 1), 4, 4);
          p.setPen(QPen(palette().color(QPalette::Base), 1));
          p.drawRoundedRect(r.adjusted(0.5, 0.5, -0.5, -0.5), 3, 3);
        }
        p.setPen(textColour);
        const QRectF inner = QRectF(rects_[size_t(i)]).adjusted(kPad, 0, -kPad, 0);
        QString label = chipText(i);
        if (chips_[size_t(i)].textWidth > inner.width() + 0.5) {
          label = fm.elidedText(label, Qt::ElideRight, int(inner.width()));
        }
        p.drawText(inner, Qt::AlignLeft | Qt::AlignVCenter | Qt::TextSingleLine, label);
      }
      p.resetTransform();
      p.setClipping(false);
    }
  }
  if (legendHeight() > 0 && exposed.bottom() >= text) paintLegend(p);
}

void TokenTextWidget::paintLegend(QPainter& p) const {
  const QFontMetrics fm(font());
  const QRect strip(0, textHeight(), viewport()->width(), legendHeight());
  p.fillRect(strip, palette().window());
  p.setPen(palette().color(QPalette::WindowText));
  const int barHeight = fm.height() - 2;
  const int y = strip.top() + (strip.height() - barHeight) / 2;
  int x = kMargin;
  const QString lo = QStringLiteral("0"), hi = formatMapValue(scaleMax_);
  p.drawText(QRect(x, strip.top(), fm.horizontalAdvance(lo), strip.height()), Qt::AlignVCenter, lo);
  x += fm.horizontalAdvance(lo) + 4;
  const int barWidth = std::clamp(strip.width() / 4, 40, 160);
  const Colormap& cm = Colormap::get(colormap_);
  QImage gradient(256, 1, QImage::Format_RGB32);
  for (int k = 0; k < 256; ++k) gradient.setPixel(k, 0, cm.lut()[k]);
  p.drawImage(QRect(x, y, barWidth, barHeight), gradient);
  x += barWidth + 4;
  p.drawText(QRect(x, strip.top(), fm.horizontalAdvance(hi), strip.height()), Qt::AlignVCenter, hi);
  x += fm.horizontalAdvance(hi) + 12;
  const QString caption = selected_ >= 0
                              ? tr("attention of %1 to each token").arg(tokenName(selected_))
                              : tr("weight of each token");
  p.drawText(QRect(x, strip.top(), std::max(0, strip.width() - x - kMargin), strip.height()),
             Qt::AlignVCenter,
             fm.elidedText(caption, Qt::ElideRight, std::max(0, strip.width() - x - kMargin)));
}

void TokenTextWidget::resizeEvent(QResizeEvent* e) {
  // Keep the first line's first token in view across a re-wrap.
  int anchor = -1;
  if (layoutWidth_ >= 0 && !lineTop_.empty()) {
    const auto line =
        std::upper_bound(lineTop_.begin(), lineTop_.end(), verticalScrollBar()->value() + kMargin);
    anchor = lineFirst_[size_t(std::max<std::ptrdiff_t>(0, line - lineTop_.begin() - 1))];
  }
  ensureLayout();
  updateScrollRange();  // the height may have changed alone
  if (anchor >= 0) verticalScrollBar()->setValue(rects_[size_t(anchor)].top() - kMargin);
  QAbstractScrollArea::resizeEvent(e);
}

void TokenTextWidget::scrollContentsBy(int, int) {
  // A repaint rather than a blit: the legend strip stays where it is.
  viewport()->update();
  if (hovered_ >= 0) setHovered(tokenAt(viewport()->mapFromGlobal(QCursor::pos())));
}

void TokenTextWidget::selectAndEmit(int index) {
  if (index < 0 || index >= tokenCount()) return;
  selected_ = index;
  scrollToToken(index);
  viewport()->update();
  emit tokenClicked(index);
}

void TokenTextWidget::mousePressEvent(QMouseEvent* e) {
  if (e->button() != Qt::LeftButton) {
    QAbstractScrollArea::mousePressEvent(e);
    return;
  }
  const int k = tokenAt(e->position().toPoint());
  if (k >= 0) selectAndEmit(k);
}

void TokenTextWidget::mouseReleaseEvent(QMouseEvent* e) {
  // The press selected: its release is ours too, not the parent's.
  if (e->button() == Qt::LeftButton) {
    e->accept();
    return;
  }
  QAbstractScrollArea::mouseReleaseEvent(e);
}

void TokenTextWidget::setHovered(int index) {
  if (index == hovered_) return;
  hovered_ = index;
  emit hoverText(describe(index));
}

void TokenTextWidget::mouseMoveEvent(QMouseEvent* e) {
  setHovered(tokenAt(e->position().toPoint()));
}

void TokenTextWidget::leaveEvent(QEvent* e) {
  setHovered(-1);
  QAbstractScrollArea::leaveEvent(e);
}

bool TokenTextWidget::viewportEvent(QEvent* e) {
  // The viewport's Leave is not routed to leaveEvent(); moving onto the scroll bar ends a hover.
  if (e->type() == QEvent::Leave) setHovered(-1);
  return QAbstractScrollArea::viewportEvent(e);
}

void TokenTextWidget::keyPressEvent(QKeyEvent* e) {
  const int n = tokenCount();
  if (n > 0 && (e->key() == Qt::Key_Left || e->key() == Qt::Key_Right)) {
    const int step = e->key() == Qt::Key_Left ? -1 : 1;
    const int next =
        selected_ < 0 ? (step > 0 ? 0 : n - 1) : std::clamp(selected_ + step, 0, n - 1);
    if (next != selected_) selectAndEmit(next);
    e->accept();
    return;
  }
  QAbstractScrollArea::keyPressEvent(e);
}

void TokenTextWidget::changeEvent(QEvent* e) {
  if (e->type() == QEvent::FontChange) {
    measure();
    invalidateLayout();
    viewport()->update();
  }
  QAbstractScrollArea::changeEvent(e);
}

}  // namespace attnscope::gui
