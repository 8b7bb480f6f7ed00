#include "cli/audit_command.hpp"

#include <iostream>
#include <string>

#include "audit/audit_export.hpp"
#include "audit/audit_json.hpp"
#include "audit/audit_key.hpp"
#include "audit/audit_verify.hpp"

namespace portcullis {
namespace {

constexpr std::string_view kUsage =
    "usage: portcullis audit verify [--key PUB.pem]... FILE|DIR...\n"
    "       portcullis audit export [--since T] [--until T] [--subject S] [--route R]\n"
    "                               [--decision allow|deny] [--format jsonl|csv] [--all]\n"
    "                               FILE|DIR...\n"
    "\n"
    "Run 'portcullis audit verify --help' or 'portcullis audit export --help' for details.\n";

constexpr std::string_view kVerifyUsage =
    "usage: portcullis audit verify [--key PUB.pem]... FILE|DIR...\n"
    "\n"
    "Checks audit files (given in any order; a directory means its *.jsonl files): the hash\n"
    "chain, seq continuity, every checkpoint signature and the keys that made them, torn\n"
    "tails. Each problem is printed as FILE:LINE: kind: what is wrong, where kind is edited,\n"
    "missing, reordered, truncated, forged checkpoint or unknown key; the first one is the\n"
    "first bad line.\n"
    "\n"
    "  --key PUB.pem  the gateway's audit public key (SubjectPublicKeyInfo PEM, e.g. from\n"
    "                 'openssl pkey -in audit-key.pem -pubout'); repeat for rotated keys.\n"
    "                 Without it the key announced inside the log is used, which only\n"
    "                 proves consistency, not who wrote the log.\n"
    "\n"
    "Exit 0 when everything holds, 1 when not, 2 on usage errors.\n";

constexpr std::string_view kExportUsage =
    "usage: portcullis audit export [--since T] [--until T] [--subject S] [--route R]\n"
    "                               [--decision allow|deny] [--format jsonl|csv] [--all]\n"
    "                               FILE|DIR...\n"
    "\n"
    "Writes the request records of the window [--since, --until) to stdout, files ordered by\n"
    "their chain. T is RFC 3339 (2026-11-30T12:00:00Z, offsets allowed) or a date\n"
    "(2026-11-30 = its midnight UTC).\n"
    "\n"
    "  --subject S, --route R, --decision allow|deny   exact matches on request records\n"
    "  --format jsonl   the original lines, unchanged (default)\n"
    "  --format csv     RFC 4180 with a header row; cells starting with = + - @ TAB or CR\n"
    "                   get a leading ' so spreadsheets do not run them as formulas\n"
    "  --all            also genesis/start/rotate/checkpoint/lost records (time filter only)\n"
    "\n"
    "Export does not verify: run 'portcullis audit verify' on the same files for that.\n"
    "Exit 0 on success, 1 when no file could be read, 2 on usage errors.\n";

bool is_help(std::string_view a) {
  return a == "--help" || a == "-h" || a == "help";
}

int usage_error(const std::string& message, std::string_view usage) {
  std::cerr << "portcullis: " << message << "\n\n" << usage;
  return 2;
}

// Splits "--name=value" / "--name value"; returns false when `a` is not `name`.
bool option(const std::vector<std::string_view>& args, std::size_t& i, std::string_view name,
            std::string& value, bool& missing) {
  const std::string_view a = args[i];
  if (a == name) {
    if (i + 1 >= args.size()) {
      missing = true;
      return true;
    }
    value = std::string(args[++i]);
    return true;
  }
  if (a.size() > name.size() && a.starts_with(name) && a[name.size()] == '=') {
    value = std::string(a.substr(name.size() + 1));
    return true;
  }
  return false;
}

int run_verify(const std::vector<std::string_view>& args) {
  std::vector<std::string> key_files, paths;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (is_help(args[i])) {
      std::cout << kVerifyUsage;
      return 0;
    }
    std::string value;
    bool missing = false;
    if (option(args, i, "--key", value, missing)) {
      if (missing) return usage_error("--key needs a PEM file", kVerifyUsage);
      key_files.push_back(value);
    } else if (args[i].starts_with("-") && args[i] != "-") {
      return usage_error("unknown option '" + std::string(args[i]) + "'", kVerifyUsage);
    } else {
      paths.emplace_back(args[i]);
    }
  }
  if (paths.empty()) return usage_error("audit verify needs at least one FILE", kVerifyUsage);
  AuditVerifyOptions options;
  for (const auto& k : key_files) {
    auto key = AuditVerifyKey::from_pem_file(k);
    if (!key) return usage_error("--key " + key.error(), kVerifyUsage);
    options.pinned.push_back(std::move(*key));
  }
  auto files = collect_audit_files(paths);
  if (!files) return usage_error(files.error(), kVerifyUsage);
  if (files->empty()) {
    std::cerr << "portcullis: no audit files (*.jsonl) found\n";
    return 1;
  }

  const AuditVerifyReport r = verify_audit_files(*files, options);
  for (const auto& p : r.problems) std::cout << p.to_string() << "\n";
  for (const auto& n : r.notes) std::cout << "note: " << n << "\n";
  std::string range = r.first_seq ? " (seq " + std::to_string(*r.first_seq) + ".." +
                                        std::to_string(r.last_seq.value_or(0)) + ")"
                                  : "";
  std::string keys;
  for (const auto& k : r.kids) keys += (keys.empty() ? "" : ", ") + k;
  std::cout << r.files.size() << (r.files.size() == 1 ? " file, " : " files, ") << r.lines
            << " lines" << range << ", " << r.requests << " request records, " << r.checkpoints
            << " verified checkpoints"
            << (keys.empty()
                    ? ""
                    : " (key " + keys + (options.pinned.empty() ? ", not pinned)" : ", pinned)"))
            << (r.lost ? ", " + std::to_string(r.lost) + " records reported lost by the writer"
                       : "")
            << "\n";
  if (!r.ok()) {
    const auto& first = r.problems.front();
    std::cout << "result: FAILED, first bad line " << first.file
              << (first.line ? ":" + std::to_string(first.line) : "") << " ("
              << to_string(first.kind) << ")\n";
    return 1;
  }
  if (r.lines == 0) {
    std::cout << "result: FAILED, no audit records\n";
    return 1;
  }
  std::cout << "result: OK" << (r.clean_end ? ", ends with a clean shutdown" : "") << "\n";
  return 0;
}

int run_export(const std::vector<std::string_view>& args) {
  AuditExportFilter filter;
  AuditExportFormat format = AuditExportFormat::jsonl;
  std::vector<std::string> paths;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (is_help(args[i])) {
      std::cout << kExportUsage;
      return 0;
    }
    std::string value;
    bool missing = false;
    const std::string_view a = args[i];
    if (option(args, i, "--since", value, missing) || option(args, i, "--until", value, missing)) {
      if (missing) return usage_error(std::string(a) + " needs a time", kExportUsage);
      auto t = parse_rfc3339(value);
      if (!t) return usage_error(t.error(), kExportUsage);
      (a.starts_with("--since") ? filter.since : filter.until) = *t;
    } else if (option(args, i, "--subject", value, missing)) {
      if (missing) return usage_error("--subject needs a value", kExportUsage);
      filter.subject = value;
    } else if (option(args, i, "--route", value, missing)) {
      if (missing) return usage_error("--route needs a value", kExportUsage);
      filter.route = value;
    } else if (option(args, i, "--decision", value, missing)) {
      if (missing || (value != "allow" && value != "deny"))
        return usage_error("--decision must be allow or deny", kExportUsage);
      filter.decision = value;
    } else if (option(args, i, "--format", value, missing)) {
      if (missing || (value != "jsonl" && value != "csv"))
        return usage_error("--format must be jsonl or csv", kExportUsage);
      format = value == "csv" ? AuditExportFormat::csv : AuditExportFormat::jsonl;
    } else if (a == "--all") {
      filter.all = true;
    } else if (a.starts_with("-") && a != "-") {
      return usage_error("unknown option '" + std::string(a) + "'", kExportUsage);
    } else {
      paths.emplace_back(a);
    }
  }
  if (paths.empty()) return usage_error("audit export needs at least one FILE", kExportUsage);
  if (filter.since && filter.until && *filter.until <= *filter.since)
    return usage_error("--until must be after --since", kExportUsage);
  auto files = collect_audit_files(paths);
  if (!files) return usage_error(files.error(), kExportUsage);
  const AuditExportSummary s = export_audit(*files, filter, format, std::cout);
  std::cout.flush();
  std::cerr << "exported " << s.exported << (s.exported == 1 ? " record" : " records") << " from "
            << s.files << (s.files == 1 ? " file" : " files") << " (" << s.lines << " lines read"
            << (s.skipped ? ", " + std::to_string(s.skipped) + " not audit records, skipped" : "")
            << ")\n";
  return s.files == 0 ? 1 : 0;
}

}  // namespace

int run_audit(const std::vector<std::string_view>& args) {
  if (args.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  if (is_help(args[0])) {
    std::cout << kUsage;
    return 0;
  }
  const std::vector<std::string_view> rest(args.begin() + 1, args.end());
  if (args[0] == "verify") return run_verify(rest);
  if (args[0] == "export") return run_export(rest);
  return usage_error("unknown audit command '" + std::string(args[0]) + "'", kUsage);
}

}  // namespace portcullis
