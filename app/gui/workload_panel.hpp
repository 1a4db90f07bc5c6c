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

#include "attnscope/variant.hpp"
#include "workload.hpp"

namespace attnscope::gui {

class WorkloadPanel : public QWidget {
  Q_OBJECT

 public:
  explicit WorkloadPanel(QWidget* parent = nullptr);

  Workload workload() const { return workload_; }
  // Shows w without emitting workloadEdited.
  void setWorkload(const Workload& w);
  void setError(const QString& message);  // empty clears
  QString errorText() const;

  // Test and automation hooks to the widgets.
  QComboBox* variantCombo() const { return variant_; }
  QComboBox* backendCombo() const { return backend_; }
  // A shape dimension ("q_len") or a variant knob ("window") by key.
  QSpinBox* spin(const QString& name) const;

 signals:
  void workloadEdited(const attnscope::gui::Workload& w);
  void loadFileRequested(const QString& path);

 protected:
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;

 private:
  QSpinBox* addSpin(QFormLayout* form, const QString& name, const QString& label, int min, int max,
                    const QString& tip);
  void onEdited();
  void onVariantChanged();
  void readWidgets(Workload& w) const;
  void writeWidgets();
  void updateEnabled();
  void browse();

  Workload workload_;
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
  QPushButton* clearFile_;
  QComboBox* backend_;
  QComboBox* precision_;
  QLabel* error_;
};

}  // namespace attnscope::gui
