package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// ms is a time in the tests' histories.
func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func regResultOf(t *testing.T, ops []regOp) porcupine.CheckResult {
	t.Helper()
	res := checkRegisters(ops, 10*time.Second, "")
	if len(res) != 1 {
		t.Fatalf("%d paths checked, want 1", len(res))
	}
	return res[0].Result
}

// TestLinearizabilityModel: the register model and the history reductions
// flag a stale read after an acknowledged write, a visible refused write
// and a read that goes back after an unknown write was seen, and accept a
// correct history of concurrent writers, pending writes and reads.
func TestLinearizabilityModel(t *testing.T) {
	const p = "/fc-reg/r0"
	put := func(c, v string, call, ret int, o outcome) regOp {
		return regOp{Client: c, Path: p, Kind: "PUT", Value: v, Status: 201, Outcome: o, Call: ms(call), Return: ms(ret)}
	}
	get := func(c, v string, call, ret int) regOp {
		return regOp{Client: c, Path: p, Kind: "GET", Value: v, Status: 200, Outcome: opOK, Call: ms(call), Return: ms(ret)}
	}

	t.Run("stale read after an acknowledged write", func(t *testing.T) {
		h := []regOp{
			put("c0", "sha256:aa", 0, 10, opOK),
			put("c1", "sha256:bb", 20, 30, opOK),
			get("c2", "sha256:aa", 40, 50), // b was acknowledged before this read began
		}
		if got := regResultOf(t, h); got != porcupine.Illegal {
			t.Errorf("stale read: %v, want Illegal", got)
		}
		if ex := checkRegisters(h, 10*time.Second, "")[0].Explanation; !strings.Contains(ex, "stuck at [0.040s, 0.050s] c2 GET") {
			t.Errorf("explanation %q does not name the stale read", ex)
		}
		if fw := falseWrites(h); len(fw) != 1 || !strings.Contains(fw[0], "PUT") {
			t.Errorf("falseWrites = %q, want the PUT of bb", fw)
		}
	})

	t.Run("an acknowledged write never seen", func(t *testing.T) {
		h := []regOp{
			{Client: "c1", Path: p, Kind: "DELETE", Value: stAbsent, Status: 503, Outcome: opUnknown, Call: ms(0), Return: ms(5)},
			put("c0", "sha256:aa", 10, 20, opOK),
			put("c1", "sha256:bb", 30, 40, opOK),
			get("c2", "sha256:aa", 50, 60),
			get("c0", "sha256:aa", 70, 80),
			put("c2", "sha256:cc", 90, 100, opOK),
			get("c2", "sha256:cc", 110, 120),
		}
		if got := regResultOf(t, h); got != porcupine.Illegal {
			t.Errorf("lost write: %v, want Illegal", got)
		}
		// The unknown DELETE, pending for ever, cannot explain reads of aa.
		if fw := falseWrites(h); len(fw) != 1 || !strings.Contains(fw[0], "writes sha256:bb") {
			t.Errorf("falseWrites = %q, want the PUT of bb", fw)
		}
	})

	t.Run("a refused write is visible", func(t *testing.T) {
		h := []regOp{
			put("c0", "sha256:aa", 0, 10, opOK),
			put("c1", "sha256:bb", 20, 30, opFailed),
			get("c2", "sha256:bb", 40, 50),
		}
		if got := regResultOf(t, h); got != porcupine.Illegal {
			t.Errorf("refused write seen: %v, want Illegal", got)
		}
	})

	t.Run("back in time after an unknown write was seen", func(t *testing.T) {
		h := []regOp{
			put("c0", "sha256:aa", 0, 10, opOK),
			put("c1", "sha256:bb", 20, 30, opUnknown), // a timeout: may apply at any time
			get("c2", "sha256:bb", 40, 50),
			get("c2", "sha256:aa", 60, 70), // nothing wrote aa again
		}
		if got := regResultOf(t, h); got != porcupine.Illegal {
			t.Errorf("read went back: %v, want Illegal", got)
		}
	})

	t.Run("a correct concurrent history", func(t *testing.T) {
		h := []regOp{
			get("c2", stAbsent, 0, 5),
			put("c0", "sha256:aa", 0, 100, opOK),
			get("c1", stAbsent, 10, 20), // aa not yet applied
			get("c2", "sha256:aa", 30, 40),
			get("c1", stAbsent, 35, 45), // concurrent with the read above: it may come first
			put("c1", "sha256:bb", 50, 200, opUnknown),
			get("c2", "sha256:aa", 60, 70),
			put("c2", "sha256:cc", 65, 75, opUnknown), // never seen: may have applied and been overwritten, or never
			get("c0", "sha256:bb", 210, 220),          // the unknown write applied late
			{Client: "c0", Path: p, Kind: "DELETE", Value: stAbsent, Status: 504, Outcome: opUnknown, Call: ms(230), Return: ms(240)},
			get("c1", "sha256:bb", 245, 250), // the unknown DELETE not applied yet
			{Client: "c2", Path: p, Kind: "PROPFIND", Value: stPresent, Status: 207, Outcome: opOK, Call: ms(250), Return: ms(260)},  // still there
			{Client: "c1", Path: p, Kind: "DELETE", Value: stAbsent, Status: 204, Outcome: opOK, Call: ms(270), Return: ms(280)},     // deleted
			{Client: "c0", Path: p, Kind: "DELETE", Value: stAbsent, Status: 404, Outcome: opFailed, Call: ms(290), Return: ms(300)}, // reads absent
			{Client: "c2", Path: p, Kind: "PROPFIND", Value: stAbsent, Status: 404, Outcome: opOK, Call: ms(310), Return: ms(320)},   // absent
			{Client: "c2", Path: p, Kind: "GET", Value: "", Status: 503, Outcome: opUnknown, Call: ms(330), Return: ms(340)},         // told nothing
			{Client: "c1", Path: p, Kind: "PUT", Value: "sha256:dd", Status: 409, Outcome: opFailed, Call: ms(350), Return: ms(360)}, // refused
			get("check", stAbsent, 1000, 1010),
		}
		if got := regResultOf(t, h); got != porcupine.Ok {
			t.Errorf("correct history: %v, want Ok", got)
		}
		if fw := falseWrites(h); len(fw) != 0 {
			t.Errorf("falseWrites = %q, want none", fw)
		}
	})

	t.Run("pending writes at infinity stay cheap", func(t *testing.T) {
		// 40 unknown DELETEs and 40 unknown PUTs never seen amid 400
		// acknowledged writes and reads: the search must not explode.
		var h []regOp
		at := 0
		for i := range 400 {
			v := "sha256:" + strings.Repeat("0", 3) + string(rune('a'+i%26)) + string(rune('a'+i/26))
			switch {
			case i%10 == 3:
				h = append(h, regOp{Client: "c1", Path: p, Kind: "DELETE", Value: stAbsent, Outcome: opUnknown, Call: ms(at), Return: ms(at + 5)})
				h = append(h, put("c2", v+"x", at, at+5, opUnknown))
			default:
				h = append(h, put("c0", v, at, at+5, opOK), get("c1", v, at+6, at+8))
			}
			at += 10
		}
		start := time.Now()
		if got := regResultOf(t, h); got != porcupine.Ok {
			t.Errorf("history with pending writes: %v, want Ok", got)
		}
		t.Logf("checked %d operations in %v", len(h), time.Since(start))
	})
}

// TestExclusiveLockCheck: two exclusive locks on one path held at once are
// found; locks one after the other, and a lock granted after the other
// one's timeout ran out, are not.
func TestExclusiveLockCheck(t *testing.T) {
	g := func(c string, call, ret, release, timeout int) lockGrant {
		return lockGrant{Client: c, Node: "dfs-0", Token: "t-" + c, Call: ms(call), Return: ms(ret), Release: ms(release), Timeout: ms(timeout)}
	}
	if got := doubleGrants("/x", []lockGrant{g("c0", 0, 10, 300, 10000), g("c1", 100, 120, 400, 10000)}); len(got) != 1 {
		t.Errorf("overlapping grants: %q, want one false answer", got)
	}
	if got := doubleGrants("/x", []lockGrant{g("c0", 0, 10, 300, 10000), g("c1", 200, 320, 400, 10000), g("c2", 410, 420, 500, 10000)}); len(got) != 0 {
		t.Errorf("grants in turn (the second answered after the first was released): %q, want none", got)
	}
	// c0 never released its lock (its UNLOCK was lost), but it expired
	// 1 s after its LOCK was sent; c1 got the lock after that.
	if got := doubleGrants("/x", []lockGrant{g("c0", 0, 10, 5000, 1000), g("c1", 1200, 1300, 1500, 1000)}); len(got) != 0 {
		t.Errorf("grant after the other expired: %q, want none", got)
	}
}
