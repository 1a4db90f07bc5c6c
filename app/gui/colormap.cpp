// Colormap LUTs generated from sixth-order polynomial fits of matplotlib's viridis and magma
// (the least-squares fits Matt Zucker published on Shadertoy, "Colormap functions"): no data files.
#include "colormap.hpp"

#include <algorithm>
#include <array>
#include <cmath>

namespace attnscope::gui {
namespace {

using Coeffs = std::array<std::array<double, 3>, 7>;  // c0..c6 for r, g, b

// color(t) = c0 + c1 t + ... + c6 t^6, evaluated per channel (Horner).
QVector<QRgb> buildLut(const Coeffs& c) {
  QVector<QRgb> lut(256);
  for (int i = 0; i < 256; ++i) {
    const double t = i / 255.0;
    int rgb[3];
    for (int ch = 0; ch < 3; ++ch) {
      double v = c[6][ch];
      for (int k = 5; k >= 0; --k) v = v * t + c[static_cast<size_t>(k)][ch];
      rgb[ch] = std::clamp(static_cast<int>(std::lround(v * 255.0)), 0, 255);
    }
    lut[i] = qRgb(rgb[0], rgb[1], rgb[2]);
  }
  return lut;
}

constexpr Coeffs kViridis = {{{0.2777273272234177, 0.005407344544966578, 0.3340998053353061},
                              {0.1050930431085774, 1.404613529898575, 1.384590162594685},
                              {-0.3308618287255563, 0.214847559468213, 0.09509516302823659},
                              {-4.634230498983486, -5.799100973351585, -19.33244095627987},
                              {6.228269936347081, 14.17993336680509, 56.69055260068105},
                              {4.776384997670288, -13.74514537774601, -65.35303263337234},
                              {-5.435455855934631, 4.645852612178535, 26.3124352495832}}};

constexpr Coeffs kMagma = {{{-0.002136485053939582, -0.000749655052795221, -0.005386127855323933},
                            {0.2516605407371642, 0.6775232436837668, 2.494026599312351},
                            {8.353717279216625, -3.577719514958484, 0.3144679030132573},
                            {-27.66873308576866, 14.26473078096533, -13.64921318813922},
                            {52.17613981234068, -27.94360607168351, 12.94416944238394},
                            {-50.76852536473588, 29.04658282127291, 4.23415299384598},
                            {18.65570506591883, -11.48977351997711, -5.601961508734096}}};

}  // namespace

const Colormap& Colormap::get(ColormapId id) {
  static const Colormap viridis("viridis", buildLut(kViridis));
  static const Colormap magma("magma", buildLut(kMagma));
  return id == ColormapId::magma ? magma : viridis;
}

QStringList Colormap::names() {
  return {QStringLiteral("viridis"), QStringLiteral("magma")};
}

ColormapId Colormap::fromName(const QString& name) {
  return name == QLatin1String("magma") ? ColormapId::magma : ColormapId::viridis;
}

QRgb Colormap::at(double t) const {
  if (!(t > 0)) return lut_.front();  // also catches NaN
  if (t >= 1) return lut_.back();
  return lut_[static_cast<int>(t * 255.0 + 0.5)];
}

double ValueScale::normalize(double v) const {
  if (mode == ScaleMode::linear) {
    const double span = vmax - vmin;
    return span > 0 ? (v - vmin) / span : 0.0;
  }
  // Log: vmax at the top, vmax * 10^-decades at the bottom; zeros (masked) land at the bottom.
  if (!(v > 0) || !(vmax > 0)) return 0.0;
  return 1.0 + std::log10(v / vmax) / decades;
}

double ValueScale::valueAt(double t) const {
  if (mode == ScaleMode::linear) return vmin + t * (vmax - vmin);
  return vmax * std::pow(10.0, (t - 1.0) * decades);
}

QRgb diverging(double t) {
  // White at zero, saturating to blue (negative) or red (positive): a simple symmetric ramp.
  t = std::clamp(t, -1.0, 1.0);
  const double a = std::abs(t);
  const int fade = static_cast<int>(std::lround(255 * (1 - a)));
  return t >= 0 ? qRgb(255 - static_cast<int>(std::lround(a * 75)), fade, fade)
                : qRgb(fade, fade, 255 - static_cast<int>(std::lround(a * 75)));
}

}  // namespace attnscope::gui
