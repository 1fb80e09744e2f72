package sio

import (
	"slices"
	"testing"
	"time"
)

func TestLocalAdapterRooms(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	ns := s.Sockets()
	a := ns.Adapter()
	c := newFakeConn(4)
	s.accept(c, newHandshake(nil, "", nil))
	c.recv("0")
	id := socketIDs(ns)[0]
	a.AddAll(id, []string{"x", "y"})
	a.AddAll("nobody", []string{"x"}) // not a local socket: ignored
	got := a.SocketRooms(id)
	slices.Sort(got)
	want := []string{id, "x", "y"}
	slices.Sort(want) // a random id may sort after "x"
	if !slices.Equal(got, want) {
		t.Fatalf("rooms %v, want %v", got, want)
	}
	a.Del(id, "x")
	if got := a.SocketRooms(id); slices.Contains(got, "x") {
		t.Fatalf("rooms %v after Del", got)
	}
	a.DelAll(id)
	if got := a.SocketRooms(id); got != nil {
		t.Fatalf("rooms %v after DelAll", got)
	}
	if err := a.ServerSideEmit([]any{"x"}); err != nil {
		t.Fatal(err)
	}
}

func TestReaches(t *testing.T) {
	rooms := []string{"sid", "user:1"}
	for _, c := range []struct {
		opts BroadcastOptions
		want bool
	}{
		{BroadcastOptions{}, true},
		{BroadcastOptions{Rooms: []string{"user:1"}}, true},
		{BroadcastOptions{Rooms: []string{"user:2"}}, false},
		{BroadcastOptions{Rooms: []string{"user:1"}, Except: []string{"sid"}}, false},
		{BroadcastOptions{Except: []string{"user:2"}}, true},
	} {
		if got := reaches(rooms, c.opts); got != c.want {
			t.Errorf("%+v: %v", c.opts, got)
		}
	}
}

func TestRecoveryWindowExpires(t *testing.T) {
	s := NewServer(Options{RecoveryWindow: time.Minute})
	defer s.Close()
	a := s.Sockets().Adapter().(*LocalAdapter)
	now := time.Now()
	a.now = func() time.Time { return now }
	_ = s.Sockets().Emit("first")
	a.PersistSession(&Session{SID: "s", PID: "p", Rooms: []string{"s"}})
	_ = s.Sockets().Emit("second")
	now = now.Add(2 * time.Minute)
	if sess, _ := a.RestoreSession("p", "1"); sess != nil {
		t.Fatal("restored after the window")
	}
	// Packets older than the window are let go as new ones come.
	_ = s.Sockets().Emit("third")
	if len(a.packets) != 1 {
		t.Fatalf("%d packets kept", len(a.packets))
	}
}
