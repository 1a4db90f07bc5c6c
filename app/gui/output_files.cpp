// Output files: checked first, staged as temporary files beside their targets (QSaveFile), then
// renamed into place, so a failure never leaves a half-written or partial set of files.
#include "output_files.hpp"

#include <QFile>
#include <QFileInfo>
#include <QObject>
#include <QSaveFile>
#include <QStringList>
#include <memory>
#include <vector>

namespace attnscope::gui {

QString checkOutputPath(const QString& path) {
  if (path.isEmpty()) return QObject::tr("no output file given");
  const QFileInfo info(path);
  if (info.isDir()) return QObject::tr("cannot write %1: it is a folder").arg(path);
  const QFileInfo folder(info.absolutePath());
  if (!folder.exists()) return QObject::tr("cannot write %1: no such folder").arg(path);
  if (!folder.isDir()) return QObject::tr("cannot write %1: its parent is not a folder").arg(path);
  if (!folder.isWritable()) {
    return QObject::tr("cannot write %1: its folder is not writable").arg(path);
  }
  return {};
}

QString writeOutputFiles(const QList<OutputFile>& files) {
  for (const OutputFile& f : files) {
    if (QString e = checkOutputPath(f.path); !e.isEmpty()) return e;
  }
  // Stage everything first: the slow, failure-prone part (space, permissions) happens before any
  // target changes. A QSaveFile that is destroyed uncommitted removes its temporary file.
  std::vector<std::unique_ptr<QSaveFile>> staged;
  std::vector<bool> existed;
  for (const OutputFile& f : files) {
    auto file = std::make_unique<QSaveFile>(f.path);
    if (!file->open(QIODevice::WriteOnly)) {
      return QObject::tr("cannot write %1: %2").arg(f.path, file->errorString());
    }
    if (file->write(f.bytes) != f.bytes.size()) {
      return QObject::tr("cannot write %1: %2").arg(f.path, file->errorString());
    }
    existed.push_back(QFileInfo::exists(f.path));
    staged.push_back(std::move(file));
  }
  for (size_t i = 0; i < staged.size(); ++i) {
    if (staged[i]->commit()) continue;
    QString message =
        QObject::tr("cannot write %1: %2").arg(files[qsizetype(i)].path, staged[i]->errorString());
    QStringList kept;
    for (size_t j = 0; j < i; ++j) {
      if (!existed[j]) {
        QFile::remove(files[qsizetype(j)].path);
      } else {
        kept << files[qsizetype(j)].path;
      }
    }
    if (!kept.isEmpty()) {
      message += QObject::tr(" (already replaced: %1)").arg(kept.join(QStringLiteral(", ")));
    }
    return message;
  }
  return {};
}

}  // namespace attnscope::gui
