package events

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzClientEvent feeds every client event any JSON payload a client could
// send. Whatever it is, the event is answered exactly once, with ok or an
// error in the contract's shape, and nothing panics.
func FuzzClientEvent(f *testing.F) {
	for _, seed := range []string{
		`{"chatId":"64c000000000000000000001","text":"hi","clientMsgId":"c1"}`,
		`{"chatId":"64c000000000000000000001","attachments":["64e000000000000000000001"]}`,
		`{"chatId":"64c000000000000000000001","seq":3}`,
		`{"chatId":"64c000000000000000000001","isTyping":true}`,
		`{"chatId":"64c000000000000000000001","before":5,"limit":1e300}`,
		`{"userIds":["64b000000000000000000002",7]}`,
		`null`, `"str"`, `[1,2]`, `{"chatId":{"$gt":""}}`, `{"text":"\u0000"}`,
	} {
		for i := range clientEvents {
			f.Add(uint8(i), []byte(seed))
		}
	}
	h := newHarness(f)
	_, st := h.connect("fuzz", userA, sessA)
	f.Fuzz(func(t *testing.T, which uint8, raw []byte) {
		var payload any
		if json.Unmarshal(raw, &payload) != nil {
			return // the Socket.IO decoder never hands over invalid JSON
		}
		event := clientEvents[int(which)%len(clientEvents)]
		ack, answers := ackChan()
		st.handle(event, payload, ack)
		select {
		case a := <-answers:
			m := asJSON(t, a)
			if m["ok"] != true {
				if e, _ := m["error"].(map[string]any); e == nil || e["code"] == "" || e["message"] == "" {
					t.Fatalf("%s %s: answer %v is neither ok nor a contract error", event, raw, m)
				}
				if m["error"].(map[string]any)["code"] == "internal" {
					t.Fatalf("%s %s: internal error", event, raw)
				}
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s %s: no answer", event, raw)
		}
	})
}
