#!/usr/bin/env bash
# Builds the pinned third-party tools Bakery is tested with, from the Go module proxy, into a cache.
#
#   scripts/tools.sh [k6|helm|helm3|kubectl-validate|kustomize|otelcol|jaeger|tilt|kubernetes|all]...
#
# Binaries land in $BAKERY_TOOLS (default ~/.cache/bakery-tools) as NAME-VERSION with a NAME
# symlink, so a warm run costs nothing and a version bump rebuilds only that tool.
set -euo pipefail

K6_VERSION=v1.8.1
HELM_VERSION=v4.3.2               # Helm 4
HELM3_VERSION=v3.21.4              # the render check with Helm 3 (v3.22.0 is served but not approved)
KUBECTL_VALIDATE_VERSION=v0.0.4
KUSTOMIZE_VERSION=v5.8.1           # builds k8s/ (generated ConfigMaps) for validation
OTELCOL_BUILDER_VERSION=v0.165.0   # collector components v0.165.0, stable modules v1.71.0
JAEGER_VERSION=v2.13.0             # Jaeger v2: cmd/jaeger at module version v1.76.0 (same commit)
JAEGER_MODULE_VERSION=v1.76.0
TILT_VERSION=v0.37.6               # >= 0.36 understands Helm 4
KUBE_VERSION=v1.37.2               # the test cluster (scripts/cluster.sh); see shared CLUSTER.md
KUBE_OLDEST_VERSION=v1.35.4        # the chart's minimum: tests/k8s validates with its schemas too
COREDNS_VERSION=v1.14.6

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
	[ -z "${WRAP_PREPARE:-}" ] || (cd "$work" && "$WRAP_PREPARE")
	(cd "$work" && GOFLAGS=-mod=mod go mod tidy && GOFLAGS=-mod=mod go build -ldflags "${WRAP_LDFLAGS:-}" -o "$TOOLS/$name-$version" "$pkg")
	rm -rf "$work"
	ln -sf "$name-$version" "$TOOLS/$name"
}

# tilt_stub_ui: Tilt embeds its web UI from pkg/assets/build, built with JavaScript and absent
# from the module; without an index.html `tilt up`/`tilt ci` refuse to start. Build from a
# copy of the module with a one-page stub (the API, `tilt get`, `tilt trigger` all work).
tilt_stub_ui() {
	local src
	src=$(GOFLAGS=-mod=mod go mod download -json "github.com/tilt-dev/tilt@$TILT_VERSION" |
		sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	cp -r "$src" tilt && chmod -R u+w tilt
	printf '<!doctype html><title>Tilt</title><p>This Tilt build has no web UI: use <code>tilt get uiresource</code>, <code>tilt logs</code>, <code>tilt trigger</code>.</p>\n' \
		>tilt/pkg/assets/build/index.html
	printf 'replace github.com/tilt-dev/tilt => ./tilt\n' >>go.mod
}

# build_kubernetes: the test cluster's binaries. k8s.io/kubernetes points its staging modules
# at ./staging with replace directives, so build from a wrapper module that replaces each with
# its published v0.X.Y, and stamp the version (Helm's kubeVersion checks read it).
build_kubernetes() {
	local bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
	local b minor work mod ld='-s -w' v
	# tests/k8s validates against these versions' OpenAPI schemas, from the modules' source.
	(cd / && go mod download "k8s.io/kubernetes@$KUBE_VERSION" \
		"k8s.io/kubernetes@$KUBE_OLDEST_VERSION") || return 1
	if have kube-apiserver "$KUBE_VERSION"; then
		for b in "${bins[@]}"; do have "$b" "$KUBE_VERSION"; done
		return 0
	fi
	log "building Kubernetes $KUBE_VERSION (cold: about ten minutes)"
	minor=${KUBE_VERSION#v1.}
	minor=${minor%%.*}
	work=$(mktemp -d)
	mod=$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" |
		sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
	{
		printf 'module bakery.local/kubernetes\n\ngo 1.24.0\n\ngodebug default=go1.24\n\n'
		printf 'require k8s.io/kubernetes %s\n' "$KUBE_VERSION"
		sed -n 's|^\t\(k8s.io/[a-z0-9-]*\) => ./staging/.*|\1|p' "$mod" |
			while read -r m; do printf 'replace %s => %s v0.%s\n' "$m" "$m" "${KUBE_VERSION#v1.}"; done
	} >"$work/go.mod"
	printf '//go:build tools\n\npackage tools\n\n' >"$work/tools.go"
	for b in "${bins[@]}"; do printf 'import _ "k8s.io/kubernetes/cmd/%s"\n' "$b" >>"$work/tools.go"; done
	for v in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
		ld="$ld -X $v.gitVersion=$KUBE_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor"
		ld="$ld -X $v.gitTreeState=clean"
	done
	(cd "$work" && GOFLAGS=-mod=mod go mod tidy &&
		mkdir out && GOFLAGS=-mod=mod go build -tags=selinux,notest -ldflags "$ld" -o out/ \
		$(printf 'k8s.io/kubernetes/cmd/%s ' "${bins[@]}"))
	for b in "${bins[@]}"; do
		mv "$work/out/$b" "$TOOLS/$b-$KUBE_VERSION"
		ln -sf "$b-$KUBE_VERSION" "$TOOLS/$b"
	done
	rm -rf "$work"
}

for want in "${@:-all}"; do
	case $want in
	k6 | all) goinstall k6 "$K6_VERSION" "go.k6.io/k6@$K6_VERSION" ;;&
	helm | all) goinstall helm "$HELM_VERSION" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" ;;&
	helm3 | all) goinstall helm3 "$HELM3_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM3_VERSION" ;;&
	kubectl-validate | all)
		goinstall kubectl-validate "$KUBECTL_VALIDATE_VERSION" \
			"sigs.k8s.io/kubectl-validate@$KUBECTL_VALIDATE_VERSION" ;;&
	kustomize | all)
		goinstall kustomize "$KUSTOMIZE_VERSION" \
			"sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" ;;&
	otelcol | all) build_otelcol ;;&
	jaeger | all)
		GONOSUMDB=go.opentelemetry.io,github.com/open-telemetry,github.com/jaegertracing \
			wrapbuild jaeger "$JAEGER_VERSION" "github.com/jaegertracing/jaeger@$JAEGER_MODULE_VERSION" \
			github.com/jaegertracing/jaeger/cmd/jaeger \
			'github.com/Shopify/sarama => github.com/Shopify/sarama v1.33.0' ;;&
	tilt | all)
		# Tilt's Tiltfile parser (tree-sitter) needs cgo.
		# Stamped like a release (goreleaser's main.version): an unstamped build counts as a
		# dev build, which serves its UI from a webpack dev server instead of the stub.
		GONOSUMDB=github.com/tilt-dev CGO_ENABLED=1 WRAP_PREPARE=tilt_stub_ui \
			WRAP_LDFLAGS="-X main.version=${TILT_VERSION#v}" \
			wrapbuild tilt "$TILT_VERSION" "github.com/tilt-dev/tilt@$TILT_VERSION" \
			github.com/tilt-dev/tilt/cmd/tilt \
			'github.com/emicklei/go-restful/v3 => github.com/emicklei/go-restful/v3 v3.9.0' \
			'github.com/pkg/browser => github.com/tilt-dev/browser v0.0.1' ;;&
	kubernetes | all)
		build_kubernetes
		goinstall coredns "$COREDNS_VERSION" "github.com/coredns/coredns@$COREDNS_VERSION" ;;&
	k6 | helm | helm3 | kubectl-validate | kustomize | otelcol | jaeger | tilt | kubernetes | all) ;;
	*)
		echo "usage: $0 [k6|helm|helm3|kubectl-validate|kustomize|otelcol|jaeger|tilt|kubernetes|all]" >&2
		exit 2
		;;
	esac
done
echo "$TOOLS"
