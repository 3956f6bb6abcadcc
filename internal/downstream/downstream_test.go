package downstream

import (
	"context"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestWait_CountsTheUnionOfCallsOnce(t *testing.T) {
	clk := &clock{t: time.Unix(1, 0)}
	ctx, w := With(context.Background(), clk.now)
	endA := Begin(ctx)
	clk.t = clk.t.Add(time.Second)
	endB := Begin(ctx) // in parallel with A
	clk.t = clk.t.Add(time.Second)
	endA()
	endA() // twice: counted once
	clk.t = clk.t.Add(time.Second)
	if got := w.Total(clk.t); got != 3*time.Second {
		t.Fatalf("total with B still running = %v, want 3s", got)
	}
	endB()
	clk.t = clk.t.Add(time.Second) // the handler's own work
	endC := Begin(ctx)
	clk.t = clk.t.Add(500 * time.Millisecond)
	endC()
	if got := w.Total(clk.t); got != 3500*time.Millisecond {
		t.Fatalf("total = %v, want 3.5s", got)
	}
	Begin(context.Background())() // no Wait: nothing
	if (*Wait)(nil).Total(clk.t) != 0 {
		t.Fatal("nil Wait has a total")
	}
}
