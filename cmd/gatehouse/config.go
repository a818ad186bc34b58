package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"gatehouse/models"
	"gatehouse/services/auth"
	"gatehouse/services/mail"
	"gatehouse/services/ratelimit"
)

// Config is Gatehouse's whole configuration, loaded once from the environment and flags.
type Config struct {
	DatabaseURL         string // with GATEHOUSE_PG_STATEMENTS applied (models.WithStatements)
	ListenDatabaseURL   string // the revocation feed's LISTEN connection: DatabaseURL unless set
	Addr                string
	MetricsAddr         string // "" serves /metrics on Addr
	BaseURL             *url.URL
	KeyDir              string
	MasterKey           string // GATEHOUSE_MASTER_KEY, or the contents of GATEHOUSE_MASTER_KEY_FILE: keys in PostgreSQL
	AccessTTL           time.Duration
	RefreshIdleTTL      time.Duration
	SessionMaxAge       time.Duration
	RefreshGrace        time.Duration
	RefreshBatch        bool // rotate concurrent PostgreSQL refreshes in shared statements
	Signup              bool
	AppOrigins          []string
	TrustedProxies      []netip.Prefix
	LoginLimitAccount   ratelimit.Rate
	LoginLimitIP        ratelimit.Rate
	SessionLimit        ratelimit.Rate
	MaxSessions         int
	SMTPURL             string
	MailFrom            string
	EmailVerification   auth.EmailVerification
	ResetTTL            time.Duration
	RedisURL            string
	BodyLimit           int
	ShutdownTimeout     time.Duration
	ReauthWindow        time.Duration
	PruneInterval       time.Duration
	RevokedRetention    time.Duration
	EventRetention      time.Duration
	DBMaxConns          int
	PasswordConcurrency int
	LogFormat           string
	CPUProfile          string
	GeoIPDB             string // a MaxMind-format City or Country database; "" shows no locations
}

// setting is one configuration variable: its environment name, its flag, its default and how it is read.
type setting struct {
	env, flag, def, help string
	apply                func(c *Config, v string) error
}

var settings = []setting{
	{"DATABASE_URL", "database-url", "sqlite:gatehouse.db", "a postgres:// URL, or sqlite:PATH (the embedded default)", func(c *Config, v string) error {
		_, _, err := models.ParseDatabaseURL(v)
		c.DatabaseURL = v
		return err
	}},
	{"GATEHOUSE_PG_STATEMENTS", "pg-statements", "", "how statements reach PostgreSQL: cache (prepared once per connection, the fastest), describe, exec or simple; behind PgBouncer in transaction mode use exec (README: Behind PgBouncer); empty: DATABASE_URL's default_query_exec_mode, else cache", func(c *Config, v string) error {
		u, err := models.WithStatements(c.DatabaseURL, v)
		c.DatabaseURL = u
		return err
	}},
	{"GATEHOUSE_LISTEN_DATABASE_URL", "listen-database-url", "", "a postgres:// URL that reaches PostgreSQL directly (not through PgBouncer in transaction mode), for the revocation feed's LISTEN; empty: DATABASE_URL", func(c *Config, v string) error {
		if v == "" {
			c.ListenDatabaseURL = c.DatabaseURL
			return nil
		}
		if dialect, _, err := models.ParseDatabaseURL(v); err != nil || dialect != models.Postgres {
			return fmt.Errorf("it must be a postgres:// URL")
		}
		if dialect, _, _ := models.ParseDatabaseURL(c.DatabaseURL); dialect != models.Postgres {
			return fmt.Errorf("it is for PostgreSQL, and DATABASE_URL is not a postgres:// URL")
		}
		c.ListenDatabaseURL = v
		return nil
	}},
	{"GATEHOUSE_ADDR", "addr", "127.0.0.1:8080", "where serve listens (host:port)", func(c *Config, v string) error {
		if _, port, err := splitHostPort(v); err != nil || port == "" {
			return fmt.Errorf("%q is not a host:port address", v)
		}
		c.Addr = v
		return nil
	}},
	{"GATEHOUSE_METRICS_ADDR", "metrics-addr", "", "serve /metrics on this host:port only (e.g. 127.0.0.1:9090), not on the portal's address; empty: on the portal's address, public", func(c *Config, v string) error {
		if v != "" {
			if _, port, err := splitHostPort(v); err != nil || port == "" {
				return fmt.Errorf("%q is not a host:port address", v)
			}
		}
		c.MetricsAddr = v
		return nil
	}},
	{"GATEHOUSE_BASE_URL", "base-url", "", "the portal's public URL (default http:// + the address)", func(c *Config, v string) error {
		if v == "" {
			v = "http://" + c.Addr
		}
		u, err := url.Parse(strings.TrimRight(v, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("%q is not an http(s) URL like https://login.example.com", v)
		}
		c.BaseURL = u
		return nil
	}},
	{"GATEHOUSE_KEY_DIR", "key-dir", "keys", "directory of signing keys and the server secret (created on first start)", func(c *Config, v string) error {
		c.KeyDir = v
		return nonEmpty(v)
	}},
	{"GATEHOUSE_MASTER_KEY", "master-key", "", "key-encryption key(s) for signing keys and the server secret kept in PostgreSQL: base64 of 32 random bytes (openssl rand -base64 32); several, comma-separated, while rotating it (the first seals); empty on PostgreSQL: keys stay in GATEHOUSE_KEY_DIR", func(c *Config, v string) error {
		if v == "" {
			return nil
		}
		if _, err := auth.ParseMasterKeys(v); err != nil {
			return err
		}
		c.MasterKey = v
		return nil
	}},
	{"GATEHOUSE_MASTER_KEY_FILE", "master-key-file", "", "a file holding GATEHOUSE_MASTER_KEY (say, a mounted secret); used when GATEHOUSE_MASTER_KEY is empty", func(c *Config, v string) error {
		if v == "" || c.MasterKey != "" {
			return nil
		}
		b, err := os.ReadFile(v)
		if err != nil {
			return fmt.Errorf("read the master key file: %v", err)
		}
		if _, err := auth.ParseMasterKeys(strings.TrimSpace(string(b))); err != nil {
			return fmt.Errorf("%s: %v", v, err)
		}
		c.MasterKey = strings.TrimSpace(string(b))
		return nil
	}},
	{"GATEHOUSE_ACCESS_TTL", "access-ttl", "10m", "access token lifetime", durationInto(func(c *Config) *time.Duration { return &c.AccessTTL })},
	{"GATEHOUSE_REFRESH_IDLE_TTL", "refresh-idle-ttl", "336h", "refresh token idle lifetime", durationInto(func(c *Config) *time.Duration { return &c.RefreshIdleTTL })},
	{"GATEHOUSE_SESSION_MAX_AGE", "session-max-age", "720h", "a device session's absolute lifetime", durationInto(func(c *Config) *time.Duration { return &c.SessionMaxAge })},
	{"GATEHOUSE_REFRESH_GRACE", "refresh-grace", "10s", "idempotent-retry window of a rotated refresh token", durationInto(func(c *Config) *time.Duration { return &c.RefreshGrace })},
	{"GATEHOUSE_REFRESH_BATCH", "refresh-batch", "on", "on or off: rotate the refreshes that arrive while others are being rotated together, in one commit (one PostgreSQL statement, or one SQLite transaction; a lone refresh never waits)", func(c *Config, v string) error {
		switch strings.ToLower(v) {
		case "on", "true", "1", "yes":
			c.RefreshBatch = true
		case "off", "false", "0", "no":
			c.RefreshBatch = false
		default:
			return fmt.Errorf("%q is neither on nor off", v)
		}
		return nil
	}},
	{"GATEHOUSE_SIGNUP", "signup", "on", "on or off: whether people can create accounts", func(c *Config, v string) error {
		switch strings.ToLower(v) {
		case "on", "true", "1", "yes":
			c.Signup = true
		case "off", "false", "0", "no":
			c.Signup = false
		default:
			return fmt.Errorf("%q is neither on nor off", v)
		}
		return nil
	}},
	{"GATEHOUSE_APP_ORIGINS", "app-origins", "", "comma-separated origins of apps allowed to use /auth/ with credentials", func(c *Config, v string) error {
		c.AppOrigins = nil
		for _, o := range splitList(v) {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
				return fmt.Errorf("%q is not an origin like https://app.example.com", o)
			}
			c.AppOrigins = append(c.AppOrigins, strings.ToLower(u.Scheme+"://"+u.Host))
		}
		return nil
	}},
	{"GATEHOUSE_TRUSTED_PROXIES", "trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-For is believed", func(c *Config, v string) error {
		c.TrustedProxies = nil
		for _, s := range splitList(v) {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return fmt.Errorf("%q is not a CIDR like 10.0.0.0/8", s)
			}
			c.TrustedProxies = append(c.TrustedProxies, p.Masked())
		}
		return nil
	}},
	{"GATEHOUSE_LOGIN_LIMIT_ACCOUNT", "login-limit-account", "10/15m", "failed sign-ins allowed per account (N/DURATION)", rateInto(func(c *Config) *ratelimit.Rate { return &c.LoginLimitAccount })},
	{"GATEHOUSE_LOGIN_LIMIT_IP", "login-limit-ip", "100/15m", "sign-in attempts allowed per client IP (N/DURATION)", rateInto(func(c *Config) *ratelimit.Rate { return &c.LoginLimitIP })},
	{"GATEHOUSE_SESSION_LIMIT", "session-limit", "60/1m", "refreshes, and sign-out actions, allowed per device session and instance (N/DURATION, or off)", func(c *Config, v string) error {
		if v == "off" {
			c.SessionLimit = ratelimit.Rate{}
			return nil
		}
		r, err := ratelimit.ParseRate(v)
		if err != nil {
			return err
		}
		c.SessionLimit = r
		return nil
	}},
	{"GATEHOUSE_MAX_SESSIONS", "max-sessions", "50", "live device sessions per user; a sign-in past it signs out the least recently used", intInto(func(c *Config) *int { return &c.MaxSessions }, 1)},
	{"GATEHOUSE_SMTP_URL", "smtp-url", "", "smtp://user:pass@host:port (STARTTLS when offered; ?tls=required insists) or smtps://...; without it mail goes to the log", func(c *Config, v string) error {
		if v != "" {
			if _, err := mail.ParseSMTPURL(v); err != nil {
				return err
			}
		}
		c.SMTPURL = v
		return nil
	}},
	{"GATEHOUSE_MAIL_FROM", "mail-from", "", "the sender of every message (default Gatehouse <no-reply@ + the base URL's host + >)", func(c *Config, v string) error {
		if v == "" {
			v = mail.DefaultFrom(c.BaseURL.Hostname())
		}
		if _, err := mail.ParseFrom(v); err != nil {
			return err
		}
		c.MailFrom = v
		return nil
	}},
	{"GATEHOUSE_EMAIL_VERIFICATION", "email-verification", "optional", "off, optional (the account works, the portal asks) or required (no sign-in until verified)", func(c *Config, v string) error {
		switch auth.EmailVerification(v) {
		case auth.VerificationOff, auth.VerificationOptional, auth.VerificationRequired:
			c.EmailVerification = auth.EmailVerification(v)
			return nil
		}
		return fmt.Errorf("%q is not off, optional or required", v)
	}},
	{"GATEHOUSE_RESET_TTL", "reset-ttl", "30m", "how long a password-reset link works", durationInto(func(c *Config) *time.Duration { return &c.ResetTTL })},
	{"REDIS_URL", "redis-url", "", "optional redis:// URL: rate limits and revocation fan-out shared by instances", func(c *Config, v string) error {
		if v != "" && !strings.HasPrefix(v, "redis://") && !strings.HasPrefix(v, "rediss://") {
			return fmt.Errorf("%q is not a redis:// URL", v)
		}
		c.RedisURL = v
		return nil
	}},
	{"GATEHOUSE_BODY_LIMIT", "body-limit", "65536", "largest request body in bytes; larger gets 413", intInto(func(c *Config) *int { return &c.BodyLimit }, 1024)},
	{"GATEHOUSE_SHUTDOWN_TIMEOUT", "shutdown-timeout", "10s", "how long a stopping server lets requests in flight finish", durationInto(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
	{"GATEHOUSE_REAUTH_WINDOW", "reauth-window", "0s", "sign-out-everywhere and revoke-others need a password entered within this window (0s: never ask)", nonNegativeDurationInto(func(c *Config) *time.Duration { return &c.ReauthWindow })},
	{"GATEHOUSE_PRUNE_INTERVAL", "prune-interval", "1h", "how often serve prunes expired rows (0s: never; use gatehouse prune)", nonNegativeDurationInto(func(c *Config) *time.Duration { return &c.PruneInterval })},
	{"GATEHOUSE_REVOKED_RETENTION", "revoked-retention", "168h", "how long revoked or expired sessions are kept before prune deletes them", nonNegativeDurationInto(func(c *Config) *time.Duration { return &c.RevokedRetention })},
	{"GATEHOUSE_EVENT_RETENTION", "event-retention", "2160h", "how long security events are kept", durationInto(func(c *Config) *time.Duration { return &c.EventRetention })},
	{"GATEHOUSE_DB_MAX_CONNS", "db-max-conns", "16", "PostgreSQL connection pool size", intInto(func(c *Config) *int { return &c.DBMaxConns }, 1)},
	{"GATEHOUSE_PASSWORD_CONCURRENCY", "password-concurrency", "0", "password hashes (argon2id) allowed at once, 0 for half the CPU cores (at least 1); more wait, then get 503", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a whole number of at least 0", v)
		}
		if n == 0 {
			n = max(1, runtime.GOMAXPROCS(0)/2)
		}
		c.PasswordConcurrency = n
		return nil
	}},
	{"GATEHOUSE_LOG_FORMAT", "log-format", "auto", "auto (JSON unless stderr is a terminal), json or text", func(c *Config, v string) error {
		if v != "auto" && v != "json" && v != "text" {
			return fmt.Errorf("%q is not auto, json or text", v)
		}
		c.LogFormat = v
		return nil
	}},
	{"GATEHOUSE_GEOIP_DB", "geoip-db", "", "a MaxMind-format .mmdb City or Country database (GeoLite2, DB-IP Lite): approximate locations of sign-ins; empty: none", func(c *Config, v string) error {
		c.GeoIPDB = v
		return nil
	}},
	{"GATEHOUSE_CPU_PROFILE", "cpu-profile", "", "write a CPU profile of serve to this file until it stops (for benchmarks)", func(c *Config, v string) error {
		c.CPUProfile = v
		return nil
	}},
}

// newFlagSet declares one flag per setting (plus any the command adds).
// The flag package's own printing goes nowhere: a mistake is one line from run, and --help
// prints the usage to stdout (usageError).
func newFlagSet(name, summary string) (*flag.FlagSet, map[string]*string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	values := map[string]*string{}
	for _, s := range settings {
		def := s.def
		values[s.flag] = fs.String(s.flag, "", fmt.Sprintf("%s (env %s, default %q)", s.help, s.env, def))
	}
	fs.Usage = func() { printUsage(fs, name, summary) }
	return fs, values
}

// loadConfig resolves every setting: a flag given on the command line wins, then the
// environment variable, then the default. The first bad value is one clear error.
func loadConfig(fs *flag.FlagSet, values map[string]*string, getenv func(string) string) (*Config, error) {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	c := &Config{}
	for _, s := range settings {
		v := s.def
		source := "default"
		if e := getenv(s.env); e != "" {
			v, source = e, s.env
		}
		if given[s.flag] {
			v, source = *values[s.flag], "--"+s.flag
		}
		if err := s.apply(c, v); err != nil {
			if source == "default" {
				source = s.env
			}
			return nil, fmt.Errorf("bad %s: %v", source, err)
		}
	}
	if c.RefreshGrace >= c.RefreshIdleTTL {
		return nil, fmt.Errorf("bad GATEHOUSE_REFRESH_GRACE: it must be shorter than GATEHOUSE_REFRESH_IDLE_TTL")
	}
	return c, nil
}

func durationInto(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("%q is not a positive duration like 90s, 10m or 336h", v)
		}
		*field(c) = d
		return nil
	}
}

func nonNegativeDurationInto(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("%q is not a duration like 0s, 90s or 10m", v)
		}
		*field(c) = d
		return nil
	}
}

func rateInto(field func(*Config) *ratelimit.Rate) func(*Config, string) error {
	return func(c *Config, v string) error {
		r, err := ratelimit.ParseRate(v)
		*field(c) = r
		return err
	}
}

func intInto(field func(*Config) *int, min int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < min {
			return fmt.Errorf("%q is not a whole number of at least %d", v, min)
		}
		*field(c) = n
		return nil
	}
}

func nonEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("it must not be empty")
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func splitHostPort(v string) (string, string, error) {
	i := strings.LastIndex(v, ":")
	if i < 0 {
		return "", "", fmt.Errorf("no port")
	}
	if _, err := strconv.ParseUint(v[i+1:], 10, 16); err != nil {
		return "", "", err
	}
	return v[:i], v[i+1:], nil
}
