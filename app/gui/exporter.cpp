// Figure and data export. Widgets render themselves into the target device (QWidget::render), so
// PNG, SVG and PDF show exactly what is on screen, at the requested resolution for PNG and PDF.
#include "exporter.hpp"

#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QJsonDocument>
#include <QPageSize>
#include <QPainter>
#include <QPdfWriter>
#include <QSaveFile>
#include <QSvgGenerator>
#include <QWidget>

#include "views/view_base.hpp"

namespace attnscope::gui {

QJsonObject runConfiguration(const Workload& w, const ViewBase& view) {
  QJsonObject o;
  o["workload"] = w.toJson();
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
                                    {"compare_pair", comparePairName(q.pair)}};
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

QString exportFigure(QWidget* widget, const QString& path, int dpi, const QJsonObject& config) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  const QSize size = widget->size();
  const QString description =
      QString::fromUtf8(QJsonDocument(config).toJson(QJsonDocument::Compact));
  if (suffix == "png") {
    const double scale = std::max(0.25, dpi / 96.0);
    QImage image(size * scale, QImage::Format_ARGB32_Premultiplied);
    image.setDevicePixelRatio(scale);
    image.setDotsPerMeterX(int(dpi / 0.0254));
    image.setDotsPerMeterY(int(dpi / 0.0254));
    image.fill(widget->palette().window().color());
    widget->render(&image);
    if (!config.isEmpty()) image.setText("attnscope-configuration", description);
    if (!image.save(path, "PNG")) return QObject::tr("cannot write %1").arg(path);
    return {};
  }
  if (suffix == "svg") {
    QSvgGenerator svg;
    svg.setFileName(path);
    svg.setSize(size);
    svg.setViewBox(QRect(QPoint(0, 0), size));
    svg.setTitle(QStringLiteral("attnscope"));
    svg.setDescription(description);
    QPainter p;
    if (!p.begin(&svg)) return QObject::tr("cannot write %1").arg(path);
    widget->render(&p);
    p.end();
    return QFileInfo(path).size() > 0 ? QString() : QObject::tr("cannot write %1").arg(path);
  }
  if (suffix == "pdf") {
    QPdfWriter pdf(path);
    pdf.setResolution(dpi);
    pdf.setTitle(QStringLiteral("attnscope"));
    pdf.setCreator(description.left(2000));
    // One page the size of the widget (at 96 px per inch), no margins.
    pdf.setPageSize(
        QPageSize(QSizeF(size.width() * 72.0 / 96, size.height() * 72.0 / 96), QPageSize::Point));
    pdf.setPageMargins(QMarginsF(0, 0, 0, 0));
    QPainter p;
    if (!p.begin(&pdf)) return QObject::tr("cannot write %1").arg(path);
    const double scale = double(pdf.width()) / std::max(1, size.width());
    p.scale(scale, scale);
    widget->render(&p);
    p.end();
    return {};
  }
  return QObject::tr("unknown figure format '.%1' (use .png, .svg or .pdf)").arg(suffix);
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
  QSaveFile f(path);
  if (!f.open(QIODevice::WriteOnly) || f.write(bytes) != bytes.size() || !f.commit()) {
    return QObject::tr("cannot write %1: %2").arg(path, f.errorString());
  }
  return {};
}

}  // namespace attnscope::gui
