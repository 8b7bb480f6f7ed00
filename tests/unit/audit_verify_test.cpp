// verify_audit_files(): each kind of tampering is caught and located at the first bad line:
// an edited field, a deleted line, two swapped lines, a torn last line, a dropped rotated file,
// a forged checkpoint, a chain rewritten without the key, a chain re-signed with another key.
#include "audit/audit_verify.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "../tools/audit_test_support.hpp"
#include "audit/audit_log.hpp"
#include "audit/audit_record.hpp"
#include "core/sha256.hpp"

namespace portcullis {
namespace {

using namespace audit_test;
namespace fs = std::filesystem;

class AuditVerifyTest : public ::testing::Test {
 protected:
  // 100 records, a checkpoint every 10; with `rotate` also small files (all kept).
  void write_log(bool rotate = false, bool close = true, int records = 100) {
    AuditConfig c;
    c.file_path = dir_ / "audit.jsonl";
    c.key_file = dir_ / "key.pem";
    c.checkpoint_every = 10;
    c.keep = 0;
    if (rotate) c.max_bytes = 6 * 1024;
    auto w = AuditWriter::open(c, "gw-verify", clock_);
    ASSERT_TRUE(w.has_value());
    for (int i = 0; i < records; ++i) (*w)->submit(audit_event_body(sample_event(clock_, i)));
    if (close) {
      (*w)->close();
    } else {
      (*w)->flush();
      // Leave the writer "running": copy the files as they are now, then close.
      for (const auto& f : jsonl_files(dir_.path())) fs::copy_file(f, f + ".snapshot");
      (*w)->close();
      for (const auto& f : jsonl_files(dir_.path())) fs::rename(f + ".snapshot", f);
    }
    files_ = order_audit_files(jsonl_files(dir_.path()));
    pinned_ = *AuditVerifyKey::from_pem_file(dir_ / "key.pem");
  }

  AuditVerifyReport verify(bool pin = true) {
    AuditVerifyOptions opt;
    if (pin) opt.pinned.push_back(pinned_);
    return verify_audit_files(files_, opt);
  }

  static std::string dump(const AuditVerifyReport& r) {
    std::string out;
    for (const auto& p : r.problems) out += p.to_string() + "\n";
    for (const auto& n : r.notes) out += "note: " + n + "\n";
    return out;
  }

  // Index (0-based) of the n-th line of `type` in `lines`.
  static std::size_t nth(const std::vector<std::string>& lines, std::string_view type, int n) {
    const std::string needle = "\"type\":\"" + std::string(type) + "\"";
    for (std::size_t i = 0; i < lines.size(); ++i)
      if (lines[i].find(needle) != std::string::npos && n-- == 0) return i;
    ADD_FAILURE() << "no " << type << " line";
    return 0;
  }

  // What an attacker with write access but not the key can do: recompute every prev from
  // `from_file` on; with `attacker` also replace the announced key and re-sign checkpoints.
  void rechain(const AuditSigningKey* attacker) {
    std::string prev;
    std::string old_kid, old_x;
    {
      const auto first = read_lines(files_.front()).front();
      const auto kid_at = first.find("\"kid\":\"") + 7;
      old_kid = first.substr(kid_at, first.find('"', kid_at) - kid_at);
      const auto x_at = first.find("\"x\":\"") + 5;
      old_x = first.substr(x_at, first.find('"', x_at) - x_at);
    }
    const auto replace_all = [](std::string& s, const std::string& from, const std::string& to) {
      for (std::size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size())
        s.replace(p, from.size(), to);
    };
    for (const auto& file : files_) {
      auto lines = read_lines(file);
      for (auto& line : lines) {
        if (!prev.empty()) line.replace(line.find("\"prev\":\"") + 8, 64, prev);
        if (attacker) {
          replace_all(line, old_kid, attacker->kid());
          replace_all(line, old_x, attacker->x());
          if (line.find("\"type\":\"checkpoint\"") != std::string::npos) {
            auto parts = split_checkpoint(line);
            std::string message = parts->message;
            line = message.substr(0, message.size() - 1) + std::string(kAuditSigMember) +
                   *attacker->sign(message) + "\"}";
          }
        }
        prev = sha256_hex(line);
      }
      write_lines(file, lines);
    }
  }

  TempDir dir_;
  ManualClock clock_;
  std::vector<std::string> files_;
  AuditVerifyKey pinned_ = *AuditVerifyKey::from_x("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
};

TEST_F(AuditVerifyTest, AnUntouchedLogVerifies) {
  write_log(true);
  ASSERT_GT(files_.size(), 3u);
  const auto r = verify();
  EXPECT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.requests, 100u);
  EXPECT_TRUE(r.clean_end);
  EXPECT_EQ(r.files, files_);
}

TEST_F(AuditVerifyTest, AnEditedFieldIsFoundAtItsLine) {
  write_log();
  auto lines = read_lines(files_[0]);
  const std::size_t i = nth(lines, "request", 12);  // a deny
  const auto at = lines[i].find("\"decision\":\"deny\"");
  ASSERT_NE(at, std::string::npos) << lines[i];
  lines[i].replace(at, 17, "\"decision\":\"allow\"");
  write_lines(files_[0], lines);
  const auto r = verify();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.problems[0].kind, AuditProblem::edited) << dump(r);
  EXPECT_EQ(r.problems[0].file, files_[0]);
  EXPECT_EQ(r.problems[0].line, i + 1) << dump(r);
}

TEST_F(AuditVerifyTest, ADeletedLineIsMissing) {
  write_log();
  auto lines = read_lines(files_[0]);
  const std::size_t i = nth(lines, "request", 25);
  lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(i));
  write_lines(files_[0], lines);
  const auto r = verify();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.problems[0].kind, AuditProblem::missing) << dump(r);
  EXPECT_EQ(r.problems[0].line, i + 1) << dump(r);  // the line after the gap
}

TEST_F(AuditVerifyTest, SwappedLinesAreReordered) {
  write_log();
  auto lines = read_lines(files_[0]);
  const std::size_t i = nth(lines, "request", 31);
  std::swap(lines[i], lines[i + 1]);
  write_lines(files_[0], lines);
  const auto r = verify();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.problems[0].kind, AuditProblem::reordered) << dump(r);
  EXPECT_EQ(r.problems[0].line, i + 1) << dump(r);
  for (const auto& p : r.problems) EXPECT_NE(p.kind, AuditProblem::edited) << dump(r);
}

TEST_F(AuditVerifyTest, ATornLastLineIsTruncatedWithOffsetAndLength) {
  write_log();
  const std::string data = read_file(files_[0]);
  const auto lines = read_lines(files_[0]);
  const std::size_t cut = data.size() - 40;
  write_file(files_[0], data.substr(0, cut));
  const auto r = verify();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.problems[0].kind, AuditProblem::truncated) << dump(r);
  EXPECT_EQ(r.problems[0].line, lines.size());
  const std::size_t offset = data.size() - lines.back().size() - 1;
  EXPECT_NE(r.problems[0].message.find("offset " + std::to_string(offset)), std::string::npos)
      << dump(r);
  EXPECT_NE(r.problems[0].message.find(std::to_string(cut - offset) + " bytes"), std::string::npos)
      << dump(r);
}

TEST_F(AuditVerifyTest, ADroppedRotatedFileIsMissing) {
  write_log(true);
  ASSERT_GT(files_.size(), 3u);
  const std::string dropped = files_[1];
  fs::remove(dropped);
  files_.erase(files_.begin() + 1);
  const auto r = verify();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.problems[0].kind, AuditProblem::missing) << dump(r);
  EXPECT_EQ(r.problems[0].file, files_[1]);
  EXPECT_EQ(r.problems[0].line, 1u);
  EXPECT_NE(r.problems[0].message.find("rotated file is missing"), std::string::npos) << dump(r);
}

TEST_F(AuditVerifyTest, AForgedCheckpointSignatureIsCaught) {
  write_log();
  auto lines = read_lines(files_[0]);
  const std::size_t i = nth(lines, "checkpoint", 3);
  char& c = lines[i][lines[i].size() - 5];
  c = c == 'A' ? 'B' : 'A';
  write_lines(files_[0], lines);
  const auto r = verify();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.problems[0].kind, AuditProblem::forged_checkpoint) << dump(r);
  EXPECT_EQ(r.problems[0].line, i + 1);
}

TEST_F(AuditVerifyTest, AnEditedCheckpointFieldBreaksItsSignature) {
  write_log();
  auto lines = read_lines(files_[0]);
  const std::size_t i = nth(lines, "checkpoint", 2);
  lines[i].replace(lines[i].find("\"reason\":\"count\""), 16, "\"reason\":\"xxxxx\"");
  write_lines(files_[0], lines);
  const auto r = verify();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.problems[0].kind, AuditProblem::forged_checkpoint) << dump(r);
  EXPECT_EQ(r.problems[0].line, i + 1);
}

TEST_F(AuditVerifyTest, AnEditWithTheChainRecomputedFailsAtTheNextCheckpoint) {
  write_log();
  auto lines = read_lines(files_[0]);
  const std::size_t i = nth(lines, "request", 42);
  lines[i].replace(lines[i].find("\"subject\":\"user-"), 16, "\"subject\":\"evil-");
  write_lines(files_[0], lines);
  rechain(nullptr);
  const auto r = verify();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.problems[0].kind, AuditProblem::forged_checkpoint) << dump(r);
  const auto now = read_lines(files_[0]);
  EXPECT_EQ(r.problems[0].line, nth(now, "checkpoint", 4) + 1) << dump(r);
}

TEST_F(AuditVerifyTest, ReSignedWithAnotherKeyFailsOnlyAgainstThePinnedKey) {
  write_log(true);
  auto lines = read_lines(files_[1]);
  const std::size_t i = nth(lines, "request", 2);
  lines[i].replace(lines[i].find("\"subject\":\"user-"), 16, "\"subject\":\"evil-");
  write_lines(files_[1], lines);
  const auto attacker = *AuditSigningKey::generate();
  rechain(&attacker);

  const auto unpinned = verify(false);
  EXPECT_TRUE(unpinned.ok()) << "without --key a complete rewrite cannot be told apart";
  ASSERT_FALSE(unpinned.notes.empty());
  EXPECT_NE(unpinned.notes[0].find("no --key given"), std::string::npos) << dump(unpinned);

  const auto r = verify(true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.problems[0].kind, AuditProblem::unknown_key) << dump(r);
  EXPECT_EQ(r.problems[0].file, files_[0]);
  EXPECT_EQ(r.problems[0].line, 1u);
}

TEST_F(AuditVerifyTest, CheckpointsSignedByAnUnannouncedKeyAreUnknown) {
  write_log();
  auto lines = read_lines(files_[0]);
  const std::size_t i = nth(lines, "checkpoint", 0);
  const auto attacker = *AuditSigningKey::generate();
  auto parts = split_checkpoint(lines[i]);
  std::string msg = parts->message;
  const auto kid_at = msg.find("\"kid\":\"") + 7;
  msg.replace(kid_at, msg.find('"', kid_at) - kid_at, attacker.kid());
  lines[i] =
      msg.substr(0, msg.size() - 1) + std::string(kAuditSigMember) + *attacker.sign(msg) + "\"}";
  write_lines(files_[0], lines);
  for (bool pin : {true, false}) {
    const auto r = verify(pin);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.problems[0].kind, AuditProblem::unknown_key) << dump(r);
    EXPECT_EQ(r.problems[0].line, i + 1);
  }
}

TEST_F(AuditVerifyTest, AnUnsignedTailIsANoteNotAFailure) {
  write_log(false, false, 95);
  const auto r = verify();
  EXPECT_TRUE(r.ok()) << dump(r);
  EXPECT_FALSE(r.clean_end);
  bool noted = false;
  for (const auto& n : r.notes)
    noted |= n.find("not covered by a signed checkpoint") != std::string::npos;
  EXPECT_TRUE(noted) << dump(r);
}

TEST_F(AuditVerifyTest, NotJsonIsEdited) {
  write_log();
  auto lines = read_lines(files_[0]);
  lines[5] = "garbage";
  write_lines(files_[0], lines);
  const auto r = verify();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.problems[0].kind, AuditProblem::edited);
  EXPECT_EQ(r.problems[0].line, 6u);
}

TEST_F(AuditVerifyTest, CollectsDirectoriesAndDeduplicates) {
  write_log(true);
  auto files = collect_audit_files({dir_.path(), files_[0]});
  ASSERT_TRUE(files.has_value());
  EXPECT_EQ(files->size(), files_.size());
  EXPECT_FALSE(collect_audit_files({dir_ / "nope.jsonl"}).has_value());
}

}  // namespace
}  // namespace portcullis
