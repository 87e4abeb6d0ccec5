package prefactorapi_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

func ExampleAPI_Do() {
	ctx := context.Background()
	account := prefactorapi.NewPFID(123456789)
	api, _ := prefactorapi.New(prefactorapi.NewMemoryStore(), prefactorapi.Config{AccountID: account, EnvironmentID: account})
	reg := api.Do(ctx, prefactorapi.EndpointRegister, "", []byte(`{"agent_version":{"name":"support"},"idempotency_key":"k1"}`), nil)
	var r struct{ Details prefactorapi.InstanceDetails }
	_ = json.Unmarshal(reg.Body, &r)
	fmt.Println(reg.Status, r.Details.Status)

	again := api.Do(ctx, prefactorapi.EndpointRegister, "", []byte(`{"agent_version":{"name":"support"},"idempotency_key":"k1"}`), nil)
	fmt.Println(again.Status, again.Replayed)

	other := api.Do(ctx, prefactorapi.EndpointRegister, "", []byte(`{"idempotency_key":"k1"}`), nil)
	fmt.Println(other.Status, other.Code)

	fin := api.Do(ctx, prefactorapi.EndpointFinishInstance, r.Details.ID, []byte(`{"idempotency_key":"k2"}`), nil)
	fmt.Println(fin.Status, fin.Code)
	// Output:
	// 200 pending
	// 200 true
	// 409 idempotency_key_already_used
	// 409 invalid_action
}

// Quality payloads recorded on an instance, with the summary of the
// quality schema's template; null removes one.
func ExampleAPI_Do_recordQuality() {
	ctx := context.Background()
	account := prefactorapi.NewPFID(123456789)
	api, _ := prefactorapi.New(prefactorapi.NewMemoryStore(), prefactorapi.Config{AccountID: account, EnvironmentID: account})
	reg := api.Do(ctx, prefactorapi.EndpointRegister, "", []byte(`{"agent_schema_version":{"external_identifier":"s1",
		"quality_schemas":[{"name":"helpfulness","schema":{},"template":"{{ score }} of 5"}]},"idempotency_key":"k1"}`), nil)
	var r struct{ Details prefactorapi.InstanceDetails }
	_ = json.Unmarshal(reg.Body, &r)

	q := api.Do(ctx, prefactorapi.EndpointRecordQuality, r.Details.ID, []byte(`{"name":"helpfulness","payload":{"score":4},"idempotency_key":"k2"}`), nil)
	_ = json.Unmarshal(q.Body, &r)
	fmt.Println(q.Status, string(r.Details.QualityPayloads["helpfulness"]), r.Details.QualitySummaries["helpfulness"])

	bad := api.Do(ctx, prefactorapi.EndpointRecordQuality, r.Details.ID, []byte(`{"name":"speed","payload":{}}`), nil)
	fmt.Println(bad.Status, bad.Code)

	rm := api.Do(ctx, prefactorapi.EndpointRecordQuality, r.Details.ID, []byte(`{"name":"helpfulness","payload":null}`), nil)
	r.Details = prefactorapi.InstanceDetails{}
	_ = json.Unmarshal(rm.Body, &r)
	fmt.Println(rm.Status, len(r.Details.QualityPayloads))
	// Output:
	// 200 {"score":4} 4 of 5
	// 422 validation_errors
	// 200 0
}
