// Writing output files safely: every target is checked before anything is written, each file is
// written to a temporary file in its own folder and renamed into place (QSaveFile), and a command
// that writes several files leaves none of them behind when one fails.
#pragma once

#include <QByteArray>
#include <QList>
#include <QString>

namespace attnscope::gui {

// Checks that `path` can be written: its folder exists, is a folder and is writable, and `path`
// itself is not a folder. Returns a one-line message naming the path once, empty when fine.
QString checkOutputPath(const QString& path);

struct OutputFile {
  QString path;
  QByteArray bytes;
};

// Writes every file or none: checks all targets, stages each as a temporary file next to its
// target, then renames them into place in order. If a rename fails, the files this call created
// are removed again (a file that existed before keeps its new contents; the message says so).
// Returns a one-line error message, empty on success.
QString writeOutputFiles(const QList<OutputFile>& files);
inline QString writeOutputFile(const QString& path, const QByteArray& bytes) {
  return writeOutputFiles({OutputFile{path, bytes}});
}

}  // namespace attnscope::gui
