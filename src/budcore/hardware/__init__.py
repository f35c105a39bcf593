"""Accelerator awareness: the catalog, node-label detection, hardware profiles and matching.

An H200 141GB is not a T4: this package knows what each accelerator is (``catalog``), reads what
each node carries from its Kubernetes labels (``labels``), groups nodes into selectable profiles
and Kueue ResourceFlavors (``profiles``), estimates memory, time and throughput (``estimate``) and
matches workloads to profiles with ranked, priced recommendations (``matching``). Multi-node
training layouts (``parallelism``) and serving replicas priced per token (``serving``) are planned
per node shape and ranked over the catalog or a fleet (``planning``), for a transformer shape given
or assumed from the parameter count (``shape``). Models the catalog lacks (a trace's undisclosed
``G1``) are described in a short form and added (``specs``).

It builds on :mod:`budcore.scheduling` (profiles become its ResourceFlavors), never the other way
round: the catalog, which admission needs too, lives below both (:mod:`budcore.catalog`, re-exported
as ``budcore.hardware.catalog``).
"""

from budcore.hardware.catalog import (
    Accelerator,
    Catalog,
    CatalogDocument,
    CatalogResolver,
    MigProfile,
    default_catalog,
    dump_catalog,
    load_catalog,
    normalize_product,
    parse_catalog,
)
from budcore.hardware.estimate import (
    MfuTable,
    ModelShape,
    ObservedRun,
    Parallelism,
    ServingSpec,
    TrainingSpec,
    calibrate_mfu,
    decode_tokens_per_second,
    training_seconds,
)
from budcore.hardware.labels import (
    DeviceGroup,
    Fleet,
    ParsedNode,
    SharingMode,
    node_dict,
    parse_node,
    parse_nodes,
    parse_nodes_yaml,
)
from budcore.hardware.matching import (
    MatchResult,
    NoCompatibleHardwareError,
    Placement,
    Recommendation,
    Requirement,
    match,
    recommend,
    resolve_accelerator,
    resolve_requirement,
)
from budcore.hardware.parallelism import Layout, MemoryBreakdown, TrainingJob, TrainingPlan, best_plan
from budcore.hardware.planning import (
    NodeShape,
    NoLayoutFitsError,
    ServingRow,
    TrainingRow,
    catalog_shapes,
    fleet_shapes,
    recommend_serving,
    recommend_training,
)
from budcore.hardware.profiles import (
    HardwareProfile,
    build_profiles,
    generic_profile,
    multi_type_profile,
    resource_flavors,
)
from budcore.hardware.serving import ServingJob, ServingPlan, plan_serving
from budcore.hardware.shape import TransformerShape, assumed_shape, resolve_shape
from budcore.hardware.specs import (
    AcceleratorSpec,
    accelerator_specs,
    catalog_with_specs,
    load_accelerator_specs,
    parse_accelerator_specs,
)

__all__ = [
    "Accelerator",
    "AcceleratorSpec",
    "Catalog",
    "CatalogDocument",
    "CatalogResolver",
    "DeviceGroup",
    "Fleet",
    "HardwareProfile",
    "Layout",
    "MatchResult",
    "MemoryBreakdown",
    "MfuTable",
    "MigProfile",
    "ModelShape",
    "NoCompatibleHardwareError",
    "NoLayoutFitsError",
    "NodeShape",
    "ObservedRun",
    "Parallelism",
    "ParsedNode",
    "Placement",
    "Recommendation",
    "Requirement",
    "ServingJob",
    "ServingPlan",
    "ServingRow",
    "ServingSpec",
    "SharingMode",
    "TrainingJob",
    "TrainingPlan",
    "TrainingRow",
    "TrainingSpec",
    "TransformerShape",
    "accelerator_specs",
    "assumed_shape",
    "best_plan",
    "build_profiles",
    "calibrate_mfu",
    "catalog_shapes",
    "catalog_with_specs",
    "decode_tokens_per_second",
    "default_catalog",
    "dump_catalog",
    "fleet_shapes",
    "generic_profile",
    "load_accelerator_specs",
    "load_catalog",
    "match",
    "multi_type_profile",
    "node_dict",
    "normalize_product",
    "parse_accelerator_specs",
    "parse_catalog",
    "parse_node",
    "parse_nodes",
    "parse_nodes_yaml",
    "plan_serving",
    "recommend",
    "recommend_serving",
    "recommend_training",
    "resolve_accelerator",
    "resolve_requirement",
    "resolve_shape",
    "resource_flavors",
    "training_seconds",
]
