package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/joho/godotenv"

	"github.com/parley-chat/parley/internal/clientaddr"
	"github.com/parley-chat/parley/internal/ratelimit"
	"github.com/parley-chat/parley/web"
)

// Config is every setting, from the environment and an optional .env file
// in the working directory (the environment wins, as with Node's dotenv).
type Config struct {
	Host        string        `env:"HOST"`
	Port        int           `env:"PORT" envDefault:"5000"`
	DataDir     string        `env:"DATA_DIR" envDefault:"./data"`
	MongoURI    string        `env:"MONGO_URI"`
	MongoDB     string        `env:"MONGO_DB" envDefault:"parley"`
	RedisURL    string        `env:"REDIS_URL"`
	JWTSecret   string        `env:"JWT_SECRET"`
	TokenTTL    time.Duration `env:"TOKEN_TTL" envDefault:"168h"`
	BcryptCost  int           `env:"BCRYPT_COST" envDefault:"12"`
	CORSOrigins []string      `env:"CORS_ORIGINS" envSeparator:","`
	LogLevel    slog.Level    `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat   string        `env:"LOG_FORMAT" envDefault:"text"`
	Env         string        `env:"PARLEY_ENV" envDefault:"development"`

	// The contract's limits on what one request may carry (its defaults).
	MessageMaxChars       int   `env:"MESSAGE_MAX_CHARS" envDefault:"4000"`
	MessageMaxAttachments int   `env:"MESSAGE_MAX_ATTACHMENTS" envDefault:"10"`
	GroupMaxMembers       int   `env:"GROUP_MAX_MEMBERS" envDefault:"1000"`
	HistoryMaxPage        int   `env:"HISTORY_MAX_PAGE" envDefault:"100"`
	HistoryDefaultPage    int   `env:"HISTORY_DEFAULT_PAGE" envDefault:"50"`
	ClientMsgIDMaxChars   int   `env:"CLIENT_MSG_ID_MAX_CHARS" envDefault:"64"`
	SocketMaxPacketBytes  int64 `env:"SOCKET_MAX_PACKET_BYTES" envDefault:"1000000"`

	UploadMaxBytes int64         `env:"UPLOAD_MAX_BYTES" envDefault:"26214400"`
	AvatarMaxBytes int64         `env:"AVATAR_MAX_BYTES" envDefault:"5242880"`
	OrphanFileTTL  time.Duration `env:"ORPHAN_FILE_TTL" envDefault:"24h"`
	ShutdownGrace  time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"10s"`
	// CookieSecure marks the token cookie Secure: set it behind a TLS proxy,
	// where the request reaching Parley is plain HTTP.
	CookieSecure bool `env:"COOKIE_SECURE" envDefault:"false"`

	RecoveryWindow   time.Duration `env:"RECOVERY_WINDOW" envDefault:"0s"`
	SocketQueueBytes int           `env:"SOCKET_QUEUE_BYTES" envDefault:"4194304"`
	PProf            bool          `env:"PPROF"`
	PProfAddr        string        `env:"PPROF_ADDR" envDefault:"127.0.0.1:6060"`

	// Flood limits (see README): rates as "N/unit:burst" or "off";
	// counts of open sockets as a number, 0 for none.
	TrustedProxies        []string      `env:"TRUSTED_PROXIES" envSeparator:","`
	LoginFailuresAccount  int           `env:"LOGIN_FAILURES_PER_ACCOUNT" envDefault:"5"`
	LoginFailuresAddress  int           `env:"LOGIN_FAILURES_PER_ADDRESS" envDefault:"20"`
	LoginFailureWindow    time.Duration `env:"LOGIN_FAILURE_WINDOW" envDefault:"15m"`
	LimitMessageSend      RateSpec      `env:"LIMIT_MESSAGE_SEND" envDefault:"20/s:40"`
	LimitTyping           RateSpec      `env:"LIMIT_TYPING" envDefault:"10/s:20"`
	LimitHandshakes       RateSpec      `env:"LIMIT_HANDSHAKES" envDefault:"10/s:50"`
	LimitREST             RateSpec      `env:"LIMIT_REST" envDefault:"50/s:200"`
	LimitSignups          RateSpec      `env:"LIMIT_SIGNUPS" envDefault:"20/h:10"`
	MaxSocketsPerUser     int           `env:"MAX_SOCKETS_PER_USER" envDefault:"20"`
	MaxSocketsPerAddress  int           `env:"MAX_SOCKETS_PER_ADDRESS" envDefault:"200"`
	SessionReconcileEvery time.Duration `env:"SESSION_RECONCILE_INTERVAL" envDefault:"1s"`

	// WebRoot serves a built single-page app at / instead of the embedded client.
	WebRoot string `env:"WEB_ROOT"`
	// MERNSetupTimeout is how long a socket without credentials may wait
	// for the MERN app's setup event.
	MERNSetupTimeout time.Duration `env:"MERN_SETUP_TIMEOUT" envDefault:"5s"`
}

// RateSpec is a rate limit written "N/unit" or "N/unit:burst" (unit s, m,
// h or a Go duration such as 10s), or "off". The burst defaults to N.
type RateSpec struct{ ratelimit.Limit }

// UnmarshalText parses a RateSpec.
func (r *RateSpec) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "off" || s == "0" {
		r.Limit = ratelimit.Limit{}
		return nil
	}
	rate, rest, ok := strings.Cut(s, "/")
	if !ok {
		return fmt.Errorf("%q: want N/unit[:burst] or off", s)
	}
	unit, burst, hasBurst := strings.Cut(rest, ":")
	n, err := strconv.Atoi(rate)
	if err != nil || n < 1 {
		return fmt.Errorf("%q: rate must be a positive number", s)
	}
	var period time.Duration
	switch unit {
	case "s":
		period = time.Second
	case "m":
		period = time.Minute
	case "h":
		period = time.Hour
	default:
		if period, err = time.ParseDuration(unit); err != nil || period <= 0 {
			return fmt.Errorf("%q: unit must be s, m, h or a duration", s)
		}
	}
	b2 := n
	if hasBurst {
		if b2, err = strconv.Atoi(burst); err != nil || b2 < 1 {
			return fmt.Errorf("%q: burst must be a positive number", s)
		}
	}
	r.Limit = ratelimit.Limit{Rate: n, Period: period, Burst: b2}
	return nil
}

// ConfigError names the variable a bad setting came from.
type ConfigError struct {
	Var    string
	Reason string
}

func (e *ConfigError) Error() string { return e.Var + ": " + e.Reason }

// loadConfig reads .env (if present in dir) under the environment, then
// parses and checks every setting.
func loadConfig(dir string, environ []string) (Config, error) {
	vars := map[string]string{}
	if f, err := os.Open(filepath.Join(dir, ".env")); err == nil {
		parsed, err := godotenv.Parse(f)
		f.Close()
		if err != nil {
			return Config{}, &ConfigError{Var: ".env", Reason: err.Error()}
		}
		vars = parsed
	} else if !errors.Is(err, os.ErrNotExist) {
		return Config{}, &ConfigError{Var: ".env", Reason: err.Error()}
	}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: vars}); err != nil {
		return Config{}, configParseError(err)
	}
	return cfg, cfg.validate()
}

// configParseError turns the library's field-named error into one that
// names the environment variable.
func configParseError(err error) error {
	var agg env.AggregateError
	if errors.As(err, &agg) && len(agg.Errors) > 0 {
		err = agg.Errors[0]
	}
	var pe env.ParseError
	if errors.As(err, &pe) {
		if f, ok := reflect.TypeFor[Config]().FieldByName(pe.Name); ok {
			return &ConfigError{Var: f.Tag.Get("env"), Reason: "invalid value: " + pe.Err.Error()}
		}
	}
	return &ConfigError{Var: "config", Reason: err.Error()}
}

func (c *Config) validate() error {
	switch {
	case c.Port < 0 || c.Port > 65535:
		return &ConfigError{"PORT", fmt.Sprintf("invalid value %d: must be 0..65535", c.Port)}
	case c.DataDir == "":
		return &ConfigError{"DATA_DIR", "must not be empty"}
	case c.TokenTTL < time.Minute:
		return &ConfigError{"TOKEN_TTL", "must be at least 1m"}
	case c.BcryptCost < 4 || c.BcryptCost > 31:
		return &ConfigError{"BCRYPT_COST", fmt.Sprintf("invalid value %d: must be 4..31", c.BcryptCost)}
	case c.LogFormat != "text" && c.LogFormat != "json":
		return &ConfigError{"LOG_FORMAT", fmt.Sprintf("invalid value %q: must be text or json", c.LogFormat)}
	case c.Env != "development" && c.Env != "production" && c.Env != "test":
		return &ConfigError{"PARLEY_ENV", fmt.Sprintf("invalid value %q: must be development, test or production", c.Env)}
	case c.Env == "production" && c.JWTSecret == "":
		return &ConfigError{"JWT_SECRET", "required when PARLEY_ENV=production"}
	case c.Env == "production" && len(c.JWTSecret) < 32:
		return &ConfigError{"JWT_SECRET", "must be at least 32 bytes when PARLEY_ENV=production"}
	case c.MessageMaxChars < 1:
		return &ConfigError{"MESSAGE_MAX_CHARS", "must be at least 1"}
	case c.MessageMaxAttachments < 1:
		return &ConfigError{"MESSAGE_MAX_ATTACHMENTS", "must be at least 1"}
	case c.GroupMaxMembers < 2:
		return &ConfigError{"GROUP_MAX_MEMBERS", "must be at least 2"}
	case c.HistoryMaxPage < 1:
		return &ConfigError{"HISTORY_MAX_PAGE", "must be at least 1"}
	case c.HistoryDefaultPage < 1 || c.HistoryDefaultPage > c.HistoryMaxPage:
		return &ConfigError{"HISTORY_DEFAULT_PAGE", "must be from 1 to HISTORY_MAX_PAGE"}
	case c.ClientMsgIDMaxChars < 1:
		return &ConfigError{"CLIENT_MSG_ID_MAX_CHARS", "must be at least 1"}
	case c.SocketMaxPacketBytes < 1024:
		return &ConfigError{"SOCKET_MAX_PACKET_BYTES", "must be at least 1024"}
	case int64(c.SocketQueueBytes) < c.SocketMaxPacketBytes:
		// Below the largest packet one message could close a socket.
		return &ConfigError{"SOCKET_QUEUE_BYTES", "must be at least SOCKET_MAX_PACKET_BYTES"}
	case c.UploadMaxBytes < 1:
		return &ConfigError{"UPLOAD_MAX_BYTES", "must be at least 1"}
	case c.AvatarMaxBytes < 1:
		return &ConfigError{"AVATAR_MAX_BYTES", "must be at least 1"}
	case c.OrphanFileTTL < time.Minute:
		return &ConfigError{"ORPHAN_FILE_TTL", "must be at least 1m"}
	case c.RecoveryWindow < 0:
		return &ConfigError{"RECOVERY_WINDOW", "must not be negative (0s turns recovery off)"}
	case c.SocketQueueBytes < 1<<20:
		// A floor of its own, whatever the packet limit: a queue this
		// small closes ordinary readers at the first burst of a busy chat.
		return &ConfigError{"SOCKET_QUEUE_BYTES", fmt.Sprintf("invalid value %d: must be at least 1048576", c.SocketQueueBytes)}
	case c.PProf && !loopback(c.PProfAddr):
		return &ConfigError{"PPROF_ADDR", fmt.Sprintf("invalid value %q: profiles are served on a loopback address only, e.g. 127.0.0.1:6060", c.PProfAddr)}
	case c.LoginFailuresAccount < 1:
		return &ConfigError{"LOGIN_FAILURES_PER_ACCOUNT", "must be at least 1"}
	case c.LoginFailuresAddress < 1:
		return &ConfigError{"LOGIN_FAILURES_PER_ADDRESS", "must be at least 1"}
	case c.LoginFailureWindow < time.Second:
		return &ConfigError{"LOGIN_FAILURE_WINDOW", "must be at least 1s"}
	case c.MaxSocketsPerUser < 0:
		return &ConfigError{"MAX_SOCKETS_PER_USER", "must be 0 (no limit) or more"}
	case c.MaxSocketsPerAddress < 0:
		return &ConfigError{"MAX_SOCKETS_PER_ADDRESS", "must be 0 (no limit) or more"}
	case c.SessionReconcileEvery < 10*time.Millisecond || c.SessionReconcileEvery > time.Minute:
		return &ConfigError{"SESSION_RECONCILE_INTERVAL", "must be 10ms..1m"}
	case c.MERNSetupTimeout < 100*time.Millisecond || c.MERNSetupTimeout > time.Minute:
		return &ConfigError{"MERN_SETUP_TIMEOUT", "must be 100ms..1m"}
	}
	if c.WebRoot != "" {
		if err := web.CheckWebRoot(c.WebRoot); err != nil {
			return &ConfigError{"WEB_ROOT", fmt.Sprintf("%q has no index.html to serve: %v", c.WebRoot, err)}
		}
	}
	if _, err := clientaddr.New(c.TrustedProxies); err != nil {
		return &ConfigError{"TRUSTED_PROXIES", err.Error()}
	}
	for _, o := range c.CORSOrigins {
		if o == "" || o == "*" || !(strings.HasPrefix(o, "http://") || strings.HasPrefix(o, "https://")) {
			return &ConfigError{"CORS_ORIGINS", fmt.Sprintf("invalid origin %q: want a comma-separated list of http(s)://host[:port]", o)}
		}
	}
	return nil
}

// loopback tells whether addr (host:port) names a loopback interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// jwtSecret returns the configured secret, or the one kept in the data
// directory, generating it on first start so tokens survive restarts.
func (c *Config) jwtSecret(log *slog.Logger) ([]byte, error) {
	if c.JWTSecret != "" {
		return []byte(c.JWTSecret), nil
	}
	path := filepath.Join(c.DataDir, "jwt_secret")
	if b, err := os.ReadFile(path); err == nil {
		if s := strings.TrimSpace(string(b)); len(s) >= 32 {
			log.Warn("JWT_SECRET is not set: using the secret kept in the data directory", "file", path)
			return []byte(s), nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	secret := hex.EncodeToString(raw)
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(secret+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("keep jwt secret: %w", err)
	}
	log.Warn("JWT_SECRET is not set: generated one and kept it in the data directory; set JWT_SECRET in production", "file", path)
	return []byte(secret), nil
}
