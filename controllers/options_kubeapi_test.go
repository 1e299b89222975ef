package controllers

import (
	"testing"

	"github.com/spf13/pflag"
)

func TestKubeAPIRateFlags(t *testing.T) {
	tests := []struct {
		args         []string
		wantQPS      float64
		wantAdaptive bool
		wantValid    bool
	}{
		{nil, 100, true, true},
		{[]string{"--kube-api-adaptive=false"}, 100, false, true},
		{[]string{"--kube-api-qps=-1"}, -1, true, true},
		{[]string{"--kube-api-qps=0"}, 0, true, false},
		{[]string{"--kube-api-burst=0"}, 100, true, false},
	}
	for _, tt := range tests {
		o := DefaultOptions()
		fs := pflag.NewFlagSet("controller", pflag.ContinueOnError)
		o.AddFlags(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		rate := o.Manager.ClientRate()
		if rate.QPS != tt.wantQPS || rate.Adaptive != tt.wantAdaptive || rate.OnRateChange == nil || rate.OnThrottled == nil {
			t.Errorf("%v: client rate %+v, want QPS %v adaptive %v with metrics", tt.args, rate, tt.wantQPS, tt.wantAdaptive)
		}
		if err := o.Complete(); (err == nil) != tt.wantValid {
			t.Errorf("%v: Complete() = %v, want valid %v", tt.args, err, tt.wantValid)
		}
	}
}
