// `portcullis policy test [--verbose] FILE|DIR...`: runs policy table tests (the format is in
// authz/policy_table_test.hpp and docs/policy-testing.md) and prints a PASS/FAIL line per case
// and a `PASS: n/N` summary, like `opa test`.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>

#include "authz/policy_table_test.hpp"
#include "cli/policy_commands.hpp"

namespace portcullis {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kUsage =
    "usage: portcullis policy test [--verbose] FILE|DIR...\n"
    "\n"
    "Runs policy table tests: YAML files whose cases give an identity (a token's claims, or\n"
    "null), a request and the expected decision (and rule) of a policy, or of a route of a\n"
    "config as the gateway decides it. A DIR runs every *_test.yaml / *_test.yml under it.\n"
    "Prints a PASS or FAIL line per case (failures with expected vs actual and the trace),\n"
    "then PASS: n/N. --verbose shows the trace of passing cases too. Format:\n"
    "docs/policy-testing.md. Exit 0 when every case passes, 1 when a case fails or a file\n"
    "cannot be loaded (FILE:LINE:COLUMN: reason on stderr), 2 on usage errors.\n";

bool is_test_file(const fs::path& p) {
  const std::string name = p.filename().string();
  return name.ends_with("_test.yaml") || name.ends_with("_test.yml");
}

// FILE as given, or DIR's test files in name order; false when DIR has none or FILE is absent.
bool expand(const std::string& arg, std::vector<std::string>& files) {
  std::error_code ec;
  if (!fs::is_directory(arg, ec)) {
    files.push_back(arg);
    return true;
  }
  std::vector<std::string> found;
  for (auto it = fs::recursive_directory_iterator(arg, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec) && is_test_file(it->path())) found.push_back(it->path().string());
  }
  std::sort(found.begin(), found.end());
  files.insert(files.end(), found.begin(), found.end());
  return !found.empty();
}

}  // namespace

int run_policy_test(const std::vector<std::string_view>& args) {
  bool verbose = false;
  std::vector<std::string> paths;
  for (std::string_view a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (a == "--verbose" || a == "-v") {
      verbose = true;
    } else if (a.starts_with("-")) {
      std::cerr << "portcullis: unknown option '" << a << "'\n\n" << kUsage;
      return 2;
    } else {
      paths.emplace_back(a);
    }
  }
  if (paths.empty()) {
    std::cerr << "portcullis: policy test needs at least one FILE or DIR\n\n" << kUsage;
    return 2;
  }

  std::vector<std::string> files;
  int load_errors = 0;
  for (const std::string& p : paths) {
    if (!expand(p, files)) {
      std::cerr << p << ": no *_test.yaml or *_test.yml files in this directory\n";
      ++load_errors;
    }
  }
  std::size_t total = 0, passed = 0;
  for (const std::string& file : files) {
    const TableTestLoad loaded = load_table_test(file);
    if (!loaded.ok()) {
      for (const ConfigError& e : loaded.errors) std::cerr << e.to_string() << "\n";
      std::cout << "ERROR " << file << ": cannot be loaded (" << loaded.errors.size()
                << (loaded.errors.size() == 1 ? " error" : " errors") << ", see stderr)\n";
      ++load_errors;
      continue;
    }
    for (const TableTestOutcome& o : run_table_test(*loaded.suite)) {
      std::cout << outcome_text(*loaded.suite, o, verbose);
      ++total;
      if (o.passed) ++passed;
    }
  }
  std::cout << "--------------------------------------------------------------------------------\n"
            << "PASS: " << passed << "/" << total << "\n";
  if (passed != total) std::cout << "FAIL: " << total - passed << "/" << total << "\n";
  if (load_errors > 0) {
    std::cout << "ERROR: " << load_errors << (load_errors == 1 ? " file" : " files")
              << " could not be loaded\n";
  }
  return passed == total && load_errors == 0 ? 0 : 1;
}

}  // namespace portcullis
