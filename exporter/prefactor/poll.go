package prefactor

import (
	"context"
	"net/http"
	"time"

	"github.com/agenttrace/agenttrace"
)

// startPoll starts the termination poll on the first export.
func (e *Exporter) startPoll() {
	if e.cfg.pollInterval < 0 || e.terminateFn == nil {
		return
	}
	e.pollOnce.Do(func() { go e.poll() })
}

// poll asks the API, every poll interval, whether running instances were
// terminated.
func (e *Exporter) poll() {
	defer close(e.pollDone)
	t := time.NewTicker(e.cfg.pollInterval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-e.pollStop
		cancel()
	}()
	for {
		select {
		case <-e.pollStop:
			return
		case <-t.C:
		}
		if e.stoppedErr() != nil || e.breaker.isOpen() {
			continue
		}
		e.mu.Lock()
		ids := make([]agenttrace.ID, 0, len(e.running))
		for id := range e.running {
			ids = append(ids, id)
		}
		e.mu.Unlock()
		for _, id := range ids {
			if ctx.Err() != nil {
				return
			}
			e.stats.polls.Add(1)
			resp, err := e.attempt(ctx, http.MethodGet, "/api/v1/agent_instance/"+e.instanceID(id), nil)
			if err != nil || resp.status != http.StatusOK {
				e.doneWith(resp)
				e.stats.pollFails.Add(1)
				continue
			}
			env, ok := decodeEnvelope(resp.body)
			e.doneWith(resp)
			if !ok {
				e.stats.pollFails.Add(1)
				continue
			}
			if d := env.details(); d.Status == "terminated" {
				reason := ""
				if d.TerminationReason != nil {
					reason = *d.TerminationReason
				}
				e.terminate(id, reason)
			}
		}
	}
}
