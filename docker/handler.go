package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
)

// MaxRequestBytes bounds a request body; dockerd's are a few hundred bytes.
const MaxRequestBytes = 1 << 20

// MaxRequestDepth bounds the nesting of objects and arrays in a request
// body; dockerd's nest four deep at most.
const MaxRequestDepth = 32

// DefaultCallTimeout is how long a call may take before the handler answers
// it with an error that says so, rather than leave dockerd (and the user's
// docker command) waiting on it.
const DefaultCallTimeout = 25 * time.Second

// MaxIDLength is the longest network or endpoint ID accepted.
const MaxIDLength = 64

// MediaType is the content type of the plugin protocol's responses.
const MediaType = "application/vnd.docker.plugins.v1+json"

// HandlerOption configures NewHandler.
type HandlerOption func(*handler)

// WithCallTimeout sets how long a call may take (DefaultCallTimeout if not
// given): when it runs over, the call's context is cancelled and dockerd
// is answered with an error saying so.
func WithCallTimeout(d time.Duration) HandlerOption {
	return func(h *handler) { h.timeout = d }
}

// NewHandler serves Docker's remote network driver protocol for d: every
// call dockerd 20.10 and later makes, each a POST to /<Call>.
//
// Every request is bounded: a body of at most MaxRequestBytes nested at
// most MaxRequestDepth deep, network and endpoint IDs of 1 to MaxIDLength
// lowercase letters and digits (dockerd's are 64 hex digits, a swarm's 25
// base-36 characters), and a deadline per call. A CreateNetwork or
// CreateEndpoint that succeeds after its deadline was answered with an
// error is undone, so the plugin keeps nothing dockerd believes failed.
func NewHandler(d *Driver, opts ...HandlerOption) http.Handler {
	h := &handler{d: d, log: d.log, timeout: DefaultCallTimeout}
	for _, o := range opts {
		o(h)
	}
	mux := http.NewServeMux()
	route := func(call string, fn func(context.Context, []byte) (any, error)) {
		mux.HandleFunc("POST /"+call, h.serve(call, fn))
	}
	route("Plugin.Activate", func(context.Context, []byte) (any, error) {
		return ActivateResponse{Implements: []string{"NetworkDriver", "IpamDriver"}}, nil
	})
	route("NetworkDriver.GetCapabilities", func(context.Context, []byte) (any, error) {
		return d.Capabilities(), nil
	})
	route("NetworkDriver.CreateNetwork", withRequest(func(ctx context.Context, req *CreateNetworkRequest) (any, error) {
		created, err := d.CreateNetwork(ctx, req)
		if err != nil {
			return nil, err
		}
		if !created {
			return Response{}, nil // a repeat: nothing of this call to undo
		}
		return undoable{Response{}, func(ctx context.Context) error { return d.DeleteNetwork(ctx, req.NetworkID) }}, nil
	}))
	route("NetworkDriver.AllocateNetwork", withRequest(func(ctx context.Context, req *AllocateNetworkRequest) (any, error) {
		opts, err := d.AllocateNetwork(ctx, req)
		return AllocateNetworkResponse{Options: opts}, err
	}))
	route("NetworkDriver.DeleteNetwork", withRequest(func(ctx context.Context, req *NetworkRequest) (any, error) {
		return Response{}, d.DeleteNetwork(ctx, req.NetworkID)
	}))
	route("NetworkDriver.FreeNetwork", withRequest(func(ctx context.Context, req *NetworkRequest) (any, error) {
		return Response{}, d.FreeNetwork(ctx, req.NetworkID)
	}))
	route("NetworkDriver.CreateEndpoint", withRequest(func(ctx context.Context, req *CreateEndpointRequest) (any, error) {
		iface, err := d.CreateEndpoint(ctx, req)
		if err != nil {
			return nil, err
		}
		return undoable{CreateEndpointResponse{Interface: iface}, func(ctx context.Context) error {
			return d.DeleteEndpoint(ctx, req.NetworkID, req.EndpointID)
		}}, nil
	}))
	route("NetworkDriver.DeleteEndpoint", withRequest(func(ctx context.Context, req *EndpointRequest) (any, error) {
		return Response{}, d.DeleteEndpoint(ctx, req.NetworkID, req.EndpointID)
	}))
	route("NetworkDriver.EndpointOperInfo", func(ctx context.Context, b []byte) (any, error) {
		var req EndpointRequest
		_ = decode(b, &req) // must succeed: an unreadable request gets an empty answer
		return EndpointInfoResponse{Value: d.EndpointInfo(ctx, req.NetworkID, req.EndpointID)}, nil
	})
	route("NetworkDriver.Join", withRequest(func(ctx context.Context, req *JoinRequest) (any, error) {
		resp, err := d.Join(ctx, req)
		if err != nil {
			return nil, err
		}
		return resp, nil
	}))
	route("NetworkDriver.Leave", withRequest(func(ctx context.Context, req *EndpointRequest) (any, error) {
		return Response{}, d.Leave(ctx, req.NetworkID, req.EndpointID)
	}))
	route("IpamDriver.GetCapabilities", func(context.Context, []byte) (any, error) { return d.IPAMCapabilities(), nil })
	route("IpamDriver.GetDefaultAddressSpaces", func(context.Context, []byte) (any, error) { return d.AddressSpaces(), nil })
	route("IpamDriver.RequestPool", withRequest(func(ctx context.Context, req *RequestPoolRequest) (any, error) {
		resp, err := d.RequestPool(ctx, req)
		if err != nil {
			return nil, err
		}
		return undoable{resp, func(ctx context.Context) error { return d.ReleasePool(ctx, resp.PoolID) }}, nil
	}))
	route("IpamDriver.ReleasePool", withRequest(func(ctx context.Context, req *PoolRequest) (any, error) {
		return Response{}, d.ReleasePool(ctx, req.PoolID)
	}))
	route("IpamDriver.RequestAddress", withRequest(func(ctx context.Context, req *RequestAddressRequest) (any, error) {
		resp, err := d.RequestAddress(ctx, req)
		if err != nil {
			return nil, err
		}
		return undoable{resp, func(ctx context.Context) error {
			return d.ReleaseAddress(ctx, &ReleaseAddressRequest{PoolID: req.PoolID, Address: resp.Address})
		}}, nil
	}))
	route("IpamDriver.ReleaseAddress", withRequest(func(ctx context.Context, req *ReleaseAddressRequest) (any, error) {
		return Response{}, d.ReleaseAddress(ctx, req)
	}))
	route(StatusCall, func(ctx context.Context, _ []byte) (any, error) { return d.Status(ctx), nil }) // see status.go
	route("NetworkDriver.DiscoverNew", h.discover(d.DiscoverNew))
	route("NetworkDriver.DiscoverDelete", h.discover(d.DiscoverDelete))
	for _, call := range []string{"NetworkDriver.ProgramExternalConnectivity", "NetworkDriver.RevokeExternalConnectivity"} {
		// No NAT and no port mapping: containers are reached on their own
		// addresses, so there is no external connectivity to program.
		route(call, withRequest(func(context.Context, *EndpointRequest) (any, error) {
			return Response{}, nil
		}))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		d.cfg.Metrics.observeCall(callUnknown, resultNotFound, 0)
		h.reply(w, http.StatusNotFound, Response{Err: fmt.Sprintf("%s: unknown call %s %s", d.cfg.Name, r.Method, r.URL.Path)})
	})
	return mux
}

type handler struct {
	d       *Driver
	log     *slog.Logger
	timeout time.Duration
}

// discover decodes a discovery notification; only node discovery (type 1)
// carries data this driver uses.
func (h *handler) discover(fn func(context.Context, NodeDiscoveryData)) func(context.Context, []byte) (any, error) {
	return func(ctx context.Context, b []byte) (any, error) {
		var req struct {
			DiscoveryType int
			DiscoveryData json.RawMessage
		}
		if err := decode(b, &req); err != nil {
			return nil, err
		}
		if req.DiscoveryType == 1 {
			var node NodeDiscoveryData
			if err := json.Unmarshal(req.DiscoveryData, &node); err != nil {
				return nil, fmt.Errorf("node discovery data: %w", err)
			}
			fn(ctx, node)
		}
		return Response{}, nil
	}
}

// withRequest decodes the body into the call's request type before fn.
func withRequest[Req any](fn func(context.Context, *Req) (any, error)) func(context.Context, []byte) (any, error) {
	return func(ctx context.Context, b []byte) (any, error) {
		var req Req
		if err := decode(b, &req); err != nil {
			return nil, err
		}
		return fn(ctx, &req)
	}
}

// undoable is the answer of a call that made something, with how to undo
// it: when the call's deadline passed first and dockerd was told it failed,
// what it made must not stay.
type undoable struct {
	resp any
	undo func(context.Context) error
}

// errBadRequest marks errors in the request itself.
var errBadRequest = errors.New("bad request")

// decode reads a JSON request body; an empty body is an empty request. A
// body nested deeper than MaxRequestDepth, or whose NetworkID or EndpointID
// is not an ID dockerd makes, is a bad request.
func decode(b []byte, v any) error {
	if len(b) == 0 {
		return nil
	}
	if err := checkDepth(b, MaxRequestDepth); err != nil {
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	// The IDs become link names, link aliases and state keys.
	var ids struct{ NetworkID, EndpointID *string }
	_ = json.Unmarshal(b, &ids) // the body was just read as JSON
	for _, id := range []struct {
		field string
		v     *string
	}{{"NetworkID", ids.NetworkID}, {"EndpointID", ids.EndpointID}} {
		if id.v != nil && *id.v != "" && !validID(*id.v) {
			return fmt.Errorf("%w: %s: not an ID dockerd makes; accepted: 1 to %d lowercase letters and digits", errBadRequest, id.field, MaxIDLength)
		}
	}
	return nil
}

// callIDs returns the slog attributes "network" and "endpoint" of a call,
// the short IDs its body names, as the driver's own log lines give them.
func callIDs(body []byte) []any {
	var ids struct{ NetworkID, EndpointID string }
	if json.Unmarshal(body, &ids) != nil {
		return nil
	}
	var attrs []any
	if ids.NetworkID != "" {
		attrs = append(attrs, "network", fabric.ShortID(ids.NetworkID))
	}
	if ids.EndpointID != "" {
		attrs = append(attrs, "endpoint", fabric.ShortID(ids.EndpointID))
	}
	return attrs
}

// validID reports whether id can be a network or endpoint ID: 1 to
// MaxIDLength lowercase letters and digits, so that it is safe in link
// names, link aliases and state keys.
func validID(id string) bool {
	if id == "" || len(id) > MaxIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// checkDepth refuses JSON nested deeper than max, scanning the bytes
// (strings skipped) before anything is decoded.
func checkDepth(b []byte, max int) error {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString && c == '"':
			inString = false
		case inString:
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > max {
				return fmt.Errorf("nested more than %d deep", max)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// result is what a call returned.
type result struct {
	resp any
	err  error
}

// serve answers call with fn's result, or with an error once the call's
// deadline passes, and counts it in the driver's metrics (by call and
// result, with its time): every route, IPAM's included, goes through here,
// so every call is counted the same way. fn runs on a goroutine of its own, with a context that
// is cancelled at the deadline; a success that comes after the answer was
// an error is undone, if fn answered with an undoable.
func (h *handler) serve(call string, fn func(context.Context, []byte) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			h.d.cfg.Metrics.observeCall(call, resultBadRequest, time.Since(start))
			if errors.As(err, &tooBig) {
				h.reply(
					w,
					http.StatusRequestEntityTooLarge,
					Response{Err: fmt.Sprintf("%s: %s: request body over %d bytes", h.d.cfg.Name, call, MaxRequestBytes)},
				)
			} else {
				h.reply(w, http.StatusBadRequest, Response{Err: fmt.Sprintf("%s: %s: reading the request: %v", h.d.cfg.Name, call, err)})
			}
			return
		}
		log := h.log.With(callIDs(body)...) // every line of the call names its network and endpoint
		res := h.runBounded(r.Context(), log, call, fn, body, start)
		log.Debug("call", "call", call, "took", time.Since(start), "request", string(body), "error", res.err)
		h.answer(w, log, call, res)
		h.d.cfg.Metrics.observeCall(call, callResult(res.err), time.Since(start))
	}
}

// runBounded runs the call with the handler's deadline. Whichever comes
// first, the call's end or its deadline, decides the answer; a call that
// finishes after its deadline was answered with an error, so what it made
// is undone.
func (h *handler) runBounded(
	parent context.Context,
	log *slog.Logger,
	call string,
	fn func(context.Context, []byte) (any, error),
	body []byte,
	start time.Time,
) result {
	ctx, cancel := context.WithTimeout(parent, h.timeout)
	defer cancel()
	var (
		mu       sync.Mutex // makes the choice between end and deadline once
		answered bool       // the deadline passed and dockerd got an error
		done     = make(chan result, 1)
	)
	go func() {
		res := h.call(ctx, call, fn, body)
		mu.Lock()
		if !answered {
			done <- res // buffered: sent under mu, so the deadline's check sees it
			mu.Unlock()
			return
		}
		mu.Unlock()
		h.undoLate(ctx, log, call, res, start)
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		mu.Lock()
		select {
		case res = <-done: // finished just in time
		default:
			answered = true
			res.err = ctx.Err()
		}
		mu.Unlock()
	}
	if res.err != nil && ctx.Err() != nil && (errors.Is(res.err, context.DeadlineExceeded) || errors.Is(res.err, context.Canceled)) {
		// Over time: the host calls gave up, or the answer could not wait.
		res.err = fmt.Errorf("%s did not finish within %s (%w); it was cancelled, and whatever it made is undone", call, h.timeout, ctx.Err())
	}
	return res
}

// undoLate undoes what a call made that finished after dockerd had its
// answer (an error, at the deadline).
func (h *handler) undoLate(ctx context.Context, log *slog.Logger, call string, res result, start time.Time) {
	undone := false
	if u, ok := res.resp.(undoable); ok && res.err == nil {
		err := u.undo(context.WithoutCancel(ctx))
		if err != nil {
			log.Error("undoing a call that finished after its deadline", "call", call, "error", err)
		}
		undone = err == nil
	}
	log.Warn("call finished after its deadline", "call", call, "took", time.Since(start), "error", res.err, "undone", undone)
}

// answer writes the call's result, or its error as dockerd shows it.
func (h *handler) answer(w http.ResponseWriter, log *slog.Logger, call string, res result) {
	if res.err != nil {
		log.Warn("call failed", "call", call, "error", res.err)
		// dockerd shows the user "remote: <Err>" for a 200 answer
		// carrying Err; other statuses lose that form.
		status := http.StatusOK
		if errors.Is(res.err, errBadRequest) {
			status = http.StatusBadRequest
		}
		resp := Response{Err: h.d.cfg.Name + ": " + res.err.Error()}
		if strings.HasPrefix(call, "IpamDriver.") {
			resp.Error = resp.Err // the IPAM protocol's name for it
		}
		h.reply(w, status, resp)
		return
	}
	if u, ok := res.resp.(undoable); ok {
		res.resp = u.resp
	}
	h.reply(w, http.StatusOK, res.resp)
}

// call runs fn, turning a panic into an error so that one bad call cannot
// take the plugin, and every container start on the host, down with it.
func (h *handler) call(ctx context.Context, call string, fn func(context.Context, []byte) (any, error), body []byte) (res result) {
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("call panicked", "call", call, "panic", p, "stack", string(debug.Stack()))
			res = result{err: fmt.Errorf("%s failed: internal error (the plugin's log has the details)", call)}
		}
	}()
	resp, err := fn(ctx, body)
	return result{resp, err}
}

func (h *handler) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", MediaType)
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		h.log.Warn("writing response", "error", err)
	}
}
