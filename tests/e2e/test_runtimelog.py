"""e2e.node.runtimelog on lines in containerd 2.4's and 1.7's own formats (taken from node
runs' logs, ids shortened): 2.4 prints the CRI metadata in protobuf's text form, 1.7 as Go
structs, and their exit events differ by a word."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from e2e.node.runtimelog import ContainerTimes, RuntimeLog


class Format(NamedTuple):
    pod: str
    container: str
    exit_event: str


FORMATS = {
    "containerd-2.4": Format(
        pod='name:\\"web\\"  uid:\\"u1\\"  namespace:\\"shop\\"',
        container='name:\\"app\\"  attempt:0',
        exit_event="received container exit event",
    ),
    "containerd-1.7": Format(
        pod="&PodSandboxMetadata{Name:web,Uid:u1,Namespace:shop,Attempt:0,}",
        container="&ContainerMetadata{Name:app,Attempt:0,}",
        exit_event="received exit event",
    ),
}
T = 'time="2026-12-07T06:30:0{s}.000000000Z" level=info msg="{m}"'


@pytest.fixture(params=FORMATS.values(), ids=FORMATS.keys())
def form(request: pytest.FixtureRequest) -> Format:
    found: Format = request.param
    return found


def app_of(tmp_path: Path, form: Format, *messages: str) -> ContainerTimes:
    """The app container of pod shop/web, created, stopped with SIGQUIT, then `messages`."""
    started = [
        f"RunPodSandbox for {form.pod}",
        f'RunPodSandbox for {form.pod} returns sandbox id \\"s1\\"',
        f'CreateContainer within sandbox \\"s1\\" for container {form.container}',
        f'CreateContainer within sandbox \\"s1\\" for {form.container} '
        'returns container id \\"c1\\"',
        'StopContainer for \\"c1\\" with timeout 10 (s)',
        'Stop container \\"c1\\" with signal quit',
    ]
    log = tmp_path / "containerd.log"
    lines = [T.format(s=i % 10, m=m) for i, m in enumerate([*started, *messages])]
    log.write_text("\n".join(lines) + "\n")
    [(key, pod)] = RuntimeLog(log).pods().items()
    assert key == ("shop", "web") and pod.sandbox_ready is not None
    return pod.containers["app"]


def test_the_stop_signal_and_a_nonzero_exit_status_are_read(tmp_path: Path, form: Format) -> None:
    exit_event = (
        f'{form.exit_event} container_id:\\"c1\\"  id:\\"c1\\"  pid:42  '
        "exit_status:130  exited_at:{seconds:1796625003  nanos:500000000}"
    )
    app = app_of(tmp_path, form, exit_event)
    assert (app.id, app.stop_signal, app.killed) == ("c1", "quit", False)
    assert (app.exit_status, app.exited) == (130, 1796625003.5)


def test_an_exit_event_without_exit_status_is_status_zero(tmp_path: Path, form: Format) -> None:
    """protobuf's text form leaves a zero field out."""
    exit_event = (
        f'{form.exit_event} container_id:\\"c1\\"  id:\\"c1\\"  pid:42  '
        "exited_at:{seconds:1796625003  nanos:0}"
    )
    assert app_of(tmp_path, form, exit_event).exit_status == 0


def test_a_container_killed_after_its_grace_period_is_marked_killed(
    tmp_path: Path, form: Format
) -> None:
    assert app_of(tmp_path, form, 'Kill container \\"c1\\"').killed


def test_a_failed_sandbox_request_leaves_the_pods_times_alone(tmp_path: Path, form: Format) -> None:
    failed = f'RunPodSandbox for {form.pod} failed, error" error="rpc error: deadline exceeded'
    app = app_of(tmp_path, form, failed)
    assert (app.id, app.stop_signal) == ("c1", "quit")
