package user

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func stores(t *testing.T) map[string]Store {
	dir, err := NewDirStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]Store{"memory": NewMemoryStore(), "dir": dir}
}

func TestCreate_ValidUserIsStoredAndReadBack(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := New(st)
			ctx := context.Background()
			u, err := s.Create(ctx, CreateRequest{Name: "  Ada Lovelace ", Email: "Ada@Example.com"})
			if err != nil {
				t.Fatal(err)
			}
			if u.ID == "" || u.Name != "Ada Lovelace" || u.Email != "ada@example.com" || u.Created.IsZero() {
				t.Fatalf("created %+v", u)
			}
			got, err := s.Get(ctx, GetRequest{ID: u.ID})
			if err != nil || got.ID != u.ID || got.Email != u.Email {
				t.Fatalf("Get = %+v, %v", got, err)
			}
		})
	}
}

func TestCreate_InvalidInputNamesEveryProblem(t *testing.T) {
	s := New(NewMemoryStore())
	_, err := s.Create(context.Background(), CreateRequest{Name: "", Email: "not-an-email"})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	for _, want := range []string{"name must not be empty", `email "not-an-email" is not an email address`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	_, err = s.Create(context.Background(), CreateRequest{Name: strings.Repeat("x", 101), Email: "a@b.c"})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "at most 100") {
		t.Fatalf("long name: %v", err)
	}
}

func TestCreate_DuplicateEmailIsRefused(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := New(st)
			ctx := context.Background()
			if _, err := s.Create(ctx, CreateRequest{Name: "a", Email: "a@x.io"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Create(ctx, CreateRequest{Name: "b", Email: "A@x.io"}); !errors.Is(err, ErrEmailTaken) {
				t.Fatalf("err = %v, want ErrEmailTaken", err)
			}
		})
	}
}

func TestGet_UnknownOrHostileIDIsNotFound(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := New(st)
			for _, id := range []string{"u-nope", "../../etc/passwd", ".hidden"} {
				if _, err := s.Get(context.Background(), GetRequest{ID: id}); !errors.Is(err, ErrNotFound) {
					t.Errorf("Get(%q) err = %v", id, err)
				}
			}
			if _, err := s.Get(context.Background(), GetRequest{}); !errors.Is(err, ErrInvalid) {
				t.Errorf("empty id err = %v", err)
			}
		})
	}
}

func TestList_PagesInCreationOrder(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := New(st)
			ctx := context.Background()
			var ids []string
			for i := range 5 {
				u, err := s.Create(ctx, CreateRequest{Name: "n", Email: string(rune('a'+i)) + "@x.io"})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, u.ID)
			}
			var got []string
			req := ListRequest{Limit: 2}
			for range 10 {
				page, err := s.List(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				for _, u := range page.Users {
					got = append(got, u.ID)
				}
				if page.Next == "" {
					break
				}
				req.After = page.Next
			}
			if strings.Join(got, ",") != strings.Join(ids, ",") {
				t.Fatalf("paged %v, want %v", got, ids)
			}
			if _, err := s.List(ctx, ListRequest{Limit: 501}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("limit 501: %v", err)
			}
		})
	}
}
