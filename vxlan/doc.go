// Package vxlan creates, inspects and maintains VXLAN links through raw
// rtnetlink, with a typed [Config] that covers every IFLA_VXLAN attribute of
// current kernels.
//
// What it sets is what the kernel holds: the integration tests create each
// setting in a throwaway namespace and read it back both with [Client.Get]
// and with `ip -d -j link show`.
//
// A [Client] works in one network namespace:
//
//	c, err := vxlan.Dial() // or vxlan.Dial(rtlink.WithNetNSPath("blue"))
//	...
//	err = c.Create(ctx, vxlan.Config{Name: "vx42", VNI: 42, Device: "eth0", Local: local})
//	err = c.AddPeer(ctx, "vx42", netip.MustParseAddr("198.18.0.2"))
//
// Zero fields keep the kernel's default where that is unambiguous; fields
// whose zero value means something to the kernel (Learning, Ageing, UDP
// checksums, local bypass) are pointers, nil meaning "not set". One
// exception is deliberate: the UDP destination port defaults to [DefaultPort],
// 4789 as assigned by IANA, not to the kernel's historical 8472 (see
// [EffectivePort]).
//
// [Client.Ensure] makes a link idempotently; [Client.Update] changes a live
// one in place where the kernel allows it; [Client.Get] reads any vxlan link
// back, including ones made by iproute2 and ones whose underlay is in
// another namespace ([Config.LinkNetNSID]), into a Config that Validate and
// Ensure accept. Errors say what happened in the kernel's words and match
// errors.Is with [ErrExists] (also for a [*VNIConflictError]), [ErrNotFound],
// [ErrWrongKind], [ErrNotSupported] (also for an [*UpdateError]),
// [ErrInvalid] (also for a [*ConfigError]) and [ErrPermission].
package vxlan
