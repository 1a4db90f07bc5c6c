// Page map painting. One pass lays out and (optionally) paints, so the height the scroll area is
// told and the picture cannot disagree. Very large pools are capped to keep painting cheap.
#include "live/page_map_widget.hpp"

#include <QPaintEvent>
#include <QPainter>
#include <algorithm>
#include <unordered_map>

#include "attnscope/registry.hpp"
#include "live/model_presets.hpp"

namespace attnscope::gui {
namespace {
constexpr int kCell = 10;
constexpr int kGap = 2;
constexpr int kPitch = kCell + kGap;
constexpr int kMargin = 6;
constexpr int kLabelWidth = 120;
constexpr qsizetype kMaxCells = 6000;  // per section; beyond it a note says how many are hidden
const QColor kFree(200, 200, 200);
}  // namespace

PageMapWidget::PageMapWidget(QWidget* parent) : QWidget(parent) {
  setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Preferred);
  setMinimumHeight(80);
}

QColor PageMapWidget::sequenceColor(int64_t id) {
  // Tableau 10: distinct on light and dark backgrounds.
  static const QColor palette[] = {
      {31, 119, 180}, {255, 127, 14},  {44, 160, 44},   {214, 39, 40},  {148, 103, 189},
      {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
  return palette[std::size_t(id < 0 ? 0 : id) % 10];
}

void PageMapWidget::setSnapshot(const KvSnapshot& snapshot, const AttentionProblem& problem) {
  snapshot_ = snapshot;
  problem_ = problem;
  updateHeight();
  update();
}

void PageMapWidget::clear() {
  snapshot_.reset();
  updateHeight();
  update();
}

QSize PageMapWidget::sizeHint() const {
  return {600, std::max(80, layout(600, nullptr))};
}

void PageMapWidget::resizeEvent(QResizeEvent* e) {
  QWidget::resizeEvent(e);
  updateHeight();
}

void PageMapWidget::updateHeight() {
  const int h = std::max(80, layout(std::max(200, width()), nullptr));
  if (minimumHeight() != h) setMinimumHeight(h);
}

void PageMapWidget::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), palette().base());
  layout(width(), &p);
}

int PageMapWidget::layout(int width, QPainter* p) const {
  const QFontMetrics fm = fontMetrics();
  const int line = fm.height() + 2;
  const QColor text = palette().color(QPalette::Text);
  int y = kMargin;
  const auto textLine = [&](const QString& s, int x = kMargin) {
    if (p) {
      p->setPen(text);
      p->drawText(QRect(x, y, width - x - kMargin, line), Qt::AlignLeft | Qt::AlignVCenter,
                  fm.elidedText(s, Qt::ElideRight, width - x - kMargin));
    }
    y += line;
  };
  if (!snapshot_) {
    textLine(tr("No decode yet: press Start to prefill the batch and decode token by token."));
    return y + kMargin;
  }
  const KvSnapshot& s = *snapshot_;
  const KvCacheStats& st = s.stats;
  const VariantInfo& info = variant_info(problem_.variant);
  const CacheSpec cache = info.cache(problem_);
  const bool stateOnly = cache.layout == CacheLayout::state;

  // --- the physical pool ---
  std::unordered_map<int32_t, int64_t> owner;  // physical page -> sequence id
  for (const KvSequenceMap& m : s.sequences) {
    for (int32_t page : m.pages) {
      if (page >= 0) owner[page] = m.id;
    }
  }
  if (stateOnly) {
    textLine(
        tr("%1 caches no pages: each sequence holds one constant-size state.")
            .arg(QString::fromUtf8(info.short_title.data(), qsizetype(info.short_title.size()))));
  } else {
    textLine(tr("Physical page pool: %1 pages allocated, %2 used, %3 free (grey) · one page = %4 "
                "tokens = %5")
                 .arg(st.pages_allocated)
                 .arg(st.pages_used)
                 .arg(st.pages_free)
                 .arg(st.page_size)
                 .arg(humanBytes(double(st.page_bytes))));
    const int cols = std::max(1, (width - 2 * kMargin + kGap) / kPitch);
    const qsizetype shown = std::min<qsizetype>(st.pages_allocated, kMaxCells);
    for (qsizetype i = 0; i < shown; ++i) {
      const int x = kMargin + int(i % cols) * kPitch;
      const int yy = y + int(i / cols) * kPitch;
      if (p) {
        const auto it = owner.find(int32_t(i));
        p->fillRect(x, yy, kCell, kCell, it == owner.end() ? kFree : sequenceColor(it->second));
      }
    }
    y += int((shown + cols - 1) / cols) * kPitch + 2;
    if (shown < st.pages_allocated) {
      textLine(tr("… and %1 more pages not drawn").arg(st.pages_allocated - shown));
    }
  }
  y += 6;

  // --- each sequence's logical pages ---
  if (s.sequences.empty()) {
    textLine(tr("No live sequences (finished ones were released: their pages are free again)."));
    return y + kMargin;
  }
  textLine(stateOnly
               ? tr("Sequences and their state")
               : tr("Sequences: logical pages in order (shade = fill; hatched = evicted by the "
                    "window)"));
  const int x0 = kMargin + kLabelWidth;
  const int cols = std::max(1, (width - x0 - kMargin + kGap) / kPitch);
  for (const KvSequenceMap& m : s.sequences) {
    const QColor c = sequenceColor(m.id);
    if (p) {
      p->setPen(text);
      p->fillRect(kMargin, y + 2, 8, 8, c);
      p->drawText(QRect(kMargin + 12, y - 2, kLabelWidth - 14, line), Qt::AlignLeft | Qt::AlignTop,
                  tr("seq %1 · %2 tok").arg(m.id).arg(m.length));
    }
    int rowsUsed = 1;
    if (stateOnly) {
      if (p) {
        const QRect box(x0, y, 160, kCell + 4);
        p->fillRect(box, c.lighter(130));
        p->setPen(c.darker(150));
        p->drawRect(box.adjusted(0, 0, -1, -1));
        p->setPen(text);
        p->drawText(box.adjusted(4, 0, 0, 0), Qt::AlignVCenter | Qt::AlignLeft,
                    tr("state %1").arg(humanBytes(double(m.state_bytes))));
      }
      y += std::max(line, kCell + 6);
      continue;
    }
    const qsizetype shown = std::min<qsizetype>(qsizetype(m.pages.size()), kMaxCells);
    for (qsizetype i = 0; i < shown; ++i) {
      const int x = x0 + int(i % cols) * kPitch;
      const int yy = y + int(i / cols) * kPitch;
      if (!p) continue;
      const QRect cell(x, yy, kCell, kCell);
      if (m.pages[size_t(i)] < 0) {
        p->fillRect(cell, QBrush(c, Qt::BDiagPattern));
        p->setPen(kFree.darker(120));
        p->drawRect(cell.adjusted(0, 0, -1, -1));
        continue;
      }
      const int64_t fill = i < qsizetype(m.page_fill.size()) ? m.page_fill[size_t(i)] : 0;
      const int filled =
          st.page_size > 0 ? int(kCell * std::clamp<double>(double(fill) / st.page_size, 0, 1)) : 0;
      p->fillRect(cell, c.lighter(170));
      p->fillRect(QRect(x, yy + kCell - filled, kCell, filled), c);
    }
    rowsUsed = std::max(1, int((shown + cols - 1) / cols));
    y += std::max(line, rowsUsed * kPitch);
    if (shown < qsizetype(m.pages.size())) {
      textLine(tr("… %1 more pages").arg(qsizetype(m.pages.size()) - shown), x0);
    }
    if (cache.mean_block > 0 && m.state_bytes > 0) {
      const int64_t blocks = m.length / cache.mean_block;
      if (p) {
        const QRect box(x0, y, 14, kCell);
        p->fillRect(box, QBrush(c.darker(130), Qt::Dense4Pattern));
        p->setPen(text);
        p->drawText(QRect(x0 + 20, y - 3, width - x0 - 20, line), Qt::AlignLeft | Qt::AlignTop,
                    tr("block-mean side store: %1 complete blocks, %2")
                        .arg(blocks)
                        .arg(humanBytes(double(m.state_bytes))));
      }
      y += line;
    }
    y += 3;
  }
  return y + kMargin;
}

}  // namespace attnscope::gui
