//! Data copied from the recorded oned 3.2 sessions (`/work/shared/recorded/`), generated from
//! the raw request and response bodies: template texts oned received and the `<TEMPLATE>`
//! documents it returned.

/// Every distinct template of a template-carrying request (`one.vm.allocate`,
/// `one.template.allocate/update`, `one.vn.*`, `one.image.allocate/update`, `one.host.update`,
/// `one.user.update`) that oned parsed, with where it was recorded.
pub(super) const ACCEPTED: &[(&str, &str)] = &[
    (
        "oned-3.2/02-vm-lifecycle seq 5 one.vn.allocate",
        r#"NAME = "private-lan"
TYPE = RANGED
BRIDGE = br0
NETWORK_ADDRESS = 192.168.100.0
NETWORK_SIZE = C
DNS = 192.168.100.254
GATEWAY = 192.168.100.1
"#,
    ),
    (
        "oned-3.2/02-vm-lifecycle seq 8 one.vm.allocate",
        r#"NAME = "ttylinux-0"
CPU    = 0.5
VCPU   = 1
MEMORY = 256
OS     = [ ARCH = "x86_64", BOOT = "hd" ]
DISK   = [ SOURCE = "/srv/cloud/images/ttylinux.img", TARGET = "hda", TYPE = "disk", READONLY = "no" ]
DISK   = [ TYPE = "swap", SIZE = 512, TARGET = "hdc" ]
NIC    = [ NETWORK_ID = 0 ]
GRAPHICS = [ TYPE = "vnc", LISTEN = "127.0.0.1" ]
CONTEXT = [ HOSTNAME = "vm-$VMID", IP_PUBLIC = "$NIC[IP]", DNS = "$NETWORK[DNS, NETWORK_ID=0]", TARGET = "hdd", FILES = "" ]
RAW    = [ TYPE = "kvm", DATA = "<devices/>" ]
"#,
    ),
    (
        "oned-3.2/03-vm-deploy-migrate seq 5 one.vn.allocate",
        r#"NAME = "public-fixed"
TYPE = FIXED
BRIDGE = br1
LEASES = [ IP = 10.0.0.10 ]
LEASES = [ IP = 10.0.0.11, MAC = "02:00:0a:00:00:0b" ]
LEASES = [ IP = 10.0.0.12 ]
"#,
    ),
    (
        "oned-3.2/03-vm-deploy-migrate seq 6 one.vm.allocate",
        r#"NAME = "ttylinux-1"
CPU    = 0.5
VCPU   = 1
MEMORY = 256
OS     = [ ARCH = "x86_64", BOOT = "hd" ]
DISK   = [ SOURCE = "/srv/cloud/images/ttylinux.img", TARGET = "hda", TYPE = "disk", READONLY = "no" ]
DISK   = [ TYPE = "swap", SIZE = 512, TARGET = "hdc" ]
NIC    = [ NETWORK_ID = 0 ]
GRAPHICS = [ TYPE = "vnc", LISTEN = "127.0.0.1" ]
CONTEXT = [ HOSTNAME = "vm-$VMID", IP_PUBLIC = "$NIC[IP]", DNS = "$NETWORK[DNS, NETWORK_ID=0]", TARGET = "hdd", FILES = "" ]
RAW    = [ TYPE = "kvm", DATA = "<devices/>" ]
"#,
    ),
    (
        "oned-3.2/03-vm-deploy-migrate seq 18 one.vm.allocate",
        r#"NAME = "ttylinux-2"
CPU    = 0.5
VCPU   = 1
MEMORY = 256
OS     = [ ARCH = "x86_64", BOOT = "hd" ]
DISK   = [ SOURCE = "/srv/cloud/images/ttylinux.img", TARGET = "hda", TYPE = "disk", READONLY = "no" ]
DISK   = [ TYPE = "swap", SIZE = 512, TARGET = "hdc" ]
NIC    = [ NETWORK_ID = 0 ]
GRAPHICS = [ TYPE = "vnc", LISTEN = "127.0.0.1" ]
CONTEXT = [ HOSTNAME = "vm-$VMID", IP_PUBLIC = "$NIC[IP]", DNS = "$NETWORK[DNS, NETWORK_ID=0]", TARGET = "hdd", FILES = "" ]
RAW    = [ TYPE = "kvm", DATA = "<devices/>" ]
"#,
    ),
    (
        "oned-3.2/03-vm-deploy-migrate seq 22 one.vm.allocate",
        r#"NAME = "ttylinux-3"
CPU    = 0.5
VCPU   = 1
MEMORY = 256
OS     = [ ARCH = "x86_64", BOOT = "hd" ]
DISK   = [ SOURCE = "/srv/cloud/images/ttylinux.img", TARGET = "hda", TYPE = "disk", READONLY = "no" ]
DISK   = [ TYPE = "swap", SIZE = 512, TARGET = "hdc" ]
NIC    = [ NETWORK_ID = 0 ]
GRAPHICS = [ TYPE = "vnc", LISTEN = "127.0.0.1" ]
CONTEXT = [ HOSTNAME = "vm-$VMID", IP_PUBLIC = "$NIC[IP]", DNS = "$NETWORK[DNS, NETWORK_ID=0]", TARGET = "hdd", FILES = "" ]
RAW    = [ TYPE = "kvm", DATA = "<devices/>" ]
"#,
    ),
    (
        "oned-3.2/04-template-image seq 5 one.template.allocate",
        r#"NAME = "ttylinux-tmpl"
CPU    = 0.5
VCPU   = 1
MEMORY = 256
OS     = [ ARCH = "x86_64", BOOT = "hd" ]
DISK   = [ SOURCE = "/srv/cloud/images/ttylinux.img", TARGET = "hda", TYPE = "disk", READONLY = "no" ]
DISK   = [ TYPE = "swap", SIZE = 512, TARGET = "hdc" ]
NIC    = [ NETWORK_ID = 0 ]
GRAPHICS = [ TYPE = "vnc", LISTEN = "127.0.0.1" ]
CONTEXT = [ HOSTNAME = "vm-$VMID", IP_PUBLIC = "$NIC[IP]", DNS = "$NETWORK[DNS, NETWORK_ID=0]", TARGET = "hdd", FILES = "" ]
RAW    = [ TYPE = "kvm", DATA = "<devices/>" ]
"#,
    ),
    (
        "oned-3.2/04-template-image seq 8 one.template.update",
        r#"NAME = "ttylinux-tmpl"
CPU    = 0.5
VCPU   = 1
MEMORY = 256
OS     = [ ARCH = "x86_64", BOOT = "hd" ]
DISK   = [ SOURCE = "/srv/cloud/images/ttylinux.img", TARGET = "hda", TYPE = "disk", READONLY = "no" ]
DISK   = [ TYPE = "swap", SIZE = 512, TARGET = "hdc" ]
NIC    = [ NETWORK_ID = 0 ]
GRAPHICS = [ TYPE = "vnc", LISTEN = "127.0.0.1" ]
CONTEXT = [ HOSTNAME = "vm-$VMID", IP_PUBLIC = "$NIC[IP]", DNS = "$NETWORK[DNS, NETWORK_ID=0]", TARGET = "hdd", FILES = "" ]
RAW    = [ TYPE = "kvm", DATA = "<devices/>" ]
DESCRIPTION = "updated"
"#,
    ),
    (
        "oned-3.2/04-template-image seq 16 one.image.allocate",
        r#"NAME = "ttylinux"
PATH = "/srv/cloud/images/ttylinux.img"
TYPE = OS
DESCRIPTION = "test image"
"#,
    ),
    (
        "oned-3.2/04-template-image seq 23 one.image.update",
        r#"DESCRIPTION = "updated image"
DEV_PREFIX = "sd"
"#,
    ),
    (
        "oned-3.2/04-template-image seq 27 one.vm.allocate",
        r#"NAME = "img-vm"
CPU = 1
MEMORY = 128
DISK = [ IMAGE_ID = 0 ]
NIC = [ NETWORK = "private-lan" ]
"#,
    ),
    (
        "oned-3.2/05-users-groups-acl seq 14 one.vm.allocate",
        r#"NAME = "alice-vm"
CPU = 1
MEMORY = 64
"#,
    ),
    (
        "oned-3.2/05-users-groups-acl seq 23 one.user.update",
        r#"EMAIL = "alice@example.org"
"#,
    ),
    (
        "oned-3.2/05-users-groups-acl seq 25 one.vm.allocate",
        r#"NAME = "alice-vm2"
CPU = 1
MEMORY = 64
"#,
    ),
    (
        "oned-3.2/06-vnet-ops seq 1 one.vn.allocate",
        r#"NAME = "ops-net"
TYPE = FIXED
BRIDGE = br2
LEASES = [ IP = 172.16.0.1 ]
"#,
    ),
    (
        "oned-3.2/06-vnet-ops seq 2 one.vn.addleases",
        r"LEASES = [ IP = 172.16.0.2 ]",
    ),
    (
        "oned-3.2/06-vnet-ops seq 3 one.vn.addleases",
        r#"LEASES = [ IP = 172.16.0.3, MAC = "02:00:ac:10:00:03" ]"#,
    ),
    (
        "oned-3.2/06-vnet-ops seq 4 one.vn.rmleases",
        r"LEASES = [ IP = 172.16.0.3 ]",
    ),
    (
        "oned-3.2/06-vnet-ops seq 8 one.vn.update",
        r#"DESCRIPTION = "ops network"
"#,
    ),
    (
        "oned-3.2/06-vnet-ops seq 12 one.vn.allocate",
        r#"NAME = "ranged-small"
TYPE = RANGED
BRIDGE = br3
NETWORK_ADDRESS = 10.1.0.0
NETWORK_SIZE = 8
"#,
    ),
    (
        "oned-3.2/06-vnet-ops seq 13 one.vn.hold",
        r"LEASES = [ IP = 10.1.0.1 ]",
    ),
    (
        "oned-3.2/07-host-ops seq 5 one.host.update",
        r#"CUSTOM_ATTR = "x"
DESCRIPTION = "tmp host"
"#,
    ),
    (
        "oned-3.2/08-auth-default-driver-quota seq 1 one.vm.allocate",
        r#"NAME = "admin-vm"
CPU = 1
MEMORY = 64
"#,
    ),
    (
        "oned-3.2/08-auth-default-driver-quota seq 5 one.vm.allocate",
        r#"NAME = "bob-vm"
CPU = 1
MEMORY = 64
"#,
    ),
    (
        "oned-3.2/08-auth-default-driver-quota seq 6 one.vm.allocate",
        r#"NAME = "bob-bigcpu"
CPU = 30
MEMORY = 64
"#,
    ),
    (
        "oned-3.2/08-auth-default-driver-quota seq 7 one.vm.allocate",
        r#"NAME = "bob-bigmem"
CPU = 1
MEMORY = 2000000
"#,
    ),
    (
        "oned-3.2/08-auth-default-driver-quota seq 14 one.image.allocate",
        r#"NAME = "bob-img"
PATH = "/srv/cloud/images/ttylinux.img"
TYPE = OS
"#,
    ),
    (
        "oned-3.2/e01-auth-wrong-password seq 4 one.vm.allocate",
        r#"NAME = "x"
CPU = 1
MEMORY = 64
"#,
    ),
    (
        "oned-3.2/e05-invalid-action-state seq 8 one.vm.allocate",
        r#"NAME = "state-test"
CPU = 0.1
MEMORY = 32
"#,
    ),
    (
        "oned-3.2/e05-invalid-action-state seq 38 one.vn.hold",
        r"LEASES = [ IP = 10.99.99.99 ]",
    ),
    ("oned-3.2/e06-malformed-template seq 9 one.vm.allocate", r""),
    (
        "oned-3.2/e06-malformed-template seq 10 one.vm.allocate",
        r#"NAME = "unclosed
MEMORY=64
"#,
    ),
    (
        "oned-3.2/e06-malformed-template seq 11 one.vm.allocate",
        r#"NAME = "badnet"
CPU = 1
MEMORY = 64
NIC = [ NETWORK_ID = 9999 ]
"#,
    ),
    (
        "oned-3.2/e06-malformed-template seq 12 one.vm.allocate",
        r#"NAME = "badimg"
CPU = 1
MEMORY = 64
DISK = [ IMAGE_ID = 9999 ]
"#,
    ),
    (
        "oned-3.2/e06-malformed-template seq 13 one.vm.allocate",
        r#"NAME = "badimgname"
CPU = 1
MEMORY = 64
DISK = [ IMAGE = "nope" ]
"#,
    ),
    (
        "oned-3.2/e06-malformed-template seq 14 one.vm.allocate",
        r#"NAME = "nomem"
CPU = 1
"#,
    ),
    (
        "oned-3.2/e06-malformed-template seq 15 one.vm.allocate",
        r#"NAME = "badctx"
CPU = 1
MEMORY = 64
CONTEXT = [ IP = "$NIC[IP, NETWORK=\"nope\"]" ]
"#,
    ),
    (
        "oned-3.2/e06-malformed-template seq 16 one.vm.allocate",
        r#"NAME = "badreq"
CPU = 1
MEMORY = 64
REQUIREMENTS = "CPUSPEED > "
"#,
    ),
    (
        "oned-3.2/e06-malformed-template seq 17 one.vn.allocate",
        r#"NAME = "nonet"
TYPE = RANGED
BRIDGE = br0
"#,
    ),
    (
        "oned-3.2/e06-malformed-template seq 18 one.vn.allocate",
        r#"NAME = "badtype"
TYPE = WHATEVER
BRIDGE = br0
"#,
    ),
    (
        "oned-3.2/e06-malformed-template seq 19 one.vn.allocate",
        r#"NAME = "private-lan"
TYPE = FIXED
BRIDGE = br0
LEASES = [ IP = 10.9.9.9 ]
"#,
    ),
    (
        "oned-3.2/e06-malformed-template seq 20 one.vn.allocate",
        r"NAME = [ X = 1 ]
",
    ),
    (
        "oned-3.2/e06-malformed-template seq 24 one.image.allocate",
        r#"NAME = "noimgpath"
"#,
    ),
    (
        "oned-3.2/e06-malformed-template seq 25 one.image.allocate",
        r#"NAME = "badtype"
TYPE = FOO
PATH = "/srv/cloud/images/ttylinux.img"
"#,
    ),
    (
        "oned-3.2/e06-malformed-template seq 26 one.image.allocate",
        r#"NAME = "noexist"
PATH = "/nonexistent/file.img"
"#,
    ),
    (
        "oned-3.2/e07-malformed-xml seq 13 one.vm.allocate",
        r#"NAME="café" MEMORY=1"#,
    ),
    (
        "oned-3.2/e09-wrong-params seq 1 one.vm.allocate",
        r#"NAME = "ttylinux-0"
CPU = 0.5
MEMORY = 256
"#,
    ),
    (
        "stratuslab-client/00-site-setup seq 2 one.vn.allocate",
        r#"NAME = "public"
TYPE = FIXED
PUBLIC = YES

BRIDGE = br0

LEASES = [ IP="192.168.1.1", MAC="00:16:3e:d9:78:b1"]
LEASES = [ IP="192.168.1.2", MAC="00:16:3e:d9:78:b2"]
LEASES = [ IP="192.168.1.3", MAC="00:16:3e:d9:78:b3"]
LEASES = [ IP="192.168.1.4", MAC="00:16:3e:d9:78:b4"]
LEASES = [ IP="192.168.1.5", MAC="00:16:3e:d9:78:b5"]
LEASES = [ IP="192.168.1.6", MAC="00:16:3e:d9:78:b6"]
LEASES = [ IP="192.168.1.7", MAC="00:16:3e:d9:78:b7"]
LEASES = [ IP="192.168.1.8", MAC="00:16:3e:d9:78:b8"]
"#,
    ),
    (
        "stratuslab-client/00-site-setup seq 3 one.vn.allocate",
        r#"NAME = "local"
TYPE = FIXED
PUBLIC = YES

BRIDGE = br0

LEASES = [ IP="172.17.16.2", MAC="00:16:3e:d9:79:02"]
LEASES = [ IP="172.17.16.3", MAC="00:16:3e:d9:79:03"]
LEASES = [ IP="172.17.16.4", MAC="00:16:3e:d9:79:04"]
LEASES = [ IP="172.17.16.5", MAC="00:16:3e:d9:79:05"]
"#,
    ),
    (
        "stratuslab-client/00-site-setup seq 4 one.vn.allocate",
        r#"NAME = "private"
TYPE = RANGED
PUBLIC = YES

BRIDGE = br0

NETWORK_SIZE    = 65536
NETWORK_ADDRESS = 172.16.0.0
"#,
    ),
    (
        "stratuslab-client/01-run-marketplace-v14 seq 1 one.vm.allocate",
        r#"# ---- Stratuslab VM template ----

CPU    = 1
VCPU    = 1
MEMORY = 1536
RANK = "- RUNNING_VMS"



DISK = [
source   = "http://127.0.0.1:26351/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
target   = "vda",
save     = no,
readonly = "no",
driver = "raw"
]
DISK = [
type     = swap,
size     = 1536,
target   = "vdb",
readonly = "no"
]



NIC = [ network_uname=oneadmin,network = "public" ]

GRAPHICS = [
port = "-1",
type = "vnc"
]

CONTEXT = [
public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
",

target = "hdd"
]

INBOUND_PORTS = "22,443"
"#,
    ),
    (
        "stratuslab-client/03-run-marketplace-v13 seq 1 one.vm.allocate",
        r#"# ---- Stratuslab VM template ----

CPU    = 1
VCPU    = 1
MEMORY = 1536
RANK = "- RUNNING_VMS"



DISK = [
source   = "http://127.0.0.1:26351/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
target   = "vda",
save     = no,
readonly = "no",
driver = "raw"
]
DISK = [
type     = swap,
size     = 1536,
target   = "vdb",
readonly = "no"
]



NIC = [ network_uname=oneadmin,network = "public" ]

GRAPHICS = [
port = "-1",
type = "vnc"
]

CONTEXT = [
public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
",

target = "hdd"
]


INBOUND_PORTS = "22,443"
"#,
    ),
    (
        "stratuslab-client/06-run-persistent-disk-v13 seq 1 one.vm.allocate",
        r#"# ---- Stratuslab VM template ----

CPU    = 1
VCPU    = 1
MEMORY = 1536
RANK = "- RUNNING_VMS"



DISK = [
source   = "http://127.0.0.1:26351/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
target   = "vda",
save     = no,
readonly = "no",
driver = "raw"
]
DISK = [
type     = swap,
size     = 1536,
target   = "vdb",
readonly = "no"
]

DISK=[
  SOURCE=pdisk:http://127.0.0.1:26351:8445:48ac4190-9a11-4a06-8bef-03fd97080eba,
  TARGET=vdc,
  TYPE=block ]

NIC = [ network_uname=oneadmin,network = "public" ]

GRAPHICS = [
port = "-1",
type = "vnc"
]

CONTEXT = [
public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
",

target = "hdd"
]


INBOUND_PORTS = "22,443"
"#,
    ),
    (
        "stratuslab-client/06-run-persistent-disk-v14 seq 1 one.vm.allocate",
        r#"# ---- Stratuslab VM template ----

CPU    = 1
VCPU    = 1
MEMORY = 1536
RANK = "- RUNNING_VMS"



DISK = [
source   = "http://127.0.0.1:26351/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
target   = "vda",
save     = no,
readonly = "no",
driver = "raw"
]
DISK = [
type     = swap,
size     = 1536,
target   = "vdb",
readonly = "no"
]

DISK=[
  SOURCE=pdisk:http://127.0.0.1:26351/48ac4190-9a11-4a06-8bef-03fd97080eba,
  TARGET=vdc,
  TYPE=block ]

NIC = [ network_uname=oneadmin,network = "public" ]

GRAPHICS = [
port = "-1",
type = "vnc"
]

CONTEXT = [
public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
",

target = "hdd"
]

INBOUND_PORTS = "22,443"
"#,
    ),
    (
        "stratuslab-client/07-run-boot-pdisk-v14 seq 1 one.vm.allocate",
        r#"# ---- Stratuslab VM template ----

CPU    = 1
VCPU    = 1
MEMORY = 1536
RANK = "- RUNNING_VMS"



DISK = [
source   = "pdisk:http://127.0.0.1:26351/48ac4190-9a11-4a06-8bef-03fd97080eba",
target   = "hda",
save     = no,
readonly = "no",
driver = "raw"
]
DISK = [
type     = swap,
size     = 1536,
target   = "hdb",
readonly = "no"
]



NIC = [ network_uname=oneadmin,network = "public" ]

GRAPHICS = [
port = "-1",
type = "vnc"
]

CONTEXT = [
public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
",

target = "hdd"
]


"#,
    ),
    (
        "stratuslab-client/11-run-many-options-v13 seq 1 one.vm.allocate",
        r#"# ---- Stratuslab VM template ----

CPU    = 2
VCPU    = 2
MEMORY = 1024
RANK = "- RUNNING_VMS"

NAME = "many-options-v13"

DISK = [
source   = "http://127.0.0.1:26351/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
target   = "vda",
save     = no,
readonly = "no",
driver = "raw"
]
DISK = [
type     = swap,
size     = 512,
target   = "vdb",
readonly = "no"
]
DISK=[
  FORMAT=ext3,
  READONLY=no,
  SAVE=no,
  SIZE=5120,
  TARGET=vdc,
  TYPE=fs ]

DISK=[
  SOURCE="http://127.0.0.1:26351/metadata/MMZu9WvwKIro-rtBQfDk4PsKO7_",
  READONLY=no,
  SAVE=no,
  TARGET=vdc,
  DRIVER="raw" ]
NIC = [ network_uname=oneadmin,network = "local" ,
IP = "172.17.16.4"]

GRAPHICS = [
port = "5905",
listen = "0.0.0.0",
type = "vnc"
]

CONTEXT = [
public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
",
A = "1",
B = "two words",
FOO = "bar",
HELLO = "world with spaces",
target = "hdd"
]


INBOUND_PORTS = "22,443"
"#,
    ),
    (
        "stratuslab-client/11-run-many-options-v14 seq 1 one.vm.allocate",
        r#"# ---- Stratuslab VM template ----

CPU    = 2
VCPU    = 2
MEMORY = 1024
RANK = "- RUNNING_VMS"

NAME = "many-options-v14"

DISK = [
source   = "http://127.0.0.1:26351/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
target   = "vda",
save     = no,
readonly = "no",
driver = "raw"
]
DISK = [
type     = swap,
size     = 512,
target   = "vdb",
readonly = "no"
]
DISK=[
  FORMAT=ext3,
  READONLY=no,
  SAVE=no,
  SIZE=5120,
  TARGET=vdc,
  TYPE=fs ]

DISK=[
  SOURCE="http://127.0.0.1:26351/metadata/MMZu9WvwKIro-rtBQfDk4PsKO7_",
  READONLY=no,
  SAVE=no,
  TARGET=vdc,
  DRIVER="raw" ]
NIC = [ network_uname=oneadmin,network = "local" ,
IP = "172.17.16.3"]

GRAPHICS = [
port = "5905",
listen = "0.0.0.0",
type = "vnc"
]

CONTEXT = [
public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
",
A = "1",
B = "two words",
FOO = "bar",
HELLO = "world with spaces",
target = "hdd"
]

INBOUND_PORTS = "22,443"
"#,
    ),
    (
        "stratuslab-client/11-run-private-cloudinit-v14 seq 1 one.vm.allocate",
        r#"# ---- Stratuslab VM template ----

CPU    = 0.5
VCPU    = 1
MEMORY = 1536
RANK = "- RUNNING_VMS"



DISK = [
source   = "http://127.0.0.1:26351/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
target   = "hda",
save     = no,
readonly = "no",
driver = "raw"
]
DISK = [
type     = swap,
size     = 1536,
target   = "hdb",
readonly = "no"
]



NIC = [ network_uname=oneadmin,network = "private" ]

GRAPHICS = [
port = "-1",
type = "vnc"
]

CONTEXT = [
public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
",
CONTEXT_METHOD = "cloud-init",
CLOUD_INIT_USER_DATA = "H4sIAE/uBGsC/41PPW+DMBDd/StcMjs0UYsJyFOSoUO2qrsxR30SnJHvkMi/b9ohUqQOeeN7el/HRAIk5vM6Q6OnZRScfZZywhX6Vndpod7nqyvcI+pDvbPvVWXf7MHauqr2e+cKdfm4nM0XZMZEjd5tX5Uy5hmrOj4MEVilXA1HGEcOGWdpdYg+M4grFjaeA+J/dfeY7IkHyOZMIfVI3422HcpdPyHPiVH+jF7Ehzjd+FYPOAL5CVyRF9pyLJTavJQdUslRQYhJ/25Keshp0mFMS2+QbsFP/jRG/QCniarhcwEAAA==",
CLOUD_INIT_AUTHORIZED_KEYS = "c3NoLXJzYSBBQUFBQjNOemFDMXljMkVBQUFBREFRQUJBQUFBZ1FDOGx0QnFKalVkQXBwV05mbWdNM25QajBPd2lZcG5UaG1CZmZiUnZ3TEpkU25SQWZ0eXhWempHejVFSzRwTCtLdTNqaUFHanI4Y2VETTR4U3B4bVQ3SE1Ba25mNHNCeE80RFE5MjYwMGp3SG9Ic2FWL05Yc0RIelBrWjJHWXdvTjQ1ZFIrTVlrWEY3VVZCQ040dDF5OE1yRUh3Nk9lWFpJYXVhbnJGbEpRc0x3PT0gdGVzdGVyQHN0cmF0dXNsYWItY2xpZW50Cg==",
target = "hdd"
]

INBOUND_PORTS = "22,443"
"#,
    ),
    (
        "stratuslab-client/14-quota-v13 seq 1 one.vm.allocate",
        r#"# ---- Stratuslab VM template ----

CPU    = 30
VCPU    = 30
MEMORY = 1536
RANK = "- RUNNING_VMS"



DISK = [
source   = "http://127.0.0.1:26351/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
target   = "vda",
save     = no,
readonly = "no",
driver = "raw"
]
DISK = [
type     = swap,
size     = 1536,
target   = "vdb",
readonly = "no"
]



NIC = [ network_uname=oneadmin,network = "public" ]

GRAPHICS = [
port = "-1",
type = "vnc"
]

CONTEXT = [
public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
",

target = "hdd"
]


INBOUND_PORTS = "22,443"
"#,
    ),
    (
        "stratuslab-client/14-quota-v14 seq 1 one.vm.allocate",
        r#"# ---- Stratuslab VM template ----

CPU    = 30
VCPU    = 30
MEMORY = 1536
RANK = "- RUNNING_VMS"



DISK = [
source   = "http://127.0.0.1:26351/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
target   = "vda",
save     = no,
readonly = "no",
driver = "raw"
]
DISK = [
type     = swap,
size     = 1536,
target   = "vdb",
readonly = "no"
]



NIC = [ network_uname=oneadmin,network = "public" ]

GRAPHICS = [
port = "-1",
type = "vnc"
]

CONTEXT = [
public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
",

target = "hdd"
]

INBOUND_PORTS = "22,443"
"#,
    ),
    (
        "stratuslab-client/14-quota-v14 seq 2 one.vm.allocate",
        r#"# ---- Stratuslab VM template ----

CPU    = 1
VCPU    = 1
MEMORY = 2000000
RANK = "- RUNNING_VMS"



DISK = [
source   = "http://127.0.0.1:26351/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
target   = "vda",
save     = no,
readonly = "no",
driver = "raw"
]
DISK = [
type     = swap,
size     = 1536,
target   = "vdb",
readonly = "no"
]



NIC = [ network_uname=oneadmin,network = "public" ]

GRAPHICS = [
port = "-1",
type = "vnc"
]

CONTEXT = [
public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
",

target = "hdd"
]

INBOUND_PORTS = "22,443"
"#,
    ),
    (
        "stratuslab-client/14-quota-v14 seq 3 one.vm.allocate",
        r#"# ---- Stratuslab VM template ----

CPU    = 10
VCPU    = 10
MEMORY = 1536
RANK = "- RUNNING_VMS"



DISK = [
source   = "http://127.0.0.1:26351/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
target   = "vda",
save     = no,
readonly = "no",
driver = "raw"
]
DISK = [
type     = swap,
size     = 1536,
target   = "vdb",
readonly = "no"
]



NIC = [ network_uname=oneadmin,network = "public" ]

GRAPHICS = [
port = "-1",
type = "vnc"
]

CONTEXT = [
public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
",

target = "hdd"
]

INBOUND_PORTS = "22,443"
"#,
    ),
    (
        "stratuslab-client/15-vm-fails-v13 seq 1 one.vm.allocate",
        r#"# ---- Stratuslab VM template ----

CPU    = 1
VCPU    = 1
MEMORY = 1536
RANK = "- RUNNING_VMS"
REQUIREMENTS = "HOSTNAME = \"failhost\""


DISK = [
source   = "http://127.0.0.1:26351/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
target   = "vda",
save     = no,
readonly = "no",
driver = "raw"
]
DISK = [
type     = swap,
size     = 1536,
target   = "vdb",
readonly = "no"
]



NIC = [ network_uname=oneadmin,network = "public" ]

GRAPHICS = [
port = "-1",
type = "vnc"
]

CONTEXT = [
public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
",

target = "hdd"
]


INBOUND_PORTS = "22,443"
"#,
    ),
    (
        "stratuslab-client/15-vm-fails-v14 seq 3 one.vm.allocate",
        r#"# ---- Stratuslab VM template ----

CPU    = 1
VCPU    = 1
MEMORY = 1536
RANK = "- RUNNING_VMS"
REQUIREMENTS = "HOSTNAME = \"failhost\""


DISK = [
source   = "http://127.0.0.1:26351/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
target   = "vda",
save     = no,
readonly = "no",
driver = "raw"
]
DISK = [
type     = swap,
size     = 1536,
target   = "vdb",
readonly = "no"
]



NIC = [ network_uname=oneadmin,network = "public" ]

GRAPHICS = [
port = "-1",
type = "vnc"
]

CONTEXT = [
public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
",

target = "hdd"
]

INBOUND_PORTS = "22,443"
"#,
    ),
    (
        "stratuslab-client/16-alloc-errors-v13 seq 1 one.vm.allocate",
        r#"# ---- Stratuslab VM template ----

CPU    = 1
VCPU    = 1
MEMORY = 1536
RANK = "- RUNNING_VMS"



DISK = [
source   = "http://127.0.0.1:26351/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
target   = "vda",
save     = no,
readonly = "no",
driver = "raw"
]
DISK = [
type     = swap,
size     = 1536,
target   = "vdb",
readonly = "no"
]



NIC = [ network_uname=oneadmin,network = "public" ,
IP = "192.168.1.200"]

GRAPHICS = [
port = "-1",
type = "vnc"
]

CONTEXT = [
public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
",

target = "hdd"
]


INBOUND_PORTS = "22,443"
"#,
    ),
    (
        "stratuslab-client/16-alloc-errors-v14 seq 1 one.vm.allocate",
        r#"# ---- Stratuslab VM template ----

CPU    = 1
VCPU    = 1
MEMORY = 1536
RANK = "- RUNNING_VMS"



DISK = [
source   = "http://127.0.0.1:26351/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
target   = "vda",
save     = no,
readonly = "no",
driver = "raw"
]
DISK = [
type     = swap,
size     = 1536,
target   = "vdb",
readonly = "no"
]



NIC = [ network_uname=oneadmin,network = "public" ,
IP = "192.168.1.200"]

GRAPHICS = [
port = "-1",
type = "vnc"
]

CONTEXT = [
public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
",

target = "hdd"
]

INBOUND_PORTS = "22,443"
"#,
    ),
    (
        "stratuslab-client/16-alloc-errors-v14 seq 2 one.vm.allocate",
        r#"# ---- Stratuslab VM template ----

CPU    = 1
VCPU    = 1
MEMORY = 1536
RANK = "- RUNNING_VMS"



DISK = [
source   = "http://127.0.0.1:26351/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
target   = "vda",
save     = no,
readonly = "no",
driver = "raw"
]
DISK = [
type     = swap,
size     = 1536,
target   = "vdb",
readonly = "no"
]



NIC = [ network_uname=oneadmin,network = "private" ,
IP = "10.0.0.1"]

GRAPHICS = [
port = "-1",
type = "vnc"
]

CONTEXT = [
public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
",

target = "hdd"
]

INBOUND_PORTS = "22,443"
"#,
    ),
];

/// Templates oned refused with a parse error, and the message after `Parse error: `.
pub(super) const REJECTED: &[(&str, &str, &str)] = &[
    (
        "oned-3.2/e06-malformed-template seq 7 one.vm.allocate",
        r#"NAME = "bad"
CPU = 1
MEMORY = [
"#,
        r"syntax error, unexpected $end, expecting VARIABLE at line 4, columns 31:33",
    ),
    (
        "oned-3.2/e06-malformed-template seq 8 one.vm.allocate",
        r"this is not a template",
        r"syntax error, unexpected VARIABLE, expecting EQUAL or EQUAL_EMPTY at line 1, columns 6:8",
    ),
    (
        "oned-3.2/e06-malformed-template seq 23 one.template.allocate",
        r#"NAME = "t"
MEMORY = [
"#,
        r"syntax error, unexpected $end, expecting VARIABLE at line 3, columns 21:23",
    ),
    (
        "stratuslab-client/15-vm-fails-v14 seq 2 one.vm.allocate",
        r#"# ---- Stratuslab VM template ----

CPU    = 1
VCPU    = 1
MEMORY = 1536
RANK = "- RUNNING_VMS"
REQUIREMENTS = "HOSTNAME = "failhost""


DISK = [
source   = "http://127.0.0.1:26351/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
target   = "vda",
save     = no,
readonly = "no",
driver = "raw"
]
DISK = [
type     = swap,
size     = 1536,
target   = "vdb",
readonly = "no"
]



NIC = [ network_uname=oneadmin,network = "public" ]

GRAPHICS = [
port = "-1",
type = "vnc"
]

CONTEXT = [
public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
",

target = "hdd"
]

INBOUND_PORTS = "22,443"
"#,
        r"syntax error, unexpected VARIABLE, expecting EQUAL or EQUAL_EMPTY at line 10, columns 138:142",
    ),
];

/// oned-3.2/04-template-image seq 5 (request) and seq 6 (document).
pub(super) const TEMPLATE_ALLOCATE: (&str, &str) = (
    r#"NAME = "ttylinux-tmpl"
CPU    = 0.5
VCPU   = 1
MEMORY = 256
OS     = [ ARCH = "x86_64", BOOT = "hd" ]
DISK   = [ SOURCE = "/srv/cloud/images/ttylinux.img", TARGET = "hda", TYPE = "disk", READONLY = "no" ]
DISK   = [ TYPE = "swap", SIZE = 512, TARGET = "hdc" ]
NIC    = [ NETWORK_ID = 0 ]
GRAPHICS = [ TYPE = "vnc", LISTEN = "127.0.0.1" ]
CONTEXT = [ HOSTNAME = "vm-$VMID", IP_PUBLIC = "$NIC[IP]", DNS = "$NETWORK[DNS, NETWORK_ID=0]", TARGET = "hdd", FILES = "" ]
RAW    = [ TYPE = "kvm", DATA = "<devices/>" ]
"#,
    r#"<TEMPLATE><CONTEXT><DNS><![CDATA[$NETWORK[DNS, NETWORK_ID=0]]]></DNS><FILES><![CDATA[""]]></FILES><HOSTNAME><![CDATA[vm-$VMID]]></HOSTNAME><IP_PUBLIC><![CDATA[$NIC[IP]]]></IP_PUBLIC><TARGET><![CDATA[hdd]]></TARGET></CONTEXT><CPU><![CDATA[0.5]]></CPU><DISK><READONLY><![CDATA[no]]></READONLY><SOURCE><![CDATA[/srv/cloud/images/ttylinux.img]]></SOURCE><TARGET><![CDATA[hda]]></TARGET><TYPE><![CDATA[disk]]></TYPE></DISK><DISK><SIZE><![CDATA[512]]></SIZE><TARGET><![CDATA[hdc]]></TARGET><TYPE><![CDATA[swap]]></TYPE></DISK><GRAPHICS><LISTEN><![CDATA[127.0.0.1]]></LISTEN><TYPE><![CDATA[vnc]]></TYPE></GRAPHICS><MEMORY><![CDATA[256]]></MEMORY><NAME><![CDATA[ttylinux-tmpl]]></NAME><NIC><NETWORK_ID><![CDATA[0]]></NETWORK_ID></NIC><OS><ARCH><![CDATA[x86_64]]></ARCH><BOOT><![CDATA[hd]]></BOOT></OS><RAW><DATA><![CDATA[<devices/>]]></DATA><TYPE><![CDATA[kvm]]></TYPE></RAW><TEMPLATE_ID><![CDATA[0]]></TEMPLATE_ID><VCPU><![CDATA[1]]></VCPU></TEMPLATE>"#,
);

/// oned-3.2/04-template-image seq 8 (request) and seq 10 (document).
pub(super) const TEMPLATE_UPDATE: (&str, &str) = (
    r#"NAME = "ttylinux-tmpl"
CPU    = 0.5
VCPU   = 1
MEMORY = 256
OS     = [ ARCH = "x86_64", BOOT = "hd" ]
DISK   = [ SOURCE = "/srv/cloud/images/ttylinux.img", TARGET = "hda", TYPE = "disk", READONLY = "no" ]
DISK   = [ TYPE = "swap", SIZE = 512, TARGET = "hdc" ]
NIC    = [ NETWORK_ID = 0 ]
GRAPHICS = [ TYPE = "vnc", LISTEN = "127.0.0.1" ]
CONTEXT = [ HOSTNAME = "vm-$VMID", IP_PUBLIC = "$NIC[IP]", DNS = "$NETWORK[DNS, NETWORK_ID=0]", TARGET = "hdd", FILES = "" ]
RAW    = [ TYPE = "kvm", DATA = "<devices/>" ]
DESCRIPTION = "updated"
"#,
    r#"<TEMPLATE><CONTEXT><DNS><![CDATA[$NETWORK[DNS, NETWORK_ID=0]]]></DNS><FILES><![CDATA[""]]></FILES><HOSTNAME><![CDATA[vm-$VMID]]></HOSTNAME><IP_PUBLIC><![CDATA[$NIC[IP]]]></IP_PUBLIC><TARGET><![CDATA[hdd]]></TARGET></CONTEXT><CPU><![CDATA[0.5]]></CPU><DESCRIPTION><![CDATA[updated]]></DESCRIPTION><DISK><READONLY><![CDATA[no]]></READONLY><SOURCE><![CDATA[/srv/cloud/images/ttylinux.img]]></SOURCE><TARGET><![CDATA[hda]]></TARGET><TYPE><![CDATA[disk]]></TYPE></DISK><DISK><SIZE><![CDATA[512]]></SIZE><TARGET><![CDATA[hdc]]></TARGET><TYPE><![CDATA[swap]]></TYPE></DISK><GRAPHICS><LISTEN><![CDATA[127.0.0.1]]></LISTEN><TYPE><![CDATA[vnc]]></TYPE></GRAPHICS><MEMORY><![CDATA[256]]></MEMORY><NAME><![CDATA[ttylinux-tmpl]]></NAME><NIC><NETWORK_ID><![CDATA[0]]></NETWORK_ID></NIC><OS><ARCH><![CDATA[x86_64]]></ARCH><BOOT><![CDATA[hd]]></BOOT></OS><RAW><DATA><![CDATA[<devices/>]]></DATA><TYPE><![CDATA[kvm]]></TYPE></RAW><VCPU><![CDATA[1]]></VCPU></TEMPLATE>"#,
);

/// oned-3.2/06-vnet-ops seq 8 (request) and seq 11 (document).
pub(super) const VN_UPDATE: (&str, &str) = (
    r#"DESCRIPTION = "ops network"
"#,
    r"<TEMPLATE><DESCRIPTION><![CDATA[ops network]]></DESCRIPTION></TEMPLATE>",
);

/// oned-3.2/07-host-ops seq 5 (request) and seq 6 (document).
pub(super) const HOST_UPDATE: (&str, &str) = (
    r#"CUSTOM_ATTR = "x"
DESCRIPTION = "tmp host"
"#,
    r"<TEMPLATE><CUSTOM_ATTR><![CDATA[x]]></CUSTOM_ATTR><DESCRIPTION><![CDATA[tmp host]]></DESCRIPTION></TEMPLATE>",
);

/// oned-3.2/05-users-groups-acl seq 23 (request) and seq 24 (document).
pub(super) const USER_UPDATE: (&str, &str) = (
    r#"EMAIL = "alice@example.org"
"#,
    r"<TEMPLATE><EMAIL><![CDATA[alice@example.org]]></EMAIL></TEMPLATE>",
);

/// oned-3.2/04-template-image seq 23 (request) and seq 26 (document).
pub(super) const IMAGE_UPDATE: (&str, &str) = (
    r#"DESCRIPTION = "updated image"
DEV_PREFIX = "sd"
"#,
    r"<TEMPLATE><DESCRIPTION><![CDATA[updated image]]></DESCRIPTION><DEV_PREFIX><![CDATA[sd]]></DEV_PREFIX></TEMPLATE>",
);

/// oned-3.2/02-vm-lifecycle seq 5 (request) and seq 6 (document).
pub(super) const VN_ALLOCATE_RANGED: (&str, &str) = (
    r#"NAME = "private-lan"
TYPE = RANGED
BRIDGE = br0
NETWORK_ADDRESS = 192.168.100.0
NETWORK_SIZE = C
DNS = 192.168.100.254
GATEWAY = 192.168.100.1
"#,
    r"<TEMPLATE><DNS><![CDATA[192.168.100.254]]></DNS><GATEWAY><![CDATA[192.168.100.1]]></GATEWAY><NETWORK_MASK><![CDATA[255.255.255.0]]></NETWORK_MASK></TEMPLATE>",
);

/// oned-3.2/06-vnet-ops seq 1 (request) and seq 6 (document).
pub(super) const VN_ALLOCATE_FIXED: (&str, &str) = (
    r#"NAME = "ops-net"
TYPE = FIXED
BRIDGE = br2
LEASES = [ IP = 172.16.0.1 ]
"#,
    r"<TEMPLATE></TEMPLATE>",
);

/// oned-3.2/06-vnet-ops seq 12 (request) and seq 14 (document).
pub(super) const VN_ALLOCATE_RANGED_SMALL: (&str, &str) = (
    r#"NAME = "ranged-small"
TYPE = RANGED
BRIDGE = br3
NETWORK_ADDRESS = 10.1.0.0
NETWORK_SIZE = 8
"#,
    r"<TEMPLATE><NETWORK_MASK><![CDATA[255.255.255.240]]></NETWORK_MASK></TEMPLATE>",
);

/// oned-3.2/04-template-image seq 16 (request) and seq 17 (document).
pub(super) const IMAGE_ALLOCATE: (&str, &str) = (
    r#"NAME = "ttylinux"
PATH = "/srv/cloud/images/ttylinux.img"
TYPE = OS
DESCRIPTION = "test image"
"#,
    r"<TEMPLATE><DESCRIPTION><![CDATA[test image]]></DESCRIPTION><DEV_PREFIX><![CDATA[hd]]></DEV_PREFIX></TEMPLATE>",
);

/// oned-3.2/e06-malformed-template seq 9 (request) and seq 32 (document).
pub(super) const VM_EMPTY: (&str, &str) = (
    r"",
    r"<TEMPLATE><NAME><![CDATA[one-0]]></NAME><VMID><![CDATA[0]]></VMID></TEMPLATE>",
);

/// oned-3.2/e06-malformed-template seq 10 (request) and seq 32 (document).
pub(super) const VM_UNCLOSED_QUOTE: (&str, &str) = (
    r#"NAME = "unclosed
MEMORY=64
"#,
    r#"<TEMPLATE><MEMORY><![CDATA[64]]></MEMORY><NAME><![CDATA["unclosed]]></NAME><VMID><![CDATA[1]]></VMID></TEMPLATE>"#,
);

/// stratuslab-client/01-run-marketplace-v14 seq 1 (request) and seq 1 (document).
pub(super) const VM_STRATUSLAB_V14: (&str, &str) = (
    r#"# ---- Stratuslab VM template ----

CPU    = 1
VCPU    = 1
MEMORY = 1536
RANK = "- RUNNING_VMS"



DISK = [
source   = "http://127.0.0.1:26351/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
target   = "vda",
save     = no,
readonly = "no",
driver = "raw"
]
DISK = [
type     = swap,
size     = 1536,
target   = "vdb",
readonly = "no"
]



NIC = [ network_uname=oneadmin,network = "public" ]

GRAPHICS = [
port = "-1",
type = "vnc"
]

CONTEXT = [
public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
",

target = "hdd"
]

INBOUND_PORTS = "22,443"
"#,
    r"<TEMPLATE><CONTEXT><PUBLIC_KEY><![CDATA[ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client
]]></PUBLIC_KEY><TARGET><![CDATA[hdd]]></TARGET></CONTEXT><CPU><![CDATA[1]]></CPU><DISK><DISK_ID><![CDATA[0]]></DISK_ID><DRIVER><![CDATA[raw]]></DRIVER><READONLY><![CDATA[no]]></READONLY><SAVE><![CDATA[no]]></SAVE><SOURCE><![CDATA[http://127.0.0.1:26351/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb]]></SOURCE><TARGET><![CDATA[vda]]></TARGET></DISK><DISK><DISK_ID><![CDATA[1]]></DISK_ID><READONLY><![CDATA[no]]></READONLY><SIZE><![CDATA[1536]]></SIZE><TARGET><![CDATA[vdb]]></TARGET><TYPE><![CDATA[swap]]></TYPE></DISK><GRAPHICS><PORT><![CDATA[-1]]></PORT><TYPE><![CDATA[vnc]]></TYPE></GRAPHICS><INBOUND_PORTS><![CDATA[22,443]]></INBOUND_PORTS><MEMORY><![CDATA[1536]]></MEMORY><NAME><![CDATA[one-0]]></NAME><NIC><BRIDGE><![CDATA[br0]]></BRIDGE><IP><![CDATA[192.168.1.1]]></IP><MAC><![CDATA[00:16:3e:d9:78:b1]]></MAC><NETWORK><![CDATA[public]]></NETWORK><NETWORK_ID><![CDATA[0]]></NETWORK_ID><NETWORK_UNAME><![CDATA[oneadmin]]></NETWORK_UNAME><VLAN><![CDATA[NO]]></VLAN></NIC><RANK><![CDATA[- RUNNING_VMS]]></RANK><VCPU><![CDATA[1]]></VCPU><VMID><![CDATA[0]]></VMID></TEMPLATE>",
);
