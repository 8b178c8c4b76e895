"""docker-compose.yml (no Docker engine here): it parses and wires the dashboards through dsr serve."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def test_compose_file_declares_both_stacks_with_dsr_in_front() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert {"elasticsearch", "kibana", "dsr-es", "opensearch", "dashboards", "dsr-os"} <= services.keys()
    assert "ELASTICSEARCH_HOSTS=http://dsr-es:9400" in services["kibana"]["environment"]
    assert any("dsr-os:9400" in e for e in services["dashboards"]["environment"])
    for name in ("dsr-es", "dsr-os"):
        assert services[name]["build"] == "."
        assert any(e.startswith("DSR_ENGINE_URL=http://") for e in services[name]["environment"])
