// Reads access-log / audit-log JSON lines into LintAuditRecords for the linter's
// least-privilege report.
#include "authz/lint_audit_reader.hpp"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace portcullis {
namespace {

namespace fs = std::filesystem;

std::string iso_time(double epoch_seconds) {
  const std::time_t t = static_cast<std::time_t>(epoch_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

}  // namespace

std::string read_lint_input(const std::string& path, bool& ok) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  ok = static_cast<bool>(in) || in.eof();
  return text.str();
}

void LintAuditRecords::add_text(std::string_view text, const std::string& file) {
  if (std::find(files.begin(), files.end(), file) == files.end()) files.push_back(file);
  int line_no = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    const std::string_view line = trim(raw);
    if (line.empty()) continue;
    const auto bad = [&](std::string why) {
      problems.push_back({LintSeverity::warning, file, line_no, 1, "audit-bad-line",
                          "not an audit record: " + why});
    };
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(line, ec);
    if (ec) {
      bad("invalid JSON (" + ec.message() + ")");
      continue;
    }
    if (!v.is_object()) {
      bad("expected a JSON object");
      continue;
    }
    const boost::json::object& o = v.get_object();
    const auto str = [&](std::string_view key) -> const boost::json::string* {
      const boost::json::value* x = o.if_contains(key);
      return x && x->is_string() ? &x->get_string() : nullptr;
    };
    // The audit log's own records (genesis, start, rotate, checkpoint, lost) are not calls.
    if (const auto* type = str("type"); type && *type != "request") continue;
    const boost::json::string* decision = str("decision");
    if (!decision) {
      bad("no \"decision\" string");
      continue;
    }
    AuditRecord r;
    r.allowed = *decision == "allow";
    if (const auto* s = str("route")) r.route = std::string(*s);
    if (const auto* s = str("subject")) r.subject = std::string(*s);
    if (const auto* s = str("email")) {
      r.has_email = true;
      r.email = lower(std::string(*s));
    }
    if (const boost::json::value* g = o.if_contains("groups"); g && g->is_array()) {
      r.has_groups = true;
      for (const boost::json::value& item : g->get_array()) {
        if (item.is_string()) r.groups.emplace_back(item.get_string());
      }
    }
    if (const boost::json::value* t = o.if_contains("time")) {
      if (t->is_string()) r.time = std::string(t->get_string());
      if (t->is_number()) r.time = iso_time(t->to_number<double>());
    }
    if (!r.time.empty()) {
      if (first_time.empty() || r.time < first_time) first_time = r.time;
      if (last_time.empty() || r.time > last_time) last_time = r.time;
    }
    records.push_back(std::move(r));
  }
}

void LintAuditRecords::add_file(const std::string& path) {
  std::error_code ec;
  bool ok = fs::is_regular_file(path, ec);
  const std::string text = ok ? read_lint_input(path, ok) : std::string{};
  if (!ok) {
    if (std::find(files.begin(), files.end(), path) == files.end()) files.push_back(path);
    problems.push_back(
        {LintSeverity::error, path, 0, 0, "audit-unreadable", "cannot read the audit file"});
    return;
  }
  add_text(text, path);
}

}  // namespace portcullis
