package sqlitestore

// migrations are the schema versions, in order: migrations[i] takes a
// database from version i to i+1. PRAGMA user_version holds the version; a
// database of a newer version than len(migrations) is refused.
var migrations = []string{
	// 1: the first schema.
	`
CREATE TABLE idempotency (
	key         TEXT PRIMARY KEY,
	hash        TEXT NOT NULL,
	status      INTEGER NOT NULL,
	body        BLOB NOT NULL,
	inserted_at INTEGER NOT NULL
);
CREATE INDEX idempotency_inserted ON idempotency(inserted_at);

CREATE TABLE agents (
	seq                       INTEGER PRIMARY KEY AUTOINCREMENT,
	id                        TEXT NOT NULL UNIQUE,
	name                      TEXT NOT NULL,
	description               TEXT NOT NULL,
	external_id               TEXT NOT NULL,
	environment_id            TEXT NOT NULL,
	status                    TEXT NOT NULL,
	current_version_id        TEXT NOT NULL,
	current_schema_version_id TEXT NOT NULL,
	inserted_at               INTEGER,
	updated_at                INTEGER
);
CREATE INDEX agents_external ON agents(external_id);

CREATE TABLE agent_versions (
	id          TEXT PRIMARY KEY,
	agent_id    TEXT NOT NULL,
	external_id TEXT NOT NULL,
	name        TEXT NOT NULL,
	description TEXT NOT NULL,
	number      INTEGER NOT NULL,
	inserted_at INTEGER,
	UNIQUE (agent_id, external_id)
);
CREATE INDEX agent_versions_number ON agent_versions(agent_id, number);

CREATE TABLE schema_versions (
	id          TEXT PRIMARY KEY,
	agent_id    TEXT NOT NULL,
	external_id TEXT NOT NULL,
	span_types  TEXT NOT NULL,
	body        BLOB,
	inserted_at INTEGER,
	UNIQUE (agent_id, external_id)
);

CREATE TABLE deployments (
	id             TEXT PRIMARY KEY,
	agent_id       TEXT NOT NULL,
	environment_id TEXT NOT NULL,
	UNIQUE (agent_id, environment_id)
);

CREATE TABLE instances (
	seq                INTEGER PRIMARY KEY AUTOINCREMENT,
	id                 TEXT NOT NULL UNIQUE,
	agent_id           TEXT NOT NULL,
	environment_id     TEXT NOT NULL,
	version_id         TEXT NOT NULL,
	schema_version_id  TEXT NOT NULL,
	deployment_id      TEXT NOT NULL,
	purpose            TEXT NOT NULL,
	status             TEXT NOT NULL,
	termination_reason TEXT NOT NULL,
	started_at         INTEGER,
	finished_at        INTEGER,
	inserted_at        INTEGER,
	updated_at         INTEGER,
	start_key          INTEGER NOT NULL,
	register           BLOB,
	spans_pending      INTEGER NOT NULL,
	spans_active       INTEGER NOT NULL,
	spans_complete     INTEGER NOT NULL,
	spans_failed       INTEGER NOT NULL,
	spans_cancelled    INTEGER NOT NULL,
	name               TEXT NOT NULL,
	user_id            TEXT NOT NULL,
	group_id           TEXT NOT NULL,
	channel            TEXT NOT NULL,
	session_id         TEXT NOT NULL,
	ip_address         TEXT NOT NULL,
	user_agent         TEXT NOT NULL,
	version_number     INTEGER NOT NULL,
	prompt_tokens      INTEGER NOT NULL,
	completion_tokens  INTEGER NOT NULL,
	total_tokens       INTEGER NOT NULL,
	cost_prompt        REAL NOT NULL,
	cost_completion    REAL NOT NULL,
	cost_services      REAL NOT NULL,
	cost_total         REAL NOT NULL,
	currency           TEXT NOT NULL,
	ttft_ms            INTEGER NOT NULL,
	ttft_from          INTEGER
);
-- One index per listing filter, each ending in the sort key.
CREATE INDEX instances_agent   ON instances(agent_id, start_key, id);
CREATE INDEX instances_version ON instances(version_id, start_key, id);
CREATE INDEX instances_user    ON instances(agent_id, user_id, start_key, id);
CREATE INDEX instances_group   ON instances(agent_id, group_id, start_key, id);
CREATE INDEX instances_status  ON instances(agent_id, status);
CREATE INDEX instances_start   ON instances(start_key);

-- Full-text search of instance names (trigram: substrings, any case).
CREATE VIRTUAL TABLE instance_names USING fts5(name, tokenize = 'trigram');
CREATE TRIGGER instances_name_insert AFTER INSERT ON instances WHEN new.name != '' BEGIN
	INSERT INTO instance_names(rowid, name) VALUES (new.seq, new.name);
END;
CREATE TRIGGER instances_name_update AFTER UPDATE OF name ON instances WHEN old.name IS NOT new.name BEGIN
	DELETE FROM instance_names WHERE rowid = old.seq;
	INSERT INTO instance_names(rowid, name) SELECT new.seq, new.name WHERE new.name != '';
END;
CREATE TRIGGER instances_name_delete AFTER DELETE ON instances BEGIN
	DELETE FROM instance_names WHERE rowid = old.seq;
END;

CREATE TABLE spans (
	seq            INTEGER PRIMARY KEY AUTOINCREMENT,
	id             TEXT NOT NULL UNIQUE,
	instance_id    TEXT NOT NULL,
	agent_id       TEXT NOT NULL,
	parent_id      TEXT NOT NULL,
	schema_name    TEXT NOT NULL,
	status         TEXT NOT NULL,
	payload        BLOB,
	result_payload BLOB,
	started_at     INTEGER,
	finished_at    INTEGER,
	inserted_at    INTEGER,
	updated_at     INTEGER,
	sensitive      INTEGER,
	creates        INTEGER NOT NULL,
	finishes       INTEGER NOT NULL
);
CREATE INDEX spans_instance ON spans(instance_id, seq);
`, // 2: the runs of a session, for a session view.
	`
CREATE INDEX instances_session ON instances(agent_id, session_id, start_key, id);
`, // 3: name search by words (unicode61, prefix queries) instead of
	// trigrams, which are slow on common words.
	`
DROP TRIGGER instances_name_insert;
DROP TRIGGER instances_name_update;
DROP TRIGGER instances_name_delete;
DROP TABLE instance_names;
CREATE VIRTUAL TABLE instance_names USING fts5(name, tokenize = 'unicode61 remove_diacritics 2');
INSERT INTO instance_names(rowid, name) SELECT seq, name FROM instances WHERE name != '';
CREATE TRIGGER instances_name_insert AFTER INSERT ON instances WHEN new.name != '' BEGIN
	INSERT INTO instance_names(rowid, name) VALUES (new.seq, new.name);
END;
CREATE TRIGGER instances_name_update AFTER UPDATE OF name ON instances WHEN old.name IS NOT new.name BEGIN
	DELETE FROM instance_names WHERE rowid = old.seq;
	INSERT INTO instance_names(rowid, name) SELECT new.seq, new.name WHERE new.name != '';
END;
CREATE TRIGGER instances_name_delete AFTER DELETE ON instances BEGIN
	DELETE FROM instance_names WHERE rowid = old.seq;
END;
`, // 4: the user and group indexes also hold the version, so that a
	// version's listing filtered by user or group counts and pages on the
	// index alone.
	`
DROP INDEX instances_user;
DROP INDEX instances_group;
CREATE INDEX instances_user  ON instances(agent_id, user_id, start_key, id, version_id);
CREATE INDEX instances_group ON instances(agent_id, group_id, start_key, id, version_id);
`, // 5: an instance's named quality payloads (record_quality), JSON;
	// the schema version an agent version was created with.
	`
ALTER TABLE instances ADD COLUMN quality BLOB;
ALTER TABLE agent_versions ADD COLUMN schema_version_id TEXT NOT NULL DEFAULT '';
`,
}
