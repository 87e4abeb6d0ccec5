//go:build !unix

package pgtest

func startCluster() {
	cluster.why = "starting a throwaway PostgreSQL cluster is done on unix systems only; set AGENTTRACE_TEST_POSTGRES to a DSN"
}
