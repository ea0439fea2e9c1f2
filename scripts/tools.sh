#!/usr/bin/env bash
# Builds the pinned third-party tools Bakery is tested with, from the Go module proxy, into a cache.
#
#   scripts/tools.sh [k6|helm|kubectl-validate|kustomize|otelcol|jaeger|tilt|all]
#
# Binaries land in $BAKERY_TOOLS (default ~/.cache/bakery-tools) as NAME-VERSION with a NAME
# symlink, so a warm run costs nothing and a version bump rebuilds only that tool.
set -euo pipefail

K6_VERSION=v1.8.1
HELM_VERSION=v3.22.0
KUBECTL_VALIDATE_VERSION=v0.0.4
KUSTOMIZE_VERSION=v5.8.1           # builds k8s/ (generated ConfigMaps) for validation
OTELCOL_BUILDER_VERSION=v0.150.0   # collector components v0.150.0, stable modules v1.56.0
JAEGER_VERSION=v1.76.0             # v1 all-in-one: OTLP in, HTTP query API out, memory storage
TILT_VERSION=v0.34.0

TOOLS=${BAKERY_TOOLS:-$HOME/.cache/bakery-tools}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$TOOLS"
export PATH=$PATH:/usr/local/go/bin
export CGO_ENABLED=0 GOFLAGS=-trimpath

log() { printf 'tools: %s\n' "$*" >&2; }

# have NAME VERSION: true when the pinned build is cached; refreshes the NAME link.
have() {
	if [ -x "$TOOLS/$1-$2" ]; then
		ln -sf "$1-$2" "$TOOLS/$1"
		return 0
	fi
	return 1
}

# goinstall NAME VERSION PACKAGE@VERSION: go install into a scratch GOBIN, then cache.
goinstall() {
	local name=$1 version=$2 pkg=$3 bin
	have "$name" "$version" && return 0
	log "building $name $version (cold: a few minutes)"
	bin=$(mktemp -d)
	GOBIN=$bin go install "$pkg"
	mv "$bin"/* "$TOOLS/$name-$version"
	rm -rf "$bin"
	ln -sf "$name-$version" "$TOOLS/$name"
}

build_otelcol() {
	have otelcol "$OTELCOL_BUILDER_VERSION" && return 0
	goinstall ocb "$OTELCOL_BUILDER_VERSION" \
		"go.opentelemetry.io/collector/cmd/builder@$OTELCOL_BUILDER_VERSION"
	log "building otelcol $OTELCOL_BUILDER_VERSION"
	local work
	work=$(mktemp -d)
	sed "s|@OUT@|$work/out|" "$HERE/otelcol-builder.yaml" >"$work/manifest.yaml"
	"$TOOLS/ocb" --config "$work/manifest.yaml"
	mv "$work/out/otelcol-bakery" "$TOOLS/otelcol-$OTELCOL_BUILDER_VERSION"
	rm -rf "$work"
	ln -sf "otelcol-$OTELCOL_BUILDER_VERSION" "$TOOLS/otelcol"
}

# Tilt's go.mod has replace directives, which go install refuses: build it from a wrapper
# module that requires it and repeats them. Its checksum is not in the public sum database.
build_tilt() {
	have tilt "$TILT_VERSION" && return 0
	log "building tilt $TILT_VERSION (cold: ~10 minutes)"
	local work
	work=$(mktemp -d)
	cat >"$work/go.mod" <<MOD
module bakery.local/tilt

go 1.23.0

require github.com/tilt-dev/tilt $TILT_VERSION

replace (
	github.com/emicklei/go-restful/v3 => github.com/emicklei/go-restful/v3 v3.9.0
	github.com/pkg/browser => github.com/tilt-dev/browser v0.0.1
	k8s.io/apimachinery => github.com/tilt-dev/apimachinery v0.32.0-tilt-20250103
)
MOD
	printf 'package main\nimport _ "github.com/tilt-dev/tilt/cmd/tilt"\n' >"$work/tools.go"
	(cd "$work" && GONOSUMDB=github.com/tilt-dev GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
	 cd "$work" && GONOSUMDB=github.com/tilt-dev GOFLAGS=-mod=mod \
		go build -o "$TOOLS/tilt-$TILT_VERSION" github.com/tilt-dev/tilt/cmd/tilt)
	rm -rf "$work"
	ln -sf "tilt-$TILT_VERSION" "$TOOLS/tilt"
}

want=${1:-all}
case $want in
k6 | all) goinstall k6 "$K6_VERSION" "go.k6.io/k6@$K6_VERSION" ;;&
helm | all) goinstall helm "$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" ;;&
kubectl-validate | all)
	goinstall kubectl-validate "$KUBECTL_VALIDATE_VERSION" \
		"sigs.k8s.io/kubectl-validate@$KUBECTL_VALIDATE_VERSION" ;;&
kustomize | all)
	goinstall kustomize "$KUSTOMIZE_VERSION" \
		"sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" ;;&
otelcol | all) build_otelcol ;;&
jaeger | all)
	goinstall jaeger "$JAEGER_VERSION" \
		"github.com/jaegertracing/jaeger/cmd/all-in-one@$JAEGER_VERSION" ;;&
tilt | all) build_tilt ;;&
k6 | helm | kubectl-validate | kustomize | otelcol | jaeger | tilt | all) ;;
*)
	echo "usage: $0 [k6|helm|kubectl-validate|kustomize|otelcol|jaeger|tilt|all]" >&2
	exit 2
	;;
esac
echo "$TOOLS"
