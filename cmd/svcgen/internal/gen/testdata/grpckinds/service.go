// Package grpckinds carries every field kind the gRPC emitter maps whose
// conversion is not the identity; grpc_roundtrip_test.go generates it,
// compiles its .proto and runs roundtrip_test.go.txt against the result.
package grpckinds

import (
	"context"
	"time"
)

// Service echoes its request.
//
//warren:grpc
type Service interface {
	Put(ctx context.Context, req PutRequest) (PutResponse, error)
}

type PutRequest struct {
	K Kinds `json:"k"`
}

type PutResponse struct {
	K Kinds `json:"k"`
}

type Level uint8

// Aliases are the types they name (report r55b F4).
type (
	Stamp    = time.Time
	Cents    = int64
	BinAlias = Bin
)

// Named slices and maps are the fields their underlying types are
// (report r55b F5).
type (
	Labels    map[string]string
	IDs       []int64
	LevelList []Level
	BinsByKey map[string]*Bin
	Blob      []byte
)

type Bin struct {
	Code string `json:"code"`
	Qty  int64  `json:"qty"`
}

type Kinds struct {
	Bins    []*Bin          `json:"bins"`
	ByName  map[string]*Bin `json:"by_name"`
	Primary *Bin            `json:"primary"`

	Small  uint8            `json:"small"`
	Wide   uint16           `json:"wide"`
	Tiny   int8             `json:"tiny"`
	Mid    int16            `json:"mid"`
	Level  Level            `json:"level"`
	Sizes  []uint16         `json:"sizes"`
	Levels map[string]Level `json:"levels"`

	At    time.Time            `json:"at"`
	Times []time.Time          `json:"times"`
	ByDay map[string]time.Time `json:"by_day"`
	Ticks []time.Duration      `json:"ticks"`

	// protoc-gen-go names get_message's field GetMessage_ (Message has
	// the getter GetMessage), and x's clashes with get_x's the other way.
	Message    string `json:"message"`
	GetMessage string `json:"get_message"`
	GetX       string `json:"get_x"`
	X          string `json:"x"`
	Reset      string `json:"reset"`

	// Pointers to scalars and times: nil is absent, a pointer to zero is
	// sent (proto3 optional; Timestamp and Duration have presence).
	Note  *string        `json:"note"`
	Empty *string        `json:"empty"`
	Count *int           `json:"count"`
	Tiny8 *int8          `json:"tiny8"`
	Lvl   *Level         `json:"lvl"`
	Flag  *bool          `json:"flag"`
	Ratio *float64       `json:"ratio"`
	When  *time.Time     `json:"when"`
	Never *time.Time     `json:"never"`
	Wait  *time.Duration `json:"wait"`

	Stamp   Stamp       `json:"stamp"`
	StampP  *Stamp      `json:"stamp_p"`
	Price   Cents       `json:"price"`
	Aliased []*BinAlias `json:"aliased"`

	Labels    Labels          `json:"labels"`
	IDs       IDs             `json:"ids"`
	LevelList LevelList       `json:"level_list"`
	BinsByKey BinsByKey       `json:"bins_by_key"`
	Blob      Blob            `json:"blob"`
	Blobs     map[string]Blob `json:"blobs"`
}

// Echo is the implementation.
type Echo struct{}

func (Echo) Put(_ context.Context, req PutRequest) (PutResponse, error) {
	return PutResponse{K: req.K}, nil
}
