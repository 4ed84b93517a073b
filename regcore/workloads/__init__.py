"""Built-in workloads and the plug-in registry.

>>> from regcore.workloads import build_workload
>>> workload = build_workload("digits_mlp", {"hidden": [128]})
>>> data = workload.load_data(seed=0); model = workload.build_model(seed=0)

Built-ins: ``digits_mlp``, ``digits_cnn``, ``breast_cancer_logreg``, ``diabetes_linear``,
``sparse_regression``, ``noisy_tabular`` and ``tabular_file``. Your own join as
:class:`Workload` classes (regsweep owns the loop) or as training functions
(:func:`training_function`: you own the loop), through the entry-point group
``regsweep.workloads`` or ``REGSWEEP_PLUGINS``.
"""

# Importing the built-in modules registers their workloads (@register_workload).
from regcore.workloads._base import Dataset, Datasets, Workload, WorkloadParams
from regcore.workloads._digits import DigitsCNNWorkload, DigitsMLPWorkload
from regcore.workloads._function import (
    AnyParams,
    TrainingFunction,
    TrialContext,
    TrialStopped,
)
from regcore.workloads._noisy_tabular import NoisyTabularWorkload
from regcore.workloads._registry import (
    ENTRY_POINT_GROUP,
    Registered,
    WorkloadError,
    WorkloadPluginError,
    available_workloads,
    build_workload,
    get_workload,
    load_plugin_modules,
    plugin_modules,
    provenance,
    register_workload,
    training_function,
)
from regcore.workloads._sklearn_sets import BreastCancerLogregWorkload, DiabetesLinearWorkload
from regcore.workloads._sparse_regression import SparseRegressionWorkload, support_metrics
from regcore.workloads._tabular_file import TabularFileWorkload

__all__ = [
    "ENTRY_POINT_GROUP",
    "AnyParams",
    "BreastCancerLogregWorkload",
    "Dataset",
    "Datasets",
    "DiabetesLinearWorkload",
    "DigitsCNNWorkload",
    "DigitsMLPWorkload",
    "NoisyTabularWorkload",
    "Registered",
    "SparseRegressionWorkload",
    "TabularFileWorkload",
    "TrainingFunction",
    "TrialContext",
    "TrialStopped",
    "Workload",
    "WorkloadError",
    "WorkloadParams",
    "WorkloadPluginError",
    "available_workloads",
    "build_workload",
    "get_workload",
    "load_plugin_modules",
    "plugin_modules",
    "provenance",
    "register_workload",
    "support_metrics",
    "training_function",
]
