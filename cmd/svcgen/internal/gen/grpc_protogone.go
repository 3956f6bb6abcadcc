package gen

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// protoGone is the problem of a service that had a .proto, which holds
// its field numbers, and has none now: without it every field would be
// numbered afresh from 1, and a field moved in the struct would swap
// meaning with another on the wire for every caller and instance built
// from the committed .proto (report j53c 9). What shows the service had
// one: svcgen's grpc_gen.go or grpc_gen_test.go, a .pb.go protoc compiled
// from the .proto, or the user's own files using the gRPC side they
// generated — deleting every generated file, the habit of starting
// afresh, leaves those (report r54b G2). A new gRPC service has none of
// them, nor a directory (prev nil). gen --renumber numbers afresh on
// purpose, with a note; so does a service with nothing generated left and
// nothing that shows gRPC, as gen cannot tell whether callers of an
// earlier .proto exist.
func (gs *grpcService) protoGone(pkg *Package) (*Problem, string) {
	prev := pkg.s.prev
	if prev == nil {
		return nil, ""
	}
	dir := pkg.s.dir
	proto := path.Join(dir, gs.ProtoFile())
	var left []string
	for _, fn := range []string{GRPCEmitter{}.File(), GRPCEmitter{}.TestFile()} {
		if b, err := fs.ReadFile(prev, fn); err == nil && bytes.HasPrefix(b, []byte(generatedHeader)) {
			left = append(left, fn)
		}
	}
	pbs, _ := fs.Glob(prev, gs.PB+"/*.pb.go")
	left = append(left, pbs...)
	uses := gs.grpcUses(prev)
	afresh := fmt.Sprintf("every field was numbered afresh from 1, in struct order. Callers and instances built from an earlier %s (if this service served gRPC before) read fields by their old numbers, "+
		"so a field that moved now means another on the wire for them; while any still run, restore the file from version control (git checkout -- %s) and run gen again", gs.ProtoFile(), proto)
	if pkg.s.opt.Renumber {
		return nil, proto + ": --renumber: " + afresh
	}
	if len(left)+len(uses) == 0 {
		if generatedLeft(prev) {
			return nil, "" // an HTTP service given //warren:grpc: its first .proto
		}
		return nil, proto + ": no earlier .proto and no generated file of this service were found, so " + afresh
	}
	var had []string
	if len(left) > 0 {
		had = append(had, strings.Join(left, ", ")+" still there")
	}
	had = append(had, uses...)
	return &Problem{Pos: position(proto, 0), Msg: fmt.Sprintf(
		"this file is missing, but the service had it (%s), and it holds the service's protobuf field numbers: "+
			"numbered afresh, fields would swap meaning on the wire for callers built from the committed .proto; "+
			"restore it from version control (git checkout -- %s) and run gen again. "+
			"To number every field afresh on purpose (no caller of an old .proto left, or the service never had one), run gen --renumber",
		strings.Join(had, "; "), proto)}, ""
}

// grpcUses says where the user's own files of the service — its main,
// written once by `svcgen new --grpc`, and the package's Go files, which
// gen never rewrites — use what grpc_gen.go or NAMEpb/ declare.
func (gs *grpcService) grpcUses(prev fs.FS) []string {
	var out []string
	mainPath := path.Join("cmd", gs.Name, "main.go")
	if b, err := fs.ReadFile(prev, mainPath); err == nil {
		for _, fn := range []string{"NewTransports", "NewGRPCTransport", "NewGRPCClient"} {
			if bytes.Contains(b, []byte(gs.Package+"."+fn+"(")) {
				out = append(out, fmt.Sprintf("%s calls %s.%s", mainPath, gs.Package, fn))
				break
			}
		}
	}
	names, _ := fs.Glob(prev, "*.go")
	for _, fn := range names {
		b, err := fs.ReadFile(prev, fn)
		if err != nil || isGenerated(b) {
			continue
		}
		for _, use := range []string{"NewGRPCClient(", "NewGRPCTransport(", "NewGRPCServer(", "MakeGRPCClientEndpoints(", "/" + gs.PB + `"`} {
			if bytes.Contains(b, []byte(use)) {
				out = append(out, fmt.Sprintf("%s uses %s", fn, strings.Trim(use, `/"(`)))
				break
			}
		}
	}
	return out
}

// generatedLeft reports whether any Go file svcgen generated is in the
// service directory.
func generatedLeft(prev fs.FS) bool {
	for _, fn := range GeneratedFiles() {
		if b, err := fs.ReadFile(prev, fn); err == nil && bytes.HasPrefix(b, []byte(generatedHeader)) {
			return true
		}
	}
	return false
}
