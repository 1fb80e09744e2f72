// Package eio is Parley's Engine.IO server (protocol 4, and 3 for socket.io-client 2.x):
// HTTP long-polling and WebSocket transports, the upgrade, heartbeats from one scheduler,
// and a bounded outbound queue per socket.
//
// API changes (from ENGINE-SEAM.md): Options.AllowUpgrades (bool, "default true" cannot be told
// from unset) is Options.DisableUpgrades; Options.CORS is a struct CORS{AllowOrigins}; Metrics is
// built by NewMetrics() and registered by the caller via Metrics.Collectors(); Send returns ErrClosed
// once the socket is closed.
package eio
