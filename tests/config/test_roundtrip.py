"""Round-trip properties: load(dump(config)) == config, in both Kueue API versions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from budcore.config.crd import iter_schema_issues
from budcore.config.kueue import (
    API_V1BETA1,
    API_V1BETA2,
    SUPPORTED_API_VERSIONS,
    dump_queue_config,
    loads_queue_config,
    to_documents,
)
from budcore.scheduling.queues import QueueConfig
from budcore.testing.examples import examples
from tests.config.strategies import object_names, queue_configs


@pytest.mark.parametrize("api_version", SUPPORTED_API_VERSIONS)
@settings(max_examples=examples(100))
@given(config=queue_configs())
def test_load_of_dump_is_identity(config: QueueConfig, api_version: str) -> None:
    text = dump_queue_config(config, api_version)
    assert loads_queue_config(text, "<dump>") == config


@settings(max_examples=examples(60))
@given(config=queue_configs())
def test_dumped_documents_satisfy_the_crd_schema_in_order(config: QueueConfig) -> None:
    for api_version in SUPPORTED_API_VERSIONS:
        documents = to_documents(config, api_version)
        version = api_version.split("/")[1]
        for document in documents:
            assert document["apiVersion"] == api_version
            assert list(iter_schema_issues(document, document["kind"], version)) == []
        written: dict[str, list[str]] = {kind: [] for kind in object_names(config)}
        kinds_in_order: list[str] = []
        for document in documents:
            kind = document["kind"]
            metadata = document["metadata"]
            key = f"{metadata['namespace']}/{metadata['name']}" if kind == "LocalQueue" else metadata["name"]
            written[kind].append(key)
            if not kinds_in_order or kinds_in_order[-1] != kind:
                kinds_in_order.append(kind)
        assert written == object_names(config)
        expected_kinds = [kind for kind, names in object_names(config).items() if names]
        assert kinds_in_order == expected_kinds


@settings(max_examples=examples(60))
@given(config=queue_configs())
def test_dump_is_a_fixed_point_and_versions_agree(config: QueueConfig) -> None:
    beta2 = dump_queue_config(config, API_V1BETA2)
    assert dump_queue_config(loads_queue_config(beta2), API_V1BETA2) == beta2
    beta1 = dump_queue_config(config, API_V1BETA1)
    # Converting v1beta1 → domain → v1beta2 is the same as dumping v1beta2 directly.
    assert dump_queue_config(loads_queue_config(beta1), API_V1BETA2) == beta2
