// PageMapWidget: the live picture of a PagedKvCache. Top: the physical page pool, each page
// coloured by the sequence that owns it (free pages grey). Below: each sequence's logical pages in
// order (fill level shaded, SWA's evicted pages hatched), MoBA's block-mean side store and Gated
// DeltaNet's constant state as one block.
#pragma once

#include <QWidget>
#include <optional>

#include "live/live_decode.hpp"

namespace attnscope::gui {

class PageMapWidget : public QWidget {
  Q_OBJECT

 public:
  explicit PageMapWidget(QWidget* parent = nullptr);

  void setSnapshot(const KvSnapshot& snapshot, const AttentionProblem& problem);
  void clear();
  const std::optional<KvSnapshot>& snapshot() const { return snapshot_; }
  // The colour of a sequence id (stable: ids are never reused).
  static QColor sequenceColor(int64_t id);

  QSize sizeHint() const override;

 protected:
  void paintEvent(QPaintEvent* e) override;
  void resizeEvent(QResizeEvent* e) override;

 private:
  // Lays the picture out for `width`; paints it when `painter` is given. Returns the height used.
  int layout(int width, QPainter* painter) const;
  void updateHeight();

  std::optional<KvSnapshot> snapshot_;
  AttentionProblem problem_;
};

}  // namespace attnscope::gui
