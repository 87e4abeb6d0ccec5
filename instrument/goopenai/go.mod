module github.com/agenttrace/agenttrace/instrument/goopenai

go 1.26.0

require (
	github.com/agenttrace/agenttrace v0.0.0
	github.com/sashabaranov/go-openai v1.43.0
	github.com/stretchr/testify v1.12.1
	go.uber.org/goleak v1.3.0
)

require (
	github.com/oklog/ulid/v2 v2.1.1 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)

replace github.com/agenttrace/agenttrace => ../..
