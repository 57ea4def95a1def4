// A small Go service for Periscope's integration tests: client_golang's /metrics (with the Go
// runtime and process collectors) and the standard library's expvar at /debug/vars, on one port.
// Built in GOPATH mode against Debian's golang-github-prometheus-client-golang-dev.
package main

import (
	"expvar"
	"flag"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()

	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "app_requests_total",
		Help: "Requests handled, by path.",
	}, []string{"path"})
	prometheus.MustRegister(requests)
	requests.WithLabelValues("/api/users").Add(42)

	hits := expvar.NewMap("hits")
	hits.Add("GET", 3)
	hits.Add("POST", 1)
	expvar.NewInt("queue_depth").Set(7)
	expvar.NewString("version").Set("1.2.3")

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.Handler())
	mux.Handle("/debug/vars", expvar.Handler())

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// The test reads the chosen address from the first line of stdout.
	os.Stdout.WriteString(ln.Addr().String() + "\n")
	log.Fatal(http.Serve(ln, mux))
}
