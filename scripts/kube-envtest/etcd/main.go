// Command etcd is the upstream etcd server (go.etcd.io/etcd/server/v3/etcdmain), built at the version the
// pinned k8s.io/kubernetes release requires, for the test suite's real API server.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
