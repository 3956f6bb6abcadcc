// Package config reads a service's settings from flags and WARREN_*
// environment variables (flags win), using peterbourgon/ff, and turns them
// into a logger and lifecycle options. `--help` lists every flag with its
// variable and default.
//
// Registry backends bring their own flags (registry.Backend): config binds
// the flags of every backend the program lists and keeps the parsed
// settings of the one --registry names. It imports no backend.
package config

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/peterbourgon/ff/v3"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/registry"
	svcsettings "github.com/warren-mesh/warren/framework/settings"
	"github.com/warren-mesh/warren/framework/transport"
)

// EnvPrefix prefixes every environment variable: --listen is
// WARREN_LISTEN, a backend's --etcd-endpoints is WARREN_ETCD_ENDPOINTS.
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
	// LoadShedding refuses, with 503 overloaded, requests the instance
	// cannot serve in time (docs/overload.md). Default on.
	LoadShedding bool
	// ShedWaiting, when positive, turns the shedder's waiting signal on:
	// refuse while more than this many requests per CPU wait in front of
	// the handler, once that has lasted 100 ms (shed.WithWaitingTarget).
	// 0 (the default) leaves it off; 16 is the measured setting for a
	// CPU-bound service with CPUs of its own.
	ShedWaiting int

	// Registry names the registry backend (--registry); default: the
	// first backend the program lists.
	Registry string
	// RegistrySettings are the parsed flags of the backend Registry names;
	// set by Parse. Open the registry with OpenRegistry.
	RegistrySettings registry.Settings

	Grace        time.Duration
	DrainTimeout time.Duration
	// AccessLog is which served requests get an access line: all, errors
	// or off (transport.ParseAccessLog).
	AccessLog string
	// WithdrawTimeout bounds the withdrawal from discovery on shutdown
	// (app.WithWithdrawTimeout).
	WithdrawTimeout time.Duration
	// RegisterTimeout bounds the first registration (0: none, wait for
	// the registry; app.WithRegisterTimeout).
	RegisterTimeout time.Duration
	MaxBodyBytes    int64
	// BodyTimeout and BodyIdleTimeout bound reading a request body (in
	// all, and between reads); 0 turns one off.
	BodyTimeout     time.Duration
	BodyIdleTimeout time.Duration

	SnapshotDir string
	// ClientAttemptTimeout, when positive, bounds each attempt of a call
	// to another service by a fixed time. 0 (the default) leaves the
	// client's adaptive deadline (4 × the observed p99, 250 ms–2 s; see
	// docs/client.md), which a hung instance costs instead of the caller's
	// whole deadline.
	ClientAttemptTimeout time.Duration
	DataDir              string

	// Observability (docs/observability.md).
	DebugListen string // /metrics and /debug/pprof; empty: off
	// DebugProfiles serves /debug/pprof/* on the debug listener beside
	// /metrics (--debug-pprof, default true).
	DebugProfiles bool
	// DebugAllowedHosts are names, beyond IP addresses, localhost, the
	// debug listen host and the advertised host, that the debug listener
	// answers to (--debug-allowed-hosts); any other Host is refused, so a
	// DNS-rebinding page cannot read it (app.WithDebugAllowedHosts).
	DebugAllowedHosts []string
	OTLPEndpoint      string // OTLP/gRPC trace collector; empty: off
	TraceStdout       bool   // spans as JSON lines on the log output
	// TraceSampleRatio is the share of traces started here that are
	// recorded (1: all; OTEL_TRACES_SAMPLER then decides if set).
	TraceSampleRatio float64
	// TracePublicEndpoint starts a trace per served request, keeping the
	// caller's only as a link, and drops its baggage: for a service that
	// takes requests from outside the mesh (tracing.WithPublicEndpoint).
	TracePublicEndpoint bool

	// Service-to-service TLS (docs/security.md).
	TLSCert     string // serve HTTPS with this certificate…
	TLSKey      string // …and key; also the client certificate for calls
	TLSClientCA string // require client certificates signed by this CA (mTLS)
	TLSCA       string // verify called services against this CA (default TLSClientCA)
	// TLSPlaintextPeers lets calls with TLS also go to instances that
	// publish only plain http/grpc (a mesh moving to TLS); without it they
	// are skipped (client.WithPlaintextPeers).
	TLSPlaintextPeers bool

	LogFormat string // logfmt or json
	LogLevel  string // debug, info, warn, error

	// sources is where Parse found each value, for NameSources.
	sources *sourceNotes
}

// Default returns the configuration used when no flag or variable is set.
func Default(service, version string) Config {
	return Config{
		Service:          service,
		Version:          version,
		Listen:           ":8080",
		SelfCheck:        true,
		LoadShedding:     true,
		DebugProfiles:    true,
		Grace:            app.DefaultGracePeriod,
		DrainTimeout:     app.DefaultDrainTimeout,
		WithdrawTimeout:  app.DefaultWithdrawTimeout,
		MaxBodyBytes:     1 << 20,
		BodyTimeout:      httptransport.DefaultBodyTimeout,
		BodyIdleTimeout:  httptransport.DefaultBodyIdleTimeout,
		LogFormat:        "logfmt",
		LogLevel:         "info",
		TraceSampleRatio: 1,
		AccessLog:        "all",
	}
}

// Bind adds the core flags to fs, with c's current values as defaults.
// Backends' flags are bound by Parse.
func (c *Config) Bind(fs *flag.FlagSet) {
	fs.StringVar(&c.Version, "version", c.Version, "version published with the instance")
	fs.StringVar(&c.Listen, "listen", c.Listen, "listen address host:port (port 0 picks a free port)")
	fs.StringVar(&c.Advertise, "advertise", c.Advertise, "address published to discovery: host, host:port; default: listen host or first interface address, real port")
	fs.StringVar(&c.ID, "id", c.ID, "instance ID (default name-host-port, stable across restarts)")
	fs.StringVar(&c.Zone, "zone", c.Zone, "zone published with the instance, for zone-aware balancing")
	fs.IntVar(&c.Weight, "weight", c.Weight, "balancing weight, read by callers that balance by weight (0 means the default)")
	if c.Weight == 0 {
		// 0 is "not set": nothing is published and readers take
		// registry.DefaultWeight, so --help shows that as the default.
		fs.Lookup("weight").DefValue = strconv.Itoa(registry.DefaultWeight)
	}
	fs.Var(registry.ListFlag{P: &c.Tags}, "tags", "comma-separated tags published with the instance")
	fs.BoolVar(&c.SelfCheck, "self-check", c.SelfCheck, "check the advertised address reaches this process before registering (turn off without hairpin routing)")
	fs.BoolVar(&c.LoadShedding, "load-shedding", c.LoadShedding, "refuse at once (503 overloaded, so callers go elsewhere) requests past an adaptive limit on requests in flight; on its own it acts for handlers that wait (a database, another service), not for a CPU-bound service, whose queue waits unread in front of the handler: that one only slows down unless --shed-waiting is set (docs/overload.md)")

	fs.IntVar(&c.ShedWaiting, "shed-waiting", c.ShedWaiting, "with --load-shedding, also refuse while more than this many requests per CPU wait unread in front of the handler for 100ms (0: off; 16 suits a CPU-bound service with CPUs of its own; docs/overload.md)")

	fs.DurationVar(&c.Grace, "grace", c.Grace, "keep serving this long after withdrawing from discovery on shutdown")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "how long in-flight requests get to finish on shutdown")
	fs.DurationVar(&c.RegisterTimeout, "register-timeout", c.RegisterTimeout, "exit when the first registration has not succeeded by then (0: wait for the registry as long as it takes, not ready meanwhile)")
	fs.DurationVar(&c.WithdrawTimeout, "withdraw-timeout", c.WithdrawTimeout, "how long the withdrawal from discovery may take on shutdown before the service drains anyway (the record then goes when its lease or TTL expires)")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes, "request body limit in bytes")
	fs.DurationVar(&c.BodyTimeout, "body-timeout", c.BodyTimeout, "a request body must arrive within this (408 otherwise; 0: no limit)")
	fs.DurationVar(&c.BodyIdleTimeout, "body-idle-timeout", c.BodyIdleTimeout, "longest wait for more of a request body (408 otherwise; 0: no limit)")
	fs.DurationVar(&c.ClientAttemptTimeout, "client-attempt-timeout", c.ClientAttemptTimeout, "fixed per-attempt timeout of calls to other services (0: adaptive, 4 × observed p99 within 250ms–2s)")
	fs.StringVar(&c.SnapshotDir, "snapshot-dir", c.SnapshotDir, "directory for last-known-good discovery snapshots (empty: off)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the service's own data, if it keeps any (empty: memory)")
	fs.StringVar(&c.DebugListen, "debug-listen", c.DebugListen, "debug listener host:port for /metrics and /debug/pprof (empty: off; keep it on loopback or an admin network)")
	fs.Var(registry.ListFlag{P: &c.DebugAllowedHosts}, "debug-allowed-hosts", "comma-separated names the debug listener also answers to (it answers IP addresses, localhost, its own and the advertised host; other Host headers get 421, against DNS rebinding)")
	fs.BoolVar(&c.DebugProfiles, "debug-pprof", c.DebugProfiles, "serve the runtime profiles /debug/pprof/* on the debug listener (false: /metrics only)")
	fs.StringVar(&c.OTLPEndpoint, "otlp-endpoint", c.OTLPEndpoint, "OTLP/gRPC trace collector: http://host:4317 (plaintext), https://host:4317 or host:4317 (TLS); empty: off")
	fs.BoolVar(&c.TraceStdout, "trace-stdout", c.TraceStdout, "write every span as a JSON line to the log output (demo)")
	fs.Float64Var(&c.TraceSampleRatio, "trace-sample-ratio", c.TraceSampleRatio, "share of the traces this service starts that are recorded, 0 < r <= 1 (calls in a caller's trace follow the caller's choice; 1: all, or OTEL_TRACES_SAMPLER if set)")
	fs.BoolVar(&c.TracePublicEndpoint, "trace-public-endpoint", c.TracePublicEndpoint, "for a service outside callers reach: start a new trace for every request served (HTTP and gRPC), keeping the caller's traceparent only as a span link, so it can neither force nor suppress sampling, and drop its baggage (default: follow the caller, as services inside the mesh must)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "serve HTTPS with this certificate file (PEM); also presented when calling services that require client certificates")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "key file of --tls-cert")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", c.TLSClientCA, "require client certificates signed by this CA file (mutual TLS)")
	fs.StringVar(&c.TLSCA, "tls-ca", c.TLSCA, "verify called services' certificates against this CA file (default: --tls-client-ca, else the system roots)")
	fs.BoolVar(&c.TLSPlaintextPeers, "tls-plaintext-peers", c.TLSPlaintextPeers, "with TLS on, also call instances that publish only plain http/grpc (while a mesh moves to TLS; default: they are skipped)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: logfmt or json")
	fs.StringVar(&c.AccessLog, "access-log", c.AccessLog, "access lines of served requests and gRPC calls: all, errors (the server's failures: 5xx and their gRPC codes) or off; other lines keep --log-level")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
}

// Parse reads args and the environment into a Config for service. backends
// are the registry backends the program links in: --registry picks one of
// them (default: the first) and the flags of all of them are accepted.
// The table --help asks for goes to out (the program's stdout, so it can
// be piped) and ErrHelp is returned; a bad flag or value is only the
// returned error, for the caller's stderr.
//
// defaults replace built-in flag defaults (a main's own choices, such as
// the port `svcgen new --port` picked): the WARREN_* variable and the flag
// still win over them, and --help shows them as the defaults.
func Parse(service, version string, backends registry.Backends, args []string, out io.Writer, defaults ...FlagDefault) (Config, error) {
	return ParseWith(service, version, backends, args, out, ParseOptions{Defaults: defaults})
}

// ParseOptions are what a program adds to the framework's settings.
type ParseOptions struct {
	// Defaults replace built-in flag defaults (see Parse).
	Defaults []FlagDefault
	// Settings point to the service's own settings structs (package
	// settings): each field becomes a flag beside the framework's, with a
	// WARREN_* variable and a --config key, and a struct with a Validate
	// method is checked after parsing.
	Settings []any
	// Command names the subcommand these flags are parsed for
	// ("healthcheck"), for the usage text; "" is the service itself.
	Command string
	// Commands are the binary's other ways to run, listed in the usage
	// text: "healthcheck [flags]", tab, what it does.
	Commands []string
}

// ParseWith is Parse with the service's own settings. Every value comes
// from, in order of precedence: the flag, its WARREN_* variable, the
// --config file (YAML, flag names as keys), the default.
func ParseWith(service, version string, backends registry.Backends, args []string, out io.Writer, o ParseOptions) (Config, error) {
	defaults := o.Defaults
	c := Default(service, version)
	fs := flag.NewFlagSet(service, flag.ContinueOnError)
	fs.SetOutput(out)
	c.Bind(fs)
	if len(backends) > 0 {
		c.Registry = backends[0].Name
	}
	fs.StringVar(&c.Registry, "registry", c.Registry, registryUsage(backends))
	settings, err := backends.BindAll(fs)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	fs.String("config", "", "YAML file of settings, flag names as keys (listen: \":8080\"); flags and WARREN_* variables win over it")
	for _, s := range o.Settings {
		if err := svcsettings.Bind(fs, s); err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
	}
	for _, d := range defaults {
		f := fs.Lookup(d.Flag)
		if f == nil {
			return c, fmt.Errorf("config: default for --%s: no such flag", d.Flag)
		}
		if err := f.Value.Set(d.Value); err != nil {
			return c, fmt.Errorf("config: default for --%s: %w", d.Flag, err)
		}
		f.DefValue = d.Value
	}
	// A bad value is reported once, by the returned error (the caller
	// prints it last), naming the flag and the form it wants: no usage
	// dump above it. --help prints the usage.
	st := &parseState{}
	checkValues(fs, st)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix(EnvPrefix),
		ff.WithConfigFileFlag("config"), ff.WithConfigFileParser(st.yamlParser)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(out, service, o, fs)
			return c, ErrHelp
		}
		return c, fmt.Errorf("config: %w", parseError(err, st, fs, "--help"))
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("config: unexpected arguments %q", fs.Args())
	}
	// A value each flag's Set took can still be refused below: the error
	// says where it came from, as a parse error does (source.go).
	src := sources(fs, args, st)
	c.sources = &sourceNotes{fs: fs, src: src}
	if _, err := backends.Lookup(c.Registry); err != nil {
		return c, withSources(fmt.Errorf("config: --registry: %w", err), fs, src)
	}
	c.RegistrySettings = settings[c.Registry]
	if err := otherBackendSet(backends, c.Registry, src); err != nil {
		return c, withSources(err, fs, src)
	}
	if err := c.Validate(); err != nil {
		return c, withSources(err, fs, src)
	}
	for _, s := range o.Settings {
		if err := svcsettings.Validate(s); err != nil {
			return c, withSources(fmt.Errorf("config: %w", err), fs, src)
		}
	}
	return c, nil
}

// otherBackendSet refuses a flag of a backend --registry does not name,
// set while --registry itself was left at its default: WARREN_CONSUL_ADDR
// without WARREN_REGISTRY=consul opened the default backend and ignored
// the address, and the service waited on a registry nobody runs. With
// --registry set, another backend's flags are a shared environment's and
// are left alone. src holds the flags Parse saw set.
func otherBackendSet(backends registry.Backends, selected string, src map[string]string) error {
	if _, chosen := src["registry"]; chosen {
		return nil
	}
	names := make([]string, 0, len(src))
	for name := range src {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, b := range backends {
		if b.Name == selected {
			continue
		}
		own := flag.NewFlagSet(b.Name, flag.ContinueOnError)
		b.Bind(own)
		for _, name := range names {
			if own.Lookup(name) != nil {
				return fmt.Errorf("config: --%s is a setting of the %s registry, but --registry is not set and its default is %s, which ignores it: set --registry %s, or leave --%s out",
					name, b.Name, selected, b.Name, name)
			}
		}
	}
	return nil
}

// FlagDefault is a program's own default for one flag (its name without dashes).
type FlagDefault struct{ Flag, Value string }

func registryUsage(backends registry.Backends) string {
	var b strings.Builder
	b.WriteString("service registry: ")
	b.WriteString(backends.Names())
	for i, be := range backends {
		if i == 0 {
			b.WriteString(" (")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(be.Name + ": " + be.Usage)
		if i == len(backends)-1 {
			b.WriteString(")")
		}
	}
	return b.String()
}

// Validate reports the first setting that cannot work, the selected
// registry backend's included.
func (c Config) Validate() error {
	if _, err := transport.ParseAccessLog(c.AccessLog); err != nil {
		return fmt.Errorf("config: --access-log: %w", err)
	}
	switch {
	case c.RegistrySettings == nil:
		return fmt.Errorf("config: --registry %q: no settings for it (use Parse)", c.Registry)
	case c.Weight < 0:
		return fmt.Errorf("config: --weight %d: must not be negative", c.Weight)
	case c.Grace < 0 || c.DrainTimeout < 0:
		return errors.New("config: --grace and --drain-timeout must not be negative")
	case c.WithdrawTimeout <= 0:
		return fmt.Errorf("config: --withdraw-timeout %s: must be positive", c.WithdrawTimeout)
	case c.RegisterTimeout < 0:
		return fmt.Errorf("config: --register-timeout %s: must not be negative (0: no limit)", c.RegisterTimeout)
	case c.ShedWaiting < 0:
		return fmt.Errorf("config: --shed-waiting %d: must not be negative (0 turns the waiting signal off)", c.ShedWaiting)
	case c.ShedWaiting > 0 && !c.LoadShedding:
		return fmt.Errorf("config: --shed-waiting %d needs --load-shedding (the waiting signal is part of the load shedder)", c.ShedWaiting)
	case !(c.TraceSampleRatio > 0 && c.TraceSampleRatio <= 1):
		return fmt.Errorf("config: --trace-sample-ratio %v: want a share above 0 and at most 1", c.TraceSampleRatio)
	case c.ClientAttemptTimeout < 0:
		return fmt.Errorf("config: --client-attempt-timeout %s: must not be negative", c.ClientAttemptTimeout)
	case c.BodyTimeout < 0 || c.BodyIdleTimeout < 0:
		return errors.New("config: --body-timeout and --body-idle-timeout must not be negative")
	case c.MaxBodyBytes <= 0:
		return fmt.Errorf("config: --max-body-bytes %d: must be positive", c.MaxBodyBytes)
	case c.LogFormat != "logfmt" && c.LogFormat != "json":
		return fmt.Errorf("config: --log-format %q: want logfmt or json", c.LogFormat)
	case c.TLSClientCA != "" && c.TLSCert == "":
		return errors.New("config: --tls-client-ca needs --tls-cert and --tls-key (a server that asks for client certificates must speak TLS)")
	}
	if err := c.TLSClient().Validate(); err != nil {
		return err
	}
	for _, h := range c.DebugAllowedHosts {
		if err := httptransport.CheckAllowedHost(h); err != nil {
			return fmt.Errorf("config: --debug-allowed-hosts: %w", err)
		}
	}
	// Labels are published as given: "zone-a " (a space or CR an env
	// file left) is another zone to a caller configured with "zone-a"
	// (report j53d finding 10). Lists (--tags) are trimmed when parsed.
	for _, f := range [...]struct{ name, v string }{{"zone", c.Zone}, {"version", c.Version}, {"id", c.ID}} {
		if strings.TrimSpace(f.v) != f.v {
			return fmt.Errorf("config: --%s %q: leading or trailing white space (an env file's CR or space?); it would be published as given, and %q is not %q to a caller that matches it",
				f.name, f.v, f.v, strings.TrimSpace(f.v))
		}
	}
	if err := CheckListen("listen", c.Listen); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if c.DebugListen != "" {
		if err := CheckListen("debug-listen", c.DebugListen); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	if c.ID != "" {
		// The rules the App applies to the instance it publishes.
		probe := registry.Instance{ID: c.ID, Name: "svc", Endpoints: []string{"http://127.0.0.1:1"}}
		if err := probe.Validate(); err != nil {
			return fmt.Errorf("config: --id %q: %w", c.ID, err)
		}
	}
	if err := checkAdvertise(c.Advertise); err != nil {
		return err
	}
	if err := checkOTLPEndpoint(c.OTLPEndpoint); err != nil {
		return err
	}
	if err := c.RegistrySettings.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	return nil
}

// OpenRegistry opens the registry backend the configuration names, with its
// parsed settings.
func (c Config) OpenRegistry(ctx context.Context, o registry.OpenOptions) (registry.Registry, error) {
	if c.RegistrySettings == nil {
		return nil, fmt.Errorf("config: --registry %q: no settings for it (use Parse)", c.Registry)
	}
	return c.RegistrySettings.Open(ctx, o)
}

// EnvName returns the environment variable for a flag name.
func EnvName(flagName string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flagName))
}

// Usage prints every flag with its environment variable and default.
func Usage(out io.Writer, service string, fs *flag.FlagSet) { usage(out, service, ParseOptions{}, fs) }

func usage(out io.Writer, service string, o ParseOptions, fs *flag.FlagSet) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	if o.Command != "" {
		fmt.Fprintf(out, "Usage: %s %s [flags]\n\nThe flags are the service's: the same variables, --config file and defaults.\n\n", service, o.Command)
	} else {
		fmt.Fprintf(tw, "Usage:\n  %s [flags]\trun the service\n", service)
		for _, c := range o.Commands {
			fmt.Fprintf(tw, "  %s %s\n", service, c)
		}
		tw.Flush()
		fmt.Fprintf(out, "\nEvery flag can also be set with the environment variable shown or as a key of the --config file (YAML); a flag wins over its variable, and both over the file.\n\n")
	}
	fmt.Fprintln(tw, "FLAG\tVARIABLE\tDEFAULT\tMEANING")
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if secretFlag(f.Name) {
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
		app.WithRegisterTimeout(c.RegisterTimeout),
		app.WithWithdrawTimeout(c.WithdrawTimeout),
		app.WithAccessLog(accessLogMode(c.AccessLog)),
		app.WithSelfCheck(c.SelfCheck),
		app.WithMaxBodyBytes(c.MaxBodyBytes),
		app.WithBodyTimeouts(c.BodyTimeout, c.BodyIdleTimeout),
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

// accessLogMode is the mode of a value Validate accepted.
func accessLogMode(s string) transport.AccessLog {
	m, _ := transport.ParseAccessLog(s)
	return m
}
