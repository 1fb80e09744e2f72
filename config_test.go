package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port != 5000 || cfg.DataDir != "./data" || cfg.MongoDB != "parley" || cfg.TokenTTL != 168*time.Hour || cfg.BcryptCost != 12 || cfg.LogFormat != "text" || cfg.CookieSecure {
		t.Fatalf("defaults: %+v", cfg)
	}
	// Connection-state recovery and profiles are opt-in.
	if cfg.RecoveryWindow != 0 || cfg.PProf || cfg.SocketQueueBytes != 4<<20 {
		t.Fatalf("socket defaults: %+v", cfg)
	}
}

func TestConfigDotEnv(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("PORT=6001\nMONGO_DB=fromfile\n# comment\nCORS_ORIGINS=http://a.example,https://b.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(dir, []string{"MONGO_DB=fromenv"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port != 6001 {
		t.Errorf(".env PORT not loaded: %d", cfg.Port)
	}
	if cfg.MongoDB != "fromenv" {
		t.Errorf("the environment must win over .env: %q", cfg.MongoDB)
	}
	if len(cfg.CORSOrigins) != 2 {
		t.Errorf("CORS_ORIGINS: %v", cfg.CORSOrigins)
	}
}

func TestConfigCookieSecure(t *testing.T) {
	cfg, err := loadConfig(t.TempDir(), []string{"COOKIE_SECURE=true"})
	if err != nil || !cfg.CookieSecure {
		t.Fatalf("COOKIE_SECURE=true: %v, %v", cfg.CookieSecure, err)
	}
}

func TestConfigRates(t *testing.T) {
	cfg, err := loadConfig(t.TempDir(), []string{"LIMIT_MESSAGE_SEND=5/s", "LIMIT_REST=off", "LIMIT_SIGNUPS=3/10m:7", "TRUSTED_PROXIES=10.0.0.0/8, ::1"})
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.LimitMessageSend.Limit; l.Rate != 5 || l.Period != time.Second || l.Burst != 5 {
		t.Errorf("5/s = %+v, want rate 5 a second, burst 5", l)
	}
	if !cfg.LimitREST.Off() {
		t.Errorf("off = %+v", cfg.LimitREST)
	}
	if l := cfg.LimitSignups.Limit; l.Rate != 3 || l.Period != 10*time.Minute || l.Burst != 7 {
		t.Errorf("3/10m:7 = %+v", l)
	}
	if l := cfg.LimitTyping.Limit; l.Rate != 10 || l.Burst != 20 {
		t.Errorf("default typing limit %+v, want 10/s:20", l)
	}
	if len(cfg.TrustedProxies) != 2 {
		t.Errorf("TRUSTED_PROXIES = %v", cfg.TrustedProxies)
	}
}

func TestConfigBadValues(t *testing.T) {
	cases := []struct {
		env  []string
		want string
	}{
		{[]string{"PORT=abc"}, "PORT"},
		{[]string{"PORT=70000"}, "PORT"},
		{[]string{"TOKEN_TTL=forever"}, "TOKEN_TTL"},
		{[]string{"BCRYPT_COST=40"}, "BCRYPT_COST"},
		{[]string{"LOG_LEVEL=loud"}, "LOG_LEVEL"},
		{[]string{"LOG_FORMAT=xml"}, "LOG_FORMAT"},
		{[]string{"CORS_ORIGINS=*"}, "CORS_ORIGINS"},
		{[]string{"COOKIE_SECURE=maybe"}, "COOKIE_SECURE"},
		{[]string{"PARLEY_ENV=production"}, "JWT_SECRET"},
		{[]string{"PARLEY_ENV=production", "JWT_SECRET=short"}, "JWT_SECRET"},
		{[]string{"RECOVERY_WINDOW=-1s"}, "RECOVERY_WINDOW"},
		{[]string{"RECOVERY_WINDOW=soon"}, "RECOVERY_WINDOW"},
		{[]string{"SOCKET_QUEUE_BYTES=1000"}, "SOCKET_QUEUE_BYTES"},
		{[]string{"PPROF=1", "PPROF_ADDR=0.0.0.0:6060"}, "PPROF_ADDR"},
		{[]string{"PPROF=1", "PPROF_ADDR=example.com:6060"}, "PPROF_ADDR"},
		{[]string{"PPROF=maybe"}, "PPROF"},
		{[]string{"LIMIT_REST=fast"}, "LIMIT_REST"},
		{[]string{"LIMIT_MESSAGE_SEND=20/fortnight"}, "LIMIT_MESSAGE_SEND"},
		{[]string{"LIMIT_TYPING=0/s"}, "LIMIT_TYPING"},
		{[]string{"LIMIT_SIGNUPS=5/h:0"}, "LIMIT_SIGNUPS"},
		{[]string{"MAX_SOCKETS_PER_USER=-1"}, "MAX_SOCKETS_PER_USER"},
		{[]string{"TRUSTED_PROXIES=10.0.0.0/33"}, "TRUSTED_PROXIES"},
		{[]string{"LOGIN_FAILURES_PER_ACCOUNT=0"}, "LOGIN_FAILURES_PER_ACCOUNT"},
		{[]string{"SESSION_RECONCILE_INTERVAL=1h"}, "SESSION_RECONCILE_INTERVAL"},
		{[]string{"MESSAGE_MAX_CHARS=0"}, "MESSAGE_MAX_CHARS"},
		{[]string{"MESSAGE_MAX_ATTACHMENTS=-1"}, "MESSAGE_MAX_ATTACHMENTS"},
		{[]string{"GROUP_MAX_MEMBERS=1"}, "GROUP_MAX_MEMBERS"},
		{[]string{"HISTORY_MAX_PAGE=0"}, "HISTORY_MAX_PAGE"},
		{[]string{"HISTORY_DEFAULT_PAGE=101"}, "HISTORY_DEFAULT_PAGE"},
		{[]string{"CLIENT_MSG_ID_MAX_CHARS=0"}, "CLIENT_MSG_ID_MAX_CHARS"},
		{[]string{"SOCKET_MAX_PACKET_BYTES=10"}, "SOCKET_MAX_PACKET_BYTES"},
		{[]string{"SOCKET_MAX_PACKET_BYTES=8000000"}, "SOCKET_QUEUE_BYTES"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.env, " "), func(t *testing.T) {
			_, err := loadConfig(t.TempDir(), c.env)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, c.want+": ") || strings.Contains(msg, "\n") {
				t.Fatalf("want one line starting with %q, got %q", c.want, msg)
			}
		})
	}
}

func TestJWTSecretKeptInDataDir(t *testing.T) {
	cfg := Config{DataDir: t.TempDir()}
	log := discardLogger()
	first, err := cfg.jwtSecret(log)
	if err != nil {
		t.Fatal(err)
	}
	second, err := cfg.jwtSecret(log)
	if err != nil {
		t.Fatal(err)
	}
	if string(first) != string(second) || len(first) < 32 {
		t.Fatal("secret not kept across starts")
	}
	info, err := os.Stat(filepath.Join(cfg.DataDir, "jwt_secret"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", info, err)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
