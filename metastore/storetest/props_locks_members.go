package storetest

import (
	"fmt"
	"maps"
	"strings"

	"github.com/dfs-project/dfs/metastore"
)

func testProps(e *env) {
	var (
		display = metastore.PropName{Space: "DAV:", Local: "displayname"}
		xmlProp = metastore.PropName{Space: "urn:x", Local: "xml"}
		noNS    = metastore.PropName{Space: "", Local: "plain"}
		ws      = metastore.PropName{Space: "http://example.com/ns#frag?q=1%20", Local: "ws"}
		bin     = metastore.PropName{Space: "urn:日本", Local: "bin"}
	)
	one := map[metastore.PropName]string{
		display: "Résumé 日本 🙂",
		xmlProp: `<x:a xmlns:x="urn:x" x:attr='1'>t&amp;&lt;<![CDATA[<raw>&]]><!-- c --></x:a>`,
		noNS:    "",
		ws:      " \r\n\t lead and trail \n",
		bin:     "\xff\xfe\x00raw",
	}
	other := map[metastore.PropName]string{display: "other"}
	e.commit(func(b *metastore.Batch) {
		for n, v := range one {
			b.SetProp(dirA, n, v)
		}
		b.SetProp(dirB, display, "other")
	})
	e.wantProps(dirA, one)
	e.wantProps(dirB, other)
	e.wantProps(dirC, map[metastore.PropName]string{})

	e.commit(func(b *metastore.Batch) {
		b.SetProp(dirA, display, "renamed").DeleteProp(dirA, noNS).DeleteProp(dirA, metastore.PropName{Space: "urn:none", Local: "x"})
	})
	one[display] = "renamed"
	delete(one, noNS)
	e.wantProps(dirA, one)

	e.commit(func(b *metastore.Batch) { b.DeleteProps(dirA).DeleteProps(dirC) })
	e.wantProps(dirA, map[metastore.PropName]string{})
	e.wantProps(dirB, other)

	// Properties come back after being deleted wholesale.
	e.commit(func(b *metastore.Batch) { b.SetProp(dirA, noNS, "again") })
	e.wantProps(dirA, map[metastore.PropName]string{noNS: "again"})
}

func testLocks(e *env) {
	e.wantLocks()
	mk := func(token, root string) metastore.Lock {
		return metastore.Lock{
			Token: "opaquelocktoken:" + token, Root: root, Infinite: true, Shared: token == "b",
			Owner: `<D:href xmlns:D="DAV:">mailto:ü@example.com</D:href>`, Timeout: 3600,
			Created: 1_700_000_000_000_000_000, Expires: 1_700_003_600_000_000_000,
			Principal: map[string]string{"a": "alice", "c": "ünïcode user"}[token], // b: none (any user)
		}
	}
	a, b, c := mk("a", "/a b/日本"), mk("b", "/"), mk("c", "/100%/#x")
	e.commit(func(bt *metastore.Batch) { bt.PutLock(c).PutLock(a).PutLock(b) })
	e.wantLocks(a, b, c)

	b2 := b
	b2.Root, b2.Infinite, b2.Expires = "/moved", false, 0
	e.commit(func(bt *metastore.Batch) {
		bt.PutLock(b2).DeleteLock(a.Token).DeleteLock("opaquelocktoken:none")
	})
	e.wantLocks(b2, c)

	e.commit(func(bt *metastore.Batch) { bt.DeleteLock(b2.Token).DeleteLock(c.Token) })
	e.wantLocks()
}

// testPropsOfMany reads the properties of more inodes than one Redis
// pipeline chunk carries, some with properties and some without.
func testPropsOfMany(e *env) {
	const n = 2500
	color := metastore.PropName{Space: "urn:x", Local: "color"}
	size := metastore.PropName{Space: "urn:y", Local: "size"}
	want := make(map[metastore.ID]map[metastore.PropName]string, n)
	ids := make([]metastore.ID, 0, n+1)
	e.commit(func(b *metastore.Batch) {
		for i := range n {
			id := metastore.ID(5000 + i)
			ids = append(ids, id)
			props := map[metastore.PropName]string{}
			if i%3 != 0 {
				props[color] = fmt.Sprintf("<c>%d</c>", i)
			}
			if i%5 == 0 {
				props[size] = strings.Repeat("s", i%17)
			}
			for k, v := range props {
				b.SetProp(id, k, v)
			}
			want[id] = props
		}
	})
	ids = append(ids, 999_999) // never had properties
	want[999_999] = map[metastore.PropName]string{}
	got, err := e.s.PropsOf(e.ctx, ids)
	if err != nil {
		e.t.Fatalf("PropsOf(%d ids): %v", len(ids), err)
	}
	if len(got) != len(want) {
		e.t.Fatalf("PropsOf returned %d inodes, want %d", len(got), len(want))
	}
	for id, w := range want {
		if g, ok := got[id]; !ok || !maps.Equal(g, w) {
			e.t.Fatalf("PropsOf[%d] = %q (present %v), want %q", id, g, ok, w)
		}
	}
	if got, err := e.s.PropsOf(e.ctx, nil); err != nil || len(got) != 0 {
		e.t.Fatalf("PropsOf(nil) = %v, %v; want empty", got, err)
	}
}

func testMembers(e *env) {
	want := func(ms ...metastore.Member) {
		e.t.Helper()
		got, err := e.s.Members(e.ctx)
		if err != nil {
			e.t.Fatalf("Members: %v", err)
		}
		if len(got) != len(ms) {
			e.t.Fatalf("Members = %+v, want %+v", got, ms)
		}
		for i := range ms {
			if got[i] != ms[i] {
				e.t.Fatalf("Members[%d] = %+v, want %+v", i, got[i], ms[i])
			}
		}
	}
	want()
	a := metastore.Member{ID: "dfs-0", URL: "http://dfs-0.dfs:8080", RaftAddr: "dfs-0.dfs:7000"}
	b := metastore.Member{ID: "dfs-1", URL: "http://[::1]:8081", RaftAddr: "[::1]:7001"}
	e.commit(func(bt *metastore.Batch) { bt.PutMember(b).PutMember(a) })
	want(a, b)
	b2 := b
	b2.URL = "https://dfs-1.example:8443"
	e.commit(func(bt *metastore.Batch) { bt.PutMember(b2).DeleteMember(a.ID).DeleteMember("nobody") })
	want(b2)
	e.commit(func(bt *metastore.Batch) { bt.DeleteMember(b2.ID) })
	want()
}
