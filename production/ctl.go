package production

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kong"

	"github.com/goangel/angel/internal/admin"
)

// ErrCtl: a verb of `PROGRAM ctl` failed (the runner refused it, or the
// admin listener could not be reached).
var ErrCtl = errors.New("production: ctl failed")

// ExitUnavailable (EX_UNAVAILABLE) is what `PROGRAM ctl` exits with when
// the admin listener cannot be reached; a verb the runner refused exits 1.
const ExitUnavailable = 69

// ctlCLI is the command line of `PROGRAM ctl`, the control command (like
// pumactl or the pm2 CLI): it talks to a running runner's admin listener
// or socket. The admin flags take the same environment variables as the
// runner's own (PREFIX_ADMIN_ADDRESS, PREFIX_ADMIN_SOCKET,
// PREFIX_ADMIN_TOKEN), so a shell with the service's environment needs none.
type ctlCLI struct {
	Address string        `name:"admin-address" placeholder:"HOST:PORT" help:"The runner's --admin-address (0.0.0.0 and :: mean this host)."`
	Socket  string        `name:"admin-socket" placeholder:"PATH" help:"The runner's --admin-socket (preferred when both are given; a relative PATH is in $RUNTIME_DIRECTORY when set)."`
	Token   string        `name:"admin-token" placeholder:"TOKEN" help:"The runner's --admin-token."`
	JSON    bool          `name:"json" help:"Print the admin listener's JSON answer (for scripts) instead of a table."`
	Timeout time.Duration `name:"timeout" default:"5m" help:"How long to wait for the verb (a reload waits for every instance)."`

	Status  struct{} `cmd:"" default:"1" help:"Show each instance: state, life, uptime, requests, rate, in flight, restarts, crashes (the default)."`
	Stats   struct{} `cmd:"" help:"Show the totals and the counters of each instance."`
	Reload  struct{} `cmd:"" help:"Replace every instance's life, rolling and surge-first (as SIGHUP)."`
	Upgrade struct{} `cmd:"" help:"Replace the process by a new one of the binary on disk (as SIGUSR2)."`
	Scale   struct {
		N int `arg:"" help:"The number of instances (at least 1)."`
	} `cmd:"" help:"Run N instances."`
	Restart struct {
		Instance int `arg:"" help:"The instance number (see status)."`
	} `cmd:"" help:"Replace one instance's life, surge-first."`
	Drain struct {
		Instance int `arg:"" help:"The instance number (see status)."`
	} `cmd:"" help:"Take one instance out of the rotation, drain and remove it."`
}

// ctlEnvFlags are the ctl flags read from the environment.
var ctlEnvFlags = map[string]bool{"admin-address": true, "admin-socket": true, "admin-token": true}

// ctl runs `PROGRAM ctl ARGS`: parse, send the verb, print the answer.
func (r *Runner) ctl(ctx context.Context, args []string) (err error) {
	var cli ctlCLI
	parser, err := r.ctlParser(&cli)
	if err != nil {
		return exitError(ExitUsage, fmt.Errorf("%w: building the ctl command line: %w", ErrUsage, err))
	}
	defer func() {
		if p := recover(); p != nil {
			err = helpExitError(p)
		}
	}()
	kctx, perr := parser.Parse(args)
	if perr != nil {
		parser.Errorf("%s", perr.Error())
		return exitError(ExitUsage, fmt.Errorf("%w: %w", ErrUsage, perr))
	}
	usage := func(err error) error { // printed here: Main does not print usage errors
		parser.Errorf("%s", err)
		return exitError(ExitUsage, fmt.Errorf("%w: %w", ErrUsage, err))
	}
	c, err := r.newCtlClient(&cli)
	if err != nil {
		return usage(err)
	}
	defer c.http.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, cli.Timeout)
	defer cancel()
	defer r.cancelOnStopSignal(cancel)()
	return c.run(ctx, kctx.Command(), &cli, usage)
}

// ctlParser builds the ctl command line: its flags, of which the admin
// listener's address, socket and token may come from the environment.
func (r *Runner) ctlParser(cli *ctlCLI) (*kong.Kong, error) {
	env := envResolver(r.envPrefix, r.lookupEnv, map[string]envSource{})
	return kong.New(cli,
		kong.Name(r.name+" ctl"),
		kong.Description(fmt.Sprintf("Controls a running `%s` through its admin listener (--admin-address or --admin-socket).", r.name)),
		kong.Writers(r.stdout, r.stderr),
		kong.Exit(func(code int) { panic(helpExit{code}) }),
		kong.ValueFormatter(func(v *kong.Value) string {
			if v.Flag != nil && ctlEnvFlags[v.Flag.Name] {
				return envHelp(r.envPrefix, v)
			}
			return v.Help
		}),
		kong.Resolvers(kong.ResolverFunc(func(kctx *kong.Context, p *kong.Path, f *kong.Flag) (any, error) {
			if !ctlEnvFlags[f.Name] {
				return nil, nil
			}
			return env.Resolve(kctx, p, f)
		})),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	)
}

// helpExitError turns kong's exit after --help (a helpExit panic) into
// ctl's result; any other panic goes on.
func helpExitError(p any) error {
	h, ok := p.(helpExit)
	if !ok {
		panic(p)
	}
	if h.code != 0 {
		return exitError(ExitUsage, fmt.Errorf("%w: exit %d", ErrUsage, h.code))
	}
	return nil
}

// cancelOnStopSignal calls cancel when Main's signals bring SIGINT or
// SIGTERM (they end ctl's wait), until the returned function is called.
func (r *Runner) cancelOnStopSignal(cancel context.CancelFunc) (stop func()) {
	if r.signals == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-r.signals:
				if s == syscall.SIGINT || s == syscall.SIGTERM {
					cancel()
					return
				}
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

// run sends the verb of the command cmd and prints the answer.
func (c *ctlClient) run(ctx context.Context, cmd string, cli *ctlCLI, usage func(error) error) error {
	switch cmd {
	case "status", "stats":
		body, err := c.do(ctx, "GET", "/instances")
		if err != nil {
			return err
		}
		return c.print(body, cmd)
	case "reload":
		return c.verb(ctx, "/reload")
	case "upgrade":
		return c.verb(ctx, "/upgrade")
	case "scale <n>":
		if cli.Scale.N < 1 {
			return usage(fmt.Errorf("scale %d: want the number of instances, at least 1", cli.Scale.N))
		}
		return c.verb(ctx, "/scale?n="+strconv.Itoa(cli.Scale.N))
	case "restart <instance>":
		return c.verb(ctx, fmt.Sprintf("/instances/%d/restart", cli.Restart.Instance))
	case "drain <instance>":
		return c.verb(ctx, fmt.Sprintf("/instances/%d/drain", cli.Drain.Instance))
	}
	return usage(fmt.Errorf("unknown ctl command %q", cmd))
}

// ctlClient sends the ctl verbs to one admin listener.
type ctlClient struct {
	http  *http.Client
	base  string // http://HOST:PORT, or http://localhost over the socket
	where string // what the messages call it
	token string
	json  bool
	out   io.Writer
}

func (r *Runner) newCtlClient(cli *ctlCLI) (*ctlClient, error) {
	c := &ctlClient{token: cli.Token, json: cli.JSON, out: r.stdout}
	tr := &http.Transport{}
	switch {
	case cli.Socket != "":
		path := r.adminSocketPath(cli.Socket)
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
		c.base, c.where = "http://localhost", "unix:"+path
	case cli.Address != "":
		host, port, err := net.SplitHostPort(cli.Address)
		if err != nil {
			return nil, fmt.Errorf("--admin-address %q: want HOST:PORT, e.g. 127.0.0.1:9090: %w", cli.Address, err)
		}
		if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
			host = "127.0.0.1" // the runner listens on every address: this host's
			if err == nil && ip.Is6() && !ip.Is4In6() {
				host = "::1"
			}
		}
		c.base = "http://" + net.JoinHostPort(host, port)
		c.where = c.base
	default:
		prefix := r.envPrefix
		if prefix != "" {
			prefix += "_"
		}
		return nil, fmt.Errorf("ctl needs the admin listener: give --admin-address HOST:PORT or --admin-socket PATH (or $%sADMIN_ADDRESS, $%sADMIN_SOCKET)", prefix, prefix)
	}
	c.http = &http.Client{Transport: tr}
	return c, nil
}

// do sends one request and returns the body of a 2xx answer; any other
// answer is an error carrying the listener's message.
func (c *ctlClient) do(ctx context.Context, method, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, exitError(ExitUsage, fmt.Errorf("%w: %w", ErrUsage, err))
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, exitError(ExitUnavailable, fmt.Errorf("%w: cannot reach the admin listener at %s: %w (is the app running with that --admin-address or --admin-socket?)", ErrCtl, c.where, err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, exitError(ExitUnavailable, fmt.Errorf("%w: reading the answer of %s: %w", ErrCtl, c.where, err))
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if c.json {
			_, _ = c.out.Write(body)
		}
		return nil, exitError(1, fmt.Errorf("%w: %s %s: %s: %s", ErrCtl, method, path, resp.Status, msg))
	}
	return body, nil
}

// verb POSTs path and prints the result (and the state after it).
func (c *ctlClient) verb(ctx context.Context, path string) error {
	body, err := c.do(ctx, "POST", path)
	if err != nil {
		return err
	}
	if c.json {
		_, err := c.out.Write(body)
		return err
	}
	var res struct {
		Result string          `json:"result"`
		State  *admin.Snapshot `json:"state"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return exitError(1, fmt.Errorf("%w: the answer of %s is not JSON: %w", ErrCtl, c.where, err))
	}
	fmt.Fprintf(c.out, "%s.\n", strings.ToUpper(res.Result[:1])+res.Result[1:])
	if res.State != nil {
		fmt.Fprintln(c.out)
		printStatus(c.out, *res.State)
	}
	return nil
}

// print prints GET /instances: the JSON as it is, or the table of cmd.
func (c *ctlClient) print(body []byte, cmd string) error {
	if c.json {
		_, err := c.out.Write(body)
		return err
	}
	var snap admin.Snapshot
	if err := json.Unmarshal(body, &snap); err != nil {
		return exitError(1, fmt.Errorf("%w: the answer of %s is not JSON: %w", ErrCtl, c.where, err))
	}
	if cmd == "stats" {
		printStats(c.out, snap)
	} else {
		printStatus(c.out, snap)
	}
	return nil
}

// printStatus prints the state line and one row per instance.
func printStatus(w io.Writer, s admin.Snapshot) {
	state := "ready"
	if why := admin.NotReady(s); why != "" {
		state = "not ready: " + why
	}
	fmt.Fprintf(w, "pid %d, version %s, up %s, generation %d: %d of %d instances serving; %s\n", s.PID, s.Build.Version,
		(time.Duration(s.UptimeSeconds) * time.Second).String(), s.Generation, s.Serving, s.Wanted, state)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tLIFE\tSTATE\tUPTIME\tREQ/S\tREQUESTS\tIN FLIGHT\tCONNS\tP50\tP99\t5XX\tRESTARTS\tCRASHES\tLAST CRASH")
	for _, in := range s.Instances {
		uptime := "-"
		if in.UptimeSeconds > 0 {
			uptime = (time.Duration(in.UptimeSeconds) * time.Second).String()
		}
		last := in.LastCrash
		if i := strings.IndexByte(last, '\n'); i >= 0 {
			last = last[:i]
		}
		if len(last) > 60 {
			last = last[:57] + "..."
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%.1f\t%d\t%d\t%d\t%s\t%s\t%.1f%%\t%d\t%d\t%s\n", in.Number, in.Life, in.State, uptime,
			in.RequestsPerSecond, in.Requests, in.InFlight, in.Connections, ctlLatency(in.LatencyP50Seconds), ctlLatency(in.LatencyP99Seconds),
			100*in.ErrorRate, in.Restarts, in.Crashes, last)
	}
	_ = tw.Flush()
}

// ctlLatency formats seconds: 850µs, 12.3ms; "-" for none.
func ctlLatency(sec float64) string {
	if sec <= 0 {
		return "-"
	}
	d := time.Duration(sec * float64(time.Second))
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

// printStats prints the totals, then the counters of each instance.
func printStats(w io.Writer, s admin.Snapshot) {
	var req, restarts, crashes, panics uint64
	var rate float64
	var inFlight, conns int64
	for _, in := range s.Instances {
		req, restarts, crashes, panics = req+in.Requests, restarts+in.Restarts, crashes+in.Crashes, panics+in.Panics
		rate, inFlight, conns = rate+in.RequestsPerSecond, inFlight+in.InFlight, conns+in.Connections
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "pid\t%d\n", s.PID)
	fmt.Fprintf(tw, "instances\t%d wanted, %d serving\n", s.Wanted, s.Serving)
	fmt.Fprintf(tw, "requests\t%d (%.1f/s), %d in flight\n", req, rate, inFlight)
	fmt.Fprintf(tw, "connections\t%d open\n", conns)
	fmt.Fprintf(tw, "restarts\t%d\n", restarts)
	fmt.Fprintf(tw, "crashes\t%d\n", crashes)
	fmt.Fprintf(tw, "handler panics\t%d\n", panics)
	_ = tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tLIFE\tREQUESTS\tREQ/S\tIN FLIGHT\tCONNS\tRESTARTS\tCRASHES\tPANICS")
	for _, in := range s.Instances {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.1f\t%d\t%d\t%d\t%d\t%d\n", in.Number, in.Life, in.Requests, in.RequestsPerSecond,
			in.InFlight, in.Connections, in.Restarts, in.Crashes, in.Panics)
	}
	_ = tw.Flush()
}
