package agenttrace

import (
	"net"
	"net/http"
	"strings"
)

// WithInstanceName gives the run a human name (a conversation title, a
// ticket subject), which run listings show and search.
func WithInstanceName(name string) InstanceOption {
	return instanceOptionFunc(func(d *InstanceData) { d.Name = name })
}

// WithIPAddress records the IP address of the client the run serves. It is
// personal data: record it only where that is allowed.
func WithIPAddress(ip string) InstanceOption {
	return instanceOptionFunc(func(d *InstanceData) { d.IPAddress = ip })
}

// WithUserAgent records the User-Agent of the client the run serves.
func WithUserAgent(ua string) InstanceOption {
	return instanceOptionFunc(func(d *InstanceData) { d.UserAgent = ua })
}

// FromHTTPRequest returns the instance options an HTTP request tells: its
// client's IP address and its User-Agent. The address is the request's
// RemoteAddr without the port; with trustProxy it is instead the first
// address of X-Forwarded-For (or X-Real-IP), which only a trusted reverse
// proxy should set. A nil request gives no options.
func FromHTTPRequest(r *http.Request, trustProxy bool) InstanceOption {
	return instanceOptionFunc(func(d *InstanceData) {
		if r == nil {
			return
		}
		if ip := clientIP(r, trustProxy); ip != "" {
			d.IPAddress = ip
		}
		if ua := r.UserAgent(); ua != "" {
			d.UserAgent = ua
		}
	})
}

// clientIP is the request's client address (see FromHTTPRequest).
func clientIP(r *http.Request, trustProxy bool) string {
	if trustProxy {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			if ip := net.ParseIP(strings.TrimSpace(first)); ip != nil {
				return ip.String()
			}
		}
		if ip := net.ParseIP(strings.TrimSpace(r.Header.Get("X-Real-IP"))); ip != nil {
			return ip.String()
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.String()
	}
	return ""
}
