"""The accelerator catalog: what each GPU/accelerator model *is* (see :mod:`budcore.catalog`).

This is the catalog's documented import path. The implementation lives in :mod:`budcore.catalog`,
below both this package and :mod:`budcore.scheduling`: admission resolves accelerator names
through it, and ``budcore.hardware`` builds on scheduling's queue types (profiles become Kueue
ResourceFlavors), so a catalog inside this package would make scheduling import hardware. The
built-in data stays here, in ``catalog.yaml``.
"""

from budcore.catalog import (
    MAX_BANDWIDTH_GBS,
    MAX_DOMAIN_SIZE,
    MAX_LOGICAL_DEVICES,
    MAX_MEMORY_GIB,
    MAX_TFLOPS,
    MEMORY_TOLERANCE,
    Accelerator,
    Catalog,
    CatalogDocument,
    CatalogResolver,
    Citation,
    Interconnect,
    MigProfile,
    catalog_from,
    default_catalog,
    default_normalize,
    dump_catalog,
    load_catalog,
    memory_matches,
    merge_catalog,
    normalize_product,
    parse_catalog,
)

__all__ = [
    "MAX_BANDWIDTH_GBS",
    "MAX_DOMAIN_SIZE",
    "MAX_LOGICAL_DEVICES",
    "MAX_MEMORY_GIB",
    "MAX_TFLOPS",
    "MEMORY_TOLERANCE",
    "Accelerator",
    "Catalog",
    "CatalogDocument",
    "CatalogResolver",
    "Citation",
    "Interconnect",
    "MigProfile",
    "catalog_from",
    "default_catalog",
    "default_normalize",
    "dump_catalog",
    "load_catalog",
    "memory_matches",
    "merge_catalog",
    "normalize_product",
    "parse_catalog",
]
