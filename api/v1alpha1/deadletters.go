package v1alpha1

// Dead-letter requests (docs/decisions.md D21): a person sets these annotations on a
// ReplicationLink (`dwnsync deadletters retry|clear` does), the operator acts on them, removes
// them and records the outcome in status.lastDeadLetterAction and as an Event.
const (
	// AnnotationDeadLetters asks for an action on the link's dead letters: "retry" or "clear"
	// (all of them), or "retry:CID[,CID...]" / "clear:CID[,CID...]" (those messages only).
	AnnotationDeadLetters = "dwnsync.io/dead-letters"
	// AnnotationDeadLettersRequest is an id the requester picks; the outcome carries it back
	// (status.lastDeadLetterAction.requestID).
	AnnotationDeadLettersRequest = "dwnsync.io/dead-letters-request"
)

// Actions of status.lastDeadLetterAction.
const (
	DeadLetterActionRetry    = "retry"
	DeadLetterActionClear    = "clear"
	DeadLetterActionRejected = "rejected"
)

// MaxDeadLetterList is how many dead letters status.deadLetterList shows.
const MaxDeadLetterList = 20
