// Exporter: the current view as a figure (PNG at a chosen DPI, SVG, PDF) and its data (CSV, JSON),
// always with the full run configuration so any figure can be reproduced.
#pragma once

#include <QByteArray>
#include <QJsonObject>
#include <QString>

#include "view_result.hpp"

class QWidget;

namespace attnscope::gui {

class ViewBase;

// The largest raster image any export or screenshot renders: 16384 pixels per side, so one 32-bit
// image stays within 1 GiB (Qt cannot back larger paint devices reliably, and painting widgets
// into a device it failed to allocate crashes inside Qt).
constexpr int kMaxImageSide = 16384;
constexpr qint64 kMaxImagePixels = qint64(kMaxImageSide) * kMaxImageSide;
// Empty when a width x height image is within those limits, else a message saying why not.
QString checkImageSize(qint64 width, qint64 height);

// The widget rendered at `scale` (device pixels per widget pixel) and encoded as PNG into `bytes`,
// tagged `dpi` and, when not empty, with `description` as its configuration; the image's size and
// allocation are checked before anything is painted. `opaque` drops the alpha channel (window
// screenshots). Returns an error message naming `path`, empty on success.
QString renderPng(QWidget* widget, const QString& path, double scale, int dpi, bool opaque,
                  const QString& description, QByteArray& bytes);

// Everything needed to reproduce a figure: the workload (every parameter, seed, pattern,
// backend, describe()), the view and its request, and what the run reported.
QJsonObject runConfiguration(const Workload& w, const ViewBase& view);

struct FigureOptions {
  int dpi = 144;                 // PNG pixels and PDF resolution (96: one pixel per widget pixel)
  bool whiteBackground = false;  // paper: white background, black text, in any palette
  QString title;                 // short document title (view and variant); empty: "attnscope"
  QJsonObject config;            // the run configuration, carried inside the file
};

// By suffix: .png (dpi scales the pixels), .svg, .pdf. The configuration goes into the PNG's
// "attnscope-configuration" text, the SVG's description and a JSON file attached to the PDF; the
// PDF's title is the short title and its creator attnscope. Returns an error message, empty on
// success.
QString exportFigure(QWidget* widget, const QString& path, const FigureOptions& options);
QString exportFigure(QWidget* widget, const QString& path, int dpi = 144,
                     const QJsonObject& config = {});
// By suffix: .json (configuration + data) or .csv (configuration as '#' comment lines + rows).
QString exportData(const ViewBase& view, const Workload& w, const QString& path);

}  // namespace attnscope::gui
