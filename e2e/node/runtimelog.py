"""What containerd's CRI service did to each pod's containers, and when, read from its log.

The kubelet's pod status keeps times to the second; containerd logs every CRI call it
serves at info level with nanoseconds. That splits a pod's start and stop into the part
the container runtime spends (a copy container's run; SIGTERM -> exit) and the part the
kubelet spends deciding (noticing an init container has exited; tearing the pod down).

    pods = RuntimeLog(cluster.runtime_log).pods()
    app = pods[("shop", "web-1")].containers["app"]
    app.stop_requested, app.exited, app.killed, app.stop_signal, app.exit_status
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# containerd writes logrus text: time="..." level=info msg="..." with the message's own
# quotes escaped as \"
_LINE = re.compile(r'^time="(?P<time>[^"]+)" level=\w+ msg="(?P<msg>(?:[^"\\]|\\.)*)"')
_Q = r'\\"([^"\\]+)\\"'  # a quoted value inside msg
# containerd 2 prints the CRI metadata in protobuf's text form (name:\"web\" uid:\"...\"),
# containerd 1.7 as a Go struct (&PodSandboxMetadata{Name:web,Uid:...,Namespace:...,}).
_V = r"([^,]+)"  # a value inside a Go struct
# The request and its answer; not "... failed, error ...", which would reset the pod's times.
_SANDBOX_REQUESTED = re.compile(
    rf"^RunPodSandbox for (?:name:{_Q}\s+uid:{_Q}\s+namespace:{_Q}(?:\s+attempt:\d+)?"
    rf"|&PodSandboxMetadata\{{Name:{_V},Uid:{_V},Namespace:{_V},[^}}]*\}})"
    rf"(?: returns sandbox id {_Q})?$"
)
_CREATE = re.compile(
    rf"^CreateContainer within sandbox {_Q} for (?:container )?"
    rf"(?:name:{_Q}|&ContainerMetadata\{{Name:{_V},)"
)
_CREATED = re.compile(rf"returns container id {_Q}$")
_STOP = re.compile(rf"^StopContainer for {_Q} with timeout")
# Go's name of the signal: "terminated" (SIGTERM), "quit", "interrupt", ...
_STOP_SIGNAL = re.compile(rf"^Stop container {_Q} with signal (.+)$")
_KILL = re.compile(rf"^Kill container {_Q}")
_EXIT = re.compile(
    rf"^received (?:container )?exit event container_id:{_Q}"  # 2.x; 1.7 says "exit event"
    # protobuf's text form leaves out a zero: no exit_status is status 0
    r".*?(?:exit_status:(\d+)\s+)?exited_at:\{seconds:(\d+)\s+nanos:(\d+)\}"
)


@dataclass
class ContainerTimes:
    """Seconds since the epoch (None: not in the log)."""

    name: str
    create_requested: float
    id: str = ""
    exited: float | None = None
    stop_requested: float | None = None
    killed: bool = False  # SIGKILLed once its grace period was over
    stop_signal: str | None = None  # the signal the runtime stopped it with, in Go's words
    exit_status: int | None = None  # of its PID 1 (128 + N: killed by signal N)


@dataclass
class PodTimes:
    namespace: str
    name: str
    sandbox_ready: float | None = None
    containers: dict[str, ContainerTimes] = field(default_factory=dict)  # the latest per name


@dataclass(frozen=True)
class RuntimeLog:
    path: Path

    def pods(self) -> dict[tuple[str, str], PodTimes]:
        """Every pod the log shows, by (namespace, name); a name reused later wins."""
        pods: dict[tuple[str, str], PodTimes] = {}
        requested: dict[str, PodTimes] = {}  # by pod UID, until its sandbox is ready
        by_sandbox: dict[str, PodTimes] = {}
        by_container: dict[str, ContainerTimes] = {}
        for when, message in self._messages():
            if found := _SANDBOX_REQUESTED.match(message):
                name, uid, namespace = _either(found.groups()[:6])
                sandbox = found.group(7)
                if sandbox is None:
                    requested[uid] = pods[(namespace, name)] = PodTimes(namespace, name)
                elif uid in requested:
                    ready = requested.pop(uid)
                    ready.sandbox_ready = when
                    by_sandbox[sandbox] = ready
            elif (found := _CREATE.match(message)) and found.group(1) in by_sandbox:
                [container] = _either(found.groups()[1:])
                _created(by_sandbox[found.group(1)], container, when, message, by_container)
            else:
                _record(by_container, when, message)
        return pods

    def _messages(self) -> Iterator[tuple[float, str]]:
        with self.path.open(errors="replace") as lines:
            for line in lines:
                if found := _LINE.match(line):
                    yield _epoch(found["time"]), found["msg"]


def _either(groups: tuple[str | None, ...]) -> list[str]:
    """The values of whichever of two alternatives matched (its half of ``groups``)."""
    half = len(groups) // 2
    first, second = groups[:half], groups[half:]
    return [g or "" for g in (first if first[0] is not None else second)]


def _created(
    pod: PodTimes, container: str, when: float, message: str, by_id: dict[str, ContainerTimes]
) -> None:
    if created := _CREATED.search(message):
        if times := pod.containers.get(container):
            times.id = created.group(1)
            by_id[times.id] = times
    else:
        pod.containers[container] = ContainerTimes(container, create_requested=when)


def _record(by_id: dict[str, ContainerTimes], when: float, message: str) -> None:
    if found := _EXIT.match(message):
        if times := by_id.get(found.group(1)):
            times.exit_status = int(found.group(2) or 0)
            times.exited = int(found.group(3)) + int(found.group(4)) / 1e9
    elif found := _STOP.match(message):
        if (times := by_id.get(found.group(1))) and times.stop_requested is None:
            times.stop_requested = when
    elif (found := _STOP_SIGNAL.match(message)) and (times := by_id.get(found.group(1))):
        times.stop_signal = found.group(2)
    elif (found := _KILL.match(message)) and (times := by_id.get(found.group(1))):
        times.killed = True


def _epoch(stamp: str) -> float:
    """RFC 3339 with nanoseconds; Python keeps microseconds, plenty here."""
    return dt.datetime.fromisoformat(stamp).timestamp()
