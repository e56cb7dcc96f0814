"""What injection costs and saves on a real node (``make bench-cluster``).

On the one-node cluster of e2e.node, with the chart installed from the images built from
the Dockerfile, in one run:
  * create -> Ready latency of the shell-form app pod: unmutated vs copy mode, and
    unmutated vs imageVolume mode (each mode's pods interleaved with unmutated ones);
  * `kubectl delete pod` wall time: the shell-form app unmutated (the shell is PID 1 and
    ignores SIGTERM) vs wrapped, and an app that handles SIGTERM itself as the floor;
  * both split, from containerd's log, into the runtime's part and the kubelet's
    (bench/cluster/phases.py);
  * the webhook's admission latency as the apiserver measures it
    (apiserver_admission_webhook_admission_duration_seconds);
  * pods that slipped through replaced by the reconciler vs `kubectl rollout restart`
    (bench/cluster/replacing.py; its own doc section; `--only-replacing` runs just that).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.cluster import replacing  # noqa: E402
from bench.cluster.phases import Sample, start_table, stop_table, wall_times  # noqa: E402
from bench.docsection import replace_section  # noqa: E402
from e2e.node import disruption, workloads  # noqa: E402
from e2e.node.cluster import Cluster  # noqa: E402
from e2e.node.runtimelog import PodTimes  # noqa: E402

SECTION = "Cluster"
REPLACING_SECTION = "Cluster: replacing slipped pods"
KEEP = "<!-- end of the generated part: text below is kept by bench_cluster.py -->"
WEBHOOK = "pods.podinit.dev"


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def create_to_ready(cluster: Cluster, pod: dict[str, Any], timeout: float = 90) -> Sample:
    """From the create request to the pod reported Ready (polled every 20 ms)."""
    namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    path = f"/api/v1/namespaces/{namespace}/pods"
    began, started = time.time(), time.monotonic()
    cluster.cp.api("POST", path, pod)
    while time.monotonic() - started < timeout:
        if _ready(cluster.cp.api("GET", f"{path}/{name}")):
            return Sample(namespace, name, time.monotonic() - started, began)
        time.sleep(0.02)
    raise TimeoutError(f"{namespace}/{name} not Ready within {timeout}s")


def _delete_now(cluster: Cluster, namespace: str, name: str) -> None:
    cluster.cp.kubectl(
        "delete", "pod", name, "-n", namespace, "--grace-period=0", "--force", check=False
    )


ANY_INIT = "unmutated + a no-op init container"


def _with_noop_init_container(pod: dict[str, Any]) -> dict[str, Any]:
    """What any init container costs at start, whoever adds it: the copy mode's floor."""
    image = pod["spec"]["containers"][0]["image"]
    pod["spec"]["initContainers"] = [{"name": "noop", "image": image, "command": ["/bin/true"]}]
    return pod


# Seconds between pods, drawn at random: as RUNNING below, so that where the kubelet's relist
# falls is random in every measured start.
BEFORE_CREATE = (0.0, 1.0)


def startup(cluster: Cluster, mode: str, pods: int) -> dict[str, list[Sample]]:
    """Interleaved create -> Ready of unmutated and ``mode`` pods (deleted at once after); in
    copy mode also of unmutated pods with one no-op init container of their own."""
    workloads.helm_install(cluster, values=workloads.chart_values(cluster, injectionMode=mode))
    plain = workloads.fresh_namespace(cluster, prefix="bench", labelled=False)
    wrapped = workloads.fresh_namespace(cluster, prefix="bench")
    variants = [("unmutated", plain), (mode, wrapped)]
    if mode == "copy":
        variants.append((ANY_INIT, plain))
    times: dict[str, list[Sample]] = {variant: [] for variant, _ in variants}
    pause = random.Random(0)
    # one of each first, unmeasured: image pulls and the webhook's registry lookup
    for index in range(pods + 1):
        for number, (variant, namespace) in enumerate(variants):
            name = f"p{index}-{number}"
            pod = workloads.app_pod(name, namespace, cluster)
            if variant == ANY_INIT:
                pod = _with_noop_init_container(pod)
            time.sleep(pause.uniform(*BEFORE_CREATE))
            sample = create_to_ready(cluster, pod)
            if index:
                times[variant].append(sample)
            _delete_now(cluster, namespace, name)
    return times


def _timed_delete(cluster: Cluster, namespace: str, name: str) -> Sample:
    began = time.time()
    return Sample(namespace, name, workloads.timed_delete(cluster, namespace, name), began)


# (variant, wrapped?, exec form: the app itself is PID 1, the service-account token volume)
STOP_VARIANTS = (
    ("wrapped", True, False, True),
    ("app handles SIGTERM", False, True, True),
    ("wrapped, no token volume", True, False, False),
    ("app handles SIGTERM, no volume", False, True, False),
)
# Seconds a pod runs after Ready before it is deleted: drawn at random, so that the kubelet's
# once-a-second relist falls anywhere in its stop (a fixed pause locks each variant's stop to
# one phase of the relist, and the variants' medians then differ by that alone).
RUNNING = (1.0, 2.0)


def deletion(cluster: Cluster, pods: int) -> dict[str, list[Sample]]:
    """`kubectl delete pod` wall time with the default 30 s grace period, of pods that have
    run for a second or two; also without the service-account token volume, where the
    injection adds a pod's only volume (the kubelet tears volumes down before the pod goes)."""
    workloads.helm_install(cluster, values=workloads.chart_values(cluster))
    plain = workloads.fresh_namespace(cluster, prefix="bench", labelled=False)
    wrapped = workloads.fresh_namespace(cluster, prefix="bench")
    times: dict[str, list[Sample]] = {"unmutated": []}
    pause = random.Random(0)
    for index in range(pods):
        for number, (variant, injected, exec_form, token) in enumerate(STOP_VARIANTS):
            namespace = wrapped if injected else plain
            pod = workloads.app_pod(f"d{index}-{number}", namespace, cluster)
            if exec_form:
                pod["spec"]["containers"][0]["command"] = ["/bin/app"]
            pod["spec"]["automountServiceAccountToken"] = token
            workloads.create_ready(cluster, pod)
            time.sleep(pause.uniform(*RUNNING))
            sample = _timed_delete(cluster, namespace, pod["metadata"]["name"])
            times.setdefault(variant, []).append(sample)
    # unmutated: each waits the whole grace period, so they are deleted side by side
    names = [f"u{index}" for index in range(pods)]
    for name in names:
        workloads.create_ready(cluster, workloads.app_pod(name, plain, cluster))
    threads = [
        threading.Thread(
            target=lambda n=name: times["unmutated"].append(_timed_delete(cluster, plain, n))
        )
        for name in names
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times


def disruptions(cluster: Cluster, seconds: float) -> dict[str, tuple[int, int]]:
    """(created, unwrapped) for a 10/s pod stream during a rolling restart of the webhook
    and during a SIGKILL of one replica's server."""
    found = {}
    for name, delay, during in (
        ("kubectl rollout restart", 5, disruption.rollout_restart(cluster)),
        ("SIGKILL of one replica", 5, disruption.kill_one_replica(cluster)),
        ("rollout restart, shutdownDelaySeconds=0", 0, disruption.rollout_restart(cluster)),
    ):
        values = workloads.chart_values(cluster)
        workloads.helm_install(
            cluster, "--set", f"server.shutdownDelaySeconds={delay}", values=values
        )
        namespace = workloads.fresh_namespace(cluster, prefix="stream")
        result = disruption.stream_pods(cluster, namespace, rate=10, seconds=seconds, during=during)
        found[name] = (result.created, len(result.unwrapped))
        cluster.cp.kubectl("delete", "namespace", namespace, "--wait=false")
    return found


def admission_latency(cluster: Cluster) -> dict[str, float]:
    """Mean and bucket quantiles of the apiserver's webhook admission histogram."""
    text = cluster.cp.kubectl("get", "--raw", "/metrics", timeout=30).stdout
    metric = "apiserver_admission_webhook_admission_duration_seconds"
    buckets: list[tuple[float, float]] = []
    total = count = 0.0
    for line in text.splitlines():
        if not line.startswith(metric) or f'name="{WEBHOOK}"' not in line:
            continue
        if 'operation="CREATE"' not in line or 'rejected="false"' not in line:
            continue
        value = float(line.rsplit(" ", 1)[1])
        if line.startswith(f"{metric}_bucket"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if bound == "+Inf" else float(bound), value))
        elif line.startswith(f"{metric}_sum"):
            total += value
        elif line.startswith(f"{metric}_count"):
            count += value
    buckets.sort()

    def quantile(q: float) -> float:
        for bound, cumulative in buckets:
            if cumulative >= q * count:
                return bound
        return float("inf")

    return {
        "count": count,
        "mean": total / count if count else 0.0,
        "p50_le": quantile(0.5),
        "p99_le": quantile(0.99),
    }


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms" if values else "-"


def _s(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s" if values else "-"


def _start_rows(start: dict[str, dict[str, list[Sample]]]) -> str:
    rows = []
    for mode, samples in start.items():
        base, times = wall_times(samples["unmutated"]), wall_times(samples[mode])
        cost = statistics.median(times) - statistics.median(base)
        rows.append(
            f"| {mode} | {_ms(base)} | {_ms(times)} | {cost * 1000:+.0f} ms | "
            f"{statistics.median(times) / statistics.median(base):.2f}x | "
            f"{min(times) * 1000:.0f}-{max(times) * 1000:.0f} ms |"
        )
    return "\n".join(rows)


def _floor_line(start: dict[str, dict[str, list[Sample]]]) -> str:
    """The copy mode's floor: what an unmutated pod's own no-op init container costs."""
    copy = start.get("copy", {})
    if not copy.get(ANY_INIT):
        return ""
    noop, base = wall_times(copy[ANY_INIT]), wall_times(copy["unmutated"])
    cost = statistics.median(noop) - statistics.median(base)
    return (
        "An unmutated pod with one no-op init container of its own (busybox `true`),\n"
        f"interleaved with the copy-mode pods: {_ms(noop)} ({cost * 1000:+.0f} ms):"
        "\nwhat any init container costs here, the floor of the copy mode."
    )


def _start_phase_rows(start: dict[str, dict[str, list[Sample]]]) -> dict[str, list[Sample]]:
    """Each variant once: the copy run's unmutated pods stand for the baseline."""
    rows: dict[str, list[Sample]] = {}
    for samples in start.values():
        for variant, measured in samples.items():
            rows.setdefault(variant, measured)
    return rows


def markdown(
    start: dict[str, dict[str, list[Sample]]],
    stop: dict[str, list[Sample]],
    seen: dict[tuple[str, str], PodTimes],
    disrupted: dict[str, tuple[int, int]],
    latency: dict[str, float],
    pods: int,
    gates: dict[str, bool],
) -> str:
    """The doc section of a run: its setup, then start, stop, disruption and latency."""
    return (
        _intro(gates, pods)
        + _start_part(start, seen)
        + _stop_part(stop, seen)
        + _disruption_part(disrupted)
        + _latency_part(latency)
    )


def _intro(gates: dict[str, bool], pods: int) -> str:
    gated = _gates_text(gates)
    flags = " ".join(f"--kubelet-feature-gate {gate}" for gate in gated.split(", "))
    return f"""## {section_title(gates)}

`make bench-cluster{f' BENCH_CLUSTER_ARGS="{flags}"' if gates else ""}`
(bench/cluster/bench_cluster.py): the one-node cluster of `make cluster` (kubelet and
containerd on this machine{f", the kubelet's feature gates {gated}" if gates else ""}, the chart
installed from the images built from the Dockerfile), {pods} measured pods per variant,
medians. Pods are the shell-form
busybox app (`ENTRYPOINT echo …; /bin/app`, the app traps SIGTERM), without `command`, so
the webhook reads the image's ENTRYPOINT from the registry.

"""


def _start_part(
    start: dict[str, dict[str, list[Sample]]], seen: dict[tuple[str, str], PodTimes]
) -> str:
    return f"""Create -> Ready, unmutated and wrapped pods interleaved (each mode with its own unmutated
baseline, measured from the create request to Ready, polled every 20 ms; a random
{BEFORE_CREATE[0]:g}-{BEFORE_CREATE[1]:g} s pause before each create, so that the kubelet's
once-a-second relist falls anywhere in a start):

| injection mode | unmutated p50 | wrapped p50 | cost | ratio | wrapped range |
| --- | --- | --- | --- | --- | --- |
{_start_rows(start)}

{_floor_line(start)}

Where the start goes, from containerd's log (medians; the kubelet creates the app container
only once it has seen the init container exit):

{start_table(_start_phase_rows(start), seen)}

"""


def _stop_part(stop: dict[str, list[Sample]], seen: dict[tuple[str, str], PodTimes]) -> str:
    stop_rows = "\n".join(
        f"| {variant} | {_s(wall_times(samples))} | "
        f"{min(wall_times(samples)):.2f}-{max(wall_times(samples)):.2f} s |"
        for variant, samples in stop.items()
    )
    return f"""`kubectl delete pod` wall time, default grace period (30 s), pods deleted {RUNNING[0]:g}-{RUNNING[1]:g} s after Ready:

| pod | median | range |
| --- | --- | --- |
{stop_rows}

Where the stop goes, from containerd's log (medians; SIGTERM -> exit is podinit's and the
app's part, the rest the kubelet's):

{stop_table(stop, seen)}

"""


def _disruption_part(disrupted: dict[str, tuple[int, int]]) -> str:
    disruption_rows = "\n".join(
        f"| {name} | {created} | {unwrapped} |" for name, (created, unwrapped) in disrupted.items()
    )
    return f"""Pods created at 10/s in an opted-in namespace while the webhook is disrupted
(`failurePolicy: Ignore`: a failed admission creates the pod unwrapped):

| disruption | pods created | created unwrapped |
| --- | --- | --- |
{disruption_rows}

"app handles SIGTERM" runs the same app in exec form (`command: [/bin/app]`): the floor
the kubelet and containerd set here, whatever the init. "no token volume" pods set
`automountServiceAccountToken: false`: the unmutated one then has no volume at all, the
wrapped one only the volume the injection adds.

"""


def _latency_part(latency: dict[str, float]) -> str:
    return f"""Admission latency as the apiserver measures it (`{WEBHOOK}`, every CREATE of the run):
{latency["count"]:.0f} admissions, mean {latency["mean"] * 1000:.1f} ms,
p50 <= {latency["p50_le"] * 1000:g} ms, p99 <= {latency["p99_le"] * 1000:g} ms (histogram
bucket bounds).

Measured {dt.datetime.now(dt.UTC):%Y-%m-%d} on this 2-core VM.
"""


def section_title(gates: dict[str, bool]) -> str:
    """The doc section a run writes: a run with feature gates does not replace the default."""
    if not gates:
        return SECTION
    return f"{SECTION} with {_gates_text(gates)}"


def _gates_text(gates: dict[str, bool]) -> str:
    return ", ".join(f"{gate}={str(on).lower()}" for gate, on in gates.items())


def _gate(text: str) -> tuple[str, bool]:
    name, _, value = text.partition("=")
    if value not in ("true", "false") or not name:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=true or NAME=false")
    return name, value == "true"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=8, help="measured pods per variant")
    parser.add_argument("--stop-pods", type=int, default=8, help="deleted pods per variant")
    parser.add_argument("--stream-seconds", type=float, default=30, help="per disruption")
    parser.add_argument("--write-doc", type=Path, help=f"replace the ## {SECTION} section")
    parser.add_argument(
        "--kubelet-feature-gate",
        type=_gate,
        action="append",
        default=[],
        metavar="NAME=BOOL",
        help="run the kubelet with this feature gate (e.g. EventedPLEG=true); own doc section",
    )
    parser.add_argument(
        "--only-replacing", action="store_true", help=f"only the ## {REPLACING_SECTION} part"
    )
    args = parser.parse_args()
    gates = dict(args.kubelet_feature_gate)
    with Cluster.start(kubelet_feature_gates=gates) as cluster:
        sections = {} if args.only_replacing else {section_title(gates): _main_part(cluster, args)}
        if not gates:
            sections[REPLACING_SECTION] = replacing.markdown(
                replacing.replacing(cluster), title=REPLACING_SECTION
            )
    for title, section in sections.items():
        print(section)
        if args.write_doc:
            keep = KEEP if title != REPLACING_SECTION else None
            replace_section(args.write_doc, title, section, keep=keep)
            print(f"wrote the ## {title} section of {args.write_doc}")
    return 0


def _main_part(cluster: Cluster, args: argparse.Namespace) -> str:
    gates = dict(args.kubelet_feature_gate)
    start = {mode: startup(cluster, mode, args.pods) for mode in ("copy", "imageVolume")}
    stop = deletion(cluster, args.stop_pods)
    disrupted = disruptions(cluster, args.stream_seconds)
    latency = admission_latency(cluster)
    return markdown(start, stop, cluster.runtime_log.pods(), disrupted, latency, args.pods, gates)


if __name__ == "__main__":
    sys.exit(main())
