"""The experiment layer: datasets, tasks and experiments, resumable sweeps with their result store, HTML reports
and the paper's figures.
"""

from __future__ import annotations

from .._utils import stratified_split_indices as stratified_split_indices
from ._datasets import (
    PaperNormalizer as PaperNormalizer,
    load_array_file as load_array_file,
    load_cifar10_batches as load_cifar10_batches,
    load_cifar10_dir as load_cifar10_dir,
    load_digits_data as load_digits_data,
    load_fashion_mnist as load_fashion_mnist,
    load_features_file as load_features_file,
    load_idx_dataset as load_idx_dataset,
    load_mnist_subset as load_mnist_subset,
    load_npz_split as load_npz_split,
    make_gmm as make_gmm,
    select_classes as select_classes,
)
from ._experiments import (
    SUMMARY_HEADER as SUMMARY_HEADER,
    TASKS as TASKS,
    MethodSpec as MethodSpec,
    Task as Task,
    aggregate as aggregate,
    binary_heuristic_notes as binary_heuristic_notes,
    build_model as build_model,
    load_task as load_task,
    load_task_files as load_task_files,
    rank_methods as rank_methods,
    run_grid as run_grid,
    run_one as run_one,
    split_train_test as split_train_test,
    summary_table as summary_table,
    write_results as write_results,
)
from ._fig2 import SpectraConfig as SpectraConfig, run_spectra as run_spectra
from ._report import (
    write_report as write_report,
)
from ._shrink_run import (
    NORMALIZATIONS as NORMALIZATIONS,
    StoreCheckpoint as StoreCheckpoint,
    load_shrink_data as load_shrink_data,
    load_shrink_val_data as load_shrink_val_data,
    run_shrink as run_shrink,
)
from ._store import ResultStore as ResultStore
from ._sweeps import (
    TIMING_FIELDS as TIMING_FIELDS,
    check_scheduler as check_scheduler,
    load_sweep as load_sweep,
    parse_sweep as parse_sweep,
    point_fields as point_fields,
    run_sweep as run_sweep,
    run_sweep_file as run_sweep_file,
    strip_timing as strip_timing,
    train_point as train_point,
)

__all__ = [
    "NORMALIZATIONS",
    "SUMMARY_HEADER",
    "TASKS",
    "TIMING_FIELDS",
    "MethodSpec",
    "PaperNormalizer",
    "ResultStore",
    "SpectraConfig",
    "StoreCheckpoint",
    "Task",
    "aggregate",
    "binary_heuristic_notes",
    "build_model",
    "check_scheduler",
    "load_array_file",
    "load_cifar10_batches",
    "load_cifar10_dir",
    "load_digits_data",
    "load_fashion_mnist",
    "load_features_file",
    "load_idx_dataset",
    "load_mnist_subset",
    "load_npz_split",
    "load_shrink_data",
    "load_shrink_val_data",
    "load_sweep",
    "load_task",
    "load_task_files",
    "make_gmm",
    "parse_sweep",
    "point_fields",
    "rank_methods",
    "run_grid",
    "run_one",
    "run_shrink",
    "run_spectra",
    "run_sweep",
    "run_sweep_file",
    "select_classes",
    "split_train_test",
    "stratified_split_indices",
    "strip_timing",
    "summary_table",
    "train_point",
    "write_report",
    "write_results",
]
