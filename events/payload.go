package events

import (
	"encoding/json"
	"math"

	"github.com/parley-chat/parley/internal/apperr"
)

// The Socket.IO decoder hands payloads over as encoding/json decodes into
// `any`: map[string]any, []any, string, float64, bool or nil. This parser
// turns one such value into typed fields and collects every problem, so a
// client learns all of them from one ack, in the same `fields` shape REST uses.

// Reasons a field can be refused; clients may match on them.
const (
	reasonRequired = "required"
	reasonString   = "must be a string"
	reasonInteger  = "must be an integer"
	reasonBool     = "must be a boolean"
	reasonStrings  = "must be an array of strings"
)

// maxSafeInt is the largest integer a JavaScript number holds exactly; past
// it a client's "integer" is no longer the number it meant.
const maxSafeInt = 1<<53 - 1

// errNotObject answers a payload that is absent or not a JSON object.
var errNotObject = apperr.New(apperr.InvalidInput, "the payload must be an object")

// payload reads the fields of one event payload.
type payload struct {
	obj map[string]any
	bad map[string]string
}

// parsePayload accepts only a JSON object; strings, numbers, arrays, null
// and a missing payload are all invalid_input.
func parsePayload(v any) (*payload, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errNotObject
	}
	return &payload{obj: obj}, nil
}

func (p *payload) refuse(name, reason string) {
	if p.bad == nil {
		p.bad = map[string]string{}
	}
	p.bad[name] = reason
}

// lookup treats an explicit null like an absent field: the contract renders
// empty values as null, and clients echo that shape back.
func (p *payload) lookup(name string, required bool) (any, bool) {
	v, ok := p.obj[name]
	if !ok || v == nil {
		if required {
			p.refuse(name, reasonRequired)
		}
		return nil, false
	}
	return v, true
}

// String returns the field, or nil when absent or refused.
func (p *payload) String(name string, required bool) *string {
	v, ok := p.lookup(name, required)
	if !ok {
		return nil
	}
	s, ok := v.(string)
	if !ok {
		p.refuse(name, reasonString)
		return nil
	}
	return &s
}

// Int64 accepts an integer-valued number within JavaScript's safe range.
func (p *payload) Int64(name string, required bool) *int64 {
	v, ok := p.lookup(name, required)
	if !ok {
		return nil
	}
	n, ok := integer(v)
	if !ok {
		p.refuse(name, reasonInteger)
		return nil
	}
	return &n
}

func integer(v any) (int64, bool) {
	switch n := v.(type) {
	case float64:
		if math.IsNaN(n) || math.IsInf(n, 0) || n != math.Trunc(n) || math.Abs(n) > maxSafeInt {
			return 0, false
		}
		return int64(n), true
	case int:
		return int64(n), true
	case int64:
		return n, true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}

// Bool returns the field, or nil when absent or refused.
func (p *payload) Bool(name string, required bool) *bool {
	v, ok := p.lookup(name, required)
	if !ok {
		return nil
	}
	b, ok := v.(bool)
	if !ok {
		p.refuse(name, reasonBool)
		return nil
	}
	return &b
}

// Strings returns the array (empty, not nil, when present and empty), or
// nil when absent or refused.
func (p *payload) Strings(name string, required bool) []string {
	v, ok := p.lookup(name, required)
	if !ok {
		return nil
	}
	var out []string
	switch a := v.(type) {
	case []any:
		out = make([]string, 0, len(a))
		for _, e := range a {
			s, ok := e.(string)
			if !ok {
				p.refuse(name, reasonStrings)
				return nil
			}
			out = append(out, s)
		}
	case []string:
		out = append(make([]string, 0, len(a)), a...)
	default:
		p.refuse(name, reasonStrings)
		return nil
	}
	return out
}

// Err is the invalid_input error naming every refused field, or nil.
func (p *payload) Err() error {
	if len(p.bad) == 0 {
		return nil
	}
	return apperr.Invalid("invalid payload", p.bad)
}
