"""Workloads for the simulator: synthetic generators and trace readers.

Both produce the same thing, a lazy stream of :class:`JobArrival` records ordered by submit time,
so the engine consumes a million-job workload with flat memory whatever its origin.
"""

from .generators import (
    GAVEL_GPU_COUNTS,
    GAVEL_RUNTIME,
    DiurnalArrivals,
    FixedArrivals,
    GeneratorSpec,
    JobClassSpec,
    PoissonArrivals,
    class_arrivals,
    generate_arrivals,
    parse_generator_spec,
)
from .model import JobArrival, arrival_to_job, merge_arrivals, split_gang
from .openb import OpenbTrace, read_openb_nodes
from .traces import (
    BudcoreCsvTrace,
    HeliosTrace,
    PaiTrace,
    QueueMapping,
    SkippedRow,
    SwfTrace,
    TraceOptions,
    TraceReport,
    TraceSpec,
    guess_format,
    open_trace,
    parse_trace_spec,
)

__all__ = [
    "GAVEL_GPU_COUNTS",
    "GAVEL_RUNTIME",
    "BudcoreCsvTrace",
    "DiurnalArrivals",
    "FixedArrivals",
    "GeneratorSpec",
    "HeliosTrace",
    "JobArrival",
    "JobClassSpec",
    "OpenbTrace",
    "PaiTrace",
    "PoissonArrivals",
    "QueueMapping",
    "SkippedRow",
    "SwfTrace",
    "TraceOptions",
    "TraceReport",
    "TraceSpec",
    "arrival_to_job",
    "class_arrivals",
    "generate_arrivals",
    "guess_format",
    "merge_arrivals",
    "open_trace",
    "parse_generator_spec",
    "parse_trace_spec",
    "read_openb_nodes",
    "split_gang",
]
