"""Registers the Kueue/Kubernetes adapter through the ``budcore.plugins`` entry point.

What it adds: the ``budcore kueue render|diff|apply`` commands (:mod:`.cli`).

Registering is dependency-free and cheap, because budcore loads every plugin just to list them
(``budcore plugins``, ``budcore --help``): this module imports only ``budcore.plugins`` at module
level, and nothing it registers imports the ``kubernetes`` package until a command talks to a
cluster (``render`` never does). Without the ``kueue`` extra the commands still appear, and the
ones that need a cluster fail with a ``PluginError`` naming ``pip install 'budcore[kueue]'``.
"""

from __future__ import annotations

from typing import Any

from budcore.plugins import hookimpl

EXTRA_HINT = "pip install 'budcore[kueue]'"


@hookimpl
def budcore_register_commands(app: Any) -> None:
    from .cli import register

    register(app)
