package main

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/parley-chat/parley/internal/testenv"
)

// metricValue reads one unlabelled series from the server's /metrics.
func metricValue(t *testing.T, srv *testServer, name string) float64 {
	t.Helper()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("%s not on /metrics", name)
	return 0
}

// TestLoginGuessRace: 200 guesses for one account sent at once, at the
// default bcrypt cost, half by username and half by email. At most the
// account's budget (5) is ever compared; the others answer 429 with
// Retry-After; and the right password, once the budget is spent, is
// refused too. With Redis down the node counts alone, to the same budget.
func TestLoginGuessRace(t *testing.T) {
	for _, redisDown := range []bool{false, true} {
		t.Run(fmt.Sprintf("redisDown=%v", redisDown), func(t *testing.T) {
			rds := testenv.StartRedis(t)
			cfg := testConfig(t, "sqlite")
			cfg.RedisURL = rds.URL
			cfg.BcryptCost = 12
			srv := startServer(t, cfg)
			a := signup(t, srv, "race")
			if redisDown {
				rds.Stop()
			}
			before := metricValue(t, srv, "parley_password_checks_total")
			statuses := make([]response, 200)
			var wg sync.WaitGroup
			for i := range statuses {
				login := a.Username
				if i%2 == 1 {
					login = strings.ToUpper(a.Email)
				}
				wg.Go(func() {
					statuses[i] = call(t, "POST", srv.URL+"/api/auth/login", "", map[string]any{"login": login, "password": fmt.Sprintf("wrong guess %d", i)})
				})
			}
			wg.Wait()
			compared := metricValue(t, srv, "parley_password_checks_total") - before
			unauthorized, limited := 0, 0
			for _, r := range statuses {
				switch {
				case r.Status == 401:
					unauthorized++
				case r.Status == 429 && r.errorCode() == "rate_limited" && r.Header.Get("Retry-After") != "":
					limited++
				default:
					t.Fatalf("unexpected answer %d %v %s", r.Status, r.Header, r.Raw)
				}
			}
			t.Logf("200 parallel guesses: %v compared, %d answered 401, %d answered 429", compared, unauthorized, limited)
			if compared > 5 || unauthorized != int(compared) || unauthorized+limited != 200 {
				t.Fatalf("compared %v, 401 %d, 429 %d: want at most 5 compared, each a 401, the rest 429", compared, unauthorized, limited)
			}
			r := call(t, "POST", srv.URL+"/api/auth/login", "", map[string]any{"login": a.Email, "password": a.Password})
			if r.Status != 429 || r.errorCode() != "rate_limited" {
				t.Fatalf("right password after the budget is spent: %d %s", r.Status, r.Raw)
			}
			if after := metricValue(t, srv, "parley_password_checks_total") - before; after != compared {
				t.Fatalf("the refused right password was compared (%v compares, was %v)", after, compared)
			}
		})
	}
}
