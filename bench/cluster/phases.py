"""Where a pod's start and stop time goes, from containerd's log (e2e.node.runtimelog).

The create -> Ready and delete wall times say what a user waits; these phases say who
spends it: the container runtime running a container (an init container's run; SIGTERM
-> exit, which is the init's and the app's part) or the kubelet between runtime calls
(noticing that an init container exited; tearing the pod down after the app exited).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from e2e.node.runtimelog import PodTimes

APP = "app"


@dataclass(frozen=True)
class Sample:
    """One measured pod: the wall time the user waited, from ``began`` (epoch seconds)."""

    namespace: str
    name: str
    seconds: float
    began: float


def wall_times(samples: list[Sample]) -> list[float]:
    return [sample.seconds for sample in samples]


def _init_container(pod: PodTimes) -> str | None:
    names = [name for name in pod.containers if name != APP]
    return names[0] if names else None


def _init_run(pod: PodTimes, _: Sample) -> float | None:
    """An init container's create request -> its exit."""
    init = _init_container(pod)
    if init is None:
        return None
    times = pod.containers[init]
    return None if times.exited is None else times.exited - times.create_requested


def _until_app_created(pod: PodTimes, _: Sample) -> float | None:
    """The kubelet's part before the app: from the init container's exit (or, without
    one, from the sandbox being ready) to the app container's create request."""
    app = pod.containers[APP]
    init = _init_container(pod)
    since = pod.sandbox_ready if init is None else pod.containers[init].exited
    return None if since is None else app.create_requested - since


def _kubelet_before_stop(pod: PodTimes, sample: Sample) -> float | None:
    """Delete request -> the kubelet's StopContainer (its sync, waiting for a relist)."""
    stop = pod.containers[APP].stop_requested
    return None if stop is None else stop - sample.began


def _runtime_stop(pod: PodTimes, _: Sample) -> float | None:
    """StopContainer (SIGTERM) -> the container's exit: the init's and the app's part."""
    app = pod.containers[APP]
    if app.stop_requested is None or app.exited is None:
        return None
    return app.exited - app.stop_requested


def _kubelet_after_exit(pod: PodTimes, sample: Sample) -> float | None:
    """The container's exit -> the pod object gone (sandbox, volumes, final status)."""
    exited = pod.containers[APP].exited
    return None if exited is None else sample.began + sample.seconds - exited


def _median(values: list[float | None]) -> str:
    known = [value for value in values if value is not None]
    if not known:
        return "-"
    middle = statistics.median(known)
    return f"{middle:.2f} s" if middle >= 10 else f"{middle * 1000:.0f} ms"


def _row(
    variant: str,
    samples: list[Sample],
    pods: dict[tuple[str, str], PodTimes],
    phases: Sequence[Callable[[PodTimes, Sample], float | None]],
) -> str:
    found = [(pods[(s.namespace, s.name)], s) for s in samples if (s.namespace, s.name) in pods]
    cells = [_median([phase(pod, sample) for pod, sample in found]) for phase in phases]
    return f"| {variant} | {' | '.join(cells)} |"


def start_table(start: dict[str, list[Sample]], pods: dict[tuple[str, str], PodTimes]) -> str:
    phases = [_init_run, _until_app_created]
    rows = [_row(variant, samples, pods, phases) for variant, samples in start.items()]
    return "\n".join(
        [
            "| pod | init container: create -> exit | kubelet: sandbox ready or init exit -> "
            "app container created |",
            "| --- | --- | --- |",
            *rows,
        ]
    )


def stop_table(stop: dict[str, list[Sample]], pods: dict[tuple[str, str], PodTimes]) -> str:
    phases = [_kubelet_before_stop, _runtime_stop, _kubelet_after_exit]
    rows = [_row(variant, samples, pods, phases) for variant, samples in stop.items()]
    return "\n".join(
        [
            "| pod | kubelet: delete -> StopContainer | runtime: SIGTERM -> exit | "
            "kubelet: exit -> pod gone |",
            "| --- | --- | --- | --- |",
            *rows,
        ]
    )
