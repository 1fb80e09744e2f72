package eio

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the engine's prometheus collectors; the caller registers Collectors().
type Metrics struct {
	SocketsOpen    prometheus.Gauge
	Handshakes     *prometheus.CounterVec // label "result": ok | refused
	BytesIn        *prometheus.CounterVec // label "transport"
	BytesOut       *prometheus.CounterVec // label "transport"
	QueueOverflows prometheus.Counter
}

// NewMetrics makes the collectors, named parley_engine_*.
func NewMetrics() *Metrics {
	return &Metrics{
		SocketsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_engine_sockets_open", Help: "Engine.IO sockets open now.",
		}),
		Handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_engine_handshakes_total", Help: "Engine.IO handshakes by result (ok, refused).",
		}, []string{"result"}),
		BytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_engine_bytes_in_total", Help: "Bytes of Engine.IO packets received, by transport.",
		}, []string{"transport"}),
		BytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_engine_bytes_out_total", Help: "Bytes of Engine.IO packets written, by transport.",
		}, []string{"transport"}),
		QueueOverflows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_engine_queue_overflows_total", Help: "Sockets closed because their outbound queue passed MaxQueueBytes.",
		}),
	}
}

// Collectors lists every collector, for prometheus.Registerer.MustRegister.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.SocketsOpen, m.Handshakes, m.BytesIn, m.BytesOut, m.QueueOverflows}
}

// engineMetrics holds the resolved collectors the hot paths touch (no label lookups there).
type engineMetrics struct {
	socketsOpen                     prometheus.Gauge
	handshakesOK, handshakesRefused prometheus.Counter
	queueOverflows                  prometheus.Counter
	bytesIn, bytesOut               [2]prometheus.Counter // by transportKind
}

func newEngineMetrics(m *Metrics) engineMetrics {
	if m == nil {
		m = NewMetrics() // unregistered: counted, never exported
	}
	return engineMetrics{
		socketsOpen:       m.SocketsOpen,
		handshakesOK:      m.Handshakes.WithLabelValues("ok"),
		handshakesRefused: m.Handshakes.WithLabelValues("refused"),
		queueOverflows:    m.QueueOverflows,
		bytesIn:           [2]prometheus.Counter{m.BytesIn.WithLabelValues("polling"), m.BytesIn.WithLabelValues("websocket")},
		bytesOut:          [2]prometheus.Counter{m.BytesOut.WithLabelValues("polling"), m.BytesOut.WithLabelValues("websocket")},
	}
}
