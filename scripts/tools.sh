#!/usr/bin/env bash
# Builds the pinned third-party tools Bakery is tested with, from the Go module proxy, into a cache.
#
#   scripts/tools.sh [k6|helm|kubectl-validate|kustomize|otelcol|jaeger|tilt|all]...
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

# wrapbuild NAME VERSION MODULE@VERSION PACKAGE REPLACE...: go install refuses modules whose
# go.mod has replace directives (Tilt, Jaeger), so build them from a small wrapper module that
# requires the module and repeats its replace block. Some of their pinned dependencies are
# served by the module proxy but missing from the checksum database, so checksums are
# recorded in the wrapper's go.sum without that lookup (GONOSUMDB for their module paths).
wrapbuild() {
	local name=$1 version=$2 req=$3 pkg=$4 work
	shift 4
	have "$name" "$version" && return 0
	log "building $name $version (cold: several minutes)"
	work=$(mktemp -d)
	{
		printf 'module bakery.local/%s\n\ngo 1.24\n\nrequire %s\n' "$name" "${req/@/ }"
		for r in "$@"; do printf 'replace %s\n' "$r"; done
	} >"$work/go.mod"
	printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" >"$work/tools.go"
	(cd "$work" && GOFLAGS=-mod=mod go mod tidy && GOFLAGS=-mod=mod go build -o "$TOOLS/$name-$version" "$pkg")
	rm -rf "$work"
	ln -sf "$name-$version" "$TOOLS/$name"
}

for want in "${@:-all}"; do
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
		GONOSUMDB=go.opentelemetry.io,github.com/open-telemetry,github.com/jaegertracing \
			wrapbuild jaeger "$JAEGER_VERSION" "github.com/jaegertracing/jaeger@$JAEGER_VERSION" \
			github.com/jaegertracing/jaeger/cmd/all-in-one \
			'github.com/Shopify/sarama => github.com/Shopify/sarama v1.33.0' ;;&
	tilt | all)
		# Tilt's Tiltfile parser (tree-sitter) needs cgo.
		GONOSUMDB=github.com/tilt-dev CGO_ENABLED=1 \
			wrapbuild tilt "$TILT_VERSION" "github.com/tilt-dev/tilt@$TILT_VERSION" \
			github.com/tilt-dev/tilt/cmd/tilt \
			'github.com/emicklei/go-restful/v3 => github.com/emicklei/go-restful/v3 v3.9.0' \
			'github.com/pkg/browser => github.com/tilt-dev/browser v0.0.1' \
			'k8s.io/apimachinery => github.com/tilt-dev/apimachinery v0.32.0-tilt-20250103' ;;&
	k6 | helm | kubectl-validate | kustomize | otelcol | jaeger | tilt | all) ;;
	*)
		echo "usage: $0 [k6|helm|kubectl-validate|kustomize|otelcol|jaeger|tilt|all]" >&2
		exit 2
		;;
	esac
done
echo "$TOOLS"
