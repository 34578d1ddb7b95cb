package rtlink

import (
	"encoding/binary"
	"fmt"
)

// walkAttributes calls f with the type and payload of each netlink
// attribute in b, in order, without copying: data is a slice of b. The
// nested and byte-order flags are cleared from the type. It stops
// at the first error of f, or of the framing (a length shorter than the
// attribute header or past the end of b).
//
// netlink.AttributeDecoder copies every attribute it steps over; this is
// for the top level of messages that come by the thousand in a dump, where
// most attributes are skipped.
func walkAttributes(b []byte, f func(typ uint16, data []byte) error) error {
	const headerLen = 4
	for len(b) > 0 {
		if len(b) < headerLen {
			return fmt.Errorf("attribute header: %d bytes left", len(b))
		}
		n := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) &^ (1<<15 | 1<<14) // NLA_F_NESTED, NLA_F_NET_BYTEORDER
		if n < headerLen || n > len(b) {
			return fmt.Errorf("attribute of type %d: length %d with %d bytes left", typ, n, len(b))
		}
		if err := f(typ, b[headerLen:n]); err != nil {
			return err
		}
		n = (n + 3) &^ 3 // attributes are 4-byte aligned
		if n > len(b) {
			n = len(b)
		}
		b = b[n:]
	}
	return nil
}

// attrUint32 is the native-endian u32 payload of an attribute of type typ.
func attrUint32(typ uint16, data []byte) (uint32, error) {
	if len(data) != 4 {
		return 0, fmt.Errorf("attribute %d is not a uint32; length: %d", typ, len(data))
	}
	return binary.NativeEndian.Uint32(data), nil
}

// attrInt stores the u32 payload of an attribute of type typ in *v.
func attrInt(v *int, typ uint16, data []byte) error {
	u, err := attrUint32(typ, data)
	*v = int(u)
	return err
}
