package retry

// must returns v, and panics (failing the test) when a constructor
// refused its options.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
