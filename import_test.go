package main

import "testing"

func TestSourceDatabase(t *testing.T) {
	cases := []struct {
		from, db, want string
		wantErr        bool
	}{
		{from: "mongodb://127.0.0.1:27017", want: "chat"},
		{from: "mongodb://127.0.0.1:27017/talk", want: "talk"},
		{from: "mongodb://127.0.0.1:27017/talk?retryWrites=true", want: "talk"},
		{from: "mongodb://[::1]:27017,[::1]:27018/mydb", want: "mydb"}, // net/url refuses this one
		{from: "mongodb://127.0.0.1:27017/talk", db: "other", want: "other"},
		{from: "not a uri", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.from+" "+c.db, func(t *testing.T) {
			got, err := sourceDatabase(c.from, c.db)
			if (err != nil) != c.wantErr || got != c.want {
				t.Fatalf("sourceDatabase(%q, %q) = %q, %v; want %q (error %v)", c.from, c.db, got, err, c.want, c.wantErr)
			}
		})
	}
}
