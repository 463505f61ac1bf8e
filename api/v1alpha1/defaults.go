package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults the API server applies (the +kubebuilder:default markers). `dwnsync run` has no API
// server, so it applies them with Default; a test checks both agree.
const (
	DefaultDirection    = DirectionBoth
	DefaultMode         = ModeLive
	DefaultPollInterval = 2 * time.Minute
	DefaultDialect      = DialectAuto
	// MinPollInterval is the smallest pollInterval admission accepts.
	MinPollInterval = 10 * time.Second
)

// Default fills unset optional fields with the CRD's defaults.
func (l *ReplicationLink) Default() {
	s := &l.Spec
	if s.Direction == "" {
		s.Direction = DefaultDirection
	}
	if s.Mode == "" {
		s.Mode = DefaultMode
	}
	if s.PollInterval == nil {
		s.PollInterval = &metav1.Duration{Duration: DefaultPollInterval}
	}
	if s.Dialect == "" {
		s.Dialect = DefaultDialect
	}
}
