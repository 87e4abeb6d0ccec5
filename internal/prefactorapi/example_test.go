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
