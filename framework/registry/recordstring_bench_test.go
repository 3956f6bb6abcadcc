package registry

import (
	"strconv"
	"testing"
)

// BenchmarkRecordString decodes records shaped as the scale bench's
// (bench/scale.go): what a full sync of an etcd instancer does per record.
func BenchmarkRecordString(b *testing.B) {
	recs := make([][]byte, 1024)
	for i := range recs {
		host := "10.0." + strconv.Itoa(i/250%250) + "." + strconv.Itoa(i%250+1)
		rec, err := EncodeRecord(Instance{
			ID: DefaultID("bench", host, 8080), Name: "bench", Endpoints: []string{EndpointURL("http", host, 8080)},
			Zone: "zone-" + strconv.Itoa(i%3), Metadata: map[string]string{"build": "b0"},
		})
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = rec
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, _, _, err := RecordString(recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
	}
}
