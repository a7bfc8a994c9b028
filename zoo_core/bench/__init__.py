"""Benchmarks of registered models: speed on random input (``throughput``), accuracy and training time
with zoo's Trainer (``accuracy``), achieved FLOP/s against a GPU's peak (``peaks``), the report formats
(``report``) and the chart (``plot``).

The public names stay importable from ``zoo_core.bench`` as before the package existed.
"""

from zoo_core.bench.report import (
    REPORT_SUFFIXES,
    cpu_name,
    describe_machine,
    format_csv,
    format_markdown,
    machine_info,
    make_accuracy_report,
    make_report,
    write_report,
)
from zoo_core.bench.throughput import (
    FLOPS_SIZE,
    MODES,
    benchmark_model,
    count_flops,
    resolve_precision,
    run_bench,
    select_models,
)
from zoo_core.device import PRECISIONS

__all__ = [
    "FLOPS_SIZE",
    "MODES",
    "PRECISIONS",
    "REPORT_SUFFIXES",
    "benchmark_model",
    "count_flops",
    "cpu_name",
    "describe_machine",
    "format_csv",
    "format_markdown",
    "machine_info",
    "make_accuracy_report",
    "make_report",
    "resolve_precision",
    "run_bench",
    "select_models",
    "write_report",
]
