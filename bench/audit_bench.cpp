// Audit writer throughput: records/s the writer thread sustains (submit through write and,
// per the mode, fsync) with 1 and 4 submitting threads; and the per-request cost of building
// a record body on a worker. Each iteration submits a block of records and waits (flush()) until
// they are all written, so the rate is what the disk path sustains, not just queueing.
// The log goes to $PORTCULLIS_BENCH_DIR (default /tmp), rotated at 64 MiB, 2 files kept.
#include <benchmark/benchmark.h>

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit_event.hpp"
#include "audit/audit_log.hpp"
#include "core/clock.hpp"

namespace {

using portcullis::AuditConfig;

portcullis::AuditEvent sample_event() {
  portcullis::AuditEvent e;
  e.time = std::chrono::system_clock::now();
  e.request_id = "6f1c0a5e2b7d4c1f9a8e3d2c1b0a9f8e";
  e.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  e.listener = "edge";
  e.route = "orders-api";
  e.method = "GET";
  e.authority = "api.example.com";
  e.path = "/orders/12345/items";
  e.source = "192.0.2.7";
  e.source_port = 40000;
  e.subject = "00u1a2b3c4d5e6f7g8h9";
  e.email = "alice@example.com";
  e.issuer = "https://example.okta.com/oauth2/default";
  e.client_id = "0oa1b2c3d4e5f6g7h8i9";
  e.groups = {"orders-readers", "staff", "eu-employees"};
  e.decision = "allow";
  e.rule = "policies/orders.yaml#allow[1]";
  e.reason = "matched";
  e.upstream = "orders";
  e.upstream_address = "10.0.0.7:7001";
  e.status = 200;
  e.bytes_out = 5321;
  e.duration = std::chrono::microseconds(2345);
  return e;
}

// Block of records per iteration and submitting threads; fsync mode from range(0).
void BM_AuditWriterSustained(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(1));
  constexpr int kBlock = 20000;
  const char* base = std::getenv("PORTCULLIS_BENCH_DIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/portcullis-audit-bench-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl.data());
  AuditConfig c;
  c.file_path = dir + "/audit.jsonl";
  c.fsync = static_cast<AuditConfig::Fsync>(state.range(0));
  c.max_bytes = 64ull << 20;
  c.keep = 2;
  {
    auto log = portcullis::AuditWriter::open(c, "bench", portcullis::SystemClock::instance());
    if (!log) {
      state.SkipWithError(log.error().c_str());
      return;
    }
    const std::string body = portcullis::audit_event_body(sample_event());
    for (auto _ : state) {
      std::vector<std::thread> workers;
      for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&] {
          for (int i = 0; i < kBlock / threads; ++i) {
            while (!(*log)->submit(body)) std::this_thread::yield();  // never with this queue
          }
        });
      }
      for (auto& w : workers) w.join();
      (*log)->flush();
    }
    (*log)->close();
    const auto s = (*log)->stats();
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * kBlock);
    state.SetBytesProcessed(static_cast<std::int64_t>(s.bytes_written));
    state.counters["fsyncs"] = static_cast<double>(s.fsyncs);
    state.counters["dropped"] = static_cast<double>(s.records_dropped);
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_AuditWriterSustained)
    ->ArgNames({"fsync", "threads"})
    ->Args({static_cast<int>(AuditConfig::Fsync::interval), 1})
    ->Args({static_cast<int>(AuditConfig::Fsync::interval), 4})
    ->Args({static_cast<int>(AuditConfig::Fsync::always), 4})
    ->Args({static_cast<int>(AuditConfig::Fsync::never), 4})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The worker-side cost of one record: building its JSON body.
void BM_AuditEventBody(benchmark::State& state) {
  const portcullis::AuditEvent e = sample_event();
  for (auto _ : state) benchmark::DoNotOptimize(portcullis::audit_event_body(e));
}
BENCHMARK(BM_AuditEventBody);

}  // namespace
