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
#: The line ``budcore --help`` lists for ``kueue`` (the group's help in :mod:`.cli`).
COMMANDS_HELP = "Kueue objects in a Kubernetes cluster: render, diff and apply budcore's queue configuration."


def _register_cli(app: Any) -> None:
    from .cli import register

    register(app)


@hookimpl
def budcore_register_commands(app: Any) -> None:
    # A placeholder where the CLI supports one: .cli (budcore.config, scheduling) loads on use.
    if hasattr(app, "add_lazy_command"):
        app.add_lazy_command("kueue", COMMANDS_HELP, _register_cli, group=True, origin="plugin kueue")
    else:
        _register_cli(app)
