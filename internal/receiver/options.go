package receiver

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/herald-dev/herald/internal/apflimit"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/metrics"
)

// Options configure `herald receiver`. DefaultOptions holds every default;
// AddFlags binds the flags to them.
type Options struct {
	// BindAddress is where the receipts endpoint listens.
	BindAddress string
	// PublicURL is the scheme and host (and any path prefix) the providers
	// call, e.g. https://hooks.example.com. Twilio signs the full URL it
	// requested, which the receiver behind an ingress cannot see; without
	// it the URL is rebuilt from the request's Host (http, or https when
	// the receiver serves TLS itself).
	PublicURL string
	// MaxBodyBytes bounds one callback's body.
	MaxBodyBytes int64
	// MaxInFlight bounds the callbacks handled at once; more are answered
	// 503 with Retry-After.
	MaxInFlight int
	// NamespaceRate and NamespaceBurst bound the receipts one namespace
	// may record: each status a verified callback carries costs a token,
	// so a tenant whose provider calls back fast cannot crowd out others'
	// writes to the API server.
	NamespaceRate  float64
	NamespaceBurst int
	// MaxAge refuses statuses whose provider time is older: a captured
	// callback cannot be replayed after it. Meta retries a webhook for up
	// to seven days.
	MaxAge time.Duration
	// ClockSkew is how far a status time may lie in the future, or before
	// the attempt that sent the message began.
	ClockSkew time.Duration

	MetricsAddr string
	ProbeAddr   string
	// QPS and Burst of the receiver's Kubernetes client; with AdaptiveQPS
	// QPS is the ceiling of a rate that follows the API server's 429s
	// (internal/apflimit).
	QPS         float64
	Burst       int
	AdaptiveQPS bool
}

// DefaultOptions are the receiver's defaults.
func DefaultOptions() Options {
	return Options{
		BindAddress:    ":9292",
		MaxBodyBytes:   256 << 10,
		MaxInFlight:    64,
		NamespaceRate:  20,
		NamespaceBurst: 200,
		MaxAge:         7 * 24 * time.Hour,
		ClockSkew:      5 * time.Minute,
		MetricsAddr:    ":8080",
		ProbeAddr:      ":8081",
		QPS:            50,
		Burst:          100,
		AdaptiveQPS:    true,
	}
}

// AddFlags binds o's fields to flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress, "Address the receipts endpoint listens on (plain HTTP; terminate TLS at the ingress).")
	fs.StringVar(&o.PublicURL, "public-url", o.PublicURL, "Scheme and host the providers call, e.g. https://hooks.example.com; Twilio's signature covers the full URL.")
	fs.Int64Var(&o.MaxBodyBytes, "max-body-bytes", o.MaxBodyBytes, "Largest callback body accepted; larger ones are answered 413.")
	fs.IntVar(&o.MaxInFlight, "max-in-flight", o.MaxInFlight, "Callbacks handled at once; more are answered 503.")
	fs.Float64Var(&o.NamespaceRate, "namespace-rate", o.NamespaceRate, "Receipts recorded per second per namespace; more are answered 429.")
	fs.IntVar(&o.NamespaceBurst, "namespace-burst", o.NamespaceBurst, "Burst of --namespace-rate.")
	fs.DurationVar(&o.MaxAge, "max-age", o.MaxAge, "Statuses whose provider time is older are refused as replays.")
	fs.DurationVar(&o.ClockSkew, "clock-skew", o.ClockSkew, "How far a status time may lie in the future or before its send.")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr, "Address of the Prometheus metrics endpoint; 0 disables it.")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", o.ProbeAddr, "Address of the /healthz and /readyz endpoints.")
	fs.Float64Var(&o.QPS, "kube-api-qps", o.QPS, "Queries per second to the Kubernetes API: the ceiling with --kube-api-adaptive, else per resource type; -1 for no client-side limit.")
	fs.IntVar(&o.Burst, "kube-api-burst", o.Burst, "Burst of --kube-api-qps.")
	fs.BoolVar(&o.AdaptiveQPS, "kube-api-adaptive", o.AdaptiveQPS, "Share one client rate limit of at most --kube-api-qps across the process, halve it when the API server answers 429 Too Many Requests and raise it back while requests go through.")
}

// ClientRate is the client rate limit of these options, reporting to the
// metrics herald_kube_api_client_qps and herald_kube_api_throttled_total.
func (o *Options) ClientRate() apflimit.Config {
	return apflimit.Config{
		QPS:          o.QPS,
		Burst:        o.Burst,
		Adaptive:     o.AdaptiveQPS,
		OnRateChange: metrics.KubeAPIClientQPS.Set,
		OnThrottled:  metrics.KubeAPIThrottled.Inc,
	}
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.PublicURL != "" {
		base, err := channel.BaseURL(o.PublicURL, "")
		if err != nil {
			errs = append(errs, fmt.Errorf("--public-url %w, e.g. https://hooks.example.com", err))
		}
		o.PublicURL = base
	}
	if o.MaxBodyBytes < 1024 {
		errs = append(errs, errors.New("--max-body-bytes must be at least 1024"))
	}
	if o.MaxInFlight < 1 {
		errs = append(errs, errors.New("--max-in-flight must be at least 1"))
	}
	if o.NamespaceRate <= 0 || o.NamespaceBurst < 1 {
		errs = append(errs, errors.New("--namespace-rate must be positive and --namespace-burst at least 1"))
	}
	if o.MaxAge <= 0 || o.ClockSkew < 0 {
		errs = append(errs, errors.New("--max-age must be positive and --clock-skew not negative"))
	}
	if err := o.ClientRate().Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
