"""pluggy hook specifications: how adapters and extensions plug into budcore.

A plugin is any module (or object) with ``@hookimpl`` functions named as below, exposed through
the entry-point group ``budcore.plugins``::

    [project.entry-points."budcore.plugins"]
    myadapter = "my_package.budcore_plugin"

Each hook returns a mapping of *name → factory*; a factory takes keyword options (e.g. ``url``)
and returns an object implementing the port. The built-ins use exactly this mechanism, and each
hook has at least one, a working example to copy (and where budcore calls it):

- job stores, cluster backends, event sinks: ``budcore_adapters.inmemory.plugin`` (and
  ``budcore_adapters.postgres.plugin``, a lazy one); ``PluginRegistry.job_store(name)`` etc.;
- pricing sources: :mod:`budcore.plugins.builtin`; ``PluginRegistry.price_book(name)``, e.g. a
  scenario's ``fleet.price_book: default``;
- usage logs: :mod:`budcore.plugins.builtin` (``file``); ``budcore cost report --usage PATH`` or
  ``--store NAME`` (``PluginRegistry.usage_log(name)``);
- trace readers: ``budcore_simulator.plugin``; a scenario's ``traces: [{format: NAME}]``
  (``budcore_simulator.workload.traces.open_trace``);
- policies: ``budcore_simulator.plugin``; ``budcore compare -p NAME``
  (``budcore_simulator.sweep.parse_policy``);
- validators and commands: ``budcore_simulator.plugin``; ``budcore validate`` and the CLI;
- pipeline functions: :mod:`budcore.plugins.builtin`; ``function``/``transform`` steps
  (``PluginRegistry.pipeline_functions()``).

Registering must be cheap and must not need the adapter's optional dependencies: budcore loads
every plugin to list what is registered (``budcore plugins``, ``budcore --help``), so a plugin
module imports only ``budcore.plugins`` at module level and returns factories that import the heavy
parts when called. :func:`lazy_factory` does exactly that::

    @hookimpl
    def budcore_register_job_stores():
        return {"mystore": lazy_factory(".store:MyStore", package=__package__)}

A dependency that is missing then fails only when someone builds that adapter, with a
:class:`~budcore.domain.errors.PluginError` naming the plugin and the missing module, and a plugin
that fails to import at all is recorded (see ``PluginRegistry.failures``) without affecting the
others.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from typing import Any

import pluggy

from budcore.domain.errors import PluginError

PROJECT = "budcore"
ENTRY_POINT_GROUP = "budcore.plugins"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Factory = Callable[..., Any]


class LazyFactory:
    """A factory that imports its target (``"package.module:Name"``) on first use.

    Calling it imports the module, looks the attribute up and calls it with the same arguments;
    :meth:`load` only imports. The registry loads it before checking the options against the
    target's signature, so bad options and missing dependencies are reported precisely.
    """

    __slots__ = ("_attr", "_module", "_package", "_target")

    def __init__(self, spec: str, *, package: str | None = None) -> None:
        module, sep, attr = spec.partition(":")
        if not sep or not module or not attr:
            raise PluginError(f"lazy factory spec must look like 'package.module:Name', got {spec!r}")
        if module.startswith(".") and not package:
            raise PluginError(f"lazy factory {spec!r} is relative: pass package=__package__")
        self._module = module
        self._attr = attr
        self._package = package
        self._target: Factory | None = None

    @property
    def spec(self) -> str:
        """The absolute ``module:attribute`` this factory imports."""
        module = self._module
        if module.startswith(".") and self._package:
            module = importlib.util.resolve_name(module, self._package)
        return f"{module}:{self._attr}"

    def load(self) -> Factory:
        """Import and return the target (``ImportError`` propagates: the registry reports it)."""
        if self._target is None:
            target: Any = importlib.import_module(self._module, self._package)
            for part in self._attr.split("."):
                target = getattr(target, part)
            if not callable(target):
                raise PluginError(f"lazy factory {self.spec!r} is not callable")
            self._target = target
        return self._target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LazyFactory) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec)

    def __repr__(self) -> str:
        return f"lazy_factory({self.spec!r})"


def lazy_factory(spec: str, *, package: str | None = None) -> LazyFactory:
    """A factory for ``"module:Name"`` that imports the module only when the adapter is built.

    ``spec`` may be relative (``".job_store:PostgresJobStore"``) with ``package=__package__``.
    """
    return LazyFactory(spec, package=package)


class BudcoreHookSpecs:
    """The hooks budcore calls. Every hook is optional for a plugin."""

    @hookspec
    def budcore_register_job_stores(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """Job store factories by name (port :class:`budcore.ports.JobStore`)."""

    @hookspec
    def budcore_register_admission_ledgers(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """Admission ledger factories by name (port :class:`budcore.ports.AdmissionLedger`).

        A ledger holds the quota of admitted jobs durably, atomically with their status; its
        contract is :class:`budcore.testing.ledger.AdmissionLedgerConformance`. Built-ins:
        ``inmemory`` (options: ``config``, ``events``) and ``postgres`` (options: ``url``, or a
        ``store``).
        """

    @hookspec
    def budcore_register_reservation_stores(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """Reservation store factories by name (port :class:`budcore.ports.ReservationStore`).

        A store keeps capacity bookings and refuses one that overbooks, atomically; its contract
        is :class:`budcore.testing.reservations.ReservationStoreConformance`. Built-ins:
        ``inmemory`` (option ``path``: a JSON file that keeps the bookings between processes)
        and ``postgres`` (option ``url``).
        """

    @hookspec
    def budcore_register_pipeline_stores(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """Pipeline store factories by name (port :class:`budcore.ports.pipeline_store.PipelineStore`).

        A store keeps pipeline definitions (a version with runs is immutable) and runs, writing a
        run's header and its changed step records atomically under optimistic concurrency; its
        contract is :class:`budcore.testing.pipelines.PipelineStoreConformance`. Built-ins:
        ``inmemory`` (option ``path``: a JSON file that keeps pipelines and runs between
        processes) and ``postgres`` (option ``url``, or the ``engine`` or job ``store`` to share).
        """

    @hookspec
    def budcore_register_cluster_backends(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """Cluster backend factories by name (port :class:`budcore.ports.ClusterBackend`)."""

    @hookspec
    def budcore_register_event_sinks(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """Event sink factories by name (port :class:`budcore.ports.EventSink`)."""

    @hookspec
    def budcore_register_pricing_sources(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """Pricing source factories by name (port :class:`budcore.ports.PricingSource`).

        Built-ins (:mod:`budcore.plugins.builtin`): ``default``, ``sample`` and ``file`` (option
        ``path``). ``PluginRegistry.pricing_source(name)`` builds any of them;
        ``PluginRegistry.price_book(name)`` requires a :class:`budcore.cost.prices.PriceBook`
        (what a scenario's ``fleet.price_book: <name>`` uses: it prices sharing modes too).
        """

    @hookspec
    def budcore_register_usage_logs(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """Usage log factories by name (port :class:`budcore.ports.spend.UsageLog`): metered usage
        that ``budcore cost report`` reads.

        Built-ins: ``file`` (:mod:`budcore.plugins.builtin`, option ``path``: a ``.csv`` or
        ``.jsonl`` usage file as a simulation writes it, :class:`budcore.cost.usagefile.FileUsageLog`)
        and ``postgres`` (option ``url``, registered by ``budcore_adapters.postgres``).
        ``PluginRegistry.usage_log(name)`` builds one.
        """

    @hookspec
    def budcore_register_trace_readers(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """Workload trace readers by format name, for a scenario's ``traces: [{format: NAME}]``.

        The simulator calls a reader factory with the keyword arguments ``path`` (a
        ``pathlib.Path``, resolved against the scenario's folder) and ``options`` (a
        ``budcore_simulator.workload.traces.TraceOptions``), plus ``task_path`` when the spec
        gives one: a reader that needs a second file declares a ``task_path`` parameter (without a
        default when the file is required), and the spec is checked against that signature. It
        returns a ``budcore_simulator.workload.traces.TraceReader``. Built-ins
        (``budcore_simulator.plugin``): ``budcore``, ``helios``, ``pai``, ``swf``.
        """

    @hookspec
    def budcore_register_validators(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """Document validators for ``budcore validate``, by name.

        A validator is called with a :class:`budcore.config.yamlsource.YamlDocument`; it returns
        ``None`` when the document is not its kind, a short description of what it checked
        (e.g. ``"scenario 'default'"``) when it is valid, and raises ``ValidationError`` otherwise.
        """

    @hookspec
    def budcore_register_api_callers(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """HTTP clients for pipelines' ``api_call`` steps by name (port
        :class:`budcore.ports.pipeline_effects.ApiCaller`). Built-in: ``httpx``
        (``budcore_adapters.http``), what a ``PipelineEngine`` built without ``http=`` uses;
        ``PluginRegistry.api_caller(name)`` builds one.
        """

    @hookspec
    def budcore_register_pipeline_functions(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """Python callables for pipelines' ``function`` and ``transform`` steps, by name.

        A step ``{type: function, config: {function: NAME, args: {...}}}`` calls
        ``fn(ctx, **args)`` with the rendered args and a
        :class:`budcore.ports.pipeline_effects.StepContext` (``ctx.key`` is the attempt's
        idempotency key: record it when the function has side effects) and publishes the mapping it
        returns as the step's outputs; raising :class:`budcore.ports.pipeline_effects.StepFailure`
        fails the attempt (``transient=True`` retries it). Built-ins (:mod:`budcore.plugins.builtin`):
        ``identity``, ``parse_json``, ``pick``, ``merge``. ``PluginRegistry.pipeline_functions()``
        collects them; ``budcore.pipeline.FunctionRegistry.from_plugins()`` is what the engine uses.
        """

    @hookspec
    def budcore_register_commands(self, app: Any) -> None:
        """Add commands to the ``budcore`` command line (``app`` is its ``typer.Typer``)."""

    @hookspec
    def budcore_register_policies(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """Scheduling/preemption policies by name, for ``budcore compare -p NAME``.

        A policy factory takes no arguments and returns a mapping of overrides of a scenario's
        ``policy`` block (its fields, e.g. ``{"fair_sharing": True, "preemption_mode": "cost"}``),
        plus ``queueing_strategy`` (``StrictFIFO`` or ``BestEffortFIFO``) to set every
        ClusterQueue's strategy; the overrides are validated like the scenario's own block.
        Built-ins (``budcore_simulator.plugin``): ``fifo``, ``fair``, ``strict-fifo``,
        ``deadline-aware``, the research orderings ``sjf``, ``srtf``, ``las``, ``edf``
        (``{"ordering": {"default": NAME, "cluster_queues": {}}}``: ``compare`` merges a block
        given as a mapping into the scenario's ``ordering`` or ``throughput`` block, keeping its
        other options) and ``gavel`` (``throughput.prefer``).
        """
