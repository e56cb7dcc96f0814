"""`make demo`: serve the webhook over TLS on 127.0.0.1, send it realistic pods, print what it
decided and the patched specs; where runc is present, run a shell-wrapped app with and without
podinit and print stop times and zombie counts."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import os
import shutil
import ssl
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import yaml

from e2e.processes import free_port
from e2e.reviews import pod_review
from e2e.serve import running, serve_argv
from webhook.server.certs import new_ca, new_serving

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
UNREACHABLE = "127.0.0.1:9"  # lookups of images not in images.yaml fail at once, locally


def heading(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m")


def write_certificates(directory: Path) -> tuple[Path, Path, Path]:
    now = dt.datetime.now(dt.UTC)
    ca_cert, ca_key = new_ca(now)
    cert, key = new_serving(ca_cert, ca_key, ["localhost"], now)
    paths = directory / "ca.crt", directory / "tls.crt", directory / "tls.key"
    for path, content in zip(paths, (ca_cert, cert, key), strict=True):
        path.write_bytes(content)
    return paths


@contextmanager
def webhook(directory: Path) -> Iterator[tuple[str, Path]]:
    """`podinit serve` over TLS on 127.0.0.1 with the demo's image overrides, its output in
    `directory`/webhook.log; yields its URL and CA file, stops it on exit."""
    ca, cert, key = write_certificates(directory)
    config = {
        "imageOverrides": yaml.safe_load((HERE / "images.yaml").read_text()),
        "timeoutSeconds": 2,
    }
    (directory / "config.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    env = {
        "PODINIT_CONFIG_FILE": str(directory / "config.yaml"),
        "PODINIT_REGISTRY_MIRRORS": json.dumps(
            {"registry.local:5000": UNREACHABLE, "docker.io": UNREACHABLE}
        ),
        "PODINIT_INSECURE_REGISTRIES": json.dumps([UNREACHABLE]),
    }
    argv = serve_argv(port, "--tls-cert-file", str(cert), "--tls-key-file", str(key))
    url = f"https://localhost:{port}"
    context = ssl.create_default_context(cafile=str(ca))
    with ExitStack() as stack:
        try:
            stack.enter_context(
                running(argv, env=env, log_file=directory / "webhook.log", url=url, ca=context)
            )
        except RuntimeError as e:
            raise SystemExit(f"the webhook did not start: {e}") from None
        yield url, ca


def show(pod: dict[str, Any], answer: dict[str, Any], elapsed: float) -> None:
    response = answer["response"]
    name = pod["metadata"].get("name") or pod["metadata"]["generateName"] + "<generated>"
    patch = json.loads(base64.b64decode(response["patch"])) if "patch" in response else []
    result = jsonpatch.apply_patch(copy.deepcopy(pod), patch)
    took = f"{elapsed * 1000:.1f} ms"
    print(f"\npod {name}: allowed={response['allowed']}, {len(patch)} patch operations, {took}")
    status = result["metadata"].get("annotations", {}).get("podinit.dev/status")
    decisions = json.loads(status) if status else {"skipped": "opted out: no patch at all"}
    for container, decision in decisions.get("containers", {}).items():
        print(f"  {container:10} {decision}")
    if "containers" not in decisions:
        print(f"  (pod) {decisions}")
    for warning in response.get("warnings", []):
        print(f"  kubectl would print -> Warning: {warning}")
    for before, after in zip(pod["spec"]["containers"], result["spec"]["containers"], strict=True):
        if before != after:
            image_part = [] if before.get("command") else ["(image ENTRYPOINT)"]
            old = (before.get("command") or image_part) + (before.get("args") or [])
            new = after.get("command", []) + after.get("args", [])
            print(f"  {before['name']}: {json.dumps(old)}")
            print(f"  {'':{len(before['name'])}}  -> {json.dumps(new)}")
    copies = [
        c["name"]
        for c in result["spec"].get("initContainers", [])
        if c["name"].startswith("podinit")
    ]
    if copies:
        print(
            f"  + initContainer {copies[0]} copies the init into emptyDir '{decisions['volume']}'"
        )


def admissions(url: str, ca: Path) -> None:
    heading(
        "Admission reviews sent to the webhook over TLS (what the apiserver does for each new pod)"
    )
    context = ssl.create_default_context(cafile=str(ca))
    with httpx.Client(base_url=url, verify=context) as client:
        for pod in yaml.safe_load_all((HERE / "pods.yaml").read_text()):
            started = time.perf_counter()
            namespace = pod["metadata"].get("namespace", "default")
            answer = client.post("/mutate", json=pod_review(pod, namespace=namespace)).json()
            show(pod, answer, time.perf_counter() - started)
        metrics = [
            line
            for line in client.get("/metrics").text.splitlines()
            if line.startswith("podinit_admissions_total")
        ]
    print("\n/metrics: " + "; ".join(metrics))


def runtime() -> None:
    heading("A shell-wrapped app in a real container (runc), stopped with SIGTERM")
    if os.geteuid() != 0 or not shutil.which("runc") or not Path("/bin/busybox").exists():
        print("skipped: needs root and the Debian packages runc and busybox-static")
        return
    binary = ROOT / "build" / "podinit"
    if not binary.exists():
        print("skipped: needs build/podinit (make init, with the Debian package musl-tools)")
        return
    try:
        from e2e.examples import stop_time_demo
    except ImportError:
        print("skipped: e2e/examples.py is not available in this checkout")
        return
    rows = stop_time_demo(binary)
    print(f"{'variant':62} {'stop after SIGTERM':>18} {'zombies':>8}")
    for row in rows:
        print(f"{row.variant:62} {row.stop_seconds:>17.3f}s {row.zombies:>8}")


def main() -> None:
    heading("podinit: every container gets a real PID 1")
    print("sh -c 'app' as PID 1 ignores SIGTERM (no handler) and never reaps orphans; the kubelet")
    print("waits the whole grace period, then SIGKILLs. podinit runs in front of the app instead.")
    with (
        tempfile.TemporaryDirectory(prefix="podinit-demo-") as tmp,
        webhook(Path(tmp)) as (url, ca),
    ):
        admissions(url, ca)
    runtime()


if __name__ == "__main__":
    main()
