package vxlan

import (
	"fmt"
	"strings"
)

// diff lists the settings of want that have differs from, following the
// comparison rules documented on Client.Ensure.
func diff(want, have *Config) []Diff {
	var out []Diff
	add := func(field string, w, h any) {
		ws, hs := fmt.Sprint(w), fmt.Sprint(h)
		if ws != hs {
			out = append(out, Diff{Field: field, Want: ws, Have: hs})
		}
	}
	// Always compared: the zero value is a fixed kernel default.
	add("VNI", want.VNI, have.VNI)
	add("Port", want.port(), have.Port)
	add("TTL", want.TTL, have.TTL)
	add("TTLInherit", want.TTLInherit, have.TTLInherit)
	add("TOS", want.TOS, have.TOS)
	add("DF", want.DF, have.DF)
	add("Label", want.Label, have.Label)
	add("LabelInherit", want.LabelInherit, have.LabelInherit)
	add("Limit", want.Limit, have.Limit)
	add("Proxy", want.Proxy, have.Proxy)
	add("RSC", want.RSC, have.RSC)
	add("L2Miss", want.L2Miss, have.L2Miss)
	add("L3Miss", want.L3Miss, have.L3Miss)
	add("CollectMetadata", want.CollectMetadata, have.CollectMetadata)
	add("VNIFilter", want.VNIFilter, have.VNIFilter)
	add("UDPZeroChecksum6TX", want.UDPZeroChecksum6TX, have.UDPZeroChecksum6TX)
	add("UDPZeroChecksum6RX", want.UDPZeroChecksum6RX, have.UDPZeroChecksum6RX)
	add("RemoteChecksumTX", want.RemoteChecksumTX, have.RemoteChecksumTX)
	add("RemoteChecksumRX", want.RemoteChecksumRX, have.RemoteChecksumRX)
	add("RemoteChecksumNoPartial", want.RemoteChecksumNoPartial, have.RemoteChecksumNoPartial)
	add("GBP", want.GBP, have.GBP)
	add("GPE", want.GPE, have.GPE)
	// MulticastRoute is not compared: the kernel does not report it.

	// Compared only when set: the kernel derives them otherwise.
	if want.Group.IsValid() {
		add("Group", want.Group, have.Group)
	}
	if want.Local.IsValid() {
		add("Local", want.Local, have.Local)
	}
	if want.Device != "" {
		add("Device", want.Device, have.Device)
	}
	if want.DeviceIndex != 0 {
		add("DeviceIndex", want.DeviceIndex, have.DeviceIndex)
	}
	if !want.SrcPorts.IsZero() {
		add("SrcPorts", want.SrcPorts, have.SrcPorts)
	}
	if want.MTU != 0 {
		add("MTU", want.MTU, have.MTU)
	}
	if len(want.HardwareAddr) > 0 {
		add("HardwareAddr", strings.ToLower(want.HardwareAddr.String()), have.HardwareAddr.String())
	}
	if want.TxQueueLen != 0 {
		add("TxQueueLen", want.TxQueueLen, have.TxQueueLen)
	}
	if want.Alias != "" {
		add("Alias", want.Alias, have.Alias)
	}
	addPtr(&out, "Learning", want.Learning, have.Learning)
	addPtr(&out, "Ageing", want.Ageing, have.Ageing)
	addPtr(&out, "UDPChecksum", want.UDPChecksum, have.UDPChecksum)
	addPtr(&out, "LocalBypass", want.LocalBypass, have.LocalBypass)
	addPtr(&out, "ReservedBits", want.ReservedBits, have.ReservedBits)
	addPtr(&out, "LinkNetNSID", want.LinkNetNSID, have.LinkNetNSID)
	return out
}

// addPtr compares an optional field when want sets it.
func addPtr[T any](out *[]Diff, field string, want, have *T) {
	if want == nil {
		return
	}
	ws, hs := fmt.Sprint(*want), "unset"
	if have != nil {
		hs = fmt.Sprint(*have)
	}
	if ws != hs {
		*out = append(*out, Diff{Field: field, Want: ws, Have: hs})
	}
}
