#!/usr/bin/env bash
# A real single-node Kubernetes on this machine, for the tests and for machines without one.
#
#   scripts/cluster.sh up           start it (idempotent); prints the kubeconfig path
#   scripts/cluster.sh down         stop it and leave nothing behind
#   scripts/cluster.sh kubeconfig   print the kubeconfig path (cluster and context: "bakery")
#   scripts/cluster.sh status       exit 0 when the API answers and the node is Ready
#   scripts/cluster.sh push IMAGE...  push local Docker images to the cluster's registry under
#                                   the name the cluster pulls them by (redis:8 through the
#                                   docker.io mirror, localhost:5000/x as itself)
#
# Users keep minikube or kind; this is for CI and machines where neither runs (no registry,
# no systemd). Pieces: Kubernetes $KUBE_VERSION built by scripts/tools.sh from the Go module
# proxy; Debian's etcd, containerd (a private instance beside Docker's), CNI plugins and
# docker-registry; CoreDNS; a pause image built here. A registry on 127.0.0.1:5000 is
# advertised by the kube-public/local-registry-hosting ConfigMap (KEP-1755) and serves as
# containerd's mirror of docker.io and registry.k8s.io, so the stand-in images pushed there
# answer to their official names. PVCs bind to pre-made hostPath volumes (StorageClass
# "standard", the default). What up changes on the host (processes, iptables chains, cni0,
# mounts, sysctls) down undoes; ../shared/CLUSTER.md explains the traps of this VM.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TOOLS=${BAKERY_TOOLS:-$HOME/.cache/bakery-tools}
DIR=${BAKERY_CLUSTER_DIR:-$HOME/.cache/bakery-cluster}
RUN=$DIR/run          # all state of one cluster: removed by down
LOGS=$DIR/logs        # daemon logs of the last cluster: kept for post-mortems
REGDATA=$DIR/registry # images pushed to 127.0.0.1:5000: kept, so a warm up pushes nothing
PKI=$RUN/pki
KUBECONFIG_PATH=$DIR/kubeconfig
NODE=bakery
SERVICE_CIDR=10.96.0.0/16
POD_CIDR=10.244.0.0/24
DNS_IP=10.96.0.10
REGISTRY=127.0.0.1:5000
COREDNS_VERSION=$(sed -n "s/^COREDNS_VERSION=//p" "$HERE/tools.sh") # built by tools.sh
PAUSE_IMAGE=registry.k8s.io/pause:3.10
COREDNS_IMAGE=registry.k8s.io/coredns/coredns:$COREDNS_VERSION
VOLUMES=12 # pre-made PersistentVolumes
# The sysctls the kubelet, kube-proxy and the bridge change; down puts them back.
SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory net.ipv4.ip_forward
	net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
	net.ipv4.conf.all.route_localnet net.netfilter.nf_conntrack_max
	net.netfilter.nf_conntrack_tcp_be_liberal)

log() { printf 'cluster: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
kc() { "$TOOLS/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# node_ip: the address of the default route's interface (pods reach the API server there).
node_ip() { ip -4 route get 192.0.2.255 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p'; }

# ---------------------------------------------------------------------------------------------
# Daemons: started in their own session, PID kept in $RUN/pids, stopped by PID.
start() {
	local name=$1
	shift
	mkdir -p "$RUN/pids" "$LOGS"
	setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
	echo $! >"$RUN/pids/$name"
}

running() { [ -f "$RUN/pids/$1" ] && kill -0 "$(cat "$RUN/pids/$1")" 2>/dev/null; }

stop() {
	local name=$1 pid i
	[ -f "$RUN/pids/$name" ] || return 0
	pid=$(cat "$RUN/pids/$name")
	if kill -TERM "$pid" 2>/dev/null; then
		for i in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$RUN/pids/$name"
}

# wait_for SECONDS WHAT COMMAND...: polls COMMAND until it succeeds.
wait_for() {
	local secs=$1 what=$2 end
	shift 2
	end=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || die "$what not ready after ${secs}s (logs: $LOGS)"
		sleep 0.5
	done
}

# ---------------------------------------------------------------------------------------------
# PKI: one CA for the cluster, one for the front proxy, a key pair for service accounts.
# cert NAME CN ORG [SAN]: NAME.key and NAME.crt signed by the cluster CA (client and server).
cert() {
	local name=$1 cn=$2 org=$3 san=${4:-} ca=${5:-ca} subj="/CN=$2"
	[ -z "$org" ] || subj="/O=$org$subj"
	openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
	openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
	{
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=serverAuth,clientAuth"
		[ -z "$san" ] || echo "subjectAltName=$san"
	} >"$PKI/$name.ext"
	openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" \
		-CAcreateserial -days 30 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
	rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

ca() {
	openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$1.key" 2>/dev/null
	openssl req -x509 -new -key "$PKI/$1.key" -subj "/CN=$2" -days 30 -sha256 \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
		-out "$PKI/$1.crt" 2>/dev/null
}

make_pki() {
	local ip=$1
	mkdir -p "$PKI"
	ca ca bakery-ca
	ca front-proxy-ca bakery-front-proxy-ca
	cert apiserver kube-apiserver "" "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:10.96.0.1,IP:127.0.0.1,IP:$ip"
	cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
	cert admin kubernetes-admin system:masters
	cert controller-manager system:kube-controller-manager ""
	cert scheduler system:kube-scheduler ""
	cert kube-proxy system:kube-proxy ""
	cert kubelet "system:node:$NODE" system:nodes "DNS:$NODE,IP:$ip,IP:127.0.0.1"
	cert front-proxy-client front-proxy-client "" "" front-proxy-ca
	openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
	openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
}

# kubeconfig FILE USER: a kubeconfig for the "bakery" cluster with the user's certificate,
# all embedded so the file stands on its own.
kubeconfig() {
	local b64='base64 -w0'
	cat >"$1" <<-EOF
		apiVersion: v1
		kind: Config
		clusters:
		  - name: bakery
		    cluster:
		      server: https://127.0.0.1:6443
		      certificate-authority-data: $($b64 <"$PKI/ca.crt")
		users:
		  - name: $2
		    user:
		      client-certificate-data: $($b64 <"$PKI/$2.crt")
		      client-key-data: $($b64 <"$PKI/$2.key")
		contexts:
		  - name: bakery
		    context: {cluster: bakery, user: $2}
		current-context: bakery
	EOF
	chmod 600 "$1"
}

# ---------------------------------------------------------------------------------------------
# Images: the registry, the pause image and CoreDNS, built locally (nothing can be pulled).
registry_has() { # REPO TAG
	curl -sf -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		-H 'Accept: application/vnd.oci.image.index.v1+json' \
		"http://$REGISTRY/v2/$1/manifests/$2"
}

start_registry() {
	if curl -sf -o /dev/null "http://$REGISTRY/v2/"; then
		running registry || die "something else listens on $REGISTRY"
		return 0
	fi
	mkdir -p "$REGDATA"
	cat >"$RUN/registry.yml" <<-EOF
		version: 0.1
		log: {level: warn}
		storage:
		  filesystem: {rootdirectory: $REGDATA}
		  delete: {enabled: true}
		http: {addr: $REGISTRY}
	EOF
	start registry docker-registry serve "$RUN/registry.yml"
	wait_for 20 "the registry" curl -sf -o /dev/null "http://$REGISTRY/v2/"
}

# push_image NAME CONTEXT: builds CONTEXT (a FROM scratch Dockerfile) as NAME and pushes it
# to the local registry under the path containerd's mirror asks for; skipped when present.
push_image() {
	local name=$1 ctx=$2 path=${1#*/}
	registry_has "${path%:*}" "${path##*:}" && return 0
	log "building $name"
	docker build -q -t "$REGISTRY/$path" "$ctx" >/dev/null
	docker push -q "$REGISTRY/$path" >/dev/null
	docker rmi -f "$REGISTRY/$path" >/dev/null
}

build_images() {
	local work
	work=$(mktemp -d)
	# The pause container: sleeps, reaps children, exits on SIGTERM/SIGINT.
	mkdir "$work/pause" "$work/coredns"
	cat >"$work/pause/pause.c" <<-'EOF'
		#include <signal.h>
		#include <sys/wait.h>
		#include <unistd.h>
		static void down(int s) { (void)s; _exit(0); }
		static void reap(int s) { (void)s; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
		int main(void) {
			signal(SIGINT, down);
			signal(SIGTERM, down);
			signal(SIGCHLD, reap);
			for (;;) pause();
		}
	EOF
	registry_has pause 3.10 ||
		cc -static -Os -s -o "$work/pause/pause" "$work/pause/pause.c"
	printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' \
		>"$work/pause/Dockerfile"
	push_image "$PAUSE_IMAGE" "$work/pause"
	registry_has coredns/coredns "$COREDNS_VERSION" ||
		cp "$(readlink -f "$TOOLS/coredns")" "$work/coredns/coredns"
	printf 'FROM scratch\nCOPY coredns /coredns\nEXPOSE 53 53/udp\nENTRYPOINT ["/coredns"]\n' \
		>"$work/coredns/Dockerfile"
	push_image "$COREDNS_IMAGE" "$work/coredns"
	rm -rf "$work"
}

# ---------------------------------------------------------------------------------------------
# containerd: a private instance (its own root, state and socket) whose CRI plugin may not set
# negative oom_score_adj (this VM lacks CAP_SYS_RESOURCE) and pulls through the local registry.
write_containerd_config() {
	local c=$RUN/containerd host
	mkdir -p "$c/certs.d" "$RUN/cni/net.d"
	cat >"$c/config.toml" <<-EOF
		version = 2
		root = "$c/root"
		state = "$c/state"
		[grpc]
		  address = "$c/containerd.sock"
		[ttrpc]
		  address = "$c/containerd.sock.ttrpc"
		[plugins."io.containerd.internal.v1.opt"]
		  path = "$c/opt"
		[plugins."io.containerd.grpc.v1.cri"]
		  sandbox_image = "$PAUSE_IMAGE"
		  restrict_oom_score_adj = true
		  [plugins."io.containerd.grpc.v1.cri".containerd]
		    snapshotter = "overlayfs"
		    default_runtime_name = "runc"
		    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
		      runtime_type = "io.containerd.runc.v2"
		      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
		        SystemdCgroup = false
		  [plugins."io.containerd.grpc.v1.cri".cni]
		    bin_dir = "/usr/lib/cni"
		    conf_dir = "$RUN/cni/net.d"
		  [plugins."io.containerd.grpc.v1.cri".registry]
		    config_path = "$c/certs.d"
	EOF
	# localhost:5000 is the registry itself; docker.io and registry.k8s.io are mirrored by it.
	for host in localhost:5000 127.0.0.1:5000 docker.io registry.k8s.io; do
		mkdir -p "$c/certs.d/$host"
		printf '[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' "$REGISTRY" \
			>"$c/certs.d/$host/hosts.toml"
	done
	# The bridge with masquerading, host ports, and the firewall plugin: Docker sets the
	# FORWARD policy to DROP, and without it pod-to-Service traffic is dropped.
	cat >"$RUN/cni/net.d/10-bakery.conflist" <<-EOF
		{"cniVersion": "0.4.0", "name": "bakery", "plugins": [
		  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
		   "hairpinMode": true,
		   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]],
		            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$RUN/cni/ipam"}},
		  {"type": "portmap", "capabilities": {"portMappings": true}},
		  {"type": "firewall"}
		]}
	EOF
}

# ---------------------------------------------------------------------------------------------
write_kube_configs() {
	local ip=$1
	kubeconfig "$RUN/admin.conf" admin
	for u in controller-manager scheduler kube-proxy kubelet; do kubeconfig "$RUN/$u.conf" "$u"; done
	cat >"$RUN/kubelet.yaml" <<-EOF
		apiVersion: kubelet.config.k8s.io/v1beta1
		kind: KubeletConfiguration
		authentication:
		  anonymous: {enabled: false}
		  webhook: {enabled: true}
		  x509: {clientCAFile: $PKI/ca.crt}
		authorization: {mode: Webhook}
		cgroupDriver: cgroupfs
		containerRuntimeEndpoint: unix://$RUN/containerd/containerd.sock
		clusterDNS: [$DNS_IP]
		clusterDomain: cluster.local
		resolvConf: ""
		tlsCertFile: $PKI/kubelet.crt
		tlsPrivateKeyFile: $PKI/kubelet.key
		oomScoreAdj: 0
		failSwapOn: false
		healthzBindAddress: 127.0.0.1
		# Local images cannot be pulled again: never collect them; evict only when nearly full.
		imageGCHighThresholdPercent: 100
		imageGCLowThresholdPercent: 99
		evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
		serializeImagePulls: false
		# Since 1.35 the kubelet refuses cgroup v1 unless told otherwise; this VM runs cgroup v1
		# (users' clusters run v2). README: known limits.
		failCgroupV1: false
	EOF
	cat >"$RUN/kube-proxy.yaml" <<-EOF
		apiVersion: kubeproxy.config.k8s.io/v1alpha1
		kind: KubeProxyConfiguration
		clientConnection: {kubeconfig: $RUN/kube-proxy.conf}
		mode: iptables
		clusterCIDR: $POD_CIDR
		hostnameOverride: $NODE
		bindAddress: $ip
		oomScoreAdj: 0
		metricsBindAddress: 127.0.0.1:10249
		healthzBindAddress: 127.0.0.1:10256
		# Leave the host's sysctls alone.
		conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
		iptables: {localhostNodePorts: false}
	EOF
}

start_control_plane() {
	local ip=$1 k=$TOOLS
	start etcd etcd --name bakery --data-dir "$RUN/etcd" --unsafe-no-fsync \
		--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster bakery=http://127.0.0.1:2380 --listen-metrics-urls=
	start kube-apiserver "$k/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
		--advertise-address="$ip" --secure-port=6443 --allow-privileged=true \
		--authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
		--client-ca-file="$PKI/ca.crt" \
		--tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
		--kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
		--kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
		--kubelet-certificate-authority="$PKI/ca.crt" \
		--kubelet-preferred-address-types=InternalIP \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$PKI/sa.pub" \
		--service-account-signing-key-file="$PKI/sa.key" \
		--service-cluster-ip-range="$SERVICE_CIDR" \
		--requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
		--requestheader-allowed-names=front-proxy-client \
		--requestheader-extra-headers-prefix=X-Remote-Extra- \
		--requestheader-group-headers=X-Remote-Group \
		--requestheader-username-headers=X-Remote-User \
		--proxy-client-cert-file="$PKI/front-proxy-client.crt" \
		--proxy-client-key-file="$PKI/front-proxy-client.key"
	wait_for 90 "the API server" kc get --raw /readyz
	start kube-controller-manager "$k/kube-controller-manager" \
		--kubeconfig="$RUN/controller-manager.conf" \
		--authentication-kubeconfig="$RUN/controller-manager.conf" \
		--authorization-kubeconfig="$RUN/controller-manager.conf" \
		--bind-address=127.0.0.1 --leader-elect=false \
		--client-ca-file="$PKI/ca.crt" \
		--requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
		--cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
		--root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
		--use-service-account-credentials=true --service-cluster-ip-range="$SERVICE_CIDR"
	start kube-scheduler "$k/kube-scheduler" --kubeconfig="$RUN/scheduler.conf" \
		--authentication-kubeconfig="$RUN/scheduler.conf" \
		--authorization-kubeconfig="$RUN/scheduler.conf" \
		--bind-address=127.0.0.1 --leader-elect=false
}

start_node() {
	local ip=$1
	start containerd containerd --config "$RUN/containerd/config.toml"
	wait_for 30 containerd test -S "$RUN/containerd/containerd.sock"
	start kubelet "$TOOLS/kubelet" --config="$RUN/kubelet.yaml" \
		--kubeconfig="$RUN/kubelet.conf" --root-dir="$RUN/kubelet" \
		--hostname-override="$NODE" --node-ip="$ip"
	start kube-proxy "$TOOLS/kube-proxy" --config="$RUN/kube-proxy.yaml"
}

# The cluster's own objects: CoreDNS, the registry's ConfigMap, storage.
apply_addons() {
	local i
	kc apply -f - >/dev/null <<-EOF
		apiVersion: v1
		kind: ConfigMap
		metadata: {name: local-registry-hosting, namespace: kube-public}
		data:
		  localRegistryHosting.v1: |
		    host: "localhost:5000"
		    help: "https://github.com/kubernetes/enhancements/tree/master/keps/sig-cluster-lifecycle/generic/1755-communicating-a-local-registry"
		---
		apiVersion: storage.k8s.io/v1
		kind: StorageClass
		metadata:
		  name: standard
		  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
		provisioner: kubernetes.io/no-provisioner
		volumeBindingMode: WaitForFirstConsumer
		reclaimPolicy: Retain
		---
		apiVersion: v1
		kind: ServiceAccount
		metadata: {name: coredns, namespace: kube-system}
		---
		apiVersion: rbac.authorization.k8s.io/v1
		kind: ClusterRole
		metadata: {name: "system:coredns"}
		rules:
		  - apiGroups: [""]
		    resources: [endpoints, services, pods, namespaces]
		    verbs: [list, watch]
		  - apiGroups: [discovery.k8s.io]
		    resources: [endpointslices]
		    verbs: [list, watch]
		---
		apiVersion: rbac.authorization.k8s.io/v1
		kind: ClusterRoleBinding
		metadata: {name: "system:coredns"}
		roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
		subjects: [{kind: ServiceAccount, name: coredns, namespace: kube-system}]
		---
		apiVersion: v1
		kind: ConfigMap
		metadata: {name: coredns, namespace: kube-system}
		data:
		  # Cluster names only: nothing is forwarded outside the cluster.
		  Corefile: |
		    .:53 {
		        errors
		        health {
		            lameduck 5s
		        }
		        ready
		        kubernetes cluster.local in-addr.arpa ip6.arpa {
		            pods insecure
		            fallthrough in-addr.arpa ip6.arpa
		            ttl 30
		        }
		        cache 30
		        loop
		        reload
		        loadbalance
		    }
		---
		apiVersion: apps/v1
		kind: Deployment
		metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
		spec:
		  replicas: 1
		  selector: {matchLabels: {k8s-app: kube-dns}}
		  template:
		    metadata: {labels: {k8s-app: kube-dns}}
		    spec:
		      serviceAccountName: coredns
		      priorityClassName: system-cluster-critical
		      dnsPolicy: Default
		      containers:
		        - name: coredns
		          image: $COREDNS_IMAGE
		          args: [-conf, /etc/coredns/Corefile]
		          ports:
		            - {name: dns, containerPort: 53, protocol: UDP}
		            - {name: dns-tcp, containerPort: 53, protocol: TCP}
		          readinessProbe: {httpGet: {path: /ready, port: 8181}, periodSeconds: 2}
		          livenessProbe: {httpGet: {path: /health, port: 8080}, periodSeconds: 10}
		          resources: {requests: {cpu: 50m, memory: 32Mi}, limits: {memory: 128Mi}}
		          volumeMounts: [{name: config, mountPath: /etc/coredns, readOnly: true}]
		      volumes: [{name: config, configMap: {name: coredns}}]
		---
		apiVersion: v1
		kind: Service
		metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
		spec:
		  clusterIP: $DNS_IP
		  selector: {k8s-app: kube-dns}
		  ports:
		    - {name: dns, port: 53, protocol: UDP}
		    - {name: dns-tcp, port: 53, protocol: TCP}
	EOF
	for i in $(seq 1 $VOLUMES); do
		mkdir -p "$RUN/volumes/pv$i"
		chmod 0777 "$RUN/volumes/pv$i"
		cat <<-EOF
			apiVersion: v1
			kind: PersistentVolume
			metadata: {name: bakery-pv$i, labels: {bakery.dev/cluster: "true"}}
			spec:
			  capacity: {storage: 10Gi}
			  accessModes: [ReadWriteOnce]
			  persistentVolumeReclaimPolicy: Retain
			  storageClassName: standard
			  hostPath: {path: $RUN/volumes/pv$i, type: Directory}
			---
		EOF
	done | kc apply -f - >/dev/null
}

node_ready() {
	kc get node "$NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' |
		grep -qx True
}

up() {
	local t0=$SECONDS ip
	if running kube-apiserver && node_ready 2>/dev/null; then
		echo "$KUBECONFIG_PATH"
		return 0
	fi
	[ "$(id -u)" -eq 0 ] || die "needs root (a kubelet and a container runtime)"
	"$HERE/deps.sh"
	"$HERE/tools.sh" kubernetes >/dev/null
	[ ! -d "$RUN" ] || down
	ip=$(node_ip)
	[ -n "$ip" ] || die "no IPv4 address on a default route"
	mkdir -p "$RUN" "$LOGS"
	rm -f "$LOGS"/*.log
	# Save the sysctls the node changes, for down.
	for s in "${SYSCTLS[@]}"; do
		printf '%s=%s\n' "$s" "$(sysctl -n "$s" 2>/dev/null || echo -)"
	done >"$RUN/sysctls"
	sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 >/dev/null
	make_pki "$ip"
	kubeconfig "$KUBECONFIG_PATH" admin
	write_kube_configs "$ip"
	write_containerd_config
	start_registry
	build_images
	start_control_plane "$ip"
	start_node "$ip"
	wait_for 120 "node $NODE" node_ready
	apply_addons
	wait_for 120 CoreDNS kc -n kube-system rollout status deploy/coredns --timeout=2s
	wait_for 60 "the default ServiceAccount" kc -n default get serviceaccount default
	log "ready in $((SECONDS - t0))s: Kubernetes $("$TOOLS/kubectl" version --client -o json |
		sed -n 's/.*"gitVersion": "\(.*\)".*/\1/p' | head -1), node $NODE ($ip)," \
		"registry localhost:5000"
	echo "$KUBECONFIG_PATH"
}

# remove_pod_containers: stops and deletes what containerd still runs (sandboxes included).
remove_pod_containers() {
	local sock=$RUN/containerd/containerd.sock c
	[ -S "$sock" ] || return 0
	for c in $(ctr -a "$sock" -n k8s.io tasks list -q 2>/dev/null); do
		ctr -a "$sock" -n k8s.io tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true
	done
	sleep 0.5
	for c in $(ctr -a "$sock" -n k8s.io tasks list -q 2>/dev/null); do
		ctr -a "$sock" -n k8s.io tasks delete -f "$c" >/dev/null 2>&1 || true
	done
	for c in $(ctr -a "$sock" -n k8s.io containers list -q 2>/dev/null); do
		ctr -a "$sock" -n k8s.io containers delete "$c" >/dev/null 2>&1 || true
	done
}

# clean_chains IPTABLES: removes the KUBE-* and CNI-* chains and every rule that jumps to them.
clean_chains() {
	local ipt=$1 table chain
	for table in filter nat mangle; do
		for chain in $($ipt -t "$table" -S 2>/dev/null | awk '/^-N (KUBE-|CNI-)/ {print $2}'); do
			{ $ipt -t "$table" -S 2>/dev/null | grep -E -- "-j $chain( |$)" || true; } |
				sed 's/^-A/-D/' | while read -r rule; do
				eval "$ipt -t $table $rule" 2>/dev/null || true
			done
		done
		for chain in $($ipt -t "$table" -S 2>/dev/null | awk '/^-N (KUBE-|CNI-)/ {print $2}'); do
			$ipt -t "$table" -F "$chain" 2>/dev/null || true
		done
		for chain in $($ipt -t "$table" -S 2>/dev/null | awk '/^-N (KUBE-|CNI-)/ {print $2}'); do
			$ipt -t "$table" -X "$chain" 2>/dev/null || true
		done
	done
}

down() {
	local t0=$SECONDS m s v
	[ -d "$RUN" ] || {
		rm -f "$KUBECONFIG_PATH"
		return 0
	}
	stop kube-controller-manager
	stop kube-scheduler
	# Pods deleted while the kubelet runs get their CNI DEL (veths, IPs, iptables rules).
	if running kube-apiserver && running kubelet; then
		kc delete pods --all --all-namespaces --grace-period=0 --force --wait=false \
			>/dev/null 2>&1 || true
		for _ in $(seq 40); do
			[ -z "$(ctr -a "$RUN/containerd/containerd.sock" -n k8s.io tasks list -q 2>/dev/null)" ] &&
				break
			sleep 0.25
		done
	fi
	stop kubelet
	remove_pod_containers
	stop kube-proxy
	stop kube-apiserver
	stop etcd
	stop containerd
	stop registry
	# Leftover shims (containerd-shim-runc-v2 of our root) and their containers.
	pkill -KILL -f "containerd-shim.*$RUN/containerd" 2>/dev/null || true
	[ -x "$TOOLS/kube-proxy" ] && "$TOOLS/kube-proxy" --cleanup >/dev/null 2>&1 || true
	clean_chains iptables
	clean_chains ip6tables
	ip link del cni0 2>/dev/null || true
	for m in $(findmnt -rn -o TARGET | grep -F "$RUN" | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
	for m in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do
		ip netns del "$m" 2>/dev/null || true
	done
	if [ -f "$RUN/sysctls" ]; then
		while IFS='=' read -r s v; do
			[ "$v" = - ] || sysctl -qw "$s=$v" >/dev/null 2>&1 || true
		done <"$RUN/sysctls"
	fi
	rm -rf "$RUN" "$KUBECONFIG_PATH"
	log "down in $((SECONDS - t0))s"
}

# push IMAGE...: local Docker images into the registry, at the path containerd asks for.
push() {
	local img first path
	curl -sf -o /dev/null "http://$REGISTRY/v2/" || die "no registry on $REGISTRY: run up first"
	for img in "$@"; do
		first=${img%%/*}
		if [[ $img != */* ]]; then
			path=library/$img # docker.io's official images
		elif [[ $first == *.* || $first == *:* || $first == localhost ]]; then
			path=${img#*/} # registry-qualified: the mirror (or the registry) serves the path
			[[ $first != docker.io || $path == */* ]] || path=library/$path
		else
			path=$img
		fi
		docker tag "$img" "$REGISTRY/$path"
		docker push -q "$REGISTRY/$path" >/dev/null
		docker rmi "$REGISTRY/$path" >/dev/null
	done
}

case ${1:-} in
up) up ;;
push)
	shift
	push "$@"
	;;
down) down ;;
kubeconfig) echo "$KUBECONFIG_PATH" ;;
status) running kube-apiserver && node_ready ;;
*)
	echo "usage: $0 up|down|kubeconfig|status|push IMAGE..." >&2
	exit 2
	;;
esac
