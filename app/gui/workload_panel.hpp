// WorkloadPanel: every knob of a run (variant, shape, variant parameters, inputs, backend) with
// valid ranges and explanatory tooltips; emits the edited Workload, never runs anything itself.
// The variant parameters are built from the registry's ParamSpecs.
#pragma once

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QWidget>
#include <optional>

#include "attnscope/variant.hpp"
#include "model_input_box.hpp"
#include "workload.hpp"

namespace attnscope::gui {

class WorkloadPanel : public QWidget {
  Q_OBJECT

 public:
  explicit WorkloadPanel(QWidget* parent = nullptr);

  Workload workload() const { return workload_; }
  // Shows w without emitting workloadEdited.
  void setWorkload(const Workload& w);
  // Shows `message` (empty clears): beside the field last edited when `besideField` and there is
  // one (a value the problem refuses), else below the panel.
  void setError(const QString& message, bool besideField = false);
  QString errorText() const;
  // The note beside a field ("q_len", "window", …): a refused value or the problem's objection;
  // empty when there is none.
  QString fieldNote(const QString& name) const;
  // Tensors loaded from a file: their shape (and the knobs that are shapes) on the settings in
  // force, which are remembered for Clear. Shows the result without emitting workloadEdited.
  void applyFile(const Workload& fromFile);
  // What Clear does: back to the pattern, with the shape in force before the file.
  void clearFile();
  // A model folder opened on the worker: it becomes the source of the inputs (with the text in
  // the box, tokenized now); emits workloadEdited.
  void applyModel(const std::shared_ptr<const LoadedModel>& model);
  void modelFailed(const QString& dir, const QString& message);
  // Back to the synthetic inputs and the shape in force before the model; emits workloadEdited.
  void clearModel();
  // The text the model reads (as typed); with a model loaded it is tokenized and emitted.
  void setModelText(const QString& text);
  ModelInputBox* modelBox() const { return modelBox_; }

  // Test and automation hooks to the widgets.
  QComboBox* variantCombo() const { return variant_; }
  QComboBox* backendCombo() const { return backend_; }
  // A shape dimension ("q_len") or a variant knob ("window") by key.
  QSpinBox* spin(const QString& name) const;

 signals:
  void workloadEdited(const attnscope::gui::Workload& w);
  void loadFileRequested(const QString& path);
  void loadModelRequested(const QString& dir);

 protected:
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;

 private:
  QSpinBox* addSpin(QFormLayout* form, const QString& name, const QString& label, int min, int max,
                    const QString& tip);
  void showFieldNote(QSpinBox* spin, const QString& text);
  void setFileNote(const QString& text);
  void onEdited();
  void onVariantChanged();
  void readWidgets(Workload& w) const;
  void writeWidgets();
  void updateEnabled();
  void browse();
  // Workload `w` with `text` tokenized by its model: the text, the model's problem at its length
  // and the note under the box (a token count, or why the text cannot run).
  void tokenizeInto(Workload& w, const QString& text);

  Workload workload_;
  // The workload before a file was loaded (Clear goes back to its shape); unset without a file.
  std::optional<Workload> beforeFile_;
  // The workload before a model was opened (Clear goes back to it).
  std::optional<Workload> beforeModel_;
  ModelInputBox* modelBox_ = nullptr;
  QGroupBox* variantBox_ = nullptr;
  QGroupBox* shapeBox_ = nullptr;
  QSpinBox* lastEdited_ = nullptr;  // where the problem's objection to an edit is shown
  QMap<QSpinBox*, QLabel*> notes_;  // the note row under each number field
  bool updating_ = false;
  QComboBox* variant_;
  QLabel* variantSummary_;
  QMap<QString, QSpinBox*> spins_;
  QCheckBox* causal_;
  QDoubleSpinBox* scale_;
  // One field per knob of every variant (ParamSpec), in a group per variant shown when selected.
  struct KnobField {
    const VariantInfo* variant = nullptr;
    const ParamSpec* spec = nullptr;
    QSpinBox* spin = nullptr;    // integer knobs
    QCheckBox* check = nullptr;  // boolean knobs
  };
  QVector<KnobField> knobs_;
  QVector<QPair<const VariantInfo*, QGroupBox*>> groups_;
  QComboBox* pattern_;
  QSpinBox* seed_;
  QLineEdit* file_;
  QLabel* fileNote_;  // what applyFile could not keep
  QPushButton* clearFile_;
  QComboBox* backend_;
  QComboBox* precision_;
  QLabel* error_;
};

}  // namespace attnscope::gui
