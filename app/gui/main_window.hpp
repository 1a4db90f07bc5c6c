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

#include <QMessageBox>

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
  // The one error box (dialogs on), or null before the first error that needed it.
  QMessageBox* errorBox() const { return errorBox_; }
  // The size the window opens at: 1240 x 740 (a 1280 x 800 screen with a title bar and a panel
  // keeps the status bar visible), less where the screen is smaller.
  static QSize defaultSize(const QRect& available);
  // `frame` moved and shrunk to lie inside `available` (a geometry saved on a larger or another
  // screen); `minimum` is the window's minimum size, which wins where the screen is smaller.
  static QRect fitToScreen(const QRect& frame, const QRect& available, const QSize& minimum = {});
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
  // Ctrl+E and Ctrl+Shift+E export from anywhere in the window: a focused number field would
  // otherwise take them as its own line-editing keys.
  bool eventFilter(QObject* watched, QEvent* event) override;

 private:
  void buildMenus();
  void onResult(const ViewResultPtr& r);
  void onError(const QString& message);
  void onCancelled();
  void onFileLoaded(const Workload& fromFile);
  // Greys (and labels with `why`) every result view whose picture is not an answer to the current
  // workload; marks the others current. The status bar then says what is drawn.
  void markStale(const QString& why);
  void showDrawn();  // run and cost labels from the result on screen (drawn_)
  bool drawnIsCurrent(const ViewBase* v) const;
  void closeErrorBox();
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
  ViewResultPtr drawn_;  // the newest result shown: what the status bar describes
  QAction* exportFigureAction_ = nullptr;
  QAction* exportDataAction_ = nullptr;
  quint64 shownResults_ = 0;
  ViewKind lastResultView_ = ViewKind::learn;
  bool dark_ = false;
  QString colormap_ = QStringLiteral("viridis");
  QList<QAction*> colormapActions_;
  QAction* darkAction_ = nullptr;
  void setColormap(const QString& name);
};

}  // namespace attnscope::gui
