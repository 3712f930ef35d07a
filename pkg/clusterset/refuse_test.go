package clusterset

import (
	"context"
	"errors"
	"net/http"
	"testing"
)

// TestRefuseEndedSendsNothing: a request whose context ended is neither sent
// nor counted, one with a live context is both.
func TestRefuseEndedSendsNothing(t *testing.T) {
	var sent int
	var counter RequestCounter
	rt := refuseEnded(counter.Wrap(roundTripperFunc(func(*http.Request) (*http.Response, error) {
		sent++
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
	})))
	ctx, cancel := context.WithCancel(context.Background())
	live, _ := http.NewRequestWithContext(ctx, http.MethodPatch, "https://example.invalid/api/v1/namespaces/a/services/b", nil)
	if _, err := rt.RoundTrip(live); err != nil {
		t.Fatal(err)
	}
	cancel()
	ended, _ := http.NewRequestWithContext(ctx, http.MethodPatch, "https://example.invalid/api/v1/namespaces/a/services/b", nil)
	if _, err := rt.RoundTrip(ended); !errors.Is(err, context.Canceled) {
		t.Errorf("request after cancel: error %v, want context.Canceled", err)
	}
	if sent != 1 || counter.Writes() != 1 {
		t.Errorf("sent %d, counted %d writes; want 1 and 1 (the live request only)", sent, counter.Writes())
	}
}
