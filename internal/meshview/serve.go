package meshview

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// Serve runs v and serves its page on ln until ctx ends, then stops both
// (open event streams are cut) and returns nil, or the server's error if
// it failed first.
func Serve(ctx context.Context, ln net.Listener, v *View, opts ...HandlerOption) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &http.Server{
		Handler:           Handler(v, opts...),
		ReadHeaderTimeout: 5 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx }, // streams end with ctx
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned by Serve: ends with ctx
		defer wg.Done()
		_ = v.Run(ctx)
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }() // owned by Serve: ends at Shutdown
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	if err == nil {
		<-errc
	}
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
