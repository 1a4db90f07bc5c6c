// MainWindow: workload panel (dock), the views (tabs), status bar with cost-model numbers and
// progress, menus with shortcuts; connects the views to the ExplorerController.
#pragma once

#include <QLabel>
#include <QMainWindow>
#include <QPointer>
#include <QProgressBar>
#include <QTabWidget>
#include <QToolButton>

#include "explorer_controller.hpp"
#include "views/view_base.hpp"

class QMessageBox;

namespace attnscope::gui {

class WorkloadPanel;
class LearnView;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  struct Options {
    bool useSettings = true;  // restore/save layout and the last workload (QSettings)
    bool dialogs = true;      // show non-modal error dialogs besides the status line
  };
  explicit MainWindow(const Options& options);
  MainWindow() : MainWindow(Options{}) {}
  ~MainWindow() override;

  ExplorerController& controller() { return controller_; }
  WorkloadPanel* panel() const { return panel_; }
  ViewBase* view(ViewKind kind) const;
  ViewBase* currentView() const;
  void setCurrentView(ViewKind kind);
  // Sets the workload, view settings and view of a demo. Returns an error message, empty if ok.
  QString applyPreset(const QString& name);
  void setWorkload(const Workload& w);
  // Newest error shown (status line), empty when the last run succeeded.
  QString lastError() const { return lastError_; }
  // True when nothing is queued or running and the current view shows the latest answer.
  bool settled() const;
  void setDarkPalette(bool dark);
  // The current view's figure (by suffix: .png, .svg, .pdf); on white when `whiteBackground`. The
  // map view re-probes its map at the exported resolution first (waits, running the event loop).
  QString exportFigureTo(const QString& path, int dpi = 144, bool whiteBackground = false);
  QString exportDataTo(const QString& path);

 public slots:
  void requestView(bool immediate = false);
  void openTensors();
  void exportFigureDialog();
  void exportDataDialog();

 protected:
  void closeEvent(QCloseEvent* e) override;
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;

 private:
  void buildMenus();
  void onResult(const ViewResultPtr& r);
  void onError(const QString& message);
  void restoreSettings();
  void saveSettings();

  Options options_;
  ExplorerController controller_;
  WorkloadPanel* panel_ = nullptr;
  QTabWidget* tabs_ = nullptr;
  QList<ViewBase*> views_;
  LearnView* learn_ = nullptr;
  QLabel* backendLabel_;
  QLabel* runLabel_;
  QLabel* costLabel_;
  QLabel* errorLabel_;
  QLabel* hoverLabel_;
  QProgressBar* progress_;
  QToolButton* cancelButton_;
  QPointer<QMessageBox> errorBox_;
  QString lastError_;
  quint64 shownResults_ = 0;
  ViewKind lastResultView_ = ViewKind::learn;
  bool dark_ = false;
  QString colormap_ = QStringLiteral("viridis");
  QList<QAction*> colormapActions_;
  QAction* darkAction_ = nullptr;
  void setColormap(const QString& name);
};

}  // namespace attnscope::gui
