package grpctransport

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// TimeToPB is t as a message field for svcgen's conversions: the zero
// time is an absent field (nil), so it comes back as the zero time.
// Protobuf keeps the instant, not the zone: t arrives in UTC.
func TimeToPB(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// TimeFromPB is TimeToPB's inverse: an absent field is the zero time.
func TimeFromPB(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// DurationToPB is d as a message field for svcgen's conversions.
func DurationToPB(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

// DurationFromPB is DurationToPB's inverse: an absent field is 0.
func DurationFromPB(d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.AsDuration()
}
