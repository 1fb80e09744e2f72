package events

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the socket series on /metrics. A nil Registerer still gets
// working collectors, just unregistered, so no call site checks for nil.
type metrics struct {
	sockets  prometheus.Gauge
	events   *prometheus.CounterVec
	limitedC *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sockets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_socket_connections", Help: "Socket.IO sockets connected to this node.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_socket_events_total", Help: "Socket.IO client events handled, by event and result (ok or an error code).",
		}, []string{"event", "result"}),
		limitedC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_socket_limited_total", Help: "Socket handshakes and events refused by a flood limit, by limit.",
		}, []string{"limit"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.sockets, m.events, m.limitedC} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register socket metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) connected()    { m.sockets.Inc() }
func (m *metrics) disconnected() { m.sockets.Dec() }

// event counts one handled event. Only known event names reach here, so
// the label set stays bounded whatever clients send.
func (m *metrics) event(name, result string) { m.events.WithLabelValues(name, result).Inc() }

// limited counts one refusal by the named limit (a fixed set of names).
func (m *metrics) limited(limit string) { m.limitedC.WithLabelValues(limit).Inc() }
