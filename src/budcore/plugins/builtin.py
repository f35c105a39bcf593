"""budcore's own plugin: what the core ships, registered through the hooks a plugin author uses.

Every :class:`~budcore.plugins.PluginRegistry` registers this module first (as
``budcore <version> (built-in)``), so the core's implementations are listed by ``budcore plugins``
and looked up by name exactly like a third party's. It is also the smallest complete example of a
plugin module: ``@hookimpl`` functions named after the hooks, each returning *name → factory*,
with :func:`~budcore.plugins.lazy_factory` so that registering imports nothing heavy.

Pricing sources (port :class:`budcore.ports.PricingSource`):

``default``
    The packaged illustrative price book (``budcore/cost/pricebook.yaml``),
    :func:`budcore.cost.prices.default_price_book`. Scenario files name it in
    ``fleet.price_book: default``.
``sample``
    The design document's price rows (``budcore/cost/sample_pricebook.yaml``),
    :func:`budcore.cost.prices.sample_price_book`.
``file``
    A price book read from a YAML file: ``registry.price_book("file", path="prices.yaml")``,
    :func:`budcore.cost.prices.load_price_book` (options ``path`` and ``catalog``).

Usage logs (port :class:`budcore.ports.spend.UsageLog`):

``file``
    A ``.csv`` or ``.jsonl`` usage file as a simulation writes it:
    ``registry.usage_log("file", path="out/usage.csv")``,
    :class:`budcore.cost.usagefile.FileUsageLog` (what ``budcore cost report --usage`` reads).

The other built-ins live with the code they belong to: the in-memory job store, cluster backend
and event sinks in ``budcore_adapters.inmemory.plugin``, PostgreSQL in
``budcore_adapters.postgres.plugin``, and the simulator's trace readers, ordering policies,
scenario validator and commands in ``budcore_simulator.plugin``.
"""

from __future__ import annotations

from collections.abc import Mapping

from budcore.plugins.hookspecs import Factory, hookimpl, lazy_factory

PLUGIN_NAME = "budcore.builtin"


@hookimpl
def budcore_register_pricing_sources() -> Mapping[str, Factory]:
    return {
        "default": lazy_factory("budcore.cost.prices:default_price_book"),
        "sample": lazy_factory("budcore.cost.prices:sample_price_book"),
        "file": lazy_factory("budcore.cost.prices:load_price_book"),
    }


@hookimpl
def budcore_register_usage_logs() -> Mapping[str, Factory]:
    return {"file": lazy_factory("budcore.cost.usagefile:FileUsageLog")}


@hookimpl
def budcore_register_pipeline_functions() -> Mapping[str, Factory]:
    """The data helpers of ``transform`` steps (:data:`budcore.pipeline.functions.BUILTIN_FUNCTIONS`)."""
    return {
        name: lazy_factory(f"budcore.pipeline.functions:{name}")
        for name in ("identity", "parse_json", "pick", "merge")
    }


@hookimpl
def budcore_register_validators() -> Mapping[str, Factory]:
    """``budcore validate`` checks pipeline documents whole (graph, templates, races)."""
    return {"pipeline": lazy_factory("budcore.pipeline.loader:validate_document")}
