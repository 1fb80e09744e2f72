package mongo

import (
	"testing"

	mdriver "go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/parley-chat/parley/store"
)

// MongoDB names the refusing index, so no re-read is needed: the probes here
// have no collection and would panic if conflict read them.
func TestConflictFromIndexName(t *testing.T) {
	probes := []probe{
		{on: store.ConflictClientMsgID, index: idxClientMsgID},
		{on: store.ConflictSeq, index: idxSeq},
		{on: store.ConflictID, index: idxPrimary},
	}
	cases := map[string]store.Conflict{
		`E11000 duplicate key error collection: parley.messages index: chatId_seq_unique dup key: { chatId: "a", seq: 3 }`:                                             store.ConflictSeq,
		`E11000 duplicate key error collection: parley.messages index: chatId_senderId_clientMsgId_unique dup key: { chatId: "a", senderId: "b", clientMsgId: "c:x" }`: store.ConflictClientMsgID,
		`E11000 duplicate key error collection: parley.messages index: _id_ dup key: { _id: "x" }`:                                                                     store.ConflictID,
	}
	for msg, want := range cases {
		for _, err := range []error{
			mdriver.WriteException{WriteErrors: []mdriver.WriteError{{Code: 11000, Message: msg}}},
			mdriver.BulkWriteException{WriteErrors: []mdriver.BulkWriteError{{WriteError: mdriver.WriteError{Index: 2, Code: 11000, Message: msg}}}},
			mdriver.WriteError{Code: 11000, Message: msg},
		} {
			if got := store.ConflictOn(conflict(t.Context(), err, probes...)); got != want {
				t.Errorf("conflict(%T %q) = %q, want %q", err, msg, got, want)
			}
		}
	}
}
