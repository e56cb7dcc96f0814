"""e2e.node.runtimelog on lines in containerd 2.4's and 1.7's own formats (taken from node
runs' logs, ids shortened)."""

from __future__ import annotations

from pathlib import Path

from e2e.node.runtimelog import ContainerTimes, RuntimeLog

T = 'time="2026-12-07T06:30:0{s}.000000000Z" level=info msg="{m}"'
POD = 'name:\\"web\\"  uid:\\"u1\\"  namespace:\\"shop\\"'
LINES = [
    T.format(s=0, m=f"RunPodSandbox for {POD}"),
    T.format(s=1, m=f'RunPodSandbox for {POD} returns sandbox id \\"s1\\"'),
    T.format(s=1, m='CreateContainer within sandbox \\"s1\\" for container name:\\"app\\"'),
    T.format(
        s=1,
        m='CreateContainer within sandbox \\"s1\\" for name:\\"app\\"  attempt:0 '
        'returns container id \\"c1\\"',
    ),
    T.format(s=2, m='StopContainer for \\"c1\\" with timeout 10 (s)'),
    T.format(s=2, m='Stop container \\"c1\\" with signal quit'),
]


def app_of(tmp_path: Path, *lines: str) -> ContainerTimes:
    log = tmp_path / "containerd.log"
    log.write_text("\n".join([*LINES, *lines]) + "\n")
    return RuntimeLog(log).pods()[("shop", "web")].containers["app"]


def test_the_stop_signal_and_a_nonzero_exit_status_are_read(tmp_path: Path) -> None:
    exit_event = (
        'received container exit event container_id:\\"c1\\"  id:\\"c1\\"  pid:42  '
        "exit_status:130  exited_at:{seconds:1796625003  nanos:500000000}"
    )
    app = app_of(tmp_path, T.format(s=3, m=exit_event))
    assert (app.stop_signal, app.exit_status, app.exited) == ("quit", 130, 1796625003.5)


def test_an_exit_event_without_exit_status_is_status_zero(tmp_path: Path) -> None:
    """protobuf's text form leaves a zero field out."""
    exit_event = (
        'received container exit event container_id:\\"c1\\"  id:\\"c1\\"  pid:42  '
        "exited_at:{seconds:1796625003  nanos:0}"
    )
    app = app_of(tmp_path, T.format(s=3, m=exit_event))
    assert app.exit_status == 0


def test_containerd_1_7s_go_struct_metadata_and_exit_events_are_read(tmp_path: Path) -> None:
    pod = "&PodSandboxMetadata{Name:web,Uid:u1,Namespace:shop,Attempt:0,}"
    lines = [
        T.format(s=0, m=f"RunPodSandbox for {pod}"),
        T.format(s=1, m=f'RunPodSandbox for {pod} returns sandbox id \\"s1\\"'),
        T.format(
            s=1,
            m='CreateContainer within sandbox \\"s1\\" for container '
            "&ContainerMetadata{Name:app,Attempt:0,}",
        ),
        T.format(
            s=1,
            m='CreateContainer within sandbox \\"s1\\" for &ContainerMetadata{Name:app,Attempt:0,} '
            'returns container id \\"c1\\"',
        ),
        T.format(s=2, m='Stop container \\"c1\\" with signal terminated'),
        T.format(s=3, m='Kill container \\"c1\\"'),
        T.format(
            s=4,
            m='received exit event container_id:\\"c1\\"  id:\\"c1\\"  pid:9  exit_status:137  '
            "exited_at:{seconds:1796693381  nanos:250000000}",
        ),
    ]
    log = tmp_path / "containerd.log"
    log.write_text("\n".join(lines) + "\n")
    [(key, pod_times)] = RuntimeLog(log).pods().items()
    assert key == ("shop", "web") and pod_times.sandbox_ready is not None
    app = pod_times.containers["app"]
    assert (app.id, app.stop_signal, app.killed) == ("c1", "terminated", True)
    assert (app.exit_status, app.exited) == (137, 1796693381.25)
