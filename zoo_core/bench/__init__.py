"""Benchmarks of registered models: speed (``throughput``) on one device.

The public names stay importable from ``zoo_core.bench`` as before the package existed.
"""

from zoo_core.bench.throughput import (
    FLOPS_SIZE,
    MODES,
    PRECISIONS,
    REPORT_SUFFIXES,
    benchmark_model,
    count_flops,
    cpu_name,
    describe_machine,
    format_markdown,
    machine_info,
    make_report,
    resolve_precision,
    run_bench,
    select_models,
    write_report,
)

__all__ = [
    "FLOPS_SIZE",
    "MODES",
    "PRECISIONS",
    "REPORT_SUFFIXES",
    "benchmark_model",
    "count_flops",
    "cpu_name",
    "describe_machine",
    "format_markdown",
    "machine_info",
    "make_report",
    "resolve_precision",
    "run_bench",
    "select_models",
    "write_report",
]
