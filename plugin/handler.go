package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// MaxRequestBytes bounds a request body; dockerd's are a few hundred bytes.
const MaxRequestBytes = 1 << 20

// MediaType is the content type of the plugin protocol's responses.
const MediaType = "application/vnd.docker.plugins.v1+json"

// NewHandler serves Docker's remote network driver protocol for d: every
// call dockerd 20.10 and later makes, each a POST to /<Call>.
func NewHandler(d *Driver) http.Handler {
	h := &handler{d: d, log: d.log}
	mux := http.NewServeMux()
	route := func(call string, fn func(context.Context, []byte) (any, error)) {
		mux.HandleFunc("POST /"+call, h.serve(call, fn))
	}
	route("Plugin.Activate", func(context.Context, []byte) (any, error) {
		return ActivateResponse{Implements: []string{"NetworkDriver"}}, nil
	})
	route("NetworkDriver.GetCapabilities", func(context.Context, []byte) (any, error) {
		return d.Capabilities(), nil
	})
	route("NetworkDriver.CreateNetwork", withRequest(func(ctx context.Context, req *CreateNetworkRequest) (any, error) {
		return Response{}, d.CreateNetwork(ctx, req)
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
		return CreateEndpointResponse{Interface: iface}, err
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
		h.reply(w, http.StatusNotFound, Response{Err: fmt.Sprintf("%s: unknown call %s %s", d.cfg.Name, r.Method, r.URL.Path)})
	})
	return mux
}

type handler struct {
	d   *Driver
	log *slog.Logger
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

// errBadRequest marks errors in the request itself.
var errBadRequest = errors.New("bad request")

// decode reads a JSON request body; an empty body is an empty request.
func decode(b []byte, v any) error {
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	return nil
}

func (h *handler) serve(call string, fn func(context.Context, []byte) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
		if err != nil {
			h.reply(w, http.StatusRequestEntityTooLarge, Response{Err: fmt.Sprintf("%s: %s: request body over %d bytes", h.d.cfg.Name, call, MaxRequestBytes)})
			return
		}
		resp, err := fn(r.Context(), body)
		h.log.Debug("call", "call", call, "took", time.Since(start), "request", string(body), "error", err)
		if err != nil {
			h.log.Warn("call failed", "call", call, "error", err)
			// dockerd shows the user "remote: <Err>" for a 200 answer
			// carrying Err; other statuses lose that form.
			status := http.StatusOK
			if errors.Is(err, errBadRequest) {
				status = http.StatusBadRequest
			}
			h.reply(w, status, Response{Err: h.d.cfg.Name + ": " + err.Error()})
			return
		}
		h.reply(w, http.StatusOK, resp)
	}
}

func (h *handler) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", MediaType)
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		h.log.Warn("writing response", "error", err)
	}
}
