from __future__ import annotations

import json
import socket
import time

import pytest

from biollm_platform import doctor


def _closed_port() -> int:
    with socket.socket() as s:  # bound and closed again: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_collect_reports_every_section_as_json() -> None:
    report = doctor.collect(None)
    assert set(report) == {"python", "torch", "ray", "wandb", "huggingface"}
    json.dumps(report)  # JSON-safe
    assert report["torch"]["cuda_available"] is False  # this CPU machine
    assert report["torch"]["cuda_devices"] == []
    assert report["torch"]["default_device"] == "cpu"
    assert report["ray"]["version"]
    assert report["ray"]["cluster"]["checked"] is False


@pytest.mark.parametrize("form", ["http://127.0.0.1:{port}", "127.0.0.1:{port}", "ray://127.0.0.1:{port}"])
def test_an_unreachable_cluster_is_reported_quickly(form: str) -> None:
    address = form.format(port=_closed_port())
    started = time.perf_counter()
    cluster = doctor.cluster_report(address)
    assert time.perf_counter() - started < 5
    assert cluster["address"] == address and cluster["checked"] and cluster["reachable"] is False
    assert cluster["error"]


def test_a_listening_port_is_reachable() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        cluster = doctor.cluster_report(f"127.0.0.1:{server.getsockname()[1]}")
    assert cluster["reachable"] is True and cluster["kind"] == "gcs"


def test_auto_is_resolved_as_ray_resolves_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
        cluster = doctor.cluster_report("auto")
    assert cluster["reachable"] is True and cluster["kind"] == "gcs" and cluster["resolved_from"] == "auto"
    assert cluster["address"] == f"127.0.0.1:{port}"
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{_closed_port()}")
    assert doctor.cluster_report("auto")["reachable"] is False


def test_a_malformed_address_is_an_error_field() -> None:
    cluster = doctor.cluster_report("not-an-address")
    assert cluster["reachable"] is False and "host:port" in cluster["error"]


def test_cluster_resources_from_the_dashboard_status() -> None:
    status = {"data": {"clusterStatus": {"loadMetricsReport": {"usage": {"CPU": [1.0, 2.0], "node:1.2.3.4": [0, 1]}}}}}
    assert doctor._cluster_resources(status) == {"CPU": {"used": 1.0, "total": 2.0}}
    assert doctor._cluster_resources({}) is None


def test_wandb_key_presence_never_its_value(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    monkeypatch.setenv("NETRC", str(tmp_path / "absent"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert doctor.wandb_report()["api_key_set"] is False
    monkeypatch.setenv("WANDB_API_KEY", "k3y-value-never-shown")
    monkeypatch.setenv("WANDB_MODE", "offline")
    report = doctor.wandb_report()
    assert report["api_key_set"] is True and report["api_key_source"] == "WANDB_API_KEY"
    assert report["mode"] == "offline"
    assert "k3y-value-never-shown" not in json.dumps(doctor.collect(None))


def test_netrc_key_is_detected(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    netrc_file = tmp_path / "netrc"
    netrc_file.write_text("machine api.wandb.ai\n  login user\n  password secret-netrc-key\n")
    netrc_file.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc_file))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    report = doctor.wandb_report()
    assert report["api_key_source"] == "netrc" and "secret-netrc-key" not in json.dumps(report)


def test_hf_offline_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    report = doctor.hf_report()
    assert report["offline"] is True and report["offline_env"]["HF_HUB_OFFLINE"] is True
