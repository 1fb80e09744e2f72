package events

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apperr"
)

// decode gives what the Socket.IO decoder would hand over for JSON text.
func decode(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParsePayloadRefusesNonObjects(t *testing.T) {
	for _, s := range []string{`null`, `"text"`, `12`, `[]`, `[{"chatId":"x"}]`, `true`} {
		if _, err := parsePayload(decode(t, s)); !errors.Is(err, errNotObject) {
			t.Errorf("%s: err %v, want errNotObject", s, err)
		}
	}
	if _, err := parsePayload(nil); err == nil {
		t.Error("a missing payload was accepted")
	}
}

func TestPayloadFields(t *testing.T) {
	type want struct {
		value any
		bad   string // the reason, "" when accepted
	}
	cases := []struct {
		json  string
		read  func(p *payload) any
		field string
		want  want
	}{
		{`{"s":"x"}`, func(p *payload) any { return *p.String("s", true) }, "s", want{"x", ""}},
		{`{"s":""}`, func(p *payload) any { return *p.String("s", true) }, "s", want{"", ""}},
		{`{}`, func(p *payload) any { return p.String("s", true) }, "s", want{(*string)(nil), reasonRequired}},
		{`{"s":null}`, func(p *payload) any { return p.String("s", true) }, "s", want{(*string)(nil), reasonRequired}},
		{`{"s":null}`, func(p *payload) any { return p.String("s", false) }, "s", want{(*string)(nil), ""}},
		{`{}`, func(p *payload) any { return p.String("s", false) }, "s", want{(*string)(nil), ""}},
		{`{"s":1}`, func(p *payload) any { return p.String("s", false) }, "s", want{(*string)(nil), reasonString}},
		{`{"s":{}}`, func(p *payload) any { return p.String("s", false) }, "s", want{(*string)(nil), reasonString}},

		{`{"n":7}`, func(p *payload) any { return *p.Int64("n", true) }, "n", want{int64(7), ""}},
		{`{"n":-3}`, func(p *payload) any { return *p.Int64("n", true) }, "n", want{int64(-3), ""}},
		{`{"n":4.0}`, func(p *payload) any { return *p.Int64("n", true) }, "n", want{int64(4), ""}},
		{`{"n":9007199254740991}`, func(p *payload) any { return *p.Int64("n", true) }, "n", want{int64(9007199254740991), ""}},
		{`{"n":9007199254740993}`, func(p *payload) any { return p.Int64("n", true) }, "n", want{(*int64)(nil), reasonInteger}},
		{`{"n":1.5}`, func(p *payload) any { return p.Int64("n", true) }, "n", want{(*int64)(nil), reasonInteger}},
		{`{"n":"1"}`, func(p *payload) any { return p.Int64("n", true) }, "n", want{(*int64)(nil), reasonInteger}},
		{`{"n":true}`, func(p *payload) any { return p.Int64("n", true) }, "n", want{(*int64)(nil), reasonInteger}},

		{`{"b":false}`, func(p *payload) any { return *p.Bool("b", true) }, "b", want{false, ""}},
		{`{"b":"false"}`, func(p *payload) any { return p.Bool("b", true) }, "b", want{(*bool)(nil), reasonBool}},
		{`{"b":0}`, func(p *payload) any { return p.Bool("b", true) }, "b", want{(*bool)(nil), reasonBool}},

		{`{"a":["x","y"]}`, func(p *payload) any { return len(p.Strings("a", true)) }, "a", want{2, ""}},
		{`{"a":[]}`, func(p *payload) any { return p.Strings("a", true) != nil }, "a", want{true, ""}},
		{`{"a":["x",1]}`, func(p *payload) any { return p.Strings("a", true) == nil }, "a", want{true, reasonStrings}},
		{`{"a":"x"}`, func(p *payload) any { return p.Strings("a", true) == nil }, "a", want{true, reasonStrings}},
		{`{"a":[null]}`, func(p *payload) any { return p.Strings("a", true) == nil }, "a", want{true, reasonStrings}},
		{`{}`, func(p *payload) any { return p.Strings("a", false) == nil }, "a", want{true, ""}},
	}
	for _, c := range cases {
		p, err := parsePayload(decode(t, c.json))
		if err != nil {
			t.Fatalf("%s: %v", c.json, err)
		}
		got := c.read(p)
		if !reflect.DeepEqual(got, c.want.value) {
			t.Errorf("%s: value %#v, want %#v", c.json, got, c.want.value)
		}
		err = p.Err()
		if c.want.bad == "" {
			if err != nil {
				t.Errorf("%s: unexpected error %v", c.json, err)
			}
			continue
		}
		var e *apperr.Error
		if !errors.As(err, &e) || e.Code != apperr.InvalidInput || e.Fields[c.field] != c.want.bad {
			t.Errorf("%s: error %v, want invalid_input with %s: %q", c.json, err, c.field, c.want.bad)
		}
	}
}

func TestPayloadCollectsEveryProblem(t *testing.T) {
	p, _ := parsePayload(decode(t, `{"chatId":1,"seq":"x"}`))
	p.String("chatId", true)
	p.Int64("seq", true)
	p.Bool("isTyping", true)
	var e *apperr.Error
	if !errors.As(p.Err(), &e) || len(e.Fields) != 3 {
		t.Fatalf("want all three fields named, got %v", p.Err())
	}
}

func TestTypingThrottleBucket(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := newTypingThrottle(3, 3, func() time.Time { return now })
	passed := 0
	for range 10 {
		if th.allow(chat1, true) {
			passed++
		}
	}
	if passed != 3 {
		t.Fatalf("burst let %d repeats through, want 3", passed)
	}
	if !th.allow(chat1, false) {
		t.Fatal("a change was dropped")
	}
	if th.allow(chat1, false) {
		t.Fatal("a repeat passed an empty bucket")
	}
	// Chats have their own buckets.
	if !th.allow(chat2, true) || !th.allow(chat2, true) {
		t.Fatal("another chat's bucket was spent")
	}
	now = now.Add(time.Second)
	passed = 0
	for range 10 {
		if th.allow(chat1, false) {
			passed++
		}
	}
	if passed != 3 {
		t.Fatalf("after a second %d repeats passed, want 3", passed)
	}
}

func TestTypingThrottleForgetsBeyondItsBound(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := newTypingThrottle(3, 3, func() time.Time { return now })
	for i := range maxTypingChats * 3 {
		th.allow(string(rune(i)), true)
	}
	if len(th.chats) > maxTypingChats {
		t.Fatalf("%d chats remembered, bound is %d", len(th.chats), maxTypingChats)
	}
}
