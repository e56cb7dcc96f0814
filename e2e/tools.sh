#!/usr/bin/env bash
# Build the end-to-end tools from source through the Go module proxy: the control plane
# (kube-apiserver, kube-controller-manager, kubectl, helm 3 and 4 and, when
# e2e/versions.env asks for it, etcd), the version matrix (a kube-apiserver and a kubectl
# per KUBE_MATRIX version) and what a one-node cluster adds (kubelet, kube-scheduler,
# kube-proxy, containerd with containerd-shim-runc-v2 and ctr, crictl, and kube-router, whose
# firewall enforces NetworkPolicies when a test asks for it).
#
# Binaries are cached outside the repo, keyed by version:
#   ${PODINIT_TOOLS_CACHE:-$HOME/.cache/podinit-tools}/<tool>-<version>/<tool>
# next to a build-seconds file holding the wall time of the build (containerd's
# directory also holds containerd-shim-runc-v2 and ctr). A tool that is already cached
# is not rebuilt, so a second run is a no-op.
#
# Usage:
#   e2e/tools.sh                 build what is missing
#   e2e/tools.sh --paths         print TOOL=path lines (nothing is built)
#   e2e/tools.sh --check         exit 1 unless every tool is cached (nothing is built)
#   e2e/tools.sh --oras          build only oras (what `make images` needs)
#   e2e/tools.sh --base          build all but the version matrix and the older node/cluster
#   e2e/tools.sh --matrix        build only the version matrix and the older node/cluster (`make
#                                test` builds these while the Python tests run)
#   e2e/tools.sh --regen-kube-mod [VERSION]  rewrite the throwaway module of VERSION
#                                (default KUBE_VERSION; e2e/tools-mod/kubernetes/, or
#                                kubernetes-VERSION/ for a KUBE_MATRIX one; needs network)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${PODINIT_TOOLS_CACHE:-$HOME/.cache/podinit-tools}

if [[ -z ${GO:-} ]]; then
    if command -v go >/dev/null; then GO=go; else GO=/usr/local/go/bin/go; fi
fi
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -buildvcs=false"
nice=(nice -n "${PODINIT_TOOLS_NICE:-10}")

log() { printf 'e2e-tools: %s\n' "$*" >&2; }

minor_of() { # v1.34.4 -> 34
    local m=${1#v1.}
    printf '%s' "${m%%.*}"
}
# The matrix's older releases, comma-separated in versions.env (plain KEY=value for tools.py).
IFS=, read -r -a kube_matrix <<<"${KUBE_MATRIX:-}"

kube_mod_dir() { # version -> its throwaway module (KUBE_VERSION keeps the historic path)
    if [[ $1 == "$KUBE_VERSION" ]]; then
        printf '%s/tools-mod/kubernetes' "$here"
    else
        printf '%s/tools-mod/kubernetes-%s' "$here" "$1"
    fi
}

tool_path() { # tool version -> cached binary path
    printf '%s/%s-%s/%s' "$cache" "$1" "$2" "$1"
}

etcd_path() {
    if [[ $ETCD_VERSION == debian ]]; then
        printf '/usr/bin/etcd'
    else
        tool_path etcd "$ETCD_VERSION"
    fi
}

print_paths() {
    echo "KUBE_APISERVER=$(tool_path kube-apiserver "$KUBE_VERSION")"
    echo "KUBE_CONTROLLER_MANAGER=$(tool_path kube-controller-manager "$KUBE_VERSION")"
    echo "KUBECTL=$(tool_path kubectl "$KUBE_VERSION")"
    echo "HELM=$(tool_path helm "$HELM_VERSION")"
    echo "HELM4=$(tool_path helm "$HELM4_VERSION")"
    echo "ETCD=$(etcd_path)"
    echo "KUBELET=$(tool_path kubelet "$KUBE_VERSION")"
    echo "KUBE_SCHEDULER=$(tool_path kube-scheduler "$KUBE_VERSION")"
    echo "KUBE_PROXY=$(tool_path kube-proxy "$KUBE_VERSION")"
    local containerd
    containerd=$(tool_path containerd "$CONTAINERD_VERSION")
    echo "CONTAINERD=$containerd"
    echo "CONTAINERD_SHIM=${containerd%/*}/containerd-shim-runc-v2"
    echo "CTR=${containerd%/*}/ctr"
    echo "CRICTL=$(tool_path crictl "$CRICTL_VERSION")"
    echo "KUBE_ROUTER=$(tool_path kube-router "$KUBE_ROUTER_VERSION")"
    echo "ORAS=$(tool_path oras "$ORAS_VERSION")"
    echo "OLD_NODE_KUBELET=$(tool_path kubelet "$OLD_NODE_KUBE_VERSION")"
    local old_tool
    for old_tool in kube-controller-manager kube-scheduler kube-proxy; do
        echo "OLDEST_$(tr a-z- A-Z_ <<<"$old_tool")=$(tool_path "$old_tool" "$OLD_NODE_KUBE_VERSION")"
    done
    containerd=$(tool_path containerd "$OLD_NODE_CONTAINERD_VERSION")
    echo "OLD_NODE_CONTAINERD=$containerd"
    echo "OLD_NODE_CONTAINERD_SHIM=${containerd%/*}/containerd-shim-runc-v2"
    local v
    for v in "${kube_matrix[@]}"; do
        echo "KUBE_APISERVER_1_$(minor_of "$v")=$(tool_path kube-apiserver "$v")"
        echo "KUBECTL_1_$(minor_of "$v")=$(tool_path kubectl "$v")"
    done
}

# build TOOL VERSION CMD... : run CMD (which must write "$out/$TOOL") unless cached.
build() {
    local tool=$1 version=$2
    shift 2
    local dir="$cache/$tool-$version"
    if [[ -x $dir/$tool ]]; then
        log "$tool $version: cached in $dir (built in $(cat "$dir/build-seconds" 2>/dev/null || echo '?')s)"
        return
    fi
    local tmp="$dir.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    log "$tool $version: building (this takes minutes on a small machine)"
    local start end
    start=$(date +%s)
    out=$tmp "$@"
    end=$(date +%s)
    echo $((end - start)) >"$tmp/build-seconds"
    local version_cmd=(--version)
    [[ $tool == helm || $tool == oras ]] && version_cmd=(version)
    timeout 10 "$tmp/$tool" "${version_cmd[@]}" >"$tmp/version.txt" 2>&1 || true
    if [[ $tool == containerd ]]; then
        timeout 10 "$tmp/containerd-shim-runc-v2" -v >>"$tmp/version.txt" 2>&1 || true
        if [[ -x $tmp/ctr ]]; then timeout 10 "$tmp/ctr" --version >>"$tmp/version.txt" 2>&1 || true; fi
    fi
    rm -rf "$dir"
    mv "$tmp" "$dir"
    log "$tool $version: built in $((end - start))s -> $dir/$tool"
}

kube_ldflags() { # version
    local v=$1 flags="-s -w" pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$(minor_of "$v")"
        flags+=" -X $pkg.gitTreeState=clean"
    done
    printf '%s' "$flags"
}

build_kube() { # uses $out, $tool_cmd and $kube_version (default KUBE_VERSION)
    local v=${kube_version:-$KUBE_VERSION}
    (cd "$(kube_mod_dir "$v")" &&
        "${nice[@]}" "$GO" build -mod=readonly -trimpath -ldflags "$(kube_ldflags "$v")" \
            -o "$out/$tool_cmd" "k8s.io/kubernetes/cmd/$tool_cmd")
}

build_helm() {
    # helm's own go.mod has no replace directives, so `go install pkg@version` builds
    # it exactly as released, with its own dependency versions.
    GOBIN=$out "${nice[@]}" "$GO" install -trimpath \
        -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
        "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

build_helm4() {
    # Helm 4 is its own module (helm.sh/helm/v4), built the same way; the cache
    # directory helm-v4.x.y keeps it apart from Helm 3.
    GOBIN=$out "${nice[@]}" "$GO" install -trimpath \
        -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM4_VERSION" \
        "helm.sh/helm/v4/cmd/helm@$HELM4_VERSION"
}

build_containerd() {
    # containerd's go.mod has no replace directives either. CGO_ENABLED=0 (exported
    # above) and without the btrfs, devmapper and zfs snapshotters: overlayfs and native
    # suffice here. The shim runs the machine's runc.
    local pkg=github.com/containerd/containerd/v2 cmd cmds=()
    for cmd in containerd containerd-shim-runc-v2 ctr; do
        cmds+=("$pkg/cmd/$cmd@$CONTAINERD_VERSION")
    done
    GOBIN=$out "${nice[@]}" "$GO" install -trimpath -tags "no_btrfs no_devmapper no_zfs" \
        -ldflags "-s -w -X $pkg/version.Version=$CONTAINERD_VERSION" "${cmds[@]}"
}

build_containerd_1() {
    # containerd 1.x is the module github.com/containerd/containerd (no /v2); its go.mod has
    # an exclude directive, which `go install pkg@version` refuses, so it is built in the
    # throwaway module tools-mod/containerd-<version>/ (the same exclude), same tags.
    local pkg=github.com/containerd/containerd cmd
    for cmd in containerd containerd-shim-runc-v2; do
        (cd "$here/tools-mod/containerd-$OLD_NODE_CONTAINERD_VERSION" &&
            "${nice[@]}" "$GO" build -mod=readonly -trimpath -tags "no_btrfs no_devmapper no_zfs" \
                -ldflags "-s -w -X $pkg/version.Version=$OLD_NODE_CONTAINERD_VERSION" \
                -o "$out/$cmd" "$pkg/cmd/$cmd")
    done
}

build_crictl() {
    # cri-tools' go.mod has no replace directives; its release sets the version with the v.
    GOBIN=$out "${nice[@]}" "$GO" install -trimpath \
        -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
        "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
}

build_kube_router() {
    # kube-router's go.mod has no replace directives; its release sets the version by ldflags.
    # Only its firewall (NetworkPolicy controller) runs here (e2e/node/netpol.py).
    GOBIN=$out "${nice[@]}" "$GO" install -trimpath \
        -ldflags "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION" \
        "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION"
}

build_oras() {
    # oras's go.mod has no replace directives, and its version is in its source.
    GOBIN=$out "${nice[@]}" "$GO" install -trimpath -ldflags "-s -w" \
        "oras.land/oras/cmd/oras@$ORAS_VERSION"
}

build_etcd() {
    (cd "$here/tools-mod/etcd" &&
        "${nice[@]}" "$GO" build -mod=readonly -trimpath -ldflags "-s -w" \
            -o "$out/etcd" go.etcd.io/etcd/server/v3)
}

check_etcd_mod() {
    local mod="$here/tools-mod/etcd/go.mod"
    if ! grep -qE "^(require)?\s+go\.etcd\.io/etcd/server/v3 $ETCD_VERSION( |\$)" "$mod"; then
        log "$mod does not require go.etcd.io/etcd/server/v3 $ETCD_VERSION: edit it, run go mod tidy"
        exit 1
    fi
}

check_kube_mod() { # version
    local mod
    mod="$(kube_mod_dir "$1")/go.mod"
    if ! grep -qsE "^(require)?\s+k8s\.io/kubernetes $1( |\$)" "$mod"; then
        log "$mod does not require k8s.io/kubernetes $1: run e2e/tools.sh --regen-kube-mod $1"
        exit 1
    fi
}

regen_kube_mod() { # version
    local v=$1 dir kmod staging m
    dir=$(kube_mod_dir "$v")
    mkdir -p "$dir"
    kmod=$("$GO" mod download -json "k8s.io/kubernetes@$v" | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')
    staging=$(sed -n '/^replace (/,/^)/p' "$kmod" | awk '$3 ~ /^\.\/staging\// {print $1}')
    {
        echo "// Throwaway module that builds the Kubernetes components (the tool block) from"
        echo "// k8s.io/kubernetes through the Go module proxy. Generated by e2e/tools.sh --regen-kube-mod."
        echo "module podinit.dev/e2e/tools/kubernetes"
        echo
        sed -n 's/^go \(.*\)$/go \1/p; s/^godebug \(.*\)$/\ngodebug \1/p' "$kmod"
        echo
        echo "tool ("
        echo "	k8s.io/kubernetes/cmd/kube-apiserver"
        echo "	k8s.io/kubernetes/cmd/kube-controller-manager"
        echo "	k8s.io/kubernetes/cmd/kube-proxy"
        echo "	k8s.io/kubernetes/cmd/kube-scheduler"
        echo "	k8s.io/kubernetes/cmd/kubectl"
        echo "	k8s.io/kubernetes/cmd/kubelet"
        echo ")"
        echo
        echo "require k8s.io/kubernetes $v"
        echo
        echo "// k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with"
        echo "// ./staging/... paths, which do not apply to a dependency: pin each to the tag."
        echo "replace ("
        for m in $staging; do
            # Only modules k8s.io/kubernetes requires; some (sample-controller, ...) are
            # not published at every tag.
            if grep -qP "^\t\Q$m\E v0\.0\.0" "$kmod"; then
                echo "	$m => $m v0.$(minor_of "$v").${v##*.}"
            fi
        done
        echo ")"
    } >"$dir/go.mod"
    rm -f "$dir/go.sum"
    (cd "$dir" && "$GO" mod tidy)
    log "regenerated $dir/go.mod for $v"
}

case ${1:-} in
--paths)
    print_paths
    exit 0
    ;;
--check)
    missing=0
    while IFS='=' read -r name path; do
        if [[ ! -x $path ]]; then
            log "missing $name: $path"
            missing=1
        fi
    done < <(print_paths)
    if ((missing)); then log "run: make e2e-tools"; fi
    exit $missing
    ;;
--regen-kube-mod)
    regen_kube_mod "${2:-$KUBE_VERSION}"
    exit 0
    ;;
"" | --oras | --base | --matrix) ;;
*)
    echo "usage: $0 [--paths|--check|--oras|--base|--matrix|--regen-kube-mod]" >&2
    exit 2
    ;;
esac

mkdir -p "$cache"
# One builder at a time: a second `make e2e-tools` waits, then finds the cache filled.
exec 9>"$cache/.lock"
flock 9

check_kube_mod "$KUBE_VERSION"
for v in "${kube_matrix[@]}"; do check_kube_mod "$v"; done
if [[ ${1:-} != --matrix ]]; then
build oras "$ORAS_VERSION" build_oras
if [[ ${1:-} == --oras ]]; then
    exit 0
fi
tool_cmd=kube-apiserver build kube-apiserver "$KUBE_VERSION" build_kube
tool_cmd=kube-controller-manager build kube-controller-manager "$KUBE_VERSION" build_kube
tool_cmd=kubectl build kubectl "$KUBE_VERSION" build_kube
build helm "$HELM_VERSION" build_helm
build helm "$HELM4_VERSION" build_helm4
if [[ $ETCD_VERSION == debian ]]; then
    if [[ -x /usr/bin/etcd ]]; then
        log "etcd: Debian etcd-server ($(/usr/bin/etcd --version | head -1))"
    else
        log "etcd: /usr/bin/etcd missing: apt-get install etcd-server"
        exit 1
    fi
else
    check_etcd_mod
    build etcd "$ETCD_VERSION" build_etcd
fi
# The node: kubelet, kube-scheduler, kube-proxy, containerd, crictl, kube-router.
tool_cmd=kubelet build kubelet "$KUBE_VERSION" build_kube
tool_cmd=kube-scheduler build kube-scheduler "$KUBE_VERSION" build_kube
tool_cmd=kube-proxy build kube-proxy "$KUBE_VERSION" build_kube
build containerd "$CONTAINERD_VERSION" build_containerd
build crictl "$CRICTL_VERSION" build_crictl
build kube-router "$KUBE_ROUTER_VERSION" build_kube_router
fi
if [[ ${1:-} == --base ]]; then
    exit 0
fi
# The version matrix: each older release's kube-apiserver and a kubectl of the same
# minor (within kubectl's skew of that server by construction). Last, so a machine that
# has the rest can run everything else while these build.
for v in "${kube_matrix[@]}"; do
    kube_version=$v tool_cmd=kube-apiserver build kube-apiserver "$v" build_kube
    kube_version=$v tool_cmd=kubectl build kubectl "$v" build_kube
done
# The older node joined to KUBE_VERSION's control plane (tests/node/test_old_node*.py): a
# kubelet of OLD_NODE_KUBE_VERSION (a KUBE_MATRIX release: its module is there) on containerd 1.7.
kube_version=$OLD_NODE_KUBE_VERSION tool_cmd=kubelet build kubelet "$OLD_NODE_KUBE_VERSION" build_kube
build containerd "$OLD_NODE_CONTAINERD_VERSION" build_containerd_1
# The oldest supported cluster (tests/node, cluster "1.34"): the same kubelet and containerd
# under a control plane of OLD_NODE_KUBE_VERSION, with its own controllers and kube-proxy.
for old_tool in kube-controller-manager kube-scheduler kube-proxy; do
    kube_version=$OLD_NODE_KUBE_VERSION tool_cmd=$old_tool build "$old_tool" "$OLD_NODE_KUBE_VERSION" build_kube
done
print_paths
