// A short description of the machine for the live views' exports (OS, CPU architecture, threads).
#pragma once

#include <QJsonObject>
#include <QSysInfo>
#include <QThread>

namespace attnscope::gui {

inline QJsonObject machineJson() {
  return {{"os", QSysInfo::prettyProductName()},
          {"kernel", QSysInfo::kernelType() + QLatin1Char(' ') + QSysInfo::kernelVersion()},
          {"cpu_architecture", QSysInfo::currentCpuArchitecture()},
          {"hardware_threads", QThread::idealThreadCount()}};
}

}  // namespace attnscope::gui
