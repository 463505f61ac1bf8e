package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Direction says which way a link moves messages.
// +kubebuilder:validation:Enum=both;pull;push
type Direction string

const (
	DirectionBoth Direction = "both" // remote→local and local→remote
	DirectionPull Direction = "pull" // remote→local only
	DirectionPush Direction = "push" // local→remote only
)

// Mode says how a link learns about new messages.
// +kubebuilder:validation:Enum=live;poll
type Mode string

const (
	ModeLive Mode = "live" // subscriptions on both servers, with periodic digest checks
	ModePoll Mode = "poll" // a digest compare + diff every pollInterval, no subscriptions
)

// Dialect pins the protocol family of the endpoints, or lets dwnsync detect it.
// +kubebuilder:validation:Enum=auto;web5;enbox;enbox-smt
type Dialect string

const (
	DialectAuto     Dialect = "auto"
	DialectWeb5     Dialect = "web5"
	DialectEnbox    Dialect = "enbox"
	DialectEnboxSMT Dialect = "enbox-smt"
)

// ProtocolPathPrefix is a protocol path (type names joined by '/') that narrows a protocol scope.
// +kubebuilder:validation:MaxLength=256
// +kubebuilder:validation:XValidation:rule="self.matches('^[^/]+(/[^/]+)*$')",message="each protocolPathPrefixes entry must be a protocol path like 'thread' or 'thread/message' (no leading, trailing or doubled '/'); fix the entry"
type ProtocolPathPrefix string

// SecretReference names a Secret in the ReplicationLink's namespace.
type SecretReference struct {
	// Name of the Secret.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule=`self == "" || self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')`,message="signer.secretRef.name must be a Secret name (lowercase letters, digits, '-' and '.'); fix the name"
	Name string `json:"name,omitempty"`
}

// SignerSpec says where the key that signs the link's requests lives.
//
// The Secret holds these keys (in data or stringData):
//
//   - did: the signing DID: the tenant itself, or a delegate the tenant granted
//     Messages permissions to on both servers.
//   - privateJwk: that DID's Ed25519 private key as a JWK, e.g.
//     {"kty":"OKP","crv":"Ed25519","x":"…","d":"…"}.
//   - grants (optional, for a delegate): permission grant ids per endpoint and per Messages
//     method, as JSON: {"https://dwn.example.com": {"Query": "<id>", "Read": "<id>",
//     "Subscribe": "<id>"}, "*": {…}}. The "*" entry applies to endpoints not listed.
type SignerSpec struct {
	// SecretRef names the Secret (same namespace) holding did, privateJwk and optionally grants.
	// +optional
	SecretRef SecretReference `json:"secretRef,omitempty"`
}

// ReplicationLinkSpec is one tenant replicated between a local and a remote DWN server.
//
// The identity of a link is (tenant, endpoint, localEndpoint, protocol, protocolPathPrefixes):
// those fields cannot change; create a new ReplicationLink instead. Everything else can change
// while the link runs, and the link keeps its checkpoints.
//
// +kubebuilder:validation:XValidation:rule=`has(self.signer) && has(self.signer.secretRef) && has(self.signer.secretRef.name) && self.signer.secretRef.name != ""`,fieldPath=".signer.secretRef.name",reason="FieldValueRequired",message="signer.secretRef.name is required: name a Secret in this namespace holding the keys did and privateJwk (see config/samples)"
// +kubebuilder:validation:XValidation:rule=`!has(self.protocolPathPrefixes) || size(self.protocolPathPrefixes) == 0 || (has(self.protocol) && self.protocol != "")`,fieldPath=".protocolPathPrefixes",message="protocolPathPrefixes narrow a protocol scope: set protocol too, or remove the prefixes"
// +kubebuilder:validation:XValidation:rule="!has(self.localEndpoint) || self.localEndpoint != self.endpoint",fieldPath=".localEndpoint",message="localEndpoint equals endpoint: a link needs two different servers; fix one of them"
// +kubebuilder:validation:XValidation:rule="self.tenant == oldSelf.tenant",fieldPath=".tenant",reason="FieldValueForbidden",message="tenant is immutable (part of the link identity): create a new ReplicationLink instead"
// +kubebuilder:validation:XValidation:rule="self.endpoint == oldSelf.endpoint",fieldPath=".endpoint",reason="FieldValueForbidden",message="endpoint is immutable (part of the link identity): create a new ReplicationLink instead"
// +kubebuilder:validation:XValidation:rule=`(has(self.localEndpoint) ? self.localEndpoint : "") == (has(oldSelf.localEndpoint) ? oldSelf.localEndpoint : "")`,fieldPath=".localEndpoint",reason="FieldValueForbidden",message="localEndpoint is immutable (part of the link identity): create a new ReplicationLink instead"
// +kubebuilder:validation:XValidation:rule=`(has(self.protocol) ? self.protocol : "") == (has(oldSelf.protocol) ? oldSelf.protocol : "")`,fieldPath=".protocol",reason="FieldValueForbidden",message="protocol is immutable (part of the link identity): create a new ReplicationLink instead"
// +kubebuilder:validation:XValidation:rule="(has(self.protocolPathPrefixes) ? self.protocolPathPrefixes : []) == (has(oldSelf.protocolPathPrefixes) ? oldSelf.protocolPathPrefixes : [])",fieldPath=".protocolPathPrefixes",reason="FieldValueForbidden",message="protocolPathPrefixes is immutable (part of the link identity): create a new ReplicationLink instead"
type ReplicationLinkSpec struct {
	// Tenant is the DID whose messages are replicated, e.g. did:jwk:eyJ….
	// +required
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^did:[a-z0-9]+:([A-Za-z0-9._:-]|%[0-9A-Fa-f]{2})*([A-Za-z0-9._-]|%[0-9A-Fa-f]{2})$')",message="tenant must be a DID like did:jwk:eyJ... or did:dht:abc (lowercase method name, no spaces or '^'); fix the DID"
	Tenant string `json:"tenant"`

	// Endpoint is the remote DWN server's base URL (http or https).
	// +required
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule=`isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ""`,message="endpoint must be an absolute http:// or https:// URL with a host, e.g. https://dwn.example.com; fix the scheme or host"
	// +kubebuilder:validation:XValidation:rule="!self.contains('^') && !self.contains('?') && !self.contains('#')",message="endpoint must be a base URL without '^', '?query' or '#fragment'; remove them (write a literal ^ as %5E)"
	Endpoint string `json:"endpoint"`

	// LocalEndpoint is the local DWN server's base URL. Empty: the operator's --local-endpoint.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule=`self == "" || (isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != "")`,message="localEndpoint must be an absolute http:// or https:// URL with a host, or be left out to use the operator's --local-endpoint; fix the scheme or host"
	// +kubebuilder:validation:XValidation:rule="!self.contains('^') && !self.contains('?') && !self.contains('#')",message="localEndpoint must be a base URL without '^', '?query' or '#fragment'; remove them (write a literal ^ as %5E)"
	LocalEndpoint string `json:"localEndpoint,omitempty"`

	// Protocol limits the link to one protocol (its normalized URI, as in the protocol
	// definition). Empty: the whole tenant.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule=`self == "" || isURL(self)`,message="protocol must be the protocol URI exactly as in its definition, e.g. https://example.com/chat, or be left out to replicate the whole tenant"
	Protocol string `json:"protocol,omitempty"`

	// ProtocolPathPrefixes narrows a protocol scope to these protocol paths and their children.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	ProtocolPathPrefixes []ProtocolPathPrefix `json:"protocolPathPrefixes,omitempty"`

	// Direction: both (default), pull (remote→local) or push (local→remote).
	// +optional
	// +kubebuilder:default=both
	Direction Direction `json:"direction,omitempty"`

	// Mode: live (subscriptions, default) or poll (compare and diff every pollInterval).
	// +optional
	// +kubebuilder:default=live
	Mode Mode `json:"mode,omitempty"`

	// PollInterval is how often a poll-mode link compares both servers. At least 10s; default 2m.
	// It does not apply to a live link that fell back to polling (phase degraded_poll): that
	// polls every 15-30s until a repair succeeds.
	// +optional
	// +kubebuilder:default="2m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]{1,5}([.][0-9]{1,9})?(ns|us|ms|s|m|h))+$')",message="pollInterval must be a positive duration like 30s, 2m or 1h30m (units ns, us, ms, s, m, h); fix the value"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]{1,5}([.][0-9]{1,9})?(ns|us|ms|s|m|h))+$') || duration(self) >= duration('10s')",message="pollInterval must be at least 10s so polling does not hammer the servers; raise it"
	PollInterval *metav1.Duration `json:"pollInterval,omitempty"`

	// Dialect pins the servers' protocol family: auto (detect, default), web5, enbox or enbox-smt.
	// +optional
	// +kubebuilder:default=auto
	Dialect Dialect `json:"dialect,omitempty"`

	// Signer names the Secret whose key signs every request of this link. Required.
	// +optional
	Signer SignerSpec `json:"signer,omitempty"`

	// Suspend pauses the link (phase paused) without forgetting its checkpoints.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// Phase is the state of a link, in the enbox sync engine's words.
// +kubebuilder:validation:Enum=initializing;live;repairing;degraded_poll;paused
type Phase string

const (
	PhaseInitializing Phase = "initializing"
	PhaseLive         Phase = "live"
	PhaseRepairing    Phase = "repairing"
	PhaseDegradedPoll Phase = "degraded_poll"
	PhasePaused       Phase = "paused"
)

// Connectivity says whether the last contact with the remote server worked.
// +kubebuilder:validation:Enum=online;offline;unknown
type Connectivity string

const (
	ConnectivityOnline  Connectivity = "online"
	ConnectivityOffline Connectivity = "offline"
	ConnectivityUnknown Connectivity = "unknown"
)

// DirectionStatus is the state of one directed feed of a link.
type DirectionStatus struct {
	// Checkpoint is the durable feed position (opaque; only meaningful on the source server).
	// +optional
	Checkpoint string `json:"checkpoint,omitempty"`
	// Applied counts messages this direction wrote to the other server.
	// +optional
	Applied int64 `json:"applied,omitempty"`
	// Pending counts messages seen but not yet applied.
	// +optional
	Pending int64 `json:"pending,omitempty"`
	// LastEventTime is when this direction last saw a message.
	// +optional
	LastEventTime *metav1.Time `json:"lastEventTime,omitempty"`
	// LastError is this direction's last error, empty once it recovers.
	// +optional
	LastError string `json:"lastError,omitempty"`
}

// Progress tells how far a copy pass (bootstrap or repair) is.
type Progress struct {
	// Applied counts messages applied so far.
	Applied int64 `json:"applied"`
	// Total is the number of messages to apply when the dialect can tell; 0 when unknown.
	// +optional
	Total int64 `json:"total,omitempty"`
	// Summary is applied/total ("120/400"), or applied alone when the total is unknown, and
	// while the pass copies its rate and the time left at that rate ("120/400 85/s ETA 3s"):
	// the PROGRESS column of `kubectl get rl`.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Summary string `json:"summary,omitempty"`
	// RatePerMinute is how many messages a minute the pass applies, smoothed over its latest
	// minute or so; set only while it copies (total known, applied below it, a reconcile due),
	// 0 when it stalls. The time left is (total - applied) / rate: `dwnsync status` shows both.
	// +optional
	// +kubebuilder:validation:Minimum=0
	RatePerMinute int64 `json:"ratePerMinute,omitempty"`
	// SampleTime is when the rate was last sampled: the next sample, at least 10s later,
	// measures the messages applied since and updates the rate. Unset when not copying.
	// +optional
	SampleTime *metav1.Time `json:"sampleTime,omitempty"`
	// SampleApplied is applied as of sampleTime.
	// +optional
	// +kubebuilder:validation:Minimum=0
	SampleApplied int64 `json:"sampleApplied,omitempty"`
}

// Condition types of a ReplicationLink.
const (
	// ConditionReady is True while the link replicates as specified (phase live). It is False
	// in degraded_poll, with the reason of the failures (Unauthorized, EndpointUnreachable,
	// RepairFailed).
	ConditionReady = "Ready"
	// ConditionConverged is True when the latest reconcile found nothing left to copy in the
	// link's direction(s) and no reconcile is due; False when it found differences or one is due.
	ConditionConverged = "Converged"
	// ConditionDegraded is True when the link works around a problem (degraded_poll, failed
	// repairs, dead letters).
	ConditionDegraded = "Degraded"
)

// ReplicationLinkStatus is a coalesced summary of the engine's view of the link. Checkpoints
// live in the operator's ledger, not here.
type ReplicationLinkStatus struct {
	// ObservedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase: initializing, live, repairing, degraded_poll or paused.
	// +optional
	Phase Phase `json:"phase,omitempty"`
	// NeedsReconcile is true while a reconcile is due (after a gap, a restart or an error); it
	// clears when a reconcile finds nothing left to copy in the link's direction(s).
	// +optional
	NeedsReconcile bool `json:"needsReconcile"`
	// Connectivity to the remote server: online, offline or unknown.
	// +optional
	Connectivity Connectivity `json:"connectivity,omitempty"`
	// Dialect is the detected (or pinned) protocol family of the remote server.
	// +optional
	Dialect string `json:"dialect,omitempty"`
	// LinkKey is the link's ledger key (tenant^endpoint^scopeId).
	// +optional
	LinkKey string `json:"linkKey,omitempty"`
	// Pull is the remote→local feed.
	// +optional
	Pull *DirectionStatus `json:"pull,omitempty"`
	// Push is the local→remote feed.
	// +optional
	Push *DirectionStatus `json:"push,omitempty"`
	// Progress of the latest pass that copied messages (the bootstrap, typically): applied
	// grows towards total while it runs.
	// +optional
	Progress *Progress `json:"progress,omitempty"`
	// LastReconcileTime is when a reconcile last compared the servers.
	// +optional
	LastReconcileTime *metav1.Time `json:"lastReconcileTime,omitempty"`
	// LastConvergedTime is when a reconcile last found nothing left to copy (equal to
	// lastReconcileTime when the latest one did).
	// +optional
	LastConvergedTime *metav1.Time `json:"lastConvergedTime,omitempty"`
	// RepairAttempts counts repairs since the link was last live.
	// +optional
	RepairAttempts int32 `json:"repairAttempts,omitempty"`
	// DeadLetters counts messages given up on (see the operator log and events for why).
	// +optional
	DeadLetters int32 `json:"deadLetters,omitempty"`
	// DeadLetterList shows up to 20 of the dead letters (the newest, oldest first);
	// deadLetters counts them all. `dwnsync deadletters list` prints it.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	DeadLetterList []DeadLetterEntry `json:"deadLetterList,omitempty"`
	// LastDeadLetterAction is the outcome of the latest dead-letter request made with the
	// dwnsync.io/dead-letters annotation (`dwnsync deadletters retry|clear`).
	// +optional
	LastDeadLetterAction *DeadLetterAction `json:"lastDeadLetterAction,omitempty"`
	// LastError is the link's last error, empty once it recovers.
	// +optional
	LastError string `json:"lastError,omitempty"`
	// Conditions: Ready, Converged, Degraded.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// DeadLetterEntry is one message the link gave up on.
type DeadLetterEntry struct {
	// CID of the message.
	CID string `json:"cid"`
	// Direction it failed in: pull (remote to local) or push (local to remote).
	Direction string `json:"direction"`
	// Reason the message was given up on.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Since is when it was given up on.
	Since metav1.Time `json:"since"`
}

// DeadLetterAction is what the operator did for one dwnsync.io/dead-letters request.
type DeadLetterAction struct {
	// RequestID is the dwnsync.io/dead-letters-request annotation of the request ("" if none).
	// +optional
	RequestID string `json:"requestID,omitempty"`
	// Action done: retry, clear, or rejected (an annotation value the operator does not
	// accept; nothing was done).
	Action string `json:"action"`
	// Count of dead letters retried or cleared.
	Count int32 `json:"count"`
	// Message says what was done, or why nothing was.
	// +optional
	Message string `json:"message,omitempty"`
	// Time the operator handled the request.
	Time metav1.Time `json:"time"`
}

// ReplicationLink keeps one DWN tenant converged between a local and a remote DWN server.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rl,categories=dwnsync
// The default columns fit 120 terminal columns whatever the tenant (a did:jwk is ~190
// characters): the tenant and the endpoints are under -o wide (priority 1).
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Reconcile",type=boolean,JSONPath=`.status.needsReconcile`
// +kubebuilder:printcolumn:name="Progress",type=string,JSONPath=`.status.progress.summary`
// +kubebuilder:printcolumn:name="Last Converged",type=date,JSONPath=`.status.lastConvergedTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Connectivity",type=string,JSONPath=`.status.connectivity`,priority=1
// +kubebuilder:printcolumn:name="Dead Letters",type=integer,JSONPath=`.status.deadLetters`,priority=1
// +kubebuilder:printcolumn:name="Pulled",type=integer,JSONPath=`.status.pull.applied`,priority=1
// +kubebuilder:printcolumn:name="Pushed",type=integer,JSONPath=`.status.push.applied`,priority=1
// +kubebuilder:printcolumn:name="Direction",type=string,JSONPath=`.spec.direction`,priority=1
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`,priority=1
// +kubebuilder:printcolumn:name="Dialect",type=string,JSONPath=`.status.dialect`,priority=1
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.spec.endpoint`,priority=1
// +kubebuilder:printcolumn:name="Protocol",type=string,JSONPath=`.spec.protocol`,priority=1
// +kubebuilder:printcolumn:name="Tenant",type=string,JSONPath=`.spec.tenant`,priority=1
// +kubebuilder:printcolumn:name="Shard",type=string,JSONPath=`.metadata.labels.shard\.dwnsync\.io/owner`,priority=1
type ReplicationLink struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ReplicationLinkSpec `json:"spec"`
	// +optional
	Status ReplicationLinkStatus `json:"status,omitempty"`
}

// ReplicationLinkList is a list of ReplicationLinks.
//
// +kubebuilder:object:root=true
type ReplicationLinkList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ReplicationLink `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ReplicationLink{}, &ReplicationLinkList{})
}
