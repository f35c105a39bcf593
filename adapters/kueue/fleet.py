"""A live cluster's nodes → budcore's fleet, hardware profiles and ResourceFlavors.

``budcore hardware parse`` reads a ``kubectl get nodes -o yaml`` dump; this module reads the same
nodes from the API server and hands them to the same parser (:func:`budcore.hardware.labels.
parse_nodes`, then :func:`~budcore.hardware.profiles.build_profiles` and
:func:`~budcore.hardware.profiles.resource_flavors`), so a cluster and its dump give equal results:
GFD, MIG, time-slicing/MPS, NFD PCI, AMD, Intel and Gaudi labels are detected in one place only.
The nodes read here are what ``kubectl`` would dump (each item carries ``apiVersion``/``kind``,
``metadata.managedFields`` is left out), and :func:`nodes_yaml` writes them as such a dump, so a
fleet read from a cluster can be kept and simulated again offline (``fleet.nodes_file``).

``budcore simulate --fleet-from-cluster`` uses :func:`scenario_nodes`: the scenario's fleet
becomes the cluster's nodes (the digital twin of the real cluster).

Errors name the kubeconfig context: an unreachable server, a refused or forbidden list
(:class:`~.client.KubeError`), an invalid kubeconfig (a ``ValidationError`` from
:meth:`~.client.KubeClient.from_kubeconfig`), a node the parser rejects (by node name, not list
index) and a cluster with no node at all (:class:`EmptyClusterError`: an empty fleet would make
every simulated job wait forever, which reads as a scheduling result rather than a wrong cluster).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from budcore.domain.errors import BudcoreError, ValidationError
from budcore.hardware.catalog import Catalog, default_catalog
from budcore.hardware.labels import Fleet, parse_nodes
from budcore.hardware.profiles import HardwareProfile, build_profiles, resource_flavors
from budcore.scheduling.queues import ResourceFlavor

from .client import NODES, KubeClient

__all__ = [
    "ClusterHardware",
    "EmptyClusterError",
    "cluster_hardware",
    "fleet_from_cluster",
    "nodes_yaml",
    "read_nodes",
    "scenario_nodes",
]

_ITEM = re.compile(r"^items\[(\d+)\]\.?")


class EmptyClusterError(BudcoreError):
    """The cluster lists no node: nothing to build a fleet from.

    Not a ``ValidationError``: the input (kubeconfig, context) was valid and the server answered;
    the cluster itself is the problem, as with the API errors (the CLI's exit status 3).
    """

    def __init__(self, context: str) -> None:
        self.context = context
        super().__init__(f"{_where(context)}: the cluster lists no node; no fleet to build")


@dataclass(frozen=True, slots=True)
class ClusterHardware:
    """What ``budcore hardware parse`` reports for a dump, from a live cluster."""

    context: str
    fleet: Fleet
    profiles: tuple[HardwareProfile, ...]
    flavors: tuple[ResourceFlavor, ...]


def _where(context: str) -> str:
    return f"cluster context {context!r}" if context else "cluster (current context)"


def read_nodes(client: KubeClient) -> list[dict[str, Any]]:
    """Every node of the cluster as ``kubectl get nodes -o yaml`` shows it, sorted by name.

    List items carry no ``apiVersion``/``kind`` on the wire (the list does); kubectl puts them first
    in each item and so does this, so a dump written from these nodes reads like kubectl's and is a
    valid ``hardware parse`` / ``fleet.nodes_file`` input. ``managedFields`` is dropped
    as kubectl drops it (server bookkeeping, no bearing on detection). Sorted by name because the
    fleet's order is its nodes' order, and the API server's listing order is an implementation
    detail of its storage. One LIST request: the client has no ``limit``/``continue`` paging, and
    a node list (a few MB for thousands of nodes) fits one response.
    """
    items, _resource_version = client.list(NODES)
    nodes: list[dict[str, Any]] = []
    for item in items:
        node = {"apiVersion": NODES.api_version, "kind": NODES.kind, **item}
        metadata = node.get("metadata")
        if isinstance(metadata, Mapping) and "managedFields" in metadata:
            node["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
        nodes.append(node)
    return sorted(nodes, key=_name)


def _name(node: Mapping[str, Any]) -> str:
    metadata = node.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return name if isinstance(name, str) else ""


def fleet_from_cluster(
    client: KubeClient,
    *,
    catalog: Catalog | None = None,
    overrides: Mapping[str, str] | None = None,
) -> Fleet:
    """The cluster's nodes parsed exactly as ``budcore hardware parse`` parses a dump of them.

    ``overrides`` maps node name → declared type, as ``hardware parse --override``. A node the
    parser rejects is named by its name (``nodes/gpu-7.spec.taints[0].effect``) rather than its
    position in the listing, which means nothing to someone looking at the cluster.
    """
    return _parse(read_nodes(client), client.context, catalog=catalog, overrides=overrides)


def _parse(
    nodes: Sequence[Mapping[str, Any]],
    context: str,
    *,
    catalog: Catalog | None = None,
    overrides: Mapping[str, str] | None = None,
) -> Fleet:
    if not nodes:
        raise EmptyClusterError(context)
    try:
        return parse_nodes(list(nodes), catalog=catalog, overrides=overrides)
    except ValidationError as exc:
        raise ValidationError(exc.message, path=_node_path(exc.path, nodes), source=_where(context)) from None


def _node_path(path: str, nodes: Sequence[Mapping[str, Any]]) -> str:
    """``items[3].spec.taints[0]`` → ``nodes/<name of the 4th node>.spec.taints[0]``."""
    match = _ITEM.match(path)
    if match is None or int(match.group(1)) >= len(nodes):
        return path
    rest = path[match.end() :]
    node = f"nodes/{_name(nodes[int(match.group(1))]) or '<unnamed>'}"
    return f"{node}.{rest}" if rest else node


def cluster_hardware(
    client: KubeClient,
    *,
    catalog: Catalog | None = None,
    overrides: Mapping[str, str] | None = None,
) -> ClusterHardware:
    """The fleet, hardware profiles and ResourceFlavors of the cluster, built by the same calls
    ``budcore hardware parse`` makes on a dump (so the two can never disagree)."""
    catalog = catalog or default_catalog()
    fleet = fleet_from_cluster(client, catalog=catalog, overrides=overrides)
    profiles = build_profiles(fleet, catalog=catalog)
    return ClusterHardware(
        context=client.context,
        fleet=fleet,
        profiles=tuple(profiles),
        flavors=tuple(resource_flavors(profiles)),
    )


def nodes_yaml(nodes: Sequence[Mapping[str, Any]]) -> str:
    """Nodes as a ``kubectl get nodes -o yaml`` dump (a ``kind: List``), readable by
    ``budcore hardware parse`` and by a scenario's ``fleet.nodes_file``."""
    document = {"apiVersion": "v1", "kind": "List", "items": [dict(n) for n in nodes], "metadata": {}}
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def scenario_nodes(
    kubeconfig: str | None, context: str | None, *, catalog: Catalog | None = None
) -> tuple[Fleet, str, list[dict[str, Any]]]:
    """The cluster's fleet for a simulation scenario, with a name for messages and the raw nodes.

    Opens the kubeconfig's ``context`` (its current context when ``None``), lists the nodes once
    and closes the connection: a simulation is an offline run on a snapshot of the cluster, and
    the raw nodes let the caller keep that snapshot as a dump.
    """
    client = KubeClient.from_kubeconfig(kubeconfig, context)
    try:
        nodes = read_nodes(client)
        return _parse(nodes, client.context, catalog=catalog), _where(client.context), nodes
    finally:
        client.close()
