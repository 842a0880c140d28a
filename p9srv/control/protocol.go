package control

import (
	"github.com/union9p/union9p/union/tenant"
)

// MaxLine is the longest request or answer line, newline included.
const MaxLine = 64 << 10

// Request is one line from a client.
type Request struct {
	Op   string `json:"op"`
	Name string `json:"name,omitempty"`
	// Quota is the tenant's own quota for op "quota".
	Quota *tenant.Quota `json:"quota,omitempty"`
	// Default, for op "quota" instead of Quota, returns the tenant to the
	// server's default quota.
	Default bool `json:"default,omitempty"`
}

// Operations.
const (
	OpList   = "list"
	OpAdd    = "add"
	OpReset  = "reset"
	OpRemove = "remove"
	OpQuota  = "quota"
)

// Response is one line from the server.
type Response struct {
	OK      bool          `json:"ok"`
	Code    Code          `json:"code,omitempty"`
	Error   string        `json:"error,omitempty"`
	Tenants []tenant.Info `json:"tenants,omitempty"`
}

// Code says what kind of error a Response reports.
type Code string

const (
	CodeBadRequest Code = "bad_request" // not a request this server understands
	CodeBadName    Code = "bad_name"    // the tenant name is invalid
	CodeNotFound   Code = "not_found"   // no such tenant
	CodeExists     Code = "exists"      // the tenant exists already
	CodeBusy       Code = "busy"        // another operation on it, or its connections did not end
	CodeDenied     Code = "denied"      // the peer may not use this socket
	CodeClosed     Code = "closed"      // the server is stopping
	CodeFailed     Code = "failed"      // anything else (the message says what)
)

// Error is an error answered by the server.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }
