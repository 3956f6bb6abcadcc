// Package config reads a service's settings from flags and WARREN_*
// environment variables (flags win), using peterbourgon/ff, and turns them
// into a logger and lifecycle options. `--help` lists every flag with its
// variable and default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/peterbourgon/ff/v3"

	"github.com/warren-mesh/warren/framework/app"
)

// EnvPrefix prefixes every environment variable: --etcd-endpoints is
// WARREN_ETCD_ENDPOINTS.
const EnvPrefix = "WARREN"

// ErrHelp is returned by Parse when --help was asked for; the usage has
// been printed and the caller should exit 0.
var ErrHelp = flag.ErrHelp

// Config is everything a Warren service process is configured with.
type Config struct {
	Service string // set by the program, not by a flag
	Version string

	Listen    string
	Advertise string
	ID        string
	Zone      string
	Weight    int
	Tags      []string
	SelfCheck bool

	Registry string // etcd, consul or memory

	EtcdEndpoints   []string
	EtcdPrefix      string
	EtcdTTL         time.Duration
	EtcdDialTimeout time.Duration
	EtcdCA          string
	EtcdCert        string
	EtcdKey         string
	EtcdUsername    string
	EtcdPassword    string

	ConsulAddr       string
	ConsulToken      string
	ConsulDatacenter string
	ConsulCheck      string // ttl or http
	ConsulTTL        time.Duration
	ConsulCA         string
	ConsulCert       string
	ConsulKey        string

	Grace        time.Duration
	DrainTimeout time.Duration
	MaxBodyBytes int64

	SnapshotDir string
	// ClientAttemptTimeout bounds each attempt of a call to another
	// service, so a hung instance costs one timeout and a retry elsewhere
	// instead of the caller's whole deadline. 0 turns it off.
	ClientAttemptTimeout time.Duration
	DataDir              string

	// Observability (docs/observability.md).
	DebugListen  string // /metrics and /debug/pprof; empty: off
	OTLPEndpoint string // OTLP/gRPC trace collector; empty: off
	TraceStdout  bool   // spans as JSON lines on the log output

	// Service-to-service TLS (docs/security.md).
	TLSCert     string // serve HTTPS with this certificate…
	TLSKey      string // …and key; also the client certificate for calls
	TLSClientCA string // require client certificates signed by this CA (mTLS)
	TLSCA       string // verify called services against this CA (default TLSClientCA)

	LogFormat string // logfmt or json
	LogLevel  string // debug, info, warn, error
}

// stringList is a comma-separated flag value.
type stringList struct{ p *[]string }

func (s stringList) String() string {
	if s.p == nil {
		return ""
	}
	return strings.Join(*s.p, ",")
}

func (s stringList) Set(v string) error {
	*s.p = nil
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*s.p = append(*s.p, part)
		}
	}
	return nil
}

// Default returns the configuration used when no flag or variable is set.
func Default(service, version string) Config {
	return Config{
		Service:              service,
		Version:              version,
		Listen:               ":8080",
		SelfCheck:            true,
		Registry:             "etcd",
		EtcdEndpoints:        []string{"127.0.0.1:2379"},
		EtcdPrefix:           "warren",
		EtcdTTL:              10 * time.Second,
		EtcdDialTimeout:      5 * time.Second,
		ConsulAddr:           "127.0.0.1:8500",
		ConsulCheck:          "ttl",
		ConsulTTL:            10 * time.Second,
		Grace:                app.DefaultGracePeriod,
		DrainTimeout:         app.DefaultDrainTimeout,
		MaxBodyBytes:         1 << 20,
		ClientAttemptTimeout: 2 * time.Second,
		LogFormat:            "logfmt",
		LogLevel:             "info",
	}
}

// Bind adds the flags to fs, with c's current values as defaults.
func (c *Config) Bind(fs *flag.FlagSet) {
	fs.StringVar(&c.Version, "version", c.Version, "version published with the instance")
	fs.StringVar(&c.Listen, "listen", c.Listen, "listen address host:port (port 0 picks a free port)")
	fs.StringVar(&c.Advertise, "advertise", c.Advertise, "address published to discovery: host, host:port; default: listen host or first interface address, real port")
	fs.StringVar(&c.ID, "id", c.ID, "instance ID (default name-host-port, stable across restarts)")
	fs.StringVar(&c.Zone, "zone", c.Zone, "zone published with the instance, for zone-aware balancing")
	fs.IntVar(&c.Weight, "weight", c.Weight, "balancing weight (default 100)")
	fs.Var(stringList{&c.Tags}, "tags", "comma-separated tags published with the instance")
	fs.BoolVar(&c.SelfCheck, "self-check", c.SelfCheck, "check the advertised address reaches this process before registering (turn off without hairpin routing)")
	fs.StringVar(&c.Registry, "registry", c.Registry, "service registry: etcd, consul or memory (memory: this process only)")

	fs.Var(stringList{&c.EtcdEndpoints}, "etcd-endpoints", "comma-separated etcd endpoints")
	fs.StringVar(&c.EtcdPrefix, "etcd-prefix", c.EtcdPrefix, "etcd key prefix")
	fs.DurationVar(&c.EtcdTTL, "etcd-ttl", c.EtcdTTL, "etcd lease TTL: how long a dead process stays visible")
	fs.DurationVar(&c.EtcdDialTimeout, "etcd-dial-timeout", c.EtcdDialTimeout, "etcd dial timeout")
	fs.StringVar(&c.EtcdCA, "etcd-ca", c.EtcdCA, "etcd CA certificate file (enables TLS)")
	fs.StringVar(&c.EtcdCert, "etcd-cert", c.EtcdCert, "etcd client certificate file")
	fs.StringVar(&c.EtcdKey, "etcd-key", c.EtcdKey, "etcd client key file")
	fs.StringVar(&c.EtcdUsername, "etcd-username", c.EtcdUsername, "etcd user name")
	fs.StringVar(&c.EtcdPassword, "etcd-password", c.EtcdPassword, "etcd password (prefer the environment variable; never logged)")

	fs.StringVar(&c.ConsulAddr, "consul-addr", c.ConsulAddr, "Consul agent address host:port or URL")
	fs.StringVar(&c.ConsulToken, "consul-token", c.ConsulToken, "Consul ACL token (prefer the environment variable; never logged)")
	fs.StringVar(&c.ConsulDatacenter, "consul-datacenter", c.ConsulDatacenter, "Consul datacenter (default: the agent's)")
	fs.StringVar(&c.ConsulCheck, "consul-check", c.ConsulCheck, "Consul health check: ttl (heartbeat from readiness) or http (agent polls /healthz)")
	fs.DurationVar(&c.ConsulTTL, "consul-ttl", c.ConsulTTL, "Consul TTL check period")
	fs.StringVar(&c.ConsulCA, "consul-ca", c.ConsulCA, "Consul CA certificate file (enables HTTPS)")
	fs.StringVar(&c.ConsulCert, "consul-cert", c.ConsulCert, "Consul client certificate file")
	fs.StringVar(&c.ConsulKey, "consul-key", c.ConsulKey, "Consul client key file")

	fs.DurationVar(&c.Grace, "grace", c.Grace, "keep serving this long after withdrawing from discovery on shutdown")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "how long in-flight requests get to finish on shutdown")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes, "request body limit in bytes")
	fs.DurationVar(&c.ClientAttemptTimeout, "client-attempt-timeout", c.ClientAttemptTimeout, "per-attempt timeout of calls to other services; a hung instance is retried elsewhere (0: off)")
	fs.StringVar(&c.SnapshotDir, "snapshot-dir", c.SnapshotDir, "directory for last-known-good discovery snapshots (empty: off)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the service's own data, if it keeps any (empty: memory)")
	fs.StringVar(&c.DebugListen, "debug-listen", c.DebugListen, "debug listener host:port for /metrics and /debug/pprof (empty: off; keep it on loopback or an admin network)")
	fs.StringVar(&c.OTLPEndpoint, "otlp-endpoint", c.OTLPEndpoint, "OTLP/gRPC trace collector: http://host:4317 (plaintext), https://host:4317 or host:4317 (TLS); empty: off")
	fs.BoolVar(&c.TraceStdout, "trace-stdout", c.TraceStdout, "write every span as a JSON line to the log output (demo)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "serve HTTPS with this certificate file (PEM); also presented when calling services that require client certificates")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "key file of --tls-cert")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", c.TLSClientCA, "require client certificates signed by this CA file (mutual TLS)")
	fs.StringVar(&c.TLSCA, "tls-ca", c.TLSCA, "verify called services' certificates against this CA file (default: --tls-client-ca, else the system roots)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: logfmt or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
}

// Parse reads args and the environment into a Config for service. Output
// (usage on --help or error) goes to out.
func Parse(service, version string, args []string, out io.Writer) (Config, error) {
	c := Default(service, version)
	fs := flag.NewFlagSet(service, flag.ContinueOnError)
	fs.SetOutput(out)
	c.Bind(fs)
	fs.Usage = func() { Usage(out, service, fs) }
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix(EnvPrefix)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, ErrHelp
		}
		return c, fmt.Errorf("config: %w", err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("config: unexpected arguments %q", fs.Args())
	}
	return c, c.Validate()
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Registry != "etcd" && c.Registry != "consul" && c.Registry != "memory":
		return fmt.Errorf("config: --registry %q: want etcd, consul or memory", c.Registry)
	case c.Registry == "etcd" && len(c.EtcdEndpoints) == 0:
		return errors.New("config: --etcd-endpoints is empty")
	case c.EtcdTTL < time.Second:
		return fmt.Errorf("config: --etcd-ttl %s: must be at least 1s", c.EtcdTTL)
	case c.ConsulCheck != "ttl" && c.ConsulCheck != "http":
		return fmt.Errorf("config: --consul-check %q: want ttl or http", c.ConsulCheck)
	case c.ConsulTTL < time.Second:
		return fmt.Errorf("config: --consul-ttl %s: must be at least 1s", c.ConsulTTL)
	case c.Weight < 0:
		return fmt.Errorf("config: --weight %d: must not be negative", c.Weight)
	case c.Grace < 0 || c.DrainTimeout < 0:
		return errors.New("config: --grace and --drain-timeout must not be negative")
	case c.ClientAttemptTimeout < 0:
		return fmt.Errorf("config: --client-attempt-timeout %s: must not be negative", c.ClientAttemptTimeout)
	case c.MaxBodyBytes <= 0:
		return fmt.Errorf("config: --max-body-bytes %d: must be positive", c.MaxBodyBytes)
	case c.LogFormat != "logfmt" && c.LogFormat != "json":
		return fmt.Errorf("config: --log-format %q: want logfmt or json", c.LogFormat)
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("config: --tls-cert and --tls-key go together")
	case c.TLSClientCA != "" && c.TLSCert == "":
		return errors.New("config: --tls-client-ca needs --tls-cert and --tls-key (a server that asks for client certificates must speak TLS)")
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	return nil
}

// EnvName returns the environment variable for a flag name.
func EnvName(flagName string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flagName))
}

// Usage prints every flag with its environment variable and default.
func Usage(out io.Writer, service string, fs *flag.FlagSet) {
	fmt.Fprintf(out, "Usage of %s: %s [flags]\n\nEvery flag can also be set with the environment variable shown; a flag wins over its variable.\n\n", service, service)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FLAG\tVARIABLE\tDEFAULT\tMEANING")
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if strings.Contains(f.Name, "password") || strings.Contains(f.Name, "token") {
			def = redact(def)
		}
		fmt.Fprintf(tw, "--%s\t%s\t%s\t%s\n", f.Name, EnvName(f.Name), def, f.Usage)
	})
	tw.Flush()
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return "(set)"
}

// Logger builds the process logger: logfmt or JSON on w, filtered by
// level, with a timestamp.
func (c Config) Logger(w io.Writer) log.Logger {
	var l log.Logger
	if c.LogFormat == "json" {
		l = log.NewJSONLogger(log.NewSyncWriter(w))
	} else {
		l = log.NewLogfmtLogger(log.NewSyncWriter(w))
	}
	opt, _ := parseLevel(c.LogLevel) // validated by Parse
	l = level.NewFilter(l, opt)
	return log.With(l, "ts", log.DefaultTimestampUTC)
}

func parseLevel(s string) (level.Option, error) {
	switch s {
	case "debug":
		return level.AllowDebug(), nil
	case "info", "":
		return level.AllowInfo(), nil
	case "warn":
		return level.AllowWarn(), nil
	case "error":
		return level.AllowError(), nil
	}
	return nil, fmt.Errorf("config: --log-level %q: want debug, info, warn or error", s)
}

// AppOptions returns the lifecycle options the configuration implies.
func (c Config) AppOptions(logger log.Logger) []app.Option {
	opts := []app.Option{
		app.WithVersion(c.Version),
		app.WithListen(c.Listen),
		app.WithLogger(logger),
		app.WithGracePeriod(c.Grace),
		app.WithDrainTimeout(c.DrainTimeout),
		app.WithSelfCheck(c.SelfCheck),
		app.WithMaxBodyBytes(c.MaxBodyBytes),
	}
	if c.Advertise != "" {
		opts = append(opts, app.WithAdvertise(c.Advertise))
	}
	if c.ID != "" {
		opts = append(opts, app.WithID(c.ID))
	}
	if c.Zone != "" {
		opts = append(opts, app.WithZone(c.Zone))
	}
	if c.Weight > 0 {
		opts = append(opts, app.WithWeight(c.Weight))
	}
	if len(c.Tags) > 0 {
		opts = append(opts, app.WithTags(c.Tags...))
	}
	return opts
}

// Redacted returns a copy safe to log: secrets replaced.
func (c Config) Redacted() Config {
	c.EtcdPassword = redact(c.EtcdPassword)
	c.ConsulToken = redact(c.ConsulToken)
	return c
}
