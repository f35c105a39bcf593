"""``budcore kueue render|diff|apply``: budcore's queue configuration in a Kubernetes cluster.

Registered through the plugin's ``budcore_register_commands`` hook (:func:`register`), so the core
CLI never imports the adapter.

* ``render`` prints the Kueue objects (multi-document YAML, ``> queues.yaml``); no cluster needed.
* ``diff`` shows what ``apply`` would change; exit status 0 when the cluster matches, 1 when it
  differs (like ``diff``).
* ``apply`` shows the same diff, asks for confirmation on a terminal (elsewhere it needs ``--yes``,
  or ``--dry-run`` to have the server check the changes without storing them), then applies
  (server-side apply, field manager ``budcore``) and, with ``--prune``, deletes managed objects
  that left the configuration.

Exit statuses: 0 done (``diff``: no changes), 1 ``diff`` found changes or ``apply`` was declined,
2 bad input (one line per problem, ``file:line`` for YAML; also an unusable kubeconfig), 3 the
cluster refused or could not be reached (one line naming the context and the object; after a
partial apply, a second line lists what had been applied).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from budcore.config import example_names, load_example, load_queue_config
from budcore.domain.errors import ValidationError
from budcore.scheduling.queues import QueueConfig

from .render import normalize_api_version, render, render_yaml

if TYPE_CHECKING:
    from .client import KubeClient

__all__ = ["EXIT_CHANGES", "EXIT_CLUSTER", "register"]

EXIT_CHANGES = 1
EXIT_CLUSTER = 3
DEFAULT_EXAMPLE = "platform-gpu-pool"

QueuesOption = Annotated[
    list[Path] | None,
    typer.Option("--queues", help="Kueue YAML files or directories: budcore's queue configuration."),
]
RequiredQueuesOption = Annotated[
    list[Path],
    typer.Option("--queues", help="Kueue YAML files or directories: budcore's queue configuration."),
]
ApiVersionOption = Annotated[
    str,
    typer.Option("--api-version", help="Kueue API version of the objects: v1beta1 or v1beta2."),
]
LabelOption = Annotated[
    list[str] | None,
    typer.Option(
        "--label",
        help="KEY=VALUE added to every object (repeatable); prune then only considers objects carrying it.",
    ),
]
KubeconfigOption = Annotated[
    str | None,
    typer.Option("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)."),
]
ContextOption = Annotated[
    str | None, typer.Option("--context", help="kubeconfig context (default: its current-context).")
]


def _interactive() -> bool:
    """Whether a person can answer a confirmation prompt (stdin is a terminal)."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (OSError, ValueError):  # closed or replaced stdin
        return False


def _labels(values: list[str] | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    for value in values or []:
        key, sep, label = value.partition("=")
        if not sep or not key:
            raise ValidationError(f"expected KEY=VALUE, got {value!r}", path="--label")
        labels[key] = label
    return labels


def _config(queues: list[Path] | None, example: str | None) -> QueueConfig:
    if queues and example:
        raise ValidationError("give --queues or --example, not both", path="--example")
    if queues:
        return load_queue_config(*queues)
    return load_example(example or DEFAULT_EXAMPLE)


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _cluster_failure(exc: Exception, *, applied: str | None = None) -> NoReturn:
    """Exit 3 with the client's one-line error (it names the context and the object)."""
    _err(f"error: {exc}")
    if applied:
        _err(applied)
    raise typer.Exit(EXIT_CLUSTER)


def _connect(kubeconfig: str | None, context: str | None) -> KubeClient:
    """The client for the kubeconfig context (an unusable kubeconfig is bad input: exit 2)."""
    from .client import KubeClient

    return KubeClient.from_kubeconfig(kubeconfig, context)


def register(app: typer.Typer) -> typer.Typer:
    """Add the ``kueue`` command group to ``app``; returns the group, so other parts of the adapter
    can add their commands to the same ``budcore kueue`` namespace."""
    kueue = typer.Typer(
        help="Kueue objects in a Kubernetes cluster: render, diff and apply budcore's queue configuration.",
        no_args_is_help=True,
    )

    @kueue.command("render")
    def render_command(
        queues: QueuesOption = None,
        example: Annotated[
            str | None,
            typer.Option(
                "--example",
                help=f"A shipped example configuration ({', '.join(example_names())}); "
                f"the default without --queues is {DEFAULT_EXAMPLE}.",
            ),
        ] = None,
        api_version: ApiVersionOption = "v1beta2",
        label: LabelOption = None,
    ) -> None:
        """Print the Kueue objects of the configuration as YAML (no cluster needed)."""
        version = normalize_api_version(api_version)
        if not queues and not example:
            _err(f"note: no --queues given: rendering the shipped example {DEFAULT_EXAMPLE!r}")
        config = _config(queues, example)
        typer.echo(render_yaml(config, api_version=version, labels=_labels(label)), nl=False)

    @kueue.command("diff")
    def diff_command(
        queues: RequiredQueuesOption,
        kubeconfig: KubeconfigOption = None,
        context: ContextOption = None,
        api_version: ApiVersionOption = "v1beta2",
        label: LabelOption = None,
    ) -> None:
        """Show what apply would change in the cluster (exit 1 when something differs)."""
        from .apply import plan
        from .client import KubeError

        version = normalize_api_version(api_version)
        labels = _labels(label)
        objects = render(load_queue_config(*queues), api_version=version, labels=labels)
        client = _connect(kubeconfig, context)
        try:
            planned = plan(client, objects, api_version=version, scope=labels)
        except KubeError as exc:
            _cluster_failure(exc)
        finally:
            client.close()
        typer.echo(planned.describe(), nl=False)
        if planned.has_changes:
            raise typer.Exit(EXIT_CHANGES)

    @kueue.command("apply")
    def apply_command(
        queues: RequiredQueuesOption,
        kubeconfig: KubeconfigOption = None,
        context: ContextOption = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Have the server check every change; store nothing.")
        ] = False,
        prune: Annotated[
            bool,
            typer.Option("--prune", help="Delete budcore-managed objects that left the configuration."),
        ] = False,
        yes: Annotated[bool, typer.Option("--yes", help="Apply without asking.")] = False,
        api_version: ApiVersionOption = "v1beta2",
        label: LabelOption = None,
    ) -> None:
        """Show the diff, then apply it (server-side apply, field manager budcore)."""
        from .apply import ApplyError, apply, plan
        from .client import KubeError

        version = normalize_api_version(api_version)
        labels = _labels(label)
        objects = render(load_queue_config(*queues), api_version=version, labels=labels)
        client = _connect(kubeconfig, context)
        try:
            planned = plan(client, objects, api_version=version, scope=labels)
            typer.echo(planned.describe(), nl=False)
            pending = bool(planned.writes or (prune and planned.prune_candidates))
            if pending and not (yes or dry_run):
                if not _interactive():
                    raise ValidationError(
                        "not asking for confirmation (stdin is not a terminal): pass --yes to apply "
                        "these changes, or --dry-run to have the server check them without storing them",
                        path="--yes",
                    )
                if not typer.confirm(f"Apply these changes to context {client.context!r}?", default=False):
                    _err("not applied: nothing was changed")
                    raise typer.Exit(EXIT_CHANGES)
            report = apply(client, planned, prune=prune, dry_run=dry_run)
        except ApplyError as exc:
            _cluster_failure(exc.cause, applied=exc.report.before_failure())
        except KubeError as exc:
            _cluster_failure(exc)
        finally:
            client.close()
        typer.echo(report.describe(), nl=False)

    app.add_typer(kueue, name="kueue")
    return kueue
