#!/usr/bin/env bash
# A whole StratusLab site on this machine, with real guests (docs/sites.md, "The demo site"):
#
#   * two hypervisor nodes, each a network namespace with its own sshd, its own libvirtd (QEMU,
#     TCG) and a private VM directory (a separate mount namespace: the front end reaches it only
#     over SSH, VM_DIR_SHARED = NO), joined by a bridge to the front end;
#   * a third node, the volume node, that shares the front end's file system (VM_DIR_SHARED =
#     YES), as nodes using the built-in persistent disk service must: it is registered disabled,
#     so that VMs go to the two nodes above unless oneadmin enables it (`onehost enable`);
#   * the front end: stratusd (XML-RPC, the HTTPS front door with a password file, the
#     persistent disk service pdisk on its own port), a test
#     Marketplace serving the test guest (scripts/setup-qemu.sh's site.img, which boots by itself,
#     takes its address by DHCP and runs an SSH server), dnsmasq serving stratusd's DHCP host
#     file on the bridge, and the site set-up (public/local/private networks, ACLs, the nodes).
#
#   scripts/demo-site.sh up     [--dir DIR]   build it, print the StratusLab client's environment
#   scripts/demo-site.sh env    [--dir DIR]   print that environment again
#   scripts/demo-site.sh down   [--dir DIR]   remove every trace (processes, namespaces, links, DIR)
#   scripts/demo-site.sh status [--dir DIR]   what runs
#
# DIR defaults to $DEMO_SITE_DIR, else target/demo-site. Names of system-wide objects (network
# namespaces, bridge, veth links) carry a random id of the run, recorded in DIR/site.env; `down`
# removes only what that file names. `up` cleans up after itself when it fails.
#
# Settings (environment): STRATUSD_BIN (default target/debug/stratusd, built if missing),
# DEMO_SITE_NODES (2), DEMO_SITE_MONITORING (host monitoring and VM polling interval, s; 10),
# DEMO_SITE_QUOTA_CPU (2: each m1.small is 1 CPU), DEMO_SITE_USER/DEMO_SITE_PASSWORD (the
# client's user; default alice and a random password), DEMO_SITE_PDISK_ENDPOINT (printed as
# the pdisk endpoint instead of the site's own).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
self="$repo/scripts/demo-site.sh"

die() { echo "demo-site: $*" >&2; exit 1; }
say() { echo "demo-site: $*" >&2; }

action="${1:-}"
[ $# -gt 0 ] && shift
# QEMU's capabilities, probed by a node's libvirtd at its first start (seconds), kept for the
# next sites like the test guest is (libvirt checks the cache is current).
capabilities_cache="$repo/target/qemu-capabilities"
site="${DEMO_SITE_DIR:-$repo/target/demo-site}"
while [ "$action" != __node ] && [ $# -gt 0 ]; do
  case "$1" in
    --dir) site="$2"; shift 2 ;;
    --dir=*) site="${1#--dir=}"; shift ;;
    *) die "unknown argument $1" ;;
  esac
done
mkdir -p "$(dirname "$site")"
site="$(cd "$(dirname "$site")" && pwd)/$(basename "$site")"

# --- inside a node: run by `up` as `ip netns exec NS unshare --mount ... demo-site.sh __node` ----
# The node's own world: /etc and /var are overlays (its libvirt configuration and state never
# touch the machine's), /run is private, and the site's VM directory path shows the node's own
# directory. Then libvirtd and sshd run until killed.
node_main() {
  local nodedir="$1" vmdir="$2" ip="$3" shared="${4:-}"
  mkdir -p "$nodedir"/{etc-upper,etc-work,var-upper,var-work,run,vms}
  mount --make-rprivate /
  mount -t overlay overlay -o "lowerdir=/etc,upperdir=$nodedir/etc-upper,workdir=$nodedir/etc-work" /etc
  mount -t overlay overlay -o "lowerdir=/var,upperdir=$nodedir/var-upper,workdir=$nodedir/var-work" /var
  mount --bind "$nodedir/run" /run
  # The volume node sees the front end's files where they are (its VM directory is stratusd's).
  [ "$shared" = shared ] || mount --bind "$nodedir/vms" "$vmdir"
  mkdir -p /etc/libvirt /run/sshd /run/libvirt /var/log/libvirt
  chmod 0755 /run/sshd
  # QEMU as root (the VM files are root's), console to plain files (no virtlogd).
  cat >/etc/libvirt/qemu.conf <<EOF
user = "root"
group = "root"
stdio_handler = "file"
remember_owner = 0
security_driver = "none"
EOF
  cat >/etc/libvirt/libvirtd.conf <<EOF
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
keepalive_interval = 5
keepalive_count = 3
EOF
  if [ -d "$capabilities_cache" ]; then
    mkdir -p /var/cache/libvirt/qemu/capabilities
    cp -a "$capabilities_cache/." /var/cache/libvirt/qemu/capabilities/ 2>/dev/null || true
  fi
  /usr/sbin/libvirtd --pid-file /run/libvirtd.pid >"$nodedir/libvirtd.out" 2>&1 &
  /usr/sbin/sshd -D -e -f "$nodedir/sshd_config" >"$nodedir/sshd.out" 2>&1 &
  echo "$$" >"$nodedir/supervisor.pid"
  wait
}

# --- helpers ---------------------------------------------------------------------------------
state_all() { # KEY -> every value recorded for it, one per line, in order
  [ -f "$site/site.env" ] || return 0
  sed -n "s/^$1=//p" "$site/site.env"
}
state_get() { state_all "$1" | tail -1; }
state_put() { echo "$1=$2" >>"$site/site.env"; }

require() {
  local missing=() cmd
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 || [ -x "$cmd" ] || missing+=("$cmd")
  done
  [ ${#missing[@]} -eq 0 ] ||
    die "missing ${missing[*]}: run scripts/setup.sh --test and scripts/setup-qemu.sh (as root)"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for() { # SECONDS WHAT COMMAND...
  local limit="$1" what="$2"; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what not ready within ${limit}s"
    sleep 0.2
  done
}

rpc() { # METHOD ARGS... (python literals) -> prints the answer's value list
  python3 - "$@" <<'EOF'
import ast, sys, xmlrpc.client
endpoint, auth, method = sys.argv[1], sys.argv[2], sys.argv[3]
args = [ast.literal_eval(a) for a in sys.argv[4:]]
answer = getattr(xmlrpc.client.ServerProxy(endpoint), method)(auth, *args)
if not answer[0]:
    sys.exit("demo-site: %s: %s" % (method, answer[1]))
print(answer[1])
EOF
}

client_env() {
  cat "$site/client.env"
}

status() {
  [ -f "$site/site.env" ] || { echo "no demo site in $site"; return 0; }
  local ns
  echo "demo site in $site (id $(state_get id))"
  for pid in $(state_all pid); do
    if kill -0 "$pid" 2>/dev/null; then echo "  running: $(tr '\0' ' ' </proc/$pid/cmdline | cut -c1-100)"; fi
  done
  for ns in $(state_all netns); do
    echo "  node namespace $ns: $(ip netns pids "$ns" 2>/dev/null | wc -l) processes"
  done
}

# --- down: everything site.env names, in reverse ------------------------------------------------
down() {
  if [ ! -f "$site/site.env" ]; then
    [ -d "$site" ] && rm -rf "$site"
    return 0
  fi
  local pid ns link tries pids=()
  # Only the site's own processes (their command lines name its directory): a recorded pid
  # may belong to someone else's process by now.
  for pid in $(state_all pid | tac); do
    { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF "$site" && pids+=("$pid")
  done
  # The daemon first (it talks to the nodes), then the front-end services.
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for tries in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  # ssh connection masters of the front end's node connections.
  if [ -f "$site/ssh/config" ]; then
    for ns in $(state_all node_ip); do
      timeout 5 ssh -F "$site/ssh/config" -O exit "$ns" >/dev/null 2>&1 || true
    done
  fi
  # Every process in a node's namespace is the site's (libvirtd, sshd, QEMU guests).
  for ns in $(state_all netns); do
    if ip netns pids "$ns" >/dev/null 2>&1; then
      local probed="$site/nodes/${ns##*-}/var-upper/cache/libvirt/qemu/capabilities"
      if [ -d "$probed" ] && [ ! -d "$capabilities_cache" ]; then
        cp -a "$probed" "$capabilities_cache.$$" 2>/dev/null &&
          mv -T "$capabilities_cache.$$" "$capabilities_cache" 2>/dev/null || rm -rf "$capabilities_cache.$$"
      fi
      for tries in 1 2 3; do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [ -n "$pids" ] || break
        kill -KILL $pids 2>/dev/null || true
        sleep 0.3
      done
      ip netns delete "$ns" 2>/dev/null || true
    fi
  done
  for link in $(state_all link); do
    ip link delete "$link" 2>/dev/null || true
  done
  # Mount namespaces went with their processes; nothing of them is left on the machine.
  rm -rf "$site"
}

# --- up ---------------------------------------------------------------------------------------
up() {
  [ ! -f "$site/site.env" ] || die "a demo site is already up in $site (scripts/demo-site.sh down first)"
  [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, bridges, mounts)"
  require ip unshare nsenter /usr/sbin/sshd /usr/sbin/libvirtd virt-ssh-helper ping \
    /usr/bin/qemu-system-x86_64 dnsmasq openssl python3 ssh ssh-keygen tar qemu-img gzip
  local guest="$repo/target/test-guest"
  [ -s "$guest/site.img" ] || die "no $guest/site.img: run scripts/setup-qemu.sh"
  [ "$(cat "$guest/recipe" 2>/dev/null)" = "$(sh "$repo/scripts/test-guest/recipe.sh")" ] ||
    die "$guest was built from another recipe (its scripts changed): run scripts/setup-qemu.sh"
  local bin="${STRATUSD_BIN:-$repo/target/debug/stratusd}"
  if [ ! -x "$bin" ]; then
    say "building stratusd"
    (cd "$repo" && cargo build --quiet --bin stratusd)
  fi
  local nodes="${DEMO_SITE_NODES:-2}" interval="${DEMO_SITE_MONITORING:-10}"
  local quota_cpu="${DEMO_SITE_QUOTA_CPU:-2}"
  local user="${DEMO_SITE_USER:-alice}"
  local password="${DEMO_SITE_PASSWORD:-$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | cut -c1-12)}"

  rm -rf "$site"
  mkdir -p "$site"
  trap 'say "set-up failed: removing what was made"; down' ERR
  local id
  id=$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')
  state_put id "$id"
  # A /24 no route of this machine covers.
  local net="" a b
  for _ in $(seq 50); do
    a=$((RANDOM % 150 + 100)); b=$((RANDOM % 254 + 1))
    if ! ip -4 route show | grep -q "^10\.$a\.$b\." && ! ip -4 addr show | grep -q " 10\.$a\.$b\."; then
      net="10.$a.$b"; break
    fi
  done
  [ -n "$net" ] || die "no free 10.x.y.0/24 network"
  state_put net "$net"

  # The bridge of the site, with the front end on .1.
  local bridge="sl${id}br"
  ip link add "$bridge" type bridge
  state_put link "$bridge"
  ip addr add "$net.1/24" dev "$bridge"
  ip link set "$bridge" up

  # SSH: the front end's key to the nodes, their host keys, the wrapper stratusd runs.
  mkdir -p "$site/ssh" && chmod 0700 "$site/ssh"
  ssh-keygen -q -t ed25519 -N "" -C "stratusd demo site front end" -f "$site/ssh/id_ed25519"
  cp "$site/ssh/id_ed25519.pub" "$site/ssh/authorized_keys"
  : >"$site/ssh/known_hosts"
  cat >"$site/ssh/config" <<EOF
Host *
  User root
  IdentityFile $site/ssh/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $site/ssh/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 5
  ServerAliveInterval 5
  ServerAliveCountMax 3
  ControlMaster auto
  ControlPath $site/ssh/cm-%C
  ControlPersist 20s
EOF
  printf '#!/bin/sh\nexec /usr/bin/ssh -F %s/ssh/config "$@"\n' "$site" >"$site/ssh/ssh"
  chmod 0755 "$site/ssh/ssh"

  # The nodes: a namespace each, a veth to the bridge, a bridge br0 inside for the guests.
  # br0 keeps its uplink's MAC for good (an address set by hand): a Linux bridge otherwise takes
  # the lowest MAC of its ports, and libvirt gives a guest's tap the guest's MAC with fe: in
  # front. Had br0 taken the tap's MAC, then during a live migration the destination's incoming
  # tap, which has the same MAC, would swallow every answer to the source node (its ARP replies
  # included): "No route to host" on the disk copy. Random veth MACs are above fe:00:... one time
  # in 64, so the uplinks get MACs above every tap's (fe:ff:<id>:<node>): the worst case, every
  # run, kept harmless by the fixed br0 address.
  local vmdir="$site/vms" i ns ip nodedir volume_node=$((nodes + 1)) uplink_mac
  mkdir -p "$vmdir"
  for i in $(seq "$volume_node"); do
    ns="stratusd-site-$id-node$i"
    ip="$net.$((10 + i))"
    nodedir="$site/nodes/node$i"
    mkdir -p "$nodedir"
    ip netns add "$ns"
    state_put netns "$ns"
    ip link add "sl${id}n$i" type veth peer name eth0 netns "$ns"
    state_put link "sl${id}n$i"
    ip link set "sl${id}n$i" master "$bridge" up
    ip -n "$ns" link set lo up
    uplink_mac="fe:ff:${id:0:2}:${id:2:2}:${id:4:2}:$(printf '%02x' "$i")"
    ip -n "$ns" link set eth0 address "$uplink_mac"
    ip -n "$ns" link add br0 type bridge
    ip -n "$ns" link set br0 address "$uplink_mac"
    ip -n "$ns" link set eth0 master br0 up
    ip -n "$ns" addr add "$ip/24" dev br0
    ip -n "$ns" link set br0 up
    ip -n "$ns" route add default via "$net.1"
    ssh-keygen -q -t ed25519 -N "" -C "node$i" -f "$nodedir/ssh_host_ed25519_key"
    echo "$ip $(cut -d' ' -f1,2 "$nodedir/ssh_host_ed25519_key.pub")" >>"$site/ssh/known_hosts"
    cat >"$nodedir/sshd_config" <<EOF
ListenAddress $ip
HostKey $nodedir/ssh_host_ed25519_key
PidFile /run/sshd.pid
AuthorizedKeysFile $site/ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
Subsystem sftp internal-sftp
EOF
    state_put node_ip "$ip"
    setsid ip netns exec "$ns" unshare --mount --propagation private -- \
      bash "$self" __node "$nodedir" "$vmdir" "$ip" "$([ "$i" = "$volume_node" ] && echo shared)" \
      </dev/null >"$nodedir/supervisor.out" 2>&1 &
  done
  # The nodes are up when their libvirtd answers over SSH, as stratusd will reach it.
  for i in $(seq "$volume_node"); do
    ip="$net.$((10 + i))"
    wait_for 60 "node$i (sshd, libvirtd)" "$site/ssh/ssh" "$ip" test -S /run/libvirt/libvirt-sock
  done
  # Live migrations go from node to node: each node opens a TCP connection to every other
  # node's sshd before the site is declared up.
  local j
  for i in $(seq "$volume_node"); do
    for j in $(seq "$volume_node"); do
      [ "$i" != "$j" ] || continue
      wait_for 30 "node$j reached from node$i" ip netns exec "stratusd-site-$id-node$i" \
        timeout 5 bash -c ": <>/dev/tcp/$net.$((10 + j))/22"
    done
  done

  # The Marketplace, serving the site image under Testor's image id.
  local mp="$site/marketplace" mp_port
  mkdir -p "$mp/images" "$mp/metadata"
  gzip -1 -c "$guest/site.img" >"$mp/images/site.img.gz"
  setsid python3 "$repo/scripts/demo-site/marketplace.py" "$mp" --port-file "$mp/port" \
    </dev/null >"$mp/access.log" 2>&1 &
  state_put pid $!
  wait_for 20 "the Marketplace" test -s "$mp/port"
  mp_port=$(cat "$mp/port")
  local marketplace="http://127.0.0.1:$mp_port"
  local image_id="BN1EEkPiBx87_uLj2-sdybSI-Xb"
  local sha1 bytes
  sha1=$(sha1sum <"$guest/site.img" | cut -c1-40)
  bytes=$(stat -c %s "$guest/site.img")
  mkdir -p "$mp/metadata/$image_id"
  sed -e "s|@ID@|$image_id|g" -e "s|@SHA1@|$sha1|" -e "s|@BYTES@|$bytes|" \
    -e "s|@LOCATION@|$marketplace/images/site.img.gz|" \
    "$repo/scripts/demo-site/manifest.xml" >"$mp/metadata/$image_id/site.xml"
  state_put image_id "$image_id"

  # TLS for the front door: a CA of the site and a certificate for 127.0.0.1.
  local tls="$site/tls"
  mkdir -p "$tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=stratusd demo site CA $id" \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$tls/server.key" \
    -out "$tls/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:127.0.0.1,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$tls/ext.cnf"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
    -CAcreateserial -days 7 -extfile "$tls/ext.cnf" -out "$tls/server.pem" 2>/dev/null
  printf '%s=%s,cloud-access\n' "$user" "$password" >"$site/login-pswd.properties"

  # DHCP for the guests: dnsmasq on the bridge, reading stratusd's host file as it changes.
  mkdir -p "$site/dhcp/hosts.d"
  setsid dnsmasq --keep-in-foreground --port=0 --bind-interfaces --interface="$bridge" \
    --except-interface=lo --dhcp-range="$net.0,static,255.255.255.0,1h" \
    --dhcp-hostsdir="$site/dhcp/hosts.d" --dhcp-leasefile="$site/dhcp/leases" \
    --dhcp-option=option:router,"$net.1" --pid-file="$site/dhcp/dnsmasq.pid" \
    --log-facility="$site/dhcp/dnsmasq.log" --log-dhcp --conf-file=/dev/null \
    </dev/null >"$site/dhcp/dnsmasq.out" 2>&1 &
  state_put pid $!

  # stratusd.
  local port fd_port pdisk_port front="$site/frontend"
  port=$(free_port)
  fd_port=$(free_port)
  pdisk_port=$(free_port)
  mkdir -p "$front" "$site/dhcp/hosts.d"
  cat >"$site/stratusd.toml" <<EOF
listen = "127.0.0.1:$port"
data_dir = "$front"
kvm_domain_type = "qemu"
default_nic_model = "virtio"
guest_rng = true
host_monitoring_interval = $interval
host_first_monitoring_delay = 1
vm_polling_interval = $interval
vm_shutdown_timeout = 60
dhcp_hosts_file = "$site/dhcp/hosts.d/stratusd"

[quota]
cpu = $quota_cpu

[nodes]
ssh_command = "$site/ssh/ssh"
ssh_connect_timeout = 5

[storage]
marketplace_endpoint_local = "$marketplace"

[frontdoor]
listen = "127.0.0.1:$fd_port"
tls_cert = "$tls/server.pem"
tls_key = "$tls/server.key"
password_file = "$site/login-pswd.properties"

[volumes]
listen = "127.0.0.1:$pdisk_port"
EOF
  setsid "$bin" serve --config "$site/stratusd.toml" </dev/null >"$site/daemon.log" 2>&1 &
  state_put pid $!
  wait_for 60 "stratusd" test -s "$front/one_auth"
  wait_for 60 "stratusd's XML-RPC port" python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)"
  local endpoint="http://127.0.0.1:$port/RPC2" auth
  auth=$(head -1 "$front/one_auth")

  # The site: networks (leases .100-.149 public, .150-.199 local, with MACs 02:00:<ip>),
  # ACLs, and the nodes with their own VM directories.
  local n
  : >"$site/public.leases"
  : >"$site/local.leases"
  for n in $(seq 100 199); do
    local mac
    mac=$(printf '02:00:%02x:%02x:%02x:%02x' 10 "$a" "$b" "$n")
    if [ "$n" -lt 150 ]; then echo "$net.$n $mac" >>"$site/public.leases"; else echo "$net.$n $mac" >>"$site/local.leases"; fi
  done
  local hosts=()
  for i in $(seq "$volume_node"); do hosts+=(--host "$net.$((10 + i))"); done
  "$bin" site-setup --endpoint "$endpoint" --oneadmin-auth "$front/one_auth" \
    --public-leases "$site/public.leases" --local-leases "$site/local.leases" \
    --private-network 172.16.0.0/16 --bridge br0 "${hosts[@]}" >"$site/site-setup.log" 2>&1 ||
    { cat "$site/site-setup.log" >&2; die "site set-up failed"; }
  local hid
  for i in $(seq "$volume_node"); do
    hid=$(python3 - "$endpoint" "$auth" "$net.$((10 + i))" <<'EOF'
import sys, xmlrpc.client, re
endpoint, auth, name = sys.argv[1:]
ok, doc = xmlrpc.client.ServerProxy(endpoint).one.hostpool.info(auth)[:2]
for host in re.findall(r"<HOST>.*?</HOST>", doc, re.S):
    if "<NAME>%s</NAME>" % name in host:
        print(re.search(r"<ID>(\d+)</ID>", host).group(1))
EOF
)
    [ -n "$hid" ] || die "node $net.$((10 + i)) was not registered"
    if [ "$i" = "$volume_node" ]; then
      rpc "$endpoint" "$auth" one.host.update "$hid" "'VM_DIR_SHARED = \"YES\"\nDOMAIN_TYPE = \"qemu\"\nCONSOLE_LOG = \"YES\"'" >/dev/null
      rpc "$endpoint" "$auth" one.host.enable "$hid" False >/dev/null
    else
      rpc "$endpoint" "$auth" one.host.update "$hid" "'VM_DIR_SHARED = \"NO\"\nVM_DIR = \"$vmdir\"\nDOMAIN_TYPE = \"qemu\"\nCONSOLE_LOG = \"YES\"'" >/dev/null
    fi
  done
  for i in $(seq "$nodes"); do
    wait_for 180 "node$i monitored by stratusd" python3 - "$endpoint" "$auth" "$net.$((10 + i))" <<'EOF'
import sys, xmlrpc.client, re
endpoint, auth, name = sys.argv[1:]
ok, doc = xmlrpc.client.ServerProxy(endpoint).one.hostpool.info(auth)[:2]
for host in re.findall(r"<HOST>.*?</HOST>", doc, re.S):
    if "<NAME>%s</NAME>" % name in host and "<STATE>2</STATE>" in host:
        sys.exit(0)
sys.exit(1)
EOF
  done

  # The client's side: its own HOME (ssh keys, known hosts) and an ssh that keeps its known
  # hosts there, first on PATH.
  local home="$site/client-home"
  mkdir -p "$home/.ssh" "$site/bin"
  chmod 0700 "$home/.ssh"
  ssh-keygen -q -t rsa -b 2048 -N "" -f "$home/.ssh/id_rsa"
  # (OpenSSH takes ~ from the password database, not from $HOME.)
  local tool
  for tool in ssh scp; do
    printf '#!/bin/sh\nexec /usr/bin/%s -o UserKnownHostsFile=%s/.ssh/known_hosts -o GlobalKnownHostsFile=/dev/null -o IdentityFile=%s/.ssh/id_rsa "$@"\n' \
      "$tool" "$home" "$home" >"$site/bin/$tool"
  done
  chmod 0755 "$site/bin/ssh" "$site/bin/scp"
  local venv="${STRATUSLAB_CLIENT_VENVS:-$repo/target/py27}/stratuslab-client-14.6.0"
  cat >"$site/client.env" <<EOF
# The StratusLab client's environment for the demo site in $site
export STRATUSLAB_ENDPOINT=https://127.0.0.1:$fd_port/xmlrpc
export STRATUSLAB_USERNAME=$user
export STRATUSLAB_PASSWORD=$password
export STRATUSLAB_MARKETPLACE_ENDPOINT=$marketplace
export STRATUSLAB_PDISK_ENDPOINT=${DEMO_SITE_PDISK_ENDPOINT:-https://127.0.0.1:$pdisk_port}
export SSL_CERT_FILE=$tls/ca.pem
export HOME=$home
export PATH=$site/bin:$venv/bin:\$PATH
# image: $image_id (the test guest; root logs in with \$HOME/.ssh/id_rsa)
# requested address for runInstanceRequestedNetworkTest: $net.149
# persistent disks (stratus-*-volume, --persistent-disk): VMs with one need the volume node
# $net.$((10 + volume_node)), which is disabled until oneadmin enables it
# oneadmin: XML-RPC $endpoint, ONE_AUTH=$front/one_auth
EOF
  cat >"$site/site.json" <<EOF
{"id": "$id", "net": "$net", "endpoint": "$endpoint", "frontdoor": "https://127.0.0.1:$fd_port/xmlrpc",
 "oneadmin_auth": "$front/one_auth", "marketplace": "$marketplace", "image_id": "$image_id",
 "user": "$user", "password": "$password", "ca_file": "$tls/ca.pem", "client_home": "$home",
 "bin": "$site/bin", "vm_dir": "$vmdir", "front_end": "$front", "ssh": "$site/ssh/ssh",
 "nodes": [$(for i in $(seq "$nodes"); do printf '%s{"name": "%s", "netns": "stratusd-site-%s-node%s", "dir": "%s"}' \
   "$([ "$i" -gt 1 ] && echo ', ')" "$net.$((10 + i))" "$id" "$i" "$site/nodes/node$i"; done)],
 "volume_node": {"name": "$net.$((10 + volume_node))", "netns": "stratusd-site-$id-node$volume_node", "dir": "$site/nodes/node$volume_node"},
 "pdisk": "https://127.0.0.1:$pdisk_port", "volumes": "$front/volumes",
 "bridge": "$bridge", "requested_ip": "$net.149", "daemon_log": "$site/daemon.log"}
EOF
  trap - ERR
  say "up: $nodes nodes and the volume node on $net.0/24, stratusd on 127.0.0.1:$port (front door $fd_port, pdisk $pdisk_port), Marketplace $marketplace"
  client_env
}

case "$action" in
  up) up ;;
  down) down ;;
  env) [ -f "$site/client.env" ] || die "no demo site in $site"; client_env ;;
  status) status ;;
  __node) node_main "$@" ;;
  *) die "usage: scripts/demo-site.sh up|env|status|down [--dir DIR]" ;;
esac
