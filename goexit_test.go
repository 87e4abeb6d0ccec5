package agenttrace_test

import "runtime"

func runtimeGoexit() { runtime.Goexit() }
