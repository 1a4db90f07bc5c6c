// Figure and data export. Widgets render themselves into the target device (QWidget::render), so
// PNG, SVG and PDF show exactly what is on screen, at the requested resolution for PNG and PDF.
#include "exporter.hpp"

#include <QJsonArray>

#include <QBuffer>
#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QJsonDocument>
#include <QPageSize>
#include <QPainter>
#include <QPdfWriter>
#include <QSvgGenerator>
#include <QWidget>
#include <algorithm>
#include <cmath>

#include "output_files.hpp"
#include "views/view_base.hpp"

namespace attnscope::gui {

QString checkImageSize(qint64 width, qint64 height) {
  if (width < 1 || height < 1) {
    return QObject::tr("a %1x%2-pixel image is empty").arg(width).arg(height);
  }
  if (width > kMaxImageSide || height > kMaxImageSide || width * height > kMaxImagePixels) {
    return QObject::tr("a %1x%2-pixel image is too large (at most %3 pixels per side)")
        .arg(width)
        .arg(height)
        .arg(kMaxImageSide);
  }
  return {};
}

QString renderPng(QWidget* widget, const QString& path, double scale, int dpi, bool opaque,
                  const QString& description, QByteArray& bytes) {
  const QSize pixels(int(std::lround(widget->width() * scale)),
                     int(std::lround(widget->height() * scale)));
  if (QString e = checkImageSize(pixels.width(), pixels.height()); !e.isEmpty()) {
    return QObject::tr("cannot write %1 at %2 dpi: %3").arg(path).arg(dpi).arg(e);
  }
  QImage image(pixels, opaque ? QImage::Format_RGB32 : QImage::Format_ARGB32_Premultiplied);
  if (image.isNull()) {
    return QObject::tr("cannot write %1: not enough memory for a %2x%3 image")
        .arg(path)
        .arg(pixels.width())
        .arg(pixels.height());
  }
  image.setDevicePixelRatio(scale);
  image.setDotsPerMeterX(int(dpi / 0.0254));
  image.setDotsPerMeterY(int(dpi / 0.0254));
  image.fill(widget->palette().window().color());
  {
    QPainter p;
    if (!p.begin(&image) || !p.isActive()) {
      return QObject::tr("cannot write %1: cannot paint the image").arg(path);
    }
    widget->render(&p);
  }
  if (!description.isEmpty()) image.setText("attnscope-configuration", description);
  QBuffer buffer(&bytes);
  buffer.open(QIODevice::WriteOnly);
  if (!image.save(&buffer, "PNG")) {
    return QObject::tr("cannot write %1: cannot encode the PNG image").arg(path);
  }
  return {};
}

QJsonObject runConfiguration(const Workload& current, const ViewBase& view) {
  QJsonObject o;
  // The workload of the numbers exported (a result delivered for an edit still computing is the
  // previous text's), not the one being edited.
  // (Live views draw the current workload themselves.)
  const ViewResultPtr last = view.lastResult();
  const bool resultView = qobject_cast<const ResultView*>(&view) != nullptr;
  o["workload"] = (last && resultView ? last->workload : current).toJson();
  o["view"] = viewName(view.kind());
  o["attnscope_version"] = QStringLiteral(ATTNSCOPE_VERSION);
  if (const ViewResultPtr r = view.lastResult()) {
    const ViewRequest& q = r->request;
    o["view_request"] = QJsonObject{{"head", q.head},
                                    {"head_mode", int(q.headMode)},
                                    {"group", q.group},
                                    {"batch", q.batch},
                                    {"grid", q.grid},
                                    {"region", QJsonObject{{"row0", q.region.row0},
                                                           {"row1", q.region.row1},
                                                           {"col0", q.region.col0},
                                                           {"col1", q.region.col1}}},
                                    {"out_rows", q.outRows},
                                    {"out_cols", q.outCols},
                                    {"compare_pair", q.pair}};
    if (r->workload.model) {
      // What picks the numbers of a model's views: the layer, the text view's query token and
      // pooling, the atlas's statistic, the what-if replacement and its sweep.
      QJsonObject v = o["view_request"].toObject();
      v["layer"] = q.layer;
      v["token"] = q.token;
      v["all_layers"] = q.allLayers;
      v["stat"] = q.stat;
      Workload replacement;
      replacement.problem = q.whatIf;
      v["what_if"] = replacement.toJson();
      v["sweep_key"] = q.sweepKey;
      QJsonArray values;
      for (qint64 x : q.sweepValues) values.append(x);
      v["sweep_values"] = values;
      o["view_request"] = v;
    }
    o["run"] = QJsonObject{{"describe", r->run.describe},
                           {"backend", r->run.backend},
                           {"device", r->run.device},
                           {"seconds", r->run.seconds},
                           {"flops", r->run.flops},
                           {"bytes", r->run.bytes},
                           {"visible_pairs", r->run.visiblePairs}};
  }
  return o;
}

namespace {
// For a paper: the widget and its children drawn on white with black text for the duration of an
// export, whatever the palette on screen; the widget's own palette comes back afterwards.
class WhitePalette {
 public:
  WhitePalette(QWidget* w, bool on) : widget_(on ? w : nullptr) {
    if (!widget_) return;
    hadOwn_ = widget_->testAttribute(Qt::WA_SetPalette);
    old_ = widget_->palette();
    QPalette p = old_;
    for (auto group : {QPalette::Active, QPalette::Inactive, QPalette::Disabled}) {
      for (auto role :
           {QPalette::Window, QPalette::Base, QPalette::AlternateBase, QPalette::Button}) {
        p.setColor(group, role, Qt::white);
      }
      for (auto role : {QPalette::WindowText, QPalette::Text, QPalette::ButtonText}) {
        p.setColor(group, role, Qt::black);
      }
      p.setColor(group, QPalette::Mid, QColor(150, 150, 150));
    }
    widget_->setPalette(p);
  }
  ~WhitePalette() {
    if (!widget_) return;
    widget_->setPalette(hadOwn_ ? old_ : QPalette());
    if (!hadOwn_) widget_->setAttribute(Qt::WA_SetPalette, false);
  }
  WhitePalette(const WhitePalette&) = delete;
  WhitePalette& operator=(const WhitePalette&) = delete;

 private:
  QWidget* widget_;
  bool hadOwn_ = false;
  QPalette old_;
};
}  // namespace

QString exportFigure(QWidget* widget, const QString& path, int dpi, const QJsonObject& config) {
  FigureOptions o;
  o.dpi = dpi;
  o.config = config;
  return exportFigure(widget, path, o);
}

QString exportFigure(QWidget* widget, const QString& path, const FigureOptions& options) {
  const int dpi = options.dpi;
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (suffix != QLatin1String("png") && suffix != QLatin1String("svg") &&
      suffix != QLatin1String("pdf")) {
    return QObject::tr("unknown figure format '.%1' (use .png, .svg or .pdf)").arg(suffix);
  }
  // Before rendering anything: a missing folder should not cost a render.
  if (QString e = checkOutputPath(path); !e.isEmpty()) return e;
  const QSize size = widget->size();
  if (size.isEmpty()) return QObject::tr("cannot write %1: the figure has no size").arg(path);
  const QByteArray configJson = options.config.isEmpty()
                                    ? QByteArray()
                                    : QJsonDocument(options.config).toJson(QJsonDocument::Compact);
  const QString description = QString::fromUtf8(configJson);
  const QString title = options.title.isEmpty() ? QStringLiteral("attnscope") : options.title;
  const WhitePalette white(widget, options.whiteBackground);
  // Everything is rendered into memory first and written in one go (writeOutputFile), so a failed
  // render never leaves a partial file behind. A paint device Qt cannot back (an image too large
  // to allocate) is refused here: painting widgets into it would crash inside Qt.
  QByteArray bytes;
  QBuffer buffer(&bytes);
  buffer.open(QIODevice::WriteOnly);
  if (suffix == QLatin1String("png")) {
    const double scale = std::max(0.25, dpi / 96.0);
    if (QString e = renderPng(widget, path, scale, dpi, false, description, bytes); !e.isEmpty()) {
      return e;
    }
  } else if (suffix == QLatin1String("svg")) {
    QSvgGenerator svg;
    svg.setOutputDevice(&buffer);
    svg.setSize(size);
    svg.setViewBox(QRect(QPoint(0, 0), size));
    svg.setTitle(title);
    svg.setDescription(description);
    QPainter p;
    if (!p.begin(&svg) || !p.isActive()) {
      return QObject::tr("cannot write %1: cannot paint the SVG drawing").arg(path);
    }
    widget->render(&p);
    p.end();
  } else {
    QPdfWriter pdf(&buffer);
    pdf.setResolution(dpi);
    // Viewers show the title; the creator names the program. The configuration, too long for
    // either, travels as an attached JSON file (and in the data export).
    pdf.setTitle(title);
    pdf.setCreator(QStringLiteral("attnscope %1").arg(QStringLiteral(ATTNSCOPE_VERSION)));
    if (!configJson.isEmpty()) {
      pdf.addFileAttachment(QStringLiteral("attnscope-configuration.json"), configJson,
                            QStringLiteral("application/json"));
    }
    // One page the size of the widget (at 96 px per inch), no margins.
    pdf.setPageSize(
        QPageSize(QSizeF(size.width() * 72.0 / 96, size.height() * 72.0 / 96), QPageSize::Point));
    pdf.setPageMargins(QMarginsF(0, 0, 0, 0));
    QPainter p;
    if (!p.begin(&pdf) || !p.isActive()) {
      return QObject::tr("cannot write %1: cannot paint the PDF document").arg(path);
    }
    const double scale = double(pdf.width()) / std::max(1, size.width());
    p.scale(scale, scale);
    widget->render(&p);
    p.end();
  }
  buffer.close();
  if (bytes.isEmpty()) return QObject::tr("cannot write %1: nothing was rendered").arg(path);
  return writeOutputFile(path, bytes);
}

QString exportData(const ViewBase& view, const Workload& w, const QString& path) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  const QJsonObject config = runConfiguration(w, view);
  QByteArray bytes;
  if (suffix == "json") {
    bytes = QJsonDocument(QJsonObject{{"configuration", config}, {"data", view.exportData()}})
                .toJson(QJsonDocument::Indented);
  } else if (suffix == "csv") {
    bytes = "# attnscope " + QJsonDocument(config).toJson(QJsonDocument::Compact) + "\n" +
            view.exportCsv().toUtf8();
  } else {
    return QObject::tr("unknown data format '.%1' (use .csv or .json)").arg(suffix);
  }
  return writeOutputFile(path, bytes);
}

}  // namespace attnscope::gui
