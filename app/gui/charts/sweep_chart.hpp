// SweepChart: a benchmark sweep drawn with Qt Charts at a fixed logical size (960 x 600), with a
// fixed palette and font, so that the same sweep gives the same picture on any screen or none.
// The Benchmark view shows this object's scene and `attnscope chart` exports it: one code path.
#pragma once

#include <QByteArray>
#include <QImage>
#include <QSize>
#include <QString>
#include <memory>

#include "charts/chart_data.hpp"

class QChart;
class QGraphicsScene;

namespace attnscope::gui::charts {

class SweepChart {
 public:
  static constexpr int kWidth = 960;
  static constexpr int kHeight = 600;
  static QSize logicalSize() { return {kWidth, kHeight}; }
  // The one family every chart text uses (installed with fonts-dejavu-core on Debian).
  static QString fontFamily();

  SweepChart();
  ~SweepChart();
  SweepChart(const SweepChart&) = delete;
  SweepChart& operator=(const SweepChart&) = delete;

  // Rebuilds the chart from the sweep. When the sweep cannot make this chart, the chart shows the
  // message in place of the plot and it is returned (and kept in error()); empty on success.
  QString setSweep(const SweepResult& sweep, const ChartOptions& options);
  const QString& error() const { return error_; }
  const ChartData& data() const { return data_; }
  const ChartOptions& options() const { return options_; }

  QGraphicsScene* scene() const { return scene_.get(); }
  QChart* chart() const { return chart_; }

  // Renderings of the whole chart. PNG pixels are the logical size times dpi / 96; a null image
  // when that image cannot be allocated.
  QImage toImage(int dpi = 96) const;
  QByteArray toSvg() const;
  QByteArray toPdf(int dpi = 300) const;
  // By suffix: .png (at dpi), .svg, .pdf. Nothing is written when the chart has an error or the
  // suffix is unknown; the file is replaced atomically. Returns an error message, empty on success.
  QString save(const QString& path, int dpi = 144) const;
  // What save() would write to `path`, into `bytes` (nothing is written). Returns an error
  // message, empty on success.
  QString render(const QString& path, int dpi, QByteArray& bytes) const;

 private:
  void build();
  void buildLine();
  void buildBar();
  void addFooter();
  void addMessage(const QString& text);
  void settle() const;

  std::unique_ptr<QGraphicsScene> scene_;
  QChart* chart_ = nullptr;  // owned by scene_
  ChartData data_;
  ChartOptions options_;
  QString error_;
};

// The valid DPI range for PNG and PDF exports.
constexpr int kMinDpi = 24;
constexpr int kMaxDpi = 1200;

}  // namespace attnscope::gui::charts
