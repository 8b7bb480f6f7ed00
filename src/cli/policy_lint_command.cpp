// `portcullis policy lint`: loads a config, runs the policy linter and prints its findings
// like a compiler (FILE:LINE:COLUMN: SEVERITY: [code] message) or as one JSON array for CI.
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include "authz/lint_audit_reader.hpp"
#include "authz/policy_lint.hpp"
#include "cli/policy_commands.hpp"
#include "core/config_loader.hpp"

namespace portcullis {
namespace {

constexpr std::string_view kLintUsage =
    "usage: portcullis policy lint [--config FILE] [--strict] [--format text|json]\n"
    "                              [--audit FILE...]\n"
    "\n"
    "Reports risky, dead or unused policy rules of a config's routes and of the policy files\n"
    "in its policy_dir, one finding a line: FILE:LINE:COLUMN: SEVERITY: [code] message.\n"
    "\n"
    "  --config FILE   the config (default: ./portcullis.yaml)\n"
    "  --strict        warnings fail too\n"
    "  --format json   print the findings as one JSON array (summary on stderr)\n"
    "  --audit FILE... access-log / audit JSON lines: also report grants (subject, email,\n"
    "                  group) that made no allowed call to their route (least privilege)\n"
    "\n"
    "Exit 0 when there are no errors (and, with --strict, no warnings), 1 otherwise or when\n"
    "the config does not load, 2 for usage errors.\n";

struct LintArgs {
  std::string config;
  bool strict = false;
  bool json = false;
  bool help = false;
  std::vector<std::string> audit;
};

// The error message of a bad command line, or nullopt.
std::optional<std::string> parse_args(const std::vector<std::string_view>& args, LintArgs& out) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    const auto value = [&](std::string_view name) -> std::optional<std::string_view> {
      if (a.starts_with(std::string(name) + "=")) return a.substr(name.size() + 1);
      if (i + 1 >= args.size() || args[i + 1].starts_with("--")) return std::nullopt;
      return args[++i];
    };
    if (a == "--help" || a == "-h") {
      out.help = true;
    } else if (a == "--strict") {
      out.strict = true;
    } else if (a == "--config" || a.starts_with("--config=")) {
      const auto v = value("--config");
      if (!v || v->empty()) return "--config needs a FILE";
      out.config = *v;
    } else if (a == "--format" || a.starts_with("--format=")) {
      const auto v = value("--format");
      if (!v || (*v != "text" && *v != "json")) return "--format needs text or json";
      out.json = *v == "json";
    } else if (a == "--audit") {
      const std::size_t before = out.audit.size();
      while (i + 1 < args.size() && !args[i + 1].starts_with("--")) {
        out.audit.emplace_back(args[++i]);
      }
      if (out.audit.size() == before) return "--audit needs at least one FILE";
    } else if (a.starts_with("--audit=")) {
      out.audit.emplace_back(a.substr(8));
    } else {
      return "unexpected argument '" + std::string(a) + "'";
    }
  }
  return std::nullopt;
}

int usage_error(const std::string& message) {
  std::cerr << "portcullis: " << message << "\n\n" << kLintUsage;
  return 2;
}

boost::json::object to_json(const LintFinding& f) {
  return {{"severity", severity_name(f.severity)},
          {"file", f.file},
          {"line", f.line},
          {"column", f.column},
          {"code", f.code},
          {"message", f.message}};
}

std::string plural(std::size_t n, std::string_view word) {
  return std::to_string(n) + " " + std::string(word) + (n == 1 ? "" : "s");
}

// Files under the working directory are shown relative to it, like the config path given.
std::string display_path(const std::string& file) {
  namespace fs = std::filesystem;
  const fs::path p(file);
  std::error_code ec;
  if (!p.is_absolute()) return file;
  const fs::path cwd = fs::current_path(ec);
  if (ec) return file;
  const fs::path rel = p.lexically_relative(cwd);
  if (rel.empty() || *rel.begin() == "..") return file;
  return rel.string();
}

void print_findings(std::vector<LintFinding> findings, bool json) {
  for (LintFinding& f : findings) f.file = display_path(f.file);
  if (json) {
    boost::json::array out;
    for (const LintFinding& f : findings) out.push_back(to_json(f));
    std::cout << boost::json::serialize(out) << "\n";
    return;
  }
  for (const LintFinding& f : findings) std::cout << f.to_string() << "\n";
}

}  // namespace

int run_policy_lint(const std::vector<std::string_view>& args) {
  LintArgs a;
  if (auto error = parse_args(args, a)) return usage_error(*error);
  if (a.help) {
    std::cout << kLintUsage;
    return 0;
  }
  if (a.config.empty()) {
    std::error_code ec;
    if (!std::filesystem::exists("portcullis.yaml", ec)) {
      return usage_error("no --config FILE and no ./portcullis.yaml");
    }
    a.config = "portcullis.yaml";
  }
  const ConfigLoadResult loaded = load_config_file(a.config);
  if (!loaded.ok()) {
    if (a.json) {
      std::vector<LintFinding> errors;
      for (const ConfigError& e : loaded.errors) {
        errors.push_back(
            {LintSeverity::error, e.file, e.line, e.column, "config-error", e.message});
      }
      print_findings(errors, true);
    } else {
      for (const ConfigError& e : loaded.errors) std::cerr << e.to_string() << "\n";
    }
    std::cerr << "portcullis: " << a.config << " does not load ("
              << plural(loaded.errors.size(), "error") << ")\n";
    return 1;
  }

  LintAuditRecords audit;
  LintOptions options;
  if (!a.audit.empty()) {
    for (const std::string& file : a.audit) audit.add_file(file);
    options.audit = &audit;
  }
  const std::vector<LintFinding> findings = lint_config(*loaded.config, options);
  std::size_t counts[3] = {0, 0, 0};
  for (const LintFinding& f : findings) ++counts[static_cast<int>(f.severity)];
  print_findings(findings, a.json);

  std::ostream& side = a.json ? std::cerr : std::cout;
  if (options.audit) {
    side << "audit window: "
         << (audit.first_time.empty() ? std::string("no timestamps")
                                      : audit.first_time + " .. " + audit.last_time)
         << " (" << plural(audit.records.size(), "record") << " from "
         << plural(audit.files.size(), "file") << ")\n";
  }
  side << plural(counts[0], "error") << ", " << plural(counts[1], "warning") << ", "
       << plural(counts[2], "note") << "\n";
  const bool failed = counts[0] > 0 || (a.strict && counts[1] > 0);
  return failed ? 1 : 0;
}

}  // namespace portcullis
