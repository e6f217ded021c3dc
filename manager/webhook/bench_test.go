package webhook

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/manager/store"
)

// BenchmarkIntake posts signed deliveries over loopback HTTP, in parallel,
// each durably stored before its answer; it reports deliveries/s (target
// ≥ 2000 on 2 cores) and, as the baseline measured in the same run, the
// rate of single-row durable inserts without batching, HTTP or HMAC.
func BenchmarkIntake(b *testing.B) {
	h, st, _ := newHandler(b)
	srv := httptest.NewServer(h)
	defer srv.Close()
	payload := []byte(`{"action":"queued","workflow_job":{"id":1,"run_id":2,"labels":["self-hosted","linux"]}}`)
	sig := Sign(secret, payload)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	var n atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(string(payload)))
			req.Header.Set("X-GitHub-Event", "workflow_job")
			req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d", n.Add(1)))
			req.Header.Set("X-Hub-Signature-256", sig)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "deliveries/s")

	// Baseline: one fsync'd transaction per delivery.
	const baseN = 200
	t0 := time.Now()
	for i := 0; i < baseN; i++ {
		if _, err := st.PutDelivery(context.Background(), store.Delivery{ID: fmt.Sprintf("base-%d", i), Event: "workflow_job", ReceivedAt: time.Now(), Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
	base := baseN / time.Since(t0).Seconds()
	b.ReportMetric(base, "unbatched-inserts/s")
	b.ReportMetric(rate/base, "x-vs-unbatched")
}
