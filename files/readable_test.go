package files

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"

	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/store"
)

// readStore knows one file and the chats that carry it.
type readStore struct {
	Store
	file  *store.File
	chats []string
}

func (s *readStore) FileByID(_ context.Context, id string) (*store.File, error) {
	if s.file == nil || id != s.file.ID {
		return nil, store.ErrNotFound
	}
	return s.file, nil
}

func (s *readStore) ChatsWithFile(context.Context, string, int) ([]string, error) {
	return s.chats, nil
}

// members answers from a fixed chat → users map, or fails with err.
type members struct {
	in  map[string][]string
	err error
}

func (m members) MemberOfAny(_ context.Context, userID string, chatIDs []string) (bool, error) {
	if m.err != nil {
		return false, m.err
	}
	for _, c := range chatIDs {
		if slices.Contains(m.in[c], userID) {
			return true, nil
		}
	}
	return false, nil
}

func TestReadable(t *testing.T) {
	owner, peer, stranger := store.NewID(), store.NewID(), store.NewID()
	chatA, chatB := store.NewID(), store.NewID()
	f := &store.File{ID: store.NewID(), OwnerID: owner, Kind: store.FileAttachment}
	down := errors.New("cache down")
	cases := []struct {
		name    string
		user    string
		id      string
		chats   []string
		members members
		want    apperr.Code // "" when readable
		wantErr error
	}{
		{"the uploader", owner, f.ID, nil, members{}, "", nil},
		{"a member of a chat that carries it", peer, f.ID, []string{chatA, chatB}, members{in: map[string][]string{chatB: {peer}}}, "", nil},
		{"someone in no such chat", stranger, f.ID, []string{chatA, chatB}, members{in: map[string][]string{chatB: {peer}}}, apperr.NotFound, nil},
		{"a file in no chat", peer, f.ID, nil, members{}, apperr.NotFound, nil},
		{"an unknown file", owner, store.NewID(), nil, members{}, apperr.NotFound, nil},
		{"a malformed id", owner, "../etc", nil, members{}, apperr.NotFound, nil},
		{"membership cannot be told", peer, f.ID, []string{chatA}, members{err: down}, apperr.Internal, down},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New(&readStore{file: f, chats: tc.chats}, tc.members, Limits{}, slog.New(slog.DiscardHandler))
			got, err := s.Readable(t.Context(), tc.user, tc.id)
			if tc.want == "" {
				if err != nil || got != f {
					t.Fatalf("Readable = %v, %v; want the file", got, err)
				}
				return
			}
			if code := apperr.From(err).Code; code != tc.want {
				t.Fatalf("Readable error %v (code %s), want code %s", err, code, tc.want)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Readable error %v, want it to wrap %v", err, tc.wantErr)
			}
		})
	}
}
