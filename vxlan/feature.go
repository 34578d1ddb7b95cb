package vxlan

import (
	"errors"
	"fmt"
	"strings"
)

// FeatureError reports that the kernel refused a link because it does not
// offer a setting the Config asks for: it answered EOPNOTSUPP while the
// Config set one or more of the settings some kernels leave out (see
// optionalFeatures). It matches ErrNotSupported; Err is the kernel's
// error, whose text carries the kernel's own words ("remcsum nopartial is
// not offered").
type FeatureError struct {
	// Name is the link that was to be created or changed.
	Name string
	// Fields are the Config fields asked for that the kernel may lack; the
	// kernel refused one of them (the first, when there is only one).
	Fields []string
	// Err is the kernel's error.
	Err error
}

// Error returns "vxlan: NAME: this kernel does not offer FIELD: KERNEL'S
// ERROR", or names every candidate field when several were set.
func (e *FeatureError) Error() string {
	what := e.Fields[0]
	if len(e.Fields) > 1 {
		what = "one of " + strings.Join(e.Fields, ", ")
	}
	return fmt.Sprintf("vxlan: %s: this kernel does not offer %s: %v", e.Name, what, e.Err)
}

// Unwrap returns the kernel's error.
func (e *FeatureError) Unwrap() error { return e.Err }

// Is makes a FeatureError match ErrNotSupported.
func (e *FeatureError) Is(target error) bool { return target == ErrNotSupported }

// optionalFeatures lists the settings of c that a kernel may not offer
// (built without them, or a distribution's kernel that refuses them), in
// the order of Config.
func (c *Config) optionalFeatures() []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"VNIFilter", c.VNIFilter},
		{"RemoteChecksumTX", c.RemoteChecksumTX},
		{"RemoteChecksumRX", c.RemoteChecksumRX},
		{"RemoteChecksumNoPartial", c.RemoteChecksumNoPartial},
		{"GPE", c.GPE},
		{"LocalBypass", c.LocalBypass != nil},
		{"MulticastRoute", c.MulticastRoute},
		{"ReservedBits", c.ReservedBits != nil},
	} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// explainNotSupported turns the kernel's EOPNOTSUPP for a link of cfg
// into a *FeatureError naming the settings it may lack; other errors, and
// a Config that sets none of them, are returned as they are.
func explainNotSupported(cfg *Config, err error) error {
	if !errors.Is(err, ErrNotSupported) {
		return err
	}
	fields := cfg.optionalFeatures()
	if len(fields) == 0 {
		return err
	}
	return &FeatureError{Name: cfg.Name, Fields: fields, Err: err}
}
