package difftest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// FuzzUnionOps is the differential test as a fuzz target: the input picks
// the generated layers (first byte), the walk mode and the overlay features
// (second byte: plain, redirect_dir=on, metacopy=on) and, byte
// by byte, every choice of the operation generator, so that a small change
// of the input changes a few operations rather than the whole sequence.
// Every outcome (errno included) and the merged trees must agree between
// union and the kernel's overlayfs, and the lowers must stay untouched.
//
// `go test` runs the seed corpus; `make fuzz` fuzzes it (as root). A
// failing input is saved in testdata/fuzz/FuzzUnionOps and replayed by
// every later `go test`.
func FuzzUnionOps(f *testing.F) {
	for seed := uint64(1); seed <= 6; seed++ {
		r := rand.New(rand.NewPCG(seed, 99))
		in := make([]byte, 2+8*48)
		for i := range in {
			in[i] = byte(r.Uint32())
		}
		in[0] = byte(seed)
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 3 {
			return
		}
		requireOverlay(t)
		layers := generateLayers(int64(in[0]%48) + 1)
		mode := walkMode(in[1] % 2)
		feats := allFeatures[int(in[1]/2)%len(allFeatures)]
		// At most 64 operations: a long sequence is rarely needed and
		// would slow every execution.
		n := min((len(in)-2)/4+1, 64)
		ops := generateOpsFrom(rand.New(&byteSource{b: in[2:]}), layers, n)
		env := newDiffEnv(t, layers, mode, feats)
		divs := runDiff(env, ops, 16)
		if err := env.unmount(); err != nil {
			t.Errorf("unmount kernel overlay: %v", err)
		}
		env.requireUntouched(t)
		if len(divs) == 0 {
			return
		}
		var b strings.Builder
		for _, d := range divs {
			fmt.Fprintf(&b, "%s\n  the operations up to it:\n%s", d, describeOps(ops, d.Index-12, d.Index))
		}
		t.Errorf("layers %d, %s, %s: union and the kernel disagree:\n%slayers of the run:\n%s",
			int64(in[0]%48)+1, mode, feats.name, b.String(), describeLayers(layers, nil))
	})
}

// byteSource is a rand.Source reading the fuzzer's bytes: each Uint64 is
// the next 4 bytes (spread over 64 bits). Four bytes per choice keep a
// mutated byte local to one choice. Once they run out it goes on with a
// generator seeded by the input (the op generator retries some choices
// until they differ, so it must never see a constant stream).
type byteSource struct {
	b    []byte
	rest *rand.PCG
}

func (s *byteSource) Uint64() uint64 {
	if len(s.b) < 4 {
		if s.rest == nil {
			s.rest = rand.NewPCG(uint64(len(s.b)), 0x5eed)
		}
		return s.rest.Uint64()
	}
	v := uint64(binary.LittleEndian.Uint32(s.b))
	s.b = s.b[4:]
	return v<<32 | (v*0x9e3779b97f4a7c15)>>32
}
