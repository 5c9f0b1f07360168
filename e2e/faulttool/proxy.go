package main

// The Redis latency nemesis. The kernel here has no netem qdisc, so the
// node's loopback cannot be slowed down; instead dfs reaches its Redis
// through this proxy, run in the node's network namespace, which delays
// every chunk it forwards, in each direction, as netem on lo would delay
// every packet. Order within a connection is kept (a chunk is never sent
// before the one read before it), so jitter delays but never reorders a
// stream, as TCP would not let it either.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// delay and jitter are the current one-way delay and its spread, in
// nanoseconds.
var delay, jitter atomic.Int64

func proxy(listen, upstream, ctl string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	go watchDelay(ctl)
	for {
		c, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		go forward(c, upstream)
	}
}

// watchDelay reads "MS JITTER" from ctl every 100 ms; a missing or
// unreadable file means no delay.
func watchDelay(ctl string) {
	for {
		var d, j int64
		if b, err := os.ReadFile(ctl); err == nil {
			if f := strings.Fields(string(b)); len(f) == 2 {
				d, _ = strconv.ParseInt(f[0], 10, 64)
				j, _ = strconv.ParseInt(f[1], 10, 64)
			}
		}
		delay.Store(d * int64(time.Millisecond))
		jitter.Store(j * int64(time.Millisecond))
		time.Sleep(100 * time.Millisecond)
	}
}

func setDelay(ctl, ms, jit string) error {
	d, err1 := strconv.Atoi(ms)
	j, err2 := strconv.Atoi(jit)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	// Written aside and renamed, so the proxy never reads half a line.
	tmp := ctl + ".tmp"
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %d\n", d, j), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, ctl)
}

func forward(c net.Conn, upstream string) {
	u, err := net.DialTimeout("tcp", upstream, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	go pipe(u, c)
	pipe(c, u)
}

type chunk struct {
	b  []byte
	at time.Time // when it may be sent on
}

// pipe copies src to dst, each chunk held until its time comes. Whichever
// side fails or ends closes both connections: the client giving up on a
// delayed reply (go-redis' read timeout) drops what was still held, and
// the reply is lost, as it would be on a slow network.
func pipe(dst, src net.Conn) {
	ch := make(chan chunk, 1024)
	go func() {
		defer close(ch)
		var last time.Time
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				at := time.Now()
				if d := time.Duration(delay.Load()); d > 0 {
					if j := jitter.Load(); j > 0 {
						d += time.Duration(rand.Int64N(2*j+1) - j)
					}
					at = at.Add(d)
				}
				if at.Before(last) {
					at = last
				}
				last = at
				ch <- chunk{buf[:n], at}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.b); err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	for range ch { // let the reader end
	}
}
