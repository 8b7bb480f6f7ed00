// export_audit(): time window and filters, JSON lines kept byte for byte, CSV quoting (RFC 4180)
// and spreadsheet formula neutralising.
#include "audit/audit_export.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "../tools/audit_test_support.hpp"
#include "audit/audit_log.hpp"

namespace portcullis {
namespace {

using namespace audit_test;
using namespace std::chrono_literals;

TEST(AuditCsv, QuotesPerRfc4180) {
  EXPECT_EQ(csv_cell("plain"), "plain");
  EXPECT_EQ(csv_cell(""), "");
  EXPECT_EQ(csv_cell("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_cell("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_cell("cr\rhere"), "\"cr\rhere\"");
}

TEST(AuditCsv, NeutralisesFormulaPrefixes) {
  EXPECT_EQ(csv_cell("=HYPERLINK(\"http://x\")"), "\"'=HYPERLINK(\"\"http://x\"\")\"");
  EXPECT_EQ(csv_cell("+1"), "'+1");
  EXPECT_EQ(csv_cell("-2+3"), "'-2+3");
  EXPECT_EQ(csv_cell("@SUM(A1)"), "'@SUM(A1)");
  EXPECT_EQ(csv_cell("\tx"), "'\tx");
  EXPECT_EQ(csv_cell("\rx"), "\"'\rx\"");
  EXPECT_EQ(csv_cell("=1,2"), "\"'=1,2\"");
  EXPECT_EQ(csv_cell("a=b"), "a=b");  // only a leading character matters
}

class AuditExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AuditConfig c;
    c.file_path = dir_ / "audit.jsonl";
    c.checkpoint_every = 4;
    c.max_bytes = 4096;
    c.keep = 0;
    auto w = AuditWriter::open(c, "gw-export", clock_);
    ASSERT_TRUE(w.has_value());
    // One record a minute from 2027-01-15T08:00:00Z (clock starts at 1800000000).
    for (int i = 0; i < 30; ++i) {
      AuditEvent e = sample_event(clock_, i);
      if (i == 7) {
        e.path = "/search,\"quoted\"\nnext";
        e.subject = "=cmd|' /C calc'!A0";
      }
      (*w)->submit(audit_event_body(e));
      clock_.advance(60s);
    }
    (*w)->close();
    files_ = jsonl_files(dir_.path());
    ASSERT_GT(files_.size(), 1u);
  }

  std::string run(const AuditExportFilter& f, AuditExportFormat format,
                  AuditExportSummary* summary = nullptr) {
    std::ostringstream out;
    const auto s = export_audit(files_, f, format, out);
    if (summary) *summary = s;
    return out.str();
  }
  static std::size_t count_lines(const std::string& s) {
    return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
  }
  static AuditTime t(const char* text) { return *parse_rfc3339(text); }

  TempDir dir_;
  ManualClock clock_;
  std::vector<std::string> files_;
};

TEST_F(AuditExportTest, JsonlKeepsTheOriginalLinesOfRequestRecords) {
  AuditExportSummary s;
  const std::string out = run({}, AuditExportFormat::jsonl, &s);
  EXPECT_EQ(s.exported, 30u);
  EXPECT_EQ(count_lines(out), 30u);
  EXPECT_EQ(out.find("\"type\":\"checkpoint\""), std::string::npos);
  // Byte for byte: every exported line is a line of one of the files.
  std::string all;
  for (const auto& f : files_) all += read_file(f);
  std::istringstream lines(out);
  for (std::string l; std::getline(lines, l);) EXPECT_NE(all.find(l + "\n"), std::string::npos);
}

TEST_F(AuditExportTest, TimeWindowIsSinceInclusiveUntilExclusive) {
  // The clock starts at 1800000000 = 2027-01-15T08:00:00Z; record i is at minute i.
  AuditExportFilter f;
  f.since = t("2027-01-15T08:05:00Z");
  f.until = t("2027-01-15T08:10:00Z");
  EXPECT_EQ(count_lines(run(f, AuditExportFormat::jsonl)), 5u);
  f.since = t("2027-01-15T09:05:00+01:00");  // the same instant, with an offset
  EXPECT_EQ(count_lines(run(f, AuditExportFormat::jsonl)), 5u);
  f.since = t("2027-01-16");
  f.until.reset();
  EXPECT_EQ(count_lines(run(f, AuditExportFormat::jsonl)), 0u);
}

TEST_F(AuditExportTest, FiltersBySubjectRouteAndDecision) {
  AuditExportFilter f;
  f.subject = "user-1";  // i % 5 == 1: 1, 6, 11, 16, 21, 26
  EXPECT_EQ(count_lines(run(f, AuditExportFormat::jsonl)), 6u);
  f = {};
  f.route = "billing";  // even i
  EXPECT_EQ(count_lines(run(f, AuditExportFormat::jsonl)), 15u);
  f = {};
  f.decision = "deny";  // i % 3 == 0
  EXPECT_EQ(count_lines(run(f, AuditExportFormat::jsonl)), 10u);
  f.route = "billing";  // both: i % 6 == 0
  EXPECT_EQ(count_lines(run(f, AuditExportFormat::jsonl)), 5u);
}

TEST_F(AuditExportTest, AllAddsTheChainRecords) {
  AuditExportFilter f;
  f.all = true;
  const std::string out = run(f, AuditExportFormat::jsonl);
  EXPECT_NE(out.find("\"type\":\"genesis\""), std::string::npos);
  EXPECT_NE(out.find("\"type\":\"checkpoint\""), std::string::npos);
  EXPECT_NE(out.find("\"type\":\"rotate\""), std::string::npos);
}

TEST_F(AuditExportTest, CsvHasAHeaderQuotesAndNeutralises) {
  AuditExportFilter f;
  f.since = t("2027-01-15T08:07:00Z");
  f.until = t("2027-01-15T08:08:00Z");
  const std::string out = run(f, AuditExportFormat::csv);
  const auto header_end = out.find("\r\n");
  ASSERT_NE(header_end, std::string::npos);
  EXPECT_EQ(out.substr(0, header_end).substr(0, 25), "seq,type,time,request_id,");
  const std::string row = out.substr(header_end + 2);
  EXPECT_NE(row.find(",request,2027-01-15T08:07:00.000000Z,req-7,"), std::string::npos) << row;
  EXPECT_NE(row.find(",\"/search,\"\"quoted\"\"\nnext\","), std::string::npos) << row;
  EXPECT_NE(row.find(",'=cmd|' /C calc'!A0,"), std::string::npos) << row;
  EXPECT_NE(row.find(",\"[\"\"orders-readers\"\",\"\"staff\"\"]\","), std::string::npos) << row;
  EXPECT_NE(row.find(",1.507,true\r\n"), std::string::npos) << row;
  EXPECT_TRUE(row.ends_with("\r\n"));
}

TEST_F(AuditExportTest, SkipsLinesThatAreNotRecords) {
  write_file(dir_ / "junk.jsonl", "not json\n{\"type\":\"request\"}\n");
  files_.push_back(dir_ / "junk.jsonl");
  AuditExportSummary s;
  run({}, AuditExportFormat::jsonl, &s);
  EXPECT_EQ(s.exported, 30u);
  EXPECT_EQ(s.skipped, 2u);
}

}  // namespace
}  // namespace portcullis
