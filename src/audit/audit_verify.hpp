#pragma once
// Verification of audit files (`portcullis audit verify`): orders the files by their chain
// (whatever order they were given in), then checks every line: the hash chain (prev), seq
// continuity, record structure, checkpoint signatures and the keys that made them, and torn
// tails. Each problem is located as FILE:LINE and classified (edited, missing, reordered,
// truncated, forged-checkpoint, unknown-key); notes say what is fine but worth knowing (no
// pinned key, chain starting after retention, unsigned tail).
//
//   AuditVerifyOptions opt;  opt.pinned.push_back(*AuditVerifyKey::from_pem_file("audit.pub"));
//   auto files = collect_audit_files({"/var/log/portcullis"});
//   AuditVerifyReport r = verify_audit_files(*files, opt);
//   if (!r.ok()) std::cout << r.problems.front().to_string();
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/audit_key.hpp"
#include "core/expected.hpp"

namespace portcullis {

enum class AuditProblem {
  edited,             // a line's bytes changed (hash mismatch) or it is not a valid record
  missing,            // a seq gap: lines deleted or a rotated file dropped
  reordered,          // lines out of seq order (moved, swapped or duplicated)
  truncated,          // a torn last line that no start record accounts for
  forged_checkpoint,  // a checkpoint whose signature does not verify
  unknown_key,        // a key or checkpoint kid that is not pinned / not announced
  unreadable,         // a file that cannot be read
};
std::string_view to_string(AuditProblem p);

struct AuditFinding {
  AuditProblem kind = AuditProblem::edited;
  std::string file;
  std::uint64_t line = 0;  // 1-based; 0 = the file as a whole
  std::string message;
  std::string to_string() const;  // "FILE:LINE: kind: message"
};

struct AuditVerifyOptions {
  std::vector<AuditVerifyKey> pinned;  // empty: trust the keys the log announces (weaker)
  std::size_t max_problems = 20;       // stop collecting after this many
};

struct AuditVerifyReport {
  std::vector<AuditFinding> problems;  // in chain order; the first is the first bad line
  std::vector<std::string> notes;
  std::vector<std::string> files;  // in chain order
  std::uint64_t lines = 0, requests = 0, checkpoints = 0, lost = 0;
  std::optional<std::uint64_t> first_seq, last_seq;
  std::vector<std::string> kids;  // keys whose signatures verified
  bool clean_end = false;         // the last line is a signed "shutdown" checkpoint
  bool ok() const { return problems.empty(); }
};

AuditVerifyReport verify_audit_files(const std::vector<std::string>& files,
                                     const AuditVerifyOptions& options);

// Expands the CLI's FILE... arguments: a directory means its *.jsonl files; duplicates (same
// file twice) are removed. Error for a path that does not exist.
Expected<std::vector<std::string>, std::string> collect_audit_files(
    const std::vector<std::string>& args);

// The files in chain order (by the seq of their first complete line); files without a
// complete line go last. Unreadable files are left out (verify reports them).
std::vector<std::string> order_audit_files(const std::vector<std::string>& files);

}  // namespace portcullis
