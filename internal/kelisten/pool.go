package kelisten

import (
	"sync"
	"time"
)

// poolIdle is how long a low-priority session thread waits for the next
// session before it ends (and its OS thread with it).
const poolIdle = 5 * time.Second

// sessionPool runs sessions on goroutines each locked to an OS thread of
// lowered priority (Config.Nice). A niced thread cannot be raised again
// without CAP_SYS_NICE, so it never returns to the Go runtime's pool of
// threads: it serves session after session here, and ends when idle for
// poolIdle. There are never more of them than sessions running at once
// (at most Config.MaxConns), so the slots bound the threads too; under a
// steady load no thread is created per session.
type sessionPool struct {
	nice    int
	jobs    chan *session // unbuffered: a send succeeds only into an idle thread
	done    chan struct{} // closed when the listener stops: idle threads end
	threads sync.WaitGroup
	once    sync.Once
}

func newSessionPool(nice int) *sessionPool {
	return &sessionPool{nice: nice, jobs: make(chan *session), done: make(chan struct{})}
}

// stop ends the idle threads and waits for them; the caller has waited for
// the sessions.
func (p *sessionPool) stop() {
	p.once.Do(func() { close(p.done) })
	p.threads.Wait()
}

// run serves s on an idle pooled thread, or on a new one.
func (p *sessionPool) run(s *session, serve func(*session)) {
	select {
	case p.jobs <- s:
	default:
		p.threads.Go(func() { p.thread(s, serve) })
	}
}

func (p *sessionPool) thread(s *session, serve func(*session)) {
	lowerPriority(p.nice) // locked for good: the thread ends with this goroutine
	t := time.NewTimer(poolIdle)
	defer t.Stop()
	for {
		serve(s)
		t.Reset(poolIdle)
		select {
		case s = <-p.jobs:
		case <-t.C:
			return
		case <-p.done:
			return
		}
	}
}
