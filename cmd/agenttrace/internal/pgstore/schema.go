package pgstore

// migrations are the schema versions, in order: migrations[i] takes a
// database from version i to i+1, in one transaction. The table
// agenttrace_schema holds the version; a database of a newer version than
// len(migrations) is refused. Times are timestamptz (microseconds, as the
// store keeps them), JSON documents bytea, kept byte for byte as the
// protocol stored them.
var migrations = []string{
	// 1: the first schema.
	`
CREATE TABLE idempotency (
	key         text PRIMARY KEY,
	hash        text NOT NULL,
	status      integer NOT NULL,
	body        bytea NOT NULL,
	inserted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_inserted ON idempotency (inserted_at);

CREATE TABLE agents (
	seq                       bigint GENERATED ALWAYS AS IDENTITY,
	id                        text PRIMARY KEY,
	name                      text NOT NULL,
	description               text NOT NULL,
	external_id               text NOT NULL,
	environment_id            text NOT NULL,
	status                    text NOT NULL,
	current_version_id        text NOT NULL,
	current_schema_version_id text NOT NULL,
	inserted_at               timestamptz,
	updated_at                timestamptz
);
CREATE INDEX agents_seq ON agents (seq);
CREATE INDEX agents_external ON agents (external_id, seq);

CREATE TABLE agent_versions (
	seq         bigint GENERATED ALWAYS AS IDENTITY,
	id          text PRIMARY KEY,
	agent_id    text NOT NULL,
	external_id text NOT NULL,
	name        text NOT NULL,
	description text NOT NULL,
	number      integer NOT NULL,
	inserted_at timestamptz
);
CREATE INDEX agent_versions_external ON agent_versions (agent_id, external_id, seq);
CREATE INDEX agent_versions_number ON agent_versions (agent_id, number, seq);

CREATE TABLE schema_versions (
	seq         bigint GENERATED ALWAYS AS IDENTITY,
	id          text PRIMARY KEY,
	agent_id    text NOT NULL,
	external_id text NOT NULL,
	span_types  text NOT NULL,
	body        bytea,
	inserted_at timestamptz
);
CREATE INDEX schema_versions_external ON schema_versions (agent_id, external_id, seq);

CREATE TABLE deployments (
	seq            bigint GENERATED ALWAYS AS IDENTITY,
	id             text PRIMARY KEY,
	agent_id       text NOT NULL,
	environment_id text NOT NULL
);
CREATE INDEX deployments_pair ON deployments (agent_id, environment_id, seq);

CREATE TABLE instances (
	seq                bigint GENERATED ALWAYS AS IDENTITY,
	id                 text PRIMARY KEY,
	agent_id           text NOT NULL,
	environment_id     text NOT NULL,
	version_id         text NOT NULL,
	schema_version_id  text NOT NULL,
	deployment_id      text NOT NULL,
	purpose            text NOT NULL,
	status             text NOT NULL,
	termination_reason text NOT NULL,
	started_at         timestamptz,
	finished_at        timestamptz,
	inserted_at        timestamptz,
	updated_at         timestamptz,
	start_key          timestamptz,
	register           bytea,
	spans_pending      bigint NOT NULL,
	spans_active       bigint NOT NULL,
	spans_complete     bigint NOT NULL,
	spans_failed       bigint NOT NULL,
	spans_cancelled    bigint NOT NULL,
	spans_terminated   bigint NOT NULL,
	name               text NOT NULL,
	user_id            text NOT NULL,
	group_id           text NOT NULL,
	channel            text NOT NULL,
	session_id         text NOT NULL,
	ip_address         text NOT NULL,
	user_agent         text NOT NULL,
	version_number     integer NOT NULL,
	prompt_tokens      bigint NOT NULL,
	completion_tokens  bigint NOT NULL,
	total_tokens       bigint NOT NULL,
	cost_prompt        double precision NOT NULL,
	cost_completion    double precision NOT NULL,
	cost_services      double precision NOT NULL,
	cost_total         double precision NOT NULL,
	currency           text NOT NULL,
	ttft_ms            bigint NOT NULL,
	ttft_from          timestamptz
);
-- One index per listing filter, each ending in the sort key.
CREATE INDEX instances_seq     ON instances (seq);
CREATE INDEX instances_agent   ON instances (agent_id, start_key, id);
CREATE INDEX instances_version ON instances (version_id, start_key, id);
CREATE INDEX instances_user    ON instances (agent_id, user_id, start_key, id);
CREATE INDEX instances_group   ON instances (agent_id, group_id, start_key, id);
CREATE INDEX instances_status  ON instances (agent_id, status);
CREATE INDEX instances_start   ON instances (start_key, id);

CREATE TABLE spans (
	seq            bigint GENERATED ALWAYS AS IDENTITY,
	id             text PRIMARY KEY,
	instance_id    text NOT NULL,
	agent_id       text NOT NULL,
	parent_id      text NOT NULL,
	schema_name    text NOT NULL,
	status         text NOT NULL,
	payload        bytea,
	result_payload bytea,
	started_at     timestamptz,
	finished_at    timestamptz,
	inserted_at    timestamptz,
	updated_at     timestamptz,
	sensitive      boolean,
	creates        integer NOT NULL,
	finishes       integer NOT NULL
);
CREATE INDEX spans_seq ON spans (seq);
CREATE INDEX spans_instance ON spans (instance_id, seq);
`, // 2: an instance's named quality payloads (record_quality), JSON;
	// the schema version an agent version was created with.
	`
ALTER TABLE instances ADD COLUMN quality bytea;
ALTER TABLE agent_versions ADD COLUMN schema_version_id text NOT NULL DEFAULT '';
`,
}
