package prefactortest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
)

// post sends a JSON body with the server's token and returns the status
// and the decoded answer.
func post(hc *http.Client, srv *prefactortest.Server, path, body string) (int, map[string]any) {
	req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+srv.Token())
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// A client registers and starts an instance, creates a span and finishes
// it; the test then inspects what the server stored.
func Example() {
	srv := prefactortest.NewServer()
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}

	_, reg := post(hc, srv, "/api/v1/agent_instance/register", fmt.Sprintf(
		`{"agent_id":%q,"environment_id":%q,"agent_version":{"external_identifier":"v1","name":"demo"},"idempotency_key":"register-1"}`,
		srv.AgentID(), srv.EnvironmentID()))
	inst := reg["details"].(map[string]any)["id"].(string)
	post(hc, srv, "/api/v1/agent_instance/"+inst+"/start", `{"idempotency_key":"start-1"}`)
	_, sp := post(hc, srv, "/api/v1/agent_spans", `{"details":{"agent_instance_id":"`+inst+
		`","schema_name":"llm","status":"active","payload":{"model":"m"}},"idempotency_key":"span-1"}`)
	span := sp["details"].(map[string]any)["id"].(string)
	post(hc, srv, "/api/v1/agent_spans/"+span+"/finish", `{"status":"complete","result_payload":{"text":"hi"},"idempotency_key":"finish-1"}`)
	status, again := post(hc, srv, "/api/v1/agent_spans/"+span+"/finish", `{"idempotency_key":"finish-2"}`)
	fmt.Println("second finish:", status, again["code"])

	for _, s := range srv.Spans(inst) {
		fmt.Println(s.SchemaName, s.Status, string(s.ResultPayload), s.Creates, s.Finishes)
	}
	fmt.Println("valid:", srv.Validate() == nil)
	// Output:
	// second finish: 409 invalid_action
	// llm complete {"text":"hi"} 1 1
	// valid: true
}

// Faults are queued per endpoint; a fault applied after processing makes
// the client's retry an idempotent replay.
func ExampleServer_FailNext() {
	srv := prefactortest.NewServer()
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}

	srv.FailNext(prefactortest.EndpointRegister,
		prefactortest.Fault{Status: 503},
		prefactortest.Fault{Status: 502, AfterProcessing: true})
	body := fmt.Sprintf(`{"agent_id":%q,"environment_id":%q,"idempotency_key":"register-1"}`, srv.AgentID(), srv.EnvironmentID())
	for range 3 {
		status, _ := post(hc, srv, "/api/v1/agent_instance/register", body)
		fmt.Println(status, len(srv.Instances()))
	}
	reqs := srv.Requests()
	fmt.Println("last replayed:", reqs[len(reqs)-1].Replayed)
	// Output:
	// 503 0
	// 502 1
	// 200 1
	// last replayed: true
}

// An operator's termination reaches the client in span answers.
func ExampleServer_Terminate() {
	srv := prefactortest.NewServer(prefactortest.WithDeploymentToken())
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}

	_, reg := post(hc, srv, "/api/v1/agent_instance/register", `{"idempotency_key":"register-1"}`)
	inst := reg["details"].(map[string]any)["id"].(string)
	_ = srv.Terminate(inst, "over budget")
	_, sp := post(hc, srv, "/api/v1/agent_spans", `{"details":{"agent_instance_id":"`+inst+
		`","schema_name":"llm","status":"active","payload":{}},"idempotency_key":"span-1"}`)
	fmt.Println(sp["control"])
	// Output:
	// map[reason:over budget terminate:true]
}
