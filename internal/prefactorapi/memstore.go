package prefactorapi

import (
	"context"
	"slices"
	"strings"
	"sync"
)

// MemoryStore is a Store in memory: Updates run one at a time under a
// lock and are undone when their function fails.
type MemoryStore struct {
	mu        sync.RWMutex
	idem      map[string]IdempotencyRecord
	instances map[string]*InstanceRecord
	instOrder []string
	spans     map[string]*SpanRecord
	spanOrder []string
	bySpanIns map[string][]string
	agents    map[string]*AgentRecord
	agentOrd  []string
	versions  map[string]AgentVersionRecord
	schemas   map[string]SchemaVersionRecord
	deploys   map[string]DeploymentRecord
	closed    bool
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		idem: map[string]IdempotencyRecord{}, instances: map[string]*InstanceRecord{}, spans: map[string]*SpanRecord{},
		bySpanIns: map[string][]string{}, agents: map[string]*AgentRecord{}, versions: map[string]AgentVersionRecord{},
		schemas: map[string]SchemaVersionRecord{}, deploys: map[string]DeploymentRecord{},
	}
}

// Update implements Store.
func (m *MemoryStore) Update(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	tx := &memTx{m: m}
	if err := fn(tx); err != nil {
		for i := len(tx.undo) - 1; i >= 0; i-- {
			tx.undo[i]()
		}
		return err
	}
	return nil
}

// View implements Store.
func (m *MemoryStore) View(ctx context.Context, fn func(ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return ErrClosed
	}
	return fn(&memTx{m: m})
}

// Close implements Store.
func (m *MemoryStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

type memTx struct {
	m    *MemoryStore
	undo []func()
}

func (t *memTx) Idempotency(key string) (IdempotencyRecord, bool, error) {
	r, ok := t.m.idem[key]
	return r, ok, nil
}

func (t *memTx) Instance(id string) (InstanceRecord, bool, error) {
	if r, ok := t.m.instances[id]; ok {
		return *r, true, nil
	}
	return InstanceRecord{}, false, nil
}

func (t *memTx) Span(id string) (SpanRecord, bool, error) {
	if r, ok := t.m.spans[id]; ok {
		return *r, true, nil
	}
	return SpanRecord{}, false, nil
}

func (t *memTx) Idempotencies(keys []string) (map[string]IdempotencyRecord, error) {
	out := make(map[string]IdempotencyRecord, len(keys))
	for _, k := range keys {
		if r, ok := t.m.idem[k]; ok {
			out[k] = r
		}
	}
	return out, nil
}

func (t *memTx) Spans(ids []string) (map[string]SpanRecord, error) {
	out := make(map[string]SpanRecord, len(ids))
	for _, id := range ids {
		if r, ok := t.m.spans[id]; ok {
			out[id] = *r
		}
	}
	return out, nil
}

func (t *memTx) Agent(id string) (AgentRecord, bool, error) {
	if r, ok := t.m.agents[id]; ok {
		return *r, true, nil
	}
	return AgentRecord{}, false, nil
}

func (t *memTx) AgentByExternalID(ext string) (AgentRecord, bool, error) {
	for _, id := range t.m.agentOrd {
		if a := t.m.agents[id]; a != nil && a.ExternalID == ext {
			return *a, true, nil
		}
	}
	return AgentRecord{}, false, nil
}

func (t *memTx) AgentVersion(id string) (AgentVersionRecord, bool, error) {
	for _, v := range t.m.versions {
		if v.ID == id {
			return v, true, nil
		}
	}
	return AgentVersionRecord{}, false, nil
}

func (t *memTx) AgentVersionByExternalID(agentID, ext string) (AgentVersionRecord, bool, error) {
	v, ok := t.m.versions[agentID+"\x00"+ext]
	return v, ok, nil
}

func (t *memTx) AgentVersionByNumber(agentID string, n int) (AgentVersionRecord, bool, error) {
	for _, v := range t.m.versions {
		if v.AgentID == agentID && v.Number == n {
			return v, true, nil
		}
	}
	return AgentVersionRecord{}, false, nil
}

func (t *memTx) CountAgentVersions(agentID string) (int, error) {
	n := 0
	for _, v := range t.m.versions {
		if v.AgentID == agentID {
			n++
		}
	}
	return n, nil
}

func (t *memTx) SchemaVersion(id string) (SchemaVersionRecord, bool, error) {
	for _, v := range t.m.schemas {
		if v.ID == id {
			return v, true, nil
		}
	}
	return SchemaVersionRecord{}, false, nil
}

func (t *memTx) SchemaVersionByExternalID(agentID, ext string) (SchemaVersionRecord, bool, error) {
	v, ok := t.m.schemas[agentID+"\x00"+ext]
	return v, ok, nil
}

func (t *memTx) Deployment(agentID, envID string) (DeploymentRecord, bool, error) {
	d, ok := t.m.deploys[agentID+"\x00"+envID]
	return d, ok, nil
}

func (t *memTx) ListAgents() ([]AgentRecord, error) {
	out := []AgentRecord{}
	for _, id := range t.m.agentOrd {
		if a := t.m.agents[id]; a != nil {
			out = append(out, *a)
		}
	}
	return out, nil
}

func (t *memTx) InstanceCounts(agentID string) (StatusCounts, error) {
	var c StatusCounts
	for _, id := range t.m.instOrder {
		if in := t.m.instances[id]; in.AgentID == agentID {
			c.Add(in.Status, 1)
		}
	}
	return c, nil
}

func (t *memTx) ListInstances(q InstanceQuery) ([]InstanceRecord, int, error) {
	words := SearchWords(q.Search)
	if len(words) == 0 && strings.TrimSpace(q.Search) != "" {
		return []InstanceRecord{}, 0, nil
	}
	var sel []*InstanceRecord
	for _, id := range t.m.instOrder {
		in := t.m.instances[id]
		if (q.AgentID != "" && in.AgentID != q.AgentID) || (q.VersionID != "" && in.VersionID != q.VersionID) ||
			(q.UserID != "" && in.Run.UserID != q.UserID) || (q.GroupID != "" && in.Run.GroupID != q.GroupID) {
			continue
		}
		if len(words) > 0 && !MatchesSearch(in.Run.Name, words) {
			continue
		}
		sel = append(sel, in)
	}
	if q.Order != ByInsertion {
		slices.SortStableFunc(sel, func(a, b *InstanceRecord) int {
			c := a.StartKey().Compare(b.StartKey())
			if c == 0 {
				c = strings.Compare(a.ID, b.ID)
			}
			if q.Order == ByStartDesc {
				c = -c
			}
			return c
		})
	}
	total := len(sel)
	if q.Offset >= len(sel) {
		sel = nil
	} else {
		sel = sel[max(q.Offset, 0):]
	}
	if q.Limit > 0 && len(sel) > q.Limit {
		sel = sel[:q.Limit]
	}
	out := make([]InstanceRecord, len(sel))
	for i, in := range sel {
		out[i] = *in
	}
	return out, total, nil
}

func (t *memTx) ListSpans(instanceID string) ([]SpanRecord, error) {
	ids := t.m.spanOrder
	if instanceID != "" {
		ids = t.m.bySpanIns[instanceID]
	}
	out := make([]SpanRecord, len(ids))
	for i, id := range ids {
		out[i] = *t.m.spans[id]
	}
	return out, nil
}

func (t *memTx) PutIdempotency(r IdempotencyRecord) error {
	m := t.m
	old, had := m.idem[r.Key]
	m.idem[r.Key] = r
	t.undo = append(t.undo, func() {
		if had {
			m.idem[r.Key] = old
		} else {
			delete(m.idem, r.Key)
		}
	})
	return nil
}

func (t *memTx) PutInstance(r InstanceRecord) error {
	m := t.m
	old, had := m.instances[r.ID]
	m.instances[r.ID] = &r
	if !had {
		m.instOrder = append(m.instOrder, r.ID)
	}
	t.undo = append(t.undo, func() {
		if had {
			m.instances[r.ID] = old
		} else {
			delete(m.instances, r.ID)
			m.instOrder = m.instOrder[:len(m.instOrder)-1]
		}
	})
	return nil
}

func (t *memTx) PutSpan(r SpanRecord) error {
	m := t.m
	old, had := m.spans[r.ID]
	m.spans[r.ID] = &r
	if !had {
		m.spanOrder = append(m.spanOrder, r.ID)
		m.bySpanIns[r.InstanceID] = append(m.bySpanIns[r.InstanceID], r.ID)
	}
	t.undo = append(t.undo, func() {
		if had {
			m.spans[r.ID] = old
		} else {
			delete(m.spans, r.ID)
			m.spanOrder = m.spanOrder[:len(m.spanOrder)-1]
			l := m.bySpanIns[r.InstanceID]
			m.bySpanIns[r.InstanceID] = l[:len(l)-1]
		}
	})
	return nil
}

func (t *memTx) PutAgent(r AgentRecord) error {
	m := t.m
	old, had := m.agents[r.ID]
	m.agents[r.ID] = &r
	if !had {
		m.agentOrd = append(m.agentOrd, r.ID)
	}
	t.undo = append(t.undo, func() {
		if had {
			m.agents[r.ID] = old
		} else {
			delete(m.agents, r.ID)
			m.agentOrd = m.agentOrd[:len(m.agentOrd)-1]
		}
	})
	return nil
}

func (t *memTx) DeleteAgent(id string) error {
	m := t.m
	old, had := m.agents[id]
	if !had {
		return nil
	}
	delete(m.agents, id)
	i := slices.Index(m.agentOrd, id)
	m.agentOrd = slices.Delete(m.agentOrd, i, i+1)
	t.undo = append(t.undo, func() {
		m.agents[id] = old
		m.agentOrd = slices.Insert(m.agentOrd, i, id)
	})
	return nil
}

func (t *memTx) PutAgentVersion(r AgentVersionRecord) error {
	return putUndo(t, t.m.versions, r.AgentID+"\x00"+r.ExternalID, r)
}

func (t *memTx) PutSchemaVersion(r SchemaVersionRecord) error {
	return putUndo(t, t.m.schemas, r.AgentID+"\x00"+r.ExternalID, r)
}

func (t *memTx) PutDeployment(r DeploymentRecord) error {
	return putUndo(t, t.m.deploys, r.AgentID+"\x00"+r.EnvironmentID, r)
}

func putUndo[V any](t *memTx, m map[string]V, k string, v V) error {
	old, had := m[k]
	m[k] = v
	t.undo = append(t.undo, func() {
		if had {
			m[k] = old
		} else {
			delete(m, k)
		}
	})
	return nil
}

func (t *memTx) ListAgentVersions(agentID string) ([]AgentVersionRecord, error) {
	out := []AgentVersionRecord{}
	for _, v := range t.m.versions {
		if v.AgentID == agentID {
			out = append(out, v)
		}
	}
	sortVersions(out)
	return out, nil
}

func (t *memTx) ListSchemaVersions(agentID string) ([]SchemaVersionRecord, error) {
	out := []SchemaVersionRecord{}
	for _, v := range t.m.schemas {
		if v.AgentID == agentID {
			out = append(out, v)
		}
	}
	sortSchemaVersions(out)
	return out, nil
}
