"""Configuration I/O: Kueue YAML in and out, and line-aware YAML reading for every loader.

* :mod:`budcore.config.yamlsource` reads YAML (files, directories, multi-document streams, strings)
  and remembers the line of every field, so any loader can point users at their mistakes.
* :mod:`budcore.config.kueue` turns ``kueue.x-k8s.io`` manifests into a checked
  :class:`~budcore.scheduling.queues.QueueConfig` and writes one back out.
* :mod:`budcore.config.crd` validates manifests against Kueue's CRD schemas, vendored in
  ``schemas/kueue/``.
* ``examples/`` holds ready-to-load Kueue configurations (see :func:`example_names`).
"""

from __future__ import annotations

import importlib.resources

from budcore.config.kueue import (
    API_V1BETA1,
    API_V1BETA2,
    SUPPORTED_API_VERSIONS,
    SUPPORTED_KINDS,
    dump_queue_config,
    load_queue_config,
    loads_queue_config,
    to_documents,
)
from budcore.config.yamlsource import DocumentError, YamlDocument, load_yaml_documents
from budcore.domain.errors import NotFoundError
from budcore.scheduling.queues import QueueConfig

__all__ = [
    "API_V1BETA1",
    "API_V1BETA2",
    "SUPPORTED_API_VERSIONS",
    "SUPPORTED_KINDS",
    "DocumentError",
    "YamlDocument",
    "dump_queue_config",
    "example_names",
    "load_example",
    "load_queue_config",
    "load_yaml_documents",
    "loads_queue_config",
    "read_example",
    "to_documents",
]


def example_names() -> list[str]:
    """Names of the shipped example configurations (file names without ``.yaml``), sorted."""
    folder = importlib.resources.files(__name__).joinpath("examples")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def read_example(name: str) -> str:
    """The YAML text of a shipped example (read through the package, so it works when installed)."""
    if name not in example_names():
        raise NotFoundError("example configuration", name, scope="budcore.config.examples")
    return (
        importlib.resources.files(__name__).joinpath("examples", f"{name}.yaml").read_text(encoding="utf-8")
    )


def load_example(name: str) -> QueueConfig:
    """A shipped example configuration, loaded (e.g. ``load_example("platform-gpu-pool")``)."""
    return loads_queue_config(read_example(name), source=f"budcore.config/examples/{name}.yaml")
