// Package linuxabi holds the constants of the Linux kernel's interfaces
// that packages rtlink and vxlan use (netlink message types, attribute
// numbers, flags, errno values), for every GOOS: golang.org/x/sys/unix
// defines them only for Linux, and the library must build on any system
// (it does nothing outside Linux but return an error). The values are
// Linux's, whatever the GOOS; a test on Linux checks each against
// golang.org/x/sys/unix. A constant that rtlink or vxlan newly needs is
// added here and to that test.
package linuxabi

import "syscall"

// Errno is an error number of the Linux kernel, as netlink returns it.
type Errno = syscall.Errno

// The constants, with golang.org/x/sys/unix's names and Linux's values.
const (
	AF_BRIDGE                    = 0x7
	AF_INET                      = 0x2
	AF_INET6                     = 0xa
	AF_UNSPEC                    = 0x0
	EACCES                       = syscall.Errno(0xd)
	EADDRNOTAVAIL                = syscall.Errno(0x63)
	EAFNOSUPPORT                 = syscall.Errno(0x61)
	EEXIST                       = syscall.Errno(0x11)
	EINVAL                       = syscall.Errno(0x16)
	ENODEV                       = syscall.Errno(0x13)
	ENOENT                       = syscall.Errno(0x2)
	EOPNOTSUPP                   = syscall.Errno(0x5f)
	EPERM                        = syscall.Errno(0x1)
	EPROTONOSUPPORT              = syscall.Errno(0x5d)
	EROFS                        = syscall.Errno(0x1e)
	ESRCH                        = syscall.Errno(0x3)
	ETH_P_8021AD                 = 0x88a8
	ETH_P_8021Q                  = 0x8100
	IFA_F_NODAD                  = 0x2
	IFF_UP                       = 0x1
	IFLA_ADDRESS                 = 0x1
	IFLA_AF_SPEC                 = 0x1a
	IFLA_BRPORT_BCAST_FLOOD      = 0x1e
	IFLA_BRPORT_FAST_LEAVE       = 0x7
	IFLA_BRPORT_GUARD            = 0x5
	IFLA_BRPORT_ISOLATED         = 0x21
	IFLA_BRPORT_LEARNING         = 0x8
	IFLA_BRPORT_MCAST_FLOOD      = 0x1b
	IFLA_BRPORT_MCAST_TO_UCAST   = 0x1c
	IFLA_BRPORT_MODE             = 0x4
	IFLA_BRPORT_NEIGH_SUPPRESS   = 0x20
	IFLA_BRPORT_PROTECT          = 0x6
	IFLA_BRPORT_PROXYARP         = 0xa
	IFLA_BRPORT_PROXYARP_WIFI    = 0xc
	IFLA_BRPORT_UNICAST_FLOOD    = 0x9
	IFLA_EXT_MASK                = 0x1d
	IFLA_GROUP                   = 0x1b
	IFLA_IFALIAS                 = 0x14
	IFLA_IFNAME                  = 0x3
	IFLA_STATS64                 = 0x17
	IFLA_INET6_ADDR_GEN_MODE     = 0x8
	IFLA_INET_CONF               = 0x1
	IFLA_INFO_DATA               = 0x2
	IFLA_INFO_KIND               = 0x1
	IFLA_INFO_SLAVE_DATA         = 0x5
	IFLA_INFO_SLAVE_KIND         = 0x4
	IFLA_LINK                    = 0x5
	IFLA_LINKINFO                = 0x12
	IFLA_LINK_NETNSID            = 0x25
	IFLA_MACVLAN_MODE            = 0x1
	IFLA_MASTER                  = 0xa
	IFLA_MTU                     = 0x4
	IFLA_NET_NS_FD               = 0x1c
	IFLA_OPERSTATE               = 0x10
	IFLA_PROTINFO                = 0xc
	IFLA_TXQLEN                  = 0xd
	IFLA_VLAN_ID                 = 0x1
	IFLA_VLAN_PROTOCOL           = 0x5
	IFLA_VXLAN_AGEING            = 0x8
	IFLA_VXLAN_COLLECT_METADATA  = 0x19
	IFLA_VXLAN_DF                = 0x1d
	IFLA_VXLAN_GBP               = 0x17
	IFLA_VXLAN_GPE               = 0x1b
	IFLA_VXLAN_GROUP             = 0x2
	IFLA_VXLAN_GROUP6            = 0x10
	IFLA_VXLAN_ID                = 0x1
	IFLA_VXLAN_L2MISS            = 0xd
	IFLA_VXLAN_L3MISS            = 0xe
	IFLA_VXLAN_LABEL             = 0x1a
	IFLA_VXLAN_LABEL_POLICY      = 0x20
	IFLA_VXLAN_LEARNING          = 0x7
	IFLA_VXLAN_LIMIT             = 0x9
	IFLA_VXLAN_LINK              = 0x3
	IFLA_VXLAN_LOCAL             = 0x4
	IFLA_VXLAN_LOCAL6            = 0x11
	IFLA_VXLAN_LOCALBYPASS       = 0x1f
	IFLA_VXLAN_PORT              = 0xf
	IFLA_VXLAN_PORT_RANGE        = 0xa
	IFLA_VXLAN_PROXY             = 0xb
	IFLA_VXLAN_REMCSUM_NOPARTIAL = 0x18
	IFLA_VXLAN_REMCSUM_RX        = 0x16
	IFLA_VXLAN_REMCSUM_TX        = 0x15
	IFLA_VXLAN_RSC               = 0xc
	IFLA_VXLAN_TOS               = 0x6
	IFLA_VXLAN_TTL               = 0x5
	IFLA_VXLAN_TTL_INHERIT       = 0x1c
	IFLA_VXLAN_UDP_CSUM          = 0x12
	IFLA_VXLAN_UDP_ZERO_CSUM6_RX = 0x14
	IFLA_VXLAN_UDP_ZERO_CSUM6_TX = 0x13
	IFLA_VXLAN_VNIFILTER         = 0x1e
	NDA_DST                      = 0x1
	NDA_IFINDEX                  = 0x8
	NDA_LLADDR                   = 0x2
	NDA_MASTER                   = 0x9
	NDA_PORT                     = 0x6
	NDA_VNI                      = 0x7
	NETLINK_ROUTE                = 0x0
	NLA_ALIGNTO                  = 0x4
	NLA_F_NESTED                 = 0x8000
	NLA_F_NET_BYTEORDER          = 0x4000
	NTF_EXT_LEARNED              = 0x10
	NTF_MASTER                   = 0x4
	NTF_OFFLOADED                = 0x20
	NTF_PROXY                    = 0x8
	NTF_ROUTER                   = 0x80
	NTF_SELF                     = 0x2
	NTF_USE                      = 0x1
	NUD_DELAY                    = 0x8
	NUD_FAILED                   = 0x20
	NUD_INCOMPLETE               = 0x1
	NUD_NOARP                    = 0x40
	NUD_PERMANENT                = 0x80
	NUD_PROBE                    = 0x10
	NUD_REACHABLE                = 0x2
	NUD_STALE                    = 0x4
	RTM_DELADDR                  = 0x15
	RTM_DELLINK                  = 0x11
	RTM_DELNEIGH                 = 0x1d
	RTM_DELROUTE                 = 0x19
	RTM_DELTUNNEL                = 0x79
	RTM_GETADDR                  = 0x16
	RTM_GETLINK                  = 0x12
	RTM_GETNEIGH                 = 0x1e
	RTM_GETNSID                  = 0x5a
	RTM_GETROUTE                 = 0x1a
	RTM_GETTUNNEL                = 0x7a
	RTM_NEWADDR                  = 0x14
	RTM_NEWLINK                  = 0x10
	RTM_NEWNEIGH                 = 0x1c
	RTM_NEWROUTE                 = 0x18
	RTM_NEWTUNNEL                = 0x78
	RTM_SETLINK                  = 0x13
	RTNLGRP_NEIGH                = 0x3
	RTN_UNICAST                  = 0x1
	RTPROT_BOOT                  = 0x3
	RT_SCOPE_LINK                = 0xfd
	RT_SCOPE_UNIVERSE            = 0x0
	RT_TABLE_MAIN                = 0xfe
	SizeofIfAddrmsg              = 0x8
	SizeofIfInfomsg              = 0x10
	SizeofNdMsg                  = 0xc
	SizeofNlAttr                 = 0x4
	SizeofRtMsg                  = 0xc
)

// The IPv4 per-link settings (net.ipv4.conf.NAME.*) as IFLA_INET_CONF
// numbers them: linux/ip.h's IPV4_DEVCONF_*, which golang.org/x/sys/unix
// does not define, so the test cannot check them against it.
const (
	IPV4_DEVCONF_ARP_ANNOUNCE = 18
	IPV4_DEVCONF_ARP_IGNORE   = 19
)
