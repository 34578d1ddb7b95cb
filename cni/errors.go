package cni

import (
	"encoding/json"
	"errors"
	"io/fs"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
	"github.com/containernetworking/cni/pkg/types"
)

// configError is a network configuration the plugin refuses: CNI's code 7
// (invalid network configuration).
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// tryAgainError is a condition on this host that may clear up, such as a
// VTEP device that does not exist yet: CNI's code 11 (try again later).
type tryAgainError struct{ err error }

func (e *tryAgainError) Error() string { return e.err.Error() }
func (e *tryAgainError) Unwrap() error { return e.err }

// notAvailableError is a STATUS that found the plugin unable to add
// containers: CNI's code 50 (plugin not available).
type notAvailableError struct{ err error }

func (e *notAvailableError) Error() string { return e.err.Error() }
func (e *notAvailableError) Unwrap() error { return e.err }

// cniError gives err the code of the CNI specification's list of errors
// that says what the runtime should do about it, as a *types.Error, which
// skel prints as the call's answer (any other error it answers with 999,
// "internal"). An error that already is a *types.Error (a delegated IPAM
// plugin's, or skel's own) keeps its code.
func cniError(err error) error {
	if err == nil {
		return nil
	}
	var te *types.Error
	if errors.As(err, &te) {
		return te
	}
	code := types.ErrInternal
	var (
		opt      *fabric.OptionError
		cfg      *configError
		vcfg     *vxlan.ConfigError
		mismatch *vxlan.MismatchError
		conflict *vxlan.VNIConflictError
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
		again    *tryAgainError
		absent   *notAvailableError
		path     *fs.PathError
	)
	switch {
	case errors.As(err, &absent):
		code = types.ErrPluginNotAvailable
	case errors.As(err, &syntax), errors.As(err, &typ):
		code = types.ErrDecodingFailure
	case errors.As(err, &again): // before the option error it may wrap
		code = types.ErrTryAgainLater
	case errors.As(err, &opt), errors.As(err, &cfg), errors.As(err, &vcfg), errors.As(err, &mismatch), errors.As(err, &conflict):
		code = types.ErrInvalidNetworkConfig
	case errors.As(err, &path):
		code = types.ErrIOFailure
	}
	return types.NewError(code, err.Error(), "")
}
