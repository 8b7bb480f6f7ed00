// portcullis_audit_fixture: writes a real audit log with AuditWriter, for the CLI integration
// test (tests/integration/audit_cli.test.mjs) to verify, tamper with and export. Test-only.
//
//   portcullis_audit_fixture DIR RECORDS [--key FILE] [--max-bytes N] [--checkpoint-every N]
//                            [--start UNIX_SECONDS] [--step-ms N] [--no-close]
//
// Record i is sample_event(i) (tests/tools/audit_test_support.hpp) at start + i * step; the
// log is DIR/audit.jsonl plus rotated files. --no-close leaves no final checkpoint (the files
// are copied before close, as if the process had been killed). Prints the key's kid.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <string_view>

#include "audit/audit_log.hpp"
#include "audit_test_support.hpp"

int main(int argc, char** argv) {
  using namespace portcullis;
  if (argc < 3) {
    std::cerr << "usage: portcullis_audit_fixture DIR RECORDS [--key FILE] [--max-bytes N] "
                 "[--checkpoint-every N] [--start UNIX_SECONDS] [--step-ms N] [--no-close]\n";
    return 2;
  }
  const std::string dir = argv[1];
  const int records = std::atoi(argv[2]);
  AuditConfig config;
  config.file_path = dir + "/audit.jsonl";
  config.keep = 0;
  config.checkpoint_every = 10;
  std::int64_t start = 1'800'000'000;
  long step_ms = 1000;
  bool close = true;
  for (int i = 3; i < argc; ++i) {
    const std::string_view a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--key") {
      config.key_file = value();
    } else if (a == "--max-bytes") {
      config.max_bytes = std::stoull(value());
    } else if (a == "--checkpoint-every") {
      config.checkpoint_every = static_cast<unsigned>(std::stoul(value()));
    } else if (a == "--start") {
      start = std::stoll(value());
    } else if (a == "--step-ms") {
      step_ms = std::stol(value());
    } else if (a == "--no-close") {
      close = false;
    } else {
      std::cerr << "unknown argument " << a << "\n";
      return 2;
    }
  }
  std::filesystem::create_directories(dir);
  audit_test::ManualClock clock(start);
  auto log = AuditWriter::open(config, "fixture", clock);
  if (!log) {
    std::cerr << log.error() << "\n";
    return 1;
  }
  for (int i = 0; i < records; ++i) {
    if (!(*log)->submit(audit_event_body(audit_test::sample_event(clock, i)))) {
      std::cerr << "record " << i << " dropped\n";
      return 1;
    }
    clock.advance(std::chrono::milliseconds(step_ms));
    if (i % 100 == 99) (*log)->flush();
  }
  (*log)->flush();
  if (!close) {
    for (const auto& f : audit_test::jsonl_files(dir)) std::filesystem::copy_file(f, f + ".kept");
    (*log)->close();
    for (const auto& f : audit_test::jsonl_files(dir)) std::filesystem::rename(f + ".kept", f);
  } else {
    (*log)->close();
  }
  std::cout << (*log)->kid() << "\n";
  return 0;
}
