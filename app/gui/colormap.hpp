// Perceptually uniform colormaps (viridis, magma) as 256-entry lookup tables, plus value scaling.
// Heatmaps map probabilities through these so equal steps in p look like equal steps in colour.
#pragma once

#include <QtGui/qrgb.h>
#include <QColor>
#include <QString>
#include <QStringList>
#include <QVector>

namespace attnscope::gui {

enum class ColormapId { viridis, magma };
enum class ScaleMode { linear, log };

class Colormap {
 public:
  static const Colormap& get(ColormapId id);
  static QStringList names();  // display order matches ColormapId
  static ColormapId fromName(const QString& name);

  // t in [0, 1] (clamped); NaN maps to the low end.
  QRgb at(double t) const;
  const QVector<QRgb>& lut() const { return lut_; }
  QString name() const { return name_; }

 private:
  Colormap(QString name, QVector<QRgb> lut) : name_(std::move(name)), lut_(std::move(lut)) {}
  QString name_;
  QVector<QRgb> lut_;
};

// Maps a value to [0, 1] for a colormap. Log scale spans `decades` decades below vmax, so the
// tiny probabilities far from the diagonal stay visible instead of vanishing into the low colour.
struct ValueScale {
  ScaleMode mode = ScaleMode::linear;
  double vmin = 0, vmax = 1;
  double decades = 4;
  double normalize(double v) const;
  double valueAt(double t) const;  // inverse of normalize, for legend ticks
};

// Diverging blue-white-red for signed differences (compare view); t in [-1, 1].
QRgb diverging(double t);

}  // namespace attnscope::gui
