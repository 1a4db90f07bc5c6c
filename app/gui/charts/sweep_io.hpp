// Sweep files: reading the JSON that `attnscope-cli bench` and the Benchmark view write, and
// writing a sweep's data as that JSON (exactly sweep_to_json) or as CSV with its configuration.
#pragma once

#include <QString>

#include "attnscope/sweep.hpp"

namespace attnscope::gui::charts {

// Reads a sweep JSON file. Returns an error message naming the file (missing, unreadable,
// malformed), empty on success.
QString loadSweepFile(const QString& path, SweepResult& out);

// By suffix: .json (sweep_to_json, so `attnscope chart` can redraw it) or .csv (one row per point,
// the configuration, machine, devices and date in leading '#' lines). Written atomically. Returns
// an error message, empty on success.
QString saveSweepData(const SweepResult& sweep, const QString& path);
// What saveSweepData would write to `path`, into `bytes` (nothing is written). Returns an error
// message, empty on success.
QString sweepDataBytes(const SweepResult& sweep, const QString& path, QByteArray& bytes);

// The CSV text saveSweepData writes.
QString sweepToCsv(const SweepResult& sweep);

}  // namespace attnscope::gui::charts
