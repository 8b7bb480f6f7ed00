#include "audit/audit_verify.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "audit/audit_file_sink.hpp"
#include "audit/audit_line_reader.hpp"
#include "audit/audit_record.hpp"
#include "core/sha256.hpp"

namespace portcullis {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

std::string basename_of(const std::string& path) {
  return fs::path(path).filename().string();
}

std::string at(const std::string& file, std::uint64_t line) {
  return file + ":" + std::to_string(line);
}

const json::string* str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? &v->get_string() : nullptr;
}

std::optional<std::uint64_t> uint(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v) return std::nullopt;
  if (v->is_uint64()) return v->get_uint64();
  if (v->is_int64() && v->get_int64() >= 0) return static_cast<std::uint64_t>(v->get_int64());
  return std::nullopt;
}

struct TornTail {
  std::string file;
  std::uint64_t line = 0;
  std::uint64_t offset = 0, length = 0;
  std::string sha256;
  std::uint64_t position = 0;  // chain position for sorting problems
  bool claimed = false;
};

// Where a seq was seen, for telling "missing" from "reordered" (built only on error paths).
using SeqIndex = std::unordered_map<std::uint64_t, std::pair<std::size_t, std::uint64_t>>;

class Verifier {
 public:
  Verifier(const AuditVerifyOptions& options, AuditVerifyReport& report)
      : options_(options), report_(report) {
    for (const auto& k : options_.pinned) pinned_.emplace(k.kid(), k);
  }

  void run(const std::vector<std::string>& given) {
    for (const auto& f : given) {
      AuditLineReader probe(f);
      if (!probe.ok()) problem(AuditProblem::unreadable, f, 0, "cannot read the file");
    }
    files_ = order_audit_files(given);
    report_.files = files_;
    for (file_index_ = 0; file_index_ < files_.size(); ++file_index_) check_file();
    finish();
  }

 private:
  void problem(AuditProblem kind, const std::string& file, std::uint64_t line, std::string message,
               std::optional<std::uint64_t> position = std::nullopt) {
    if (report_.problems.size() >= options_.max_problems) return;
    positions_.push_back(position.value_or(position_));
    report_.problems.push_back({kind, file, line, std::move(message)});
  }

  const SeqIndex& index() {
    if (!index_) {
      index_.emplace();
      for (std::size_t i = 0; i < files_.size(); ++i) {
        AuditLineReader in(files_[i]);
        while (auto l = in.next()) {
          if (auto seq = audit_line_seq(l->text)) index_->emplace(*seq, std::pair{i, l->number});
        }
      }
    }
    return *index_;
  }

  void check_file() {
    const std::string& file = files_[file_index_];
    AuditLineReader in(file);
    if (!in.ok()) return;
    first_line_of_file_ = true;
    while (auto l = in.next()) {
      ++position_;
      if (first_line_of_file_ && l->complete && !audit_line_seq(l->text)) {
        // Not part of the chain at all (or its first line was destroyed): one finding, no
        // line-by-line noise.
        problem(AuditProblem::edited, file, 1,
                "not an audit record (the file is not an audit log, or its first line was "
                "changed); the file was skipped");
        return;
      }
      if (!l->complete) {
        torn_.push_back(TornTail{file, l->number, l->offset, l->text.size(), sha256_hex(l->text),
                                 position_, false});
        break;
      }
      check_line(file, *l);
      first_line_of_file_ = false;
    }
  }

  void check_line(const std::string& file, const AuditLineReader::Line& l) {
    ++report_.lines;
    const std::string hash = sha256_hex(l.text);
    json::error_code ec;
    const json::value v = json::parse(l.text, ec);
    const json::object* o = !ec && v.is_object() ? &v.get_object() : nullptr;
    const std::optional<std::uint64_t> seq = o ? uint(*o, "seq") : std::nullopt;
    const json::string* prev = o ? str(*o, "prev") : nullptr;
    const json::string* type = o ? str(*o, "type") : nullptr;
    if (!o || !seq || !prev || !type) {
      problem(AuditProblem::edited, file, l.number,
              !o ? "not a JSON object (the line was edited or is not an audit record)"
                 : "not an audit record (no seq, prev or type)");
      // Keep following the chain from the seq the line claims, if any.
      if (auto s = audit_line_seq(l.text)) remember(*s, hash, file, l.number, true);
      return;
    }
    if (!report_.first_seq) report_.first_seq = *seq;
    report_.last_seq = *seq;

    // seq continuity.
    bool seq_ok = true;
    if (!expected_) {
      if (*type != audit_type::genesis)
        report_.notes.push_back(
            "the chain starts at seq " + std::to_string(*seq) + " (" + at(file, l.number) +
            "), not at a genesis record: earlier files were not given (or were removed by "
            "retention); the records before it cannot be checked");
    } else if (*seq != *expected_) {
      seq_ok = false;
      report_seq(file, l, *seq);
    }
    if (*type == audit_type::genesis && (*seq != 0 || *prev != kAuditZeroHash))
      problem(AuditProblem::edited, file, l.number,
              "a genesis record must have seq 0 and a zero prev");

    // prev: the hash of the line with seq - 1, when we saw it.
    if (seq_ok && *seq > 0) {
      if (auto it = hashes_.find(*seq - 1); it != hashes_.end() && it->second.hash != *prev) {
        const Seen& p = it->second;
        if (!p.reported)
          problem(AuditProblem::edited, p.file, p.line,
                  "its SHA-256 does not match the prev recorded by the next record (" +
                      at(file, l.number) + "): the line was changed",
                  p.position);
      }
    }
    remember(*seq, hash, file, l.number);
    expected_ = std::max(expected_.value_or(0), *seq + 1);

    if (*type == audit_type::request) {
      ++report_.requests;
    } else if (*type == audit_type::checkpoint) {
      check_checkpoint(file, l, *o);
    } else if (*type == audit_type::genesis || *type == audit_type::start ||
               *type == audit_type::rotate) {
      check_header(file, l, *o, std::string_view(*type));
    } else if (*type == audit_type::lost) {
      report_.lost += uint(*o, "count").value_or(0);
    } else {
      problem(AuditProblem::edited, file, l.number,
              "unknown record type \"" + std::string(*type) + "\"");
    }
    if (*type != audit_type::checkpoint) ++unsigned_lines_;
    last_type_ = std::string(*type);
    last_reason_.clear();
    if (*type == audit_type::checkpoint)
      if (const auto* r = str(*o, "reason")) last_reason_ = std::string(*r);
  }

  void report_seq(const std::string& file, const AuditLineReader::Line& l, std::uint64_t seq) {
    const std::uint64_t want = *expected_;
    if (seq > want) {
      const auto& idx = index();
      if (auto it = idx.find(want); it != idx.end()) {
        problem(AuditProblem::reordered, file, l.number,
                "seq " + std::to_string(seq) + " where seq " + std::to_string(want) +
                    " was expected (seq " + std::to_string(want) + " is at " +
                    at(files_[it->second.first], it->second.second) + ")");
        return;
      }
      std::string what = seq - want == 1 ? "seq " + std::to_string(want) + " is absent"
                                         : "seq " + std::to_string(want) + ".." +
                                               std::to_string(seq - 1) + " are absent";
      if (first_line_of_file_ && file_index_ > 0) {
        what += " between " + basename_of(files_[file_index_ - 1]) + " and " + basename_of(file) +
                ": a rotated file is missing";
      } else {
        what += ": lines were deleted";
      }
      problem(AuditProblem::missing, file, l.number, what);
      return;
    }
    problem(AuditProblem::reordered, file, l.number,
            "seq " + std::to_string(seq) + " after seq " + std::to_string(want - 1) +
                " (a line moved or duplicated)");
  }

  void remember(std::uint64_t seq, const std::string& hash, const std::string& file,
                std::uint64_t line, bool reported = false) {
    hashes_[seq] = Seen{hash, file, line, position_, reported};
    while (hashes_.size() > 16) hashes_.erase(hashes_.begin());
  }

  void check_header(const std::string& file, const AuditLineReader::Line& l, const json::object& o,
                    std::string_view type) {
    const json::value* jwk = o.if_contains("key");
    const json::string* x = jwk && jwk->is_object() ? str(jwk->get_object(), "x") : nullptr;
    const json::string* kid = str(o, "kid");
    std::optional<AuditVerifyKey> key;
    if (x) {
      if (auto k = AuditVerifyKey::from_x(std::string_view(*x))) key = std::move(*k);
    }
    if (!key || !kid || key->kid() != *kid) {
      problem(AuditProblem::edited, file, l.number,
              std::string(type) + " record has no valid Ed25519 key, or its kid does not match");
      return;
    }
    if (const json::value* t = o.if_contains("torn"); t && t->is_object()) {
      const auto& torn = t->get_object();
      claims_.push_back(Claim{file, l.number, uint(torn, "offset").value_or(0),
                              uint(torn, "length").value_or(0),
                              str(torn, "sha256") ? std::string(*str(torn, "sha256")) : "",
                              str(torn, "file") ? std::string(*str(torn, "file")) : ""});
    }
    if (!pinned_.empty()) {
      if (!pinned_.count(key->kid()))
        problem(AuditProblem::unknown_key, file, l.number,
                std::string(type) + " record announces key " + key->kid() +
                    ", which is not a pinned --key");
      current_ = std::move(key);
      return;
    }
    if (current_ && current_->kid() != key->kid()) {
      if (type == audit_type::rotate) {
        problem(AuditProblem::unknown_key, file, l.number,
                "rotate record switches to key " + key->kid() +
                    " (only a start record may "
                    "introduce a new key)");
      } else {
        report_.notes.push_back("the signing key changed to " + key->kid() + " at " +
                                at(file, l.number) + " (" + std::string(type) +
                                " record; not pinned: pass --key for each trusted key)");
      }
    }
    if (!announced_from_) announced_from_ = at(file, l.number) + " (" + std::string(type) + ")";
    current_ = std::move(key);
  }

  void check_checkpoint(const std::string& file, const AuditLineReader::Line& l,
                        const json::object& o) {
    const json::string* kid = str(o, "kid");
    const auto signed_part = split_checkpoint(l.text);
    if (!kid || !signed_part) {
      problem(AuditProblem::forged_checkpoint, file, l.number,
              "checkpoint without a kid or a trailing \"sig\"");
      return;
    }
    const AuditVerifyKey* key = nullptr;
    if (!pinned_.empty()) {
      if (auto it = pinned_.find(std::string(*kid)); it != pinned_.end()) key = &it->second;
    } else if (current_ && current_->kid() == *kid) {
      key = &*current_;
    }
    if (!key) {
      problem(AuditProblem::unknown_key, file, l.number,
              "checkpoint signed by key " + std::string(*kid) +
                  (pinned_.empty() ? ", which no earlier genesis/start/rotate record announced"
                                   : ", which is not a pinned --key"));
      return;
    }
    if (!key->verify(signed_part->message, signed_part->sig)) {
      problem(AuditProblem::forged_checkpoint, file, l.number,
              "signature does not verify with key " + key->kid() +
                  " (the checkpoint or the chain it signs was altered)");
      return;
    }
    ++report_.checkpoints;
    if (std::find(report_.kids.begin(), report_.kids.end(), key->kid()) == report_.kids.end())
      report_.kids.push_back(key->kid());
    unsigned_lines_ = 0;
    last_checkpoint_at_ = at(file, l.number);
  }

  void finish() {
    for (auto& t : torn_) {
      for (auto& c : claims_) {
        if (c.offset == t.offset && c.length == t.length && c.sha256 == t.sha256) {
          t.claimed = true;
          c.matched = true;
          report_.notes.push_back("torn tail of " + t.file + " (offset " +
                                  std::to_string(t.offset) + ", " + std::to_string(t.length) +
                                  " bytes) is accounted for by the start record at " +
                                  at(c.file, c.line) + " (a crash mid-write)");
          break;
        }
      }
      if (!t.claimed)
        problem(AuditProblem::truncated, t.file, t.line,
                "torn last line at offset " + std::to_string(t.offset) + " (" +
                    std::to_string(t.length) + " bytes, sha256 " + t.sha256 +
                    ") that no start record accounts for",
                t.position);
    }
    for (const auto& c : claims_) {
      if (!c.matched)
        report_.notes.push_back("the start record at " + at(c.file, c.line) +
                                " records a torn tail of " + c.torn_file + " (offset " +
                                std::to_string(c.offset) + ", " + std::to_string(c.length) +
                                " bytes) that is not among the files given");
    }
    if (report_.lines > 0) {
      report_.clean_end = last_type_ == audit_type::checkpoint && last_reason_ == "shutdown" &&
                          unsigned_lines_ == 0;
      if (unsigned_lines_ > 0)
        report_.notes.push_back(
            "the last " + std::to_string(unsigned_lines_) + " line(s) are not covered by a " +
            "signed checkpoint (" +
            (last_checkpoint_at_.empty() ? "there is none"
                                         : "the last is at " + last_checkpoint_at_) +
            "): the writer is running or stopped uncleanly; they are chained, but whoever can "
            "edit the files could rewrite them");
    }
    if (pinned_.empty() && announced_from_)
      report_.notes.insert(report_.notes.begin(),
                           "no --key given: signatures were checked with the key announced by " +
                               *announced_from_ +
                               ", which proves nothing against whoever can rewrite every file; "
                               "pin the real public key with --key PUB.pem");
    // Problems in chain order (the first is the first bad line).
    std::vector<std::size_t> order(report_.problems.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return positions_[a] < positions_[b]; });
    std::vector<AuditFinding> sorted;
    for (auto i : order) sorted.push_back(std::move(report_.problems[i]));
    report_.problems = std::move(sorted);
  }

  struct Seen {
    std::string hash;
    std::string file;
    std::uint64_t line = 0;
    std::uint64_t position = 0;
    bool reported = false;
  };
  struct Claim {
    std::string file;
    std::uint64_t line = 0;
    std::uint64_t offset = 0, length = 0;
    std::string sha256;
    std::string torn_file;
    bool matched = false;
  };

  const AuditVerifyOptions& options_;
  AuditVerifyReport& report_;
  std::map<std::string, AuditVerifyKey> pinned_;
  std::vector<std::string> files_;
  std::size_t file_index_ = 0;
  bool first_line_of_file_ = false;
  std::uint64_t position_ = 0;
  std::vector<std::uint64_t> positions_;
  std::optional<std::uint64_t> expected_;
  std::map<std::uint64_t, Seen> hashes_;
  std::optional<SeqIndex> index_;
  std::optional<AuditVerifyKey> current_;
  std::optional<std::string> announced_from_;
  std::vector<TornTail> torn_;
  std::vector<Claim> claims_;
  std::uint64_t unsigned_lines_ = 0;
  std::string last_checkpoint_at_;
  std::string last_type_, last_reason_;
};

}  // namespace

std::string_view to_string(AuditProblem p) {
  switch (p) {
    case AuditProblem::edited:
      return "edited";
    case AuditProblem::missing:
      return "missing";
    case AuditProblem::reordered:
      return "reordered";
    case AuditProblem::truncated:
      return "truncated";
    case AuditProblem::forged_checkpoint:
      return "forged checkpoint";
    case AuditProblem::unknown_key:
      return "unknown key";
    case AuditProblem::unreadable:
      return "unreadable";
  }
  return "?";
}

std::string AuditFinding::to_string() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  out += ": ";
  out += portcullis::to_string(kind);
  out += ": ";
  out += message;
  return out;
}

AuditVerifyReport verify_audit_files(const std::vector<std::string>& files,
                                     const AuditVerifyOptions& options) {
  AuditVerifyReport report;
  Verifier(options, report).run(files);
  return report;
}

std::vector<std::string> order_audit_files(const std::vector<std::string>& files) {
  std::vector<std::pair<std::uint64_t, std::string>> with_seq;
  std::vector<std::string> without;
  for (const auto& f : files) {
    AuditLineReader in(f);
    if (!in.ok()) continue;
    std::optional<std::uint64_t> seq;
    if (auto l = in.next(); l && l->complete) seq = audit_line_seq(l->text);
    if (seq) {
      with_seq.emplace_back(*seq, f);
    } else {
      without.push_back(f);
    }
  }
  std::stable_sort(with_seq.begin(), with_seq.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (auto& [seq, f] : with_seq) out.push_back(std::move(f));
  std::sort(without.begin(), without.end());
  for (auto& f : without) out.push_back(std::move(f));
  return out;
}

Expected<std::vector<std::string>, std::string> collect_audit_files(
    const std::vector<std::string>& args) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  const auto add = [&](const std::string& path) {
    std::error_code ec;
    const auto canonical = fs::weakly_canonical(path, ec).string();
    if (seen.insert(ec ? path : canonical).second) out.push_back(path);
  };
  for (const auto& a : args) {
    std::error_code ec;
    const auto status = fs::status(a, ec);
    if (ec || !fs::exists(status)) return unexpected("no such file or directory: " + a);
    if (fs::is_directory(status)) {
      std::vector<std::string> in_dir;
      for (const auto& e : fs::directory_iterator(a, ec)) {
        if (e.is_regular_file() && e.path().extension() == ".jsonl")
          in_dir.push_back(e.path().string());
      }
      if (ec) return unexpected("cannot list " + a + ": " + ec.message());
      std::sort(in_dir.begin(), in_dir.end());
      for (const auto& f : in_dir) add(f);
    } else {
      add(a);
    }
  }
  return out;
}

}  // namespace portcullis
